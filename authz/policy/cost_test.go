package policy

import (
	"fmt"
	"strings"
	"testing"
)

// TestCostLimit: an expression whose worst case exceeds CostLimit is
// tracked, and an evaluation that reaches the limit denies.
func TestCostLimit(t *testing.T) {
	big := make([]string, 1000)
	for i := range big {
		big[i] = fmt.Sprintf("i%d", i)
	}
	_, claims := signedClaims(t, baseClaims(map[string]any{"big": big}))
	quadratic := `claims.big.all(x, claims.big.all(y, x != "" && y != ""))` // a million iterations
	p := mustCompile(t, []string{quadratic})
	if p.progs[0].fast != nil {
		t.Fatal("a quadratic expression over claims runs untracked")
	}
	err := p.Check(claims, testRequest(nil))
	if err == nil {
		t.Fatal("allowed past the cost limit")
	}
	checkDenial(t, err, 0)
	if !strings.Contains(err.Err.Error(), "cost limit") {
		t.Fatalf("detail %v", err.Err)
	}

	// The same shape over a small list stays within the limit: tracked,
	// evaluated, allowed.
	_, small := signedClaims(t, baseClaims(map[string]any{"big": big[:10]}))
	if err := p.Check(small, testRequest(nil)); err != nil {
		t.Fatalf("small list: %v", err)
	}
}

// TestStaticBound: typical expressions have a compile-time worst case
// within the limit and run untracked; inputs larger than that worst case
// assumed run the tracked program, with the same answer.
func TestStaticBound(t *testing.T) {
	for _, expr := range []string{
		`claims["custom:tenant_id"] == request.path_segments[1]`,
		`request.method == "GET" || "admins" in groups`,
		`sets.contains(scopes, ["orders/read", "orders/write"])`,
		`claims.email_verified == true`,
		`request.headers["x-tenant"] == claims["custom:tenant_id"]`,
		`now - timestamp(claims.auth_time) < duration("15m") && "mfa" in claims.amr`,
		`claims.client_id in ["c1", "c2"]`,
	} {
		p := mustCompile(t, []string{expr})
		if p.progs[0].fast == nil {
			t.Errorf("%s: tracked; want the untracked program", expr)
		}
	}

	_, claims := signedPayload(t, []byte(evalPayload))
	p := mustCompile(t, []string{`request.headers["x-tenant"] == claims["custom:tenant_id"]`})
	if !p.progs[0].usesHeaders {
		t.Fatal("usesHeaders not set")
	}
	huge := testRequest(func(r *Request) { r.Header.Set("X-Padding", strings.Repeat("a", maxRequestBytes)) })
	if huge.size(true) <= maxRequestBytes || huge.size(false) > maxRequestBytes {
		t.Fatal("size")
	}
	for _, r := range []*Request{testRequest(nil), huge} {
		if err := p.Check(claims, r); err != nil {
			t.Fatalf("size %d: %v", r.size(true), err)
		}
	}
	other := testRequest(func(r *Request) {
		r.Header.Set("X-Tenant", "other")
		r.Header.Set("X-Padding", strings.Repeat("a", maxRequestBytes))
	})
	if err := p.Check(claims, other); err == nil {
		t.Fatal("tracked program allowed another tenant")
	}
}
