package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-cognito/caddy-cognito/caddymodule"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

const bq = "`"

// TestCaddyfileRequire: require repeats, in order; a backquoted token is
// taken as it is, a double-quoted single token without its quotes, and
// several unquoted arguments are joined with their quotes kept.
func TestCaddyfileRequire(t *testing.T) {
	out, err := adapt(t, `:80 {
	cognito_auth {
		user_pool us-east-1_AAA
		audience c1
		scopes orders/read
		require `+bq+`claims["custom:tenant_id"] == request.path_segments[1]`+bq+`
		require `+bq+`request.method == "GET" || "admins" in groups`+bq+`
		require "claims.email_verified == true"
		require "admins" in groups || request.method in ["GET", "HEAD"]
		require claims.amr.exists(m, m == "mfa")
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	h := firstHandler(t, out)
	var got struct {
		Require []string `json:"require"`
		Scopes  []string `json:"scopes"`
	}
	if err := json.Unmarshal([]byte(h), &got); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`claims["custom:tenant_id"] == request.path_segments[1]`,
		`request.method == "GET" || "admins" in groups`,
		`claims.email_verified == true`,
		// A quoted token ends at its closing quote, so what follows it is
		// the next argument: the join puts a space there (same CEL).
		`"admins" in groups || request.method in ["GET", "HEAD" ]`,
		`claims.amr.exists(m, m == "mfa" )`,
	}
	if strings.Join(got.Require, "\n") != strings.Join(want, "\n") {
		t.Fatalf("require\n got %q\nwant %q", got.Require, want)
	}
	// The JSON loads back into the handler with the list intact.
	var back caddymodule.Handler
	if err := json.Unmarshal([]byte(h), &back); err != nil || len(back.Require) != len(want) {
		t.Fatalf("JSON does not load back: %v %q", err, back.Require)
	}
}

// TestCaddyfileRequireErrors: a bad expression fails `caddy adapt` with the
// Caddyfile line of the require and CEL's message.
func TestCaddyfileRequireErrors(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{bq + `claims.sub ==` + bq, "Syntax error"},
		{bq + `nosuch == "x"` + bq, "undeclared reference to 'nosuch'"},
		{bq + `request.method == 1` + bq, "found no matching overload for '_==_' applied to '(string, int)'"},
		{bq + `request.path` + bq, "must be a bool expression, not string"},
		{bq + `claims.email_verified` + bq, "must be a bool expression, not dyn"},
		{bq + `request.mehtod == "GET"` + bq, "request has the fields method"},
		{``, "require: want an expression"},
		// Unquoted, the Caddyfile lexer would strip the quotes of a
		// leading quoted token: joined raw, they are kept, so this is a
		// type error about a string, not an unknown identifier admins.
		{`"admins" == 1`, "applied to '(string, int)'"},
		{bq + `request.headers.exists(h, request.headers.exists(g, g == h))` + bq, "exceeds the limit of 100000"},
	} {
		cf := ":80 {\n\tcognito_auth {\n\t\tuser_pool us-east-1_AAA\n\t\taudience c1\n\t\trequire " + tc.expr + "\n\t}\n}\n"
		_, err := adapt(t, cf)
		if err == nil {
			t.Errorf("%s: adapted", tc.expr)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q lacks %q", tc.expr, err, tc.want)
		}
		if !regexp.MustCompile(`Caddyfile:5\b`).MatchString(err.Error()) {
			t.Errorf("%s: error %q does not name line 5", tc.expr, err)
		}
	}
}

// A loop over claims that is within the cost limit for 16 KiB tokens is
// not for 1 MiB ones, wherever max_token_size is written.
func TestCaddyfileRequireTokenSize(t *testing.T) {
	_, err := adapt(t, ":80 {\n\tcognito_auth {\n\t\tuser_pool us-east-1_AAA\n\t\taudience c1\n\t\trequire `claims.amr.exists(m, m == \"mfa\")`\n\t\tmax_token_size 1048576\n\t}\n}\n")
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit") || !strings.Contains(err.Error(), "Caddyfile:") {
		t.Fatalf("error %v", err)
	}
	if _, err := adapt(t, ":80 {\n\tcognito_auth {\n\t\tuser_pool us-east-1_AAA\n\t\taudience c1\n\t\trequire `claims.amr.exists(m, m == \"mfa\")`\n\t}\n}\n"); err != nil {
		t.Fatal(err)
	}
}

