package policy

import (
	"fmt"
	"strings"
	"testing"
)

// TestCostLimit: an expression whose worst case exceeds CostLimit is
// refused when it is compiled, with the estimate; typical rules are within
// it.
func TestCostLimit(t *testing.T) {
	for _, expr := range []string{
		`claims.big.all(x, claims.big.all(y, x != y))`,
		`request.headers.exists(h, request.headers.exists(g, g == h + "x"))`,
		`request.query.all(k, request.path_segments.all(s, s != k))`,
		`claims.all(k, claims.all(j, k != j))`,
	} {
		_, err := Compile([]string{expr})
		if err == nil || !strings.Contains(err.Error(), "exceeds the limit of 100000") {
			t.Errorf("%s: %v, want the cost limit", expr, err)
		}
		if err := CheckExpression(expr); err == nil {
			t.Errorf("CheckExpression(%s) accepted it", expr)
		}
	}
	typical := []string{
		tenantExpr,
		`request.method == "GET" || "admins" in groups`,
		`sets.contains(scopes, ["orders/read", "orders/write"])`,
		`claims.email_verified == true`,
		`request.headers["x-tenant"] == claims["custom:tenant_id"]`,
		`now - timestamp(claims.auth_time) < duration("15m") && "mfa" in claims.amr`,
		`claims.client_id in ["c1", "c2"]`,
		`request.path.startsWith("/admin/") && "admins" in groups`,
		`claims.exists(k, k.startsWith("custom:"))`,
		`claims.amr.exists(m, m == "mfa")`,
		`request.headers.exists(h, h.startsWith("x-debug"))`,
		`request.path_segments.exists(s, s == "admin") || request.query.all(k, k != "debug")`,
		`"x" in request.query && request.query.x.matches("^[a-z]+$")`,
	}
	for _, expr := range typical {
		if _, err := Compile([]string{expr}); err != nil {
			t.Errorf("%s: %v", expr, err)
		}
	}
	// The token size bounds the claims: a loop over a claim that is fine
	// with the default 16 KiB tokens is not with 1 MiB ones.
	loop := `claims.amr.exists(m, m == "mfa")`
	if _, err := Compile([]string{loop}, WithMaxTokenBytes(1<<20)); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("1 MiB tokens: %v", err)
	}
	if err := CheckExpression(loop, WithMaxTokenBytes(1<<20)); err == nil {
		t.Error("CheckExpression ignores the token size")
	}
}

// TestRequestLimits: request facts larger than the compile-time worst case
// assumed are an evaluation error (deny) for the expressions that read
// them, and nothing for the others.
func TestRequestLimits(t *testing.T) {
	_, claims := signedPayload(t, []byte(evalPayload))
	many := func(r *Request) {
		for i := range maxRequestItems + 1 {
			r.Header.Set(fmt.Sprintf("X-H%d", i), "v")
		}
	}
	long := strings.Repeat("a", maxRequestString+1)
	segs := strings.Repeat("/s", maxRequestItems+1)
	var query strings.Builder
	for i := range maxRequestItems + 1 {
		fmt.Fprintf(&query, "q%d=v&", i)
	}
	cases := []struct {
		name, expr string
		mod        func(*Request)
	}{
		{"many headers", `request.headers["x-tenant"] == "acme"`, many},
		{"long header", `request.headers["x-tenant"] == "acme"`, func(r *Request) { r.Header.Set("X-Long", long) }},
		{"long header name", `request.headers["x-tenant"] == "acme"`, func(r *Request) { r.Header.Set("X-"+long, "v") }},
		{"many query parameters", `request.query.x == "1"`, func(r *Request) { r.RawQuery = query.String() + "x=1" }},
		{"many segments", `size(request.path_segments) > 0`, func(r *Request) { r.Path, r.EscapedPath = segs, segs }},
		{"long path", `request.path.startsWith("/")`, func(r *Request) { r.Path, r.EscapedPath = "/"+long, "/"+long }},
		{"long path segments", `request.path_segments[0] != ""`, func(r *Request) { r.Path, r.EscapedPath = "/"+long, "/"+long }},
		{"long host", `request.host != ""`, func(r *Request) { r.Host = long }},
	}
	for _, tc := range cases {
		p := mustCompile(t, []string{tc.expr})
		if err := p.Check(claims, testRequest(nil)); err != nil {
			t.Fatalf("%s: the ordinary request is denied: %v", tc.name, err)
		}
		err := p.Check(claims, testRequest(tc.mod))
		if err == nil || !strings.Contains(err.Err.Error(), "larger than a policy may read") {
			t.Errorf("%s: %v", tc.name, err)
		}
		// An expression that does not read the fact does not care.
		if err := mustCompile(t, []string{`request.method == "GET"`}).Check(claims, testRequest(tc.mod)); err != nil {
			t.Errorf("%s: an expression that does not read it: %v", tc.name, err)
		}
	}
}
