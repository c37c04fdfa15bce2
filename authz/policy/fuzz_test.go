package policy

// FuzzRequire: whatever the expression, compiling never panics, and a
// compiled expression, evaluated against a real verified token and a
// request, never panics and answers only allow or a policy denial (403,
// reason policy) whose detail names the expression and holds no part of
// the token. Run it for longer with
//
//	go test ./authz/policy -run '^$' -fuzz '^FuzzRequire$' -fuzztime 10m

import (
	"strings"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/authz"
)

func FuzzRequire(f *testing.F) {
	for _, s := range []string{
		tenantExpr,
		`request.method == "GET" || "admins" in groups`,
		`sets.contains(scopes, ["orders/read", "orders/write"])`,
		`now - timestamp(claims.auth_time) < duration("15m") && "mfa" in claims.amr`,
		`claims.address.geo.lat < -41.0 && claims.?missing.orValue(1) == 1`,
		`claims.exists(k, k.startsWith("custom:")) && size(claims) > 3`,
		`request.headers.exists(h, h.size() > 1000) || request.query.x == "1"`,
		`claims.amr.all(a, claims.amr.all(b, a != b || a == b))`,
		`int(claims.sub) > 1`,
		`request.path_segments[9] == claims["custom:tenant_id"]`,
		`string(claims.version) + request.host.split(".")[0] == "2api"`,
		`claims.sub ==`,
		`request`,
	} {
		f.Add(s)
	}
	tok, claims := signedPayload(f, []byte(evalPayload))
	req := testRequest(func(r *Request) { r.Header.Set("Authorization", "Bearer "+tok) })
	f.Fuzz(func(t *testing.T, expr string) {
		p, err := Compile([]string{expr})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "require[0] ") {
				t.Fatalf("compile error does not name the expression: %v", err)
			}
			return
		}
		derr := p.Check(claims, req)
		if derr == nil {
			return
		}
		if derr.Kind != authz.KindInsufficientScope || derr.Reason != Reason || derr.Description != Description {
			t.Fatalf("denial %+v", derr)
		}
		detail := derr.Error()
		if !strings.Contains(detail, "require[0] `") {
			t.Fatalf("detail %q does not name the expression", detail)
		}
		for _, part := range strings.Split(tok, ".") {
			if strings.Contains(detail, part[:16]) || strings.Contains(detail, part[len(part)-16:]) {
				t.Fatalf("detail %q holds part of the token", detail)
			}
		}
	})
}