// A JSON config is checked when it loads (caddy validate, caddy run).
func TestJSONRequireValidation(t *testing.T) {
	for _, tc := range []struct{ require, want string }{
		{`["true", "claims.sub =="]`, "require[1] `claims.sub ==`: ERROR: <input>:1:14: Syntax error"},
		{`["request.method"]`, "must be a bool expression"},
		{`[""]`, "empty expression"},
		{`["claims.all(k, claims.all(j, k != j))"]`, "exceeds the limit"},
	} {
		cfg := `{"apps":{"http":{"servers":{"s":{"listen":[":0"],"routes":[{"handle":[` +
			`{"handler":"cognito_auth","issuer":"https://x.example","audience":["a"],"startup_wait":"1ms","require":` + tc.require + `}]}]}}}}}`
		err := caddy.Validate(mustConfig(t, cfg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.require, err, tc.want)
		}
	}
}

// TestIntegrationPolicy: tenant isolation and an || rule through a real
// Caddy; the answers, the backend, the metrics.
func TestIntegrationPolicy(t *testing.T) {
	e := newEnv(t)
	e.load(fmt.Sprintf(`
	route /metrics {
		metrics
	}
	route /t/* {
		%s
		reverse_proxy %s
	}
	route /ip {
		%s
		respond "ok"
	}`, e.authBlock(
		"require "+bq+`claims["custom:tenant_id"] == request.path_segments[1]`+bq,
		"require "+bq+`request.method == "GET" || "admins" in groups`+bq,
	), e.backend.URL, e.authBlock(
		"require "+bq+`request.remote_ip == "127.0.0.1" && request.host == "localhost" && request.headers["x-probe"] == "1" && request.query.q == "a b"`+bq,
	)))

	const policyChallenge = `Bearer error="insufficient_scope", error_description="the token does not satisfy the route policy"`
	acme := e.token("custom:tenant_id", "acme")
	auth := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	// Same user: own tenant 200, another tenant 403.
	e.expect(e.do("GET", "/t/acme/orders", auth(acme)...), 200, "", "")
	r := e.do("GET", "/t/globex/orders", auth(acme)...)
	e.expect(r, 403, policyChallenge, `{"message":"Forbidden"}`)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	// A dot segment could point a backend at another tenant: refused.
	e.expect(e.do("GET", "/t/acme/%2e%2e/globex/orders", auth(acme)...), 403, policyChallenge, "")
	// No tenant claim: the expression fails to evaluate, which denies.
	e.expect(e.do("GET", "/t/acme/orders", auth(e.token())...), 403, policyChallenge, "")
	// The || rule: writes need admins.
	e.expect(e.do("POST", "/t/acme/orders", auth(acme)...), 403, policyChallenge, "")
	admin := e.token("custom:tenant_id", "acme", "cognito:groups", []string{"admins"})
	e.expect(e.do("POST", "/t/acme/orders", auth(admin)...), 200, "", "")
	// A forged tenant claim never reaches the policy: the signature fails
	// first.
	forged := attackerKeyG.Sign(t, jwttest.Token{Claims: e.claims("custom:tenant_id", "globex")})
	e.expect(e.do("GET", "/t/globex/orders", auth(forged)...), 401,
		`Bearer error="invalid_token", error_description="token signature is invalid"`, `{"message":"Unauthorized"}`)
	if _, n := e.backend.lastHeaders(); n != 2 {
		t.Errorf("backend saw %d requests, want the 2 allowed", n)
	}

	// Request facts as Caddy sees them.
	e.expect(e.do("GET", "/ip?q=a%20b&q=c", append(auth(acme), "X-Probe", "1")...), 200, "", "ok")
	e.expect(e.do("GET", "/ip?q=x", append(auth(acme), "X-Probe", "1")...), 403, policyChallenge, "")

	m := e.do("GET", "/metrics")
	if want := `caddy_cognito_decisions_total{issuer="` + e.issuer + `",reason="policy",result="deny"} 5`; !strings.Contains(m.body, want) {
		t.Errorf("metrics lack %s", want)
	}
}

// TestIntegrationPolicyHandleErrors: a handle_errors route sees the
// policy denial in the placeholders.
func TestIntegrationPolicyHandleErrors(t *testing.T) {
	e := newEnv(t)
	e.loadWithGlobals("", fmt.Sprintf(`
	route {
		%s
		respond "hello"
	}
	handle_errors {
		respond "denied: {http.auth.cognito.error} / {http.auth.cognito.reason} / {http.auth.cognito.error_description} / {http.error.status_code}"
	}`, e.authBlock("require "+bq+`claims.email_verified == true`+bq)))
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+e.token("email_verified", true)), 200, "", "hello")
	r := e.do("GET", "/", "Authorization", "Bearer "+e.token("email_verified", false, "exp", time.Now().Unix()+60))
	e.expect(r, 403, `Bearer error="insufficient_scope", error_description="the token does not satisfy the route policy"`,
		"denied: insufficient_scope / policy / the token does not satisfy the route policy / 403")
}
