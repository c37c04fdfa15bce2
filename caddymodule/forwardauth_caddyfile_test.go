package caddymodule_test

import (
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestCaddyfileForwardAuth(t *testing.T) {
	out, err := adapt(t, `:80 {
	rewrite * /elsewhere
	cognito_auth {
		user_pool us-west-2_NMATFlcVJ
		audience x
		forward_auth
	}
	cognito_original_request request /ext-authz
}`)
	if err != nil {
		t.Fatal(err)
	}
	// cognito_original_request comes first, so every matcher and handler
	// after it sees the original request.
	if h := firstHandler(t, out); h != `{"from":"request","handler":"cognito_original_request","strip_prefix":"/ext-authz"}` {
		t.Errorf("first handler is %s", h)
	}
	if !strings.Contains(string(out), `"forward_auth":true`) {
		t.Errorf("forward_auth not in %s", out)
	}

	for _, tc := range []struct{ site, want string }{
		{"cognito_auth {\nuser_pool us-west-2_NMATFlcVJ\naudience x\nforward_auth yes\n}", "wrong argument count"},
		{"cognito_auth {\nuser_pool us-west-2_NMATFlcVJ\naudience x\nforward_auth\nforward_auth\n}", "forward_auth already specified"},
		{"cognito_auth {\nuser_pool us-west-2_NMATFlcVJ\naudience x\nforward_auth\nstrip_authorization\n}", "strip_authorization has no effect with forward_auth"},
		{"cognito_original_request", "want x-forwarded, x-original or request"},
		{"cognito_original_request x-real", `from "x-real": must be x-forwarded, x-original or request`},
		{"cognito_original_request request ext-authz", `strip_prefix "ext-authz": must start with /`},
		{"cognito_original_request request /ext-authz/", `strip_prefix "/ext-authz/"`},
		{"cognito_original_request request /a /b", "wrong argument count"},
		{"cognito_original_request x-original {\nfoo\n}", "wrong argument count"},
	} {
		_, err := adapt(t, ":80 {\n"+tc.site+"\n}\n")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Caddyfile:") {
			t.Errorf("%q: error %v, want %q with the line", tc.site, err, tc.want)
		}
	}
}

// The same checks for JSON configs (caddy validate / run).
func TestJSONForwardAuthValidation(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"handler":"cognito_auth","issuer":"https://x.example","audience":["a"],"forward_auth":true,"strip_authorization":true,"startup_wait":1}`, "strip_authorization has no effect with forward_auth"},
		{`{"handler":"cognito_original_request"}`, `from "": must be`},
		{`{"handler":"cognito_original_request","from":"request","strip_prefix":"x"}`, `strip_prefix "x"`},
	} {
		cfg := `{"apps":{"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[{"handle":[` + tc.json + `]}]}}}}}`
		err := caddy.Validate(mustConfig(t, cfg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.json, err, tc.want)
		}
	}
}

// The README's auth service is documentation users copy: it must adapt, to
// what the README says it is.
func TestREADMEForwardAuthServiceAdapts(t *testing.T) {
	out, err := adapt(t, readmeBlock(t, "service"))
	if err != nil {
		t.Fatalf("README auth service: %v", err)
	}
	if h := firstHandler(t, out); h != `{"from":"x-original","handler":"cognito_original_request"}` {
		t.Errorf("first handler is %s, want cognito_original_request", h)
	}
	for _, want := range []string{`"forward_auth":true`, `"scopes":["orders/write"]`, `"groups":["admins"]`, `"listen":["127.0.0.1:9091"]`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("README auth service lacks %s", want)
		}
	}
	if strings.Contains(string(out), `"host":`) {
		t.Errorf("README auth service matches a host: unmatched names would get Caddy's empty 200")
	}
}

// deploy/Caddyfile.forward-auth (docker compose --profile nginx) must adapt
// with the compose environment, to a forward-auth service.
func TestForwardAuthComposeCaddyfileAdapts(t *testing.T) {
	body, err := os.ReadFile("../deploy/Caddyfile.forward-auth")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("COGNITO_USER_POOL", "eu-west-1_AbCdEf123")
	t.Setenv("COGNITO_CLIENT_IDS", "client1 client2")
	t.Setenv("HTTP_PORT", "9091")
	for _, source := range []string{"default", "ssm"} {
		t.Setenv("JWKS_SOURCE", source)
		t.Setenv("JWKS_SSM_PARAMETER", "/cognito/jwks")
		out, err := adapt(t, string(body))
		if err != nil {
			t.Fatalf("Caddyfile.forward-auth (JWKS_SOURCE=%s): %v", source, err)
		}
		for _, want := range []string{`"forward_auth":true`, `{"from":"x-original","handler":"cognito_original_request"}`, `"listen":[":9091"]`} {
			if !strings.Contains(string(out), want) {
				t.Errorf("Caddyfile.forward-auth (JWKS_SOURCE=%s) lacks %s", source, want)
			}
		}
		if strings.Contains(string(out), `"host":`) {
			t.Errorf("Caddyfile.forward-auth matches a host: unmatched names would get Caddy's empty 200")
		}
	}
}
