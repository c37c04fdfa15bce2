package caddymodule_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

var loginKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func TestCaddyfileLoginAdapt(t *testing.T) {
	cf := `:80 {
	cognito_auth {
		user_pool us-east-1_AAA
		audience 3m1b
		login {
			domain https://auth.example.com
			client_secret {env.COGNITO_CLIENT_SECRET}
			scopes openid email profile
			auth_param prompt login
			logout /logout
			logout_redirect https://app.example.com/bye
			cookie_secret {env.SESSION_KEYS}
			session_timeout 8h
			on_unauthenticated deny
			alb_headers
			alb_signer arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/b
		}
	}
}`
	out, err := adapt(t, cf)
	if err != nil {
		t.Fatal(err)
	}
	got := firstHandler(t, out)
	want := `{"audience":["3m1b"],"handler":"cognito_auth","login":{"alb_headers":true,"alb_signer":"arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/b","auth_params":{"prompt":"login"},"client_secret":"{env.COGNITO_CLIENT_SECRET}","cookie_secret":"{env.SESSION_KEYS}","domain":"https://auth.example.com","logout":"/logout","logout_redirect":"https://app.example.com/bye","on_unauthenticated":"deny","scopes":["openid","email","profile"],"session_timeout":28800000000000},"user_pool":"us-east-1_AAA"}`
	if got != want {
		t.Fatalf("adapted\n%s\nwant\n%s", got, want)
	}
}

func TestCaddyfileLoginErrors(t *testing.T) {
	for _, tc := range []struct {
		name, block, want string
		line              int
	}{
		{"missing cookie_secret", "client_secret x", "cookie_secret: required", 4},
		{"short key", "cookie_secret " + base64.StdEncoding.EncodeToString(make([]byte, 16)), "key 1 is 16 bytes, must be 32", 5},
		{"second key not base64", "cookie_secret " + loginKey + " n0t-b@se64", "key 2 is not base64", 5},
		{"private_key_jwt without key", "client_auth private_key_jwt\ncookie_secret " + loginKey, "needs private_key", 4},
		{"basic without secret", "client_auth client_secret_basic\ncookie_secret " + loginKey, "needs client_secret", 4},
		{"unknown client_auth", "client_auth mtls", `client_auth "mtls"`, 5},
		{"callback not a path", "callback oauth2/idpresponse", `callback "oauth2/idpresponse": must be an absolute path`, 5},
		{"callback scheme-relative", "callback //evil.example/cb", "must be an absolute path", 5},
		{"logout not a path", "logout https://x/logout", "logout", 5},
		{"scopes without openid", "scopes email profile", "must include openid", 5},
		{"bad on_unauthenticated", "on_unauthenticated redirect", `on_unauthenticated "redirect"`, 5},
		{"bad session_timeout", "session_timeout forever", `session_timeout "forever"`, 5},
		{"bad domain", "domain auth.example.com", `domain "auth.example.com"`, 5},
		{"bad cookie_name", "cookie_name a;b", "cookie_name", 5},
		{"unknown option", "redirect_uri /x", `unrecognized option "redirect_uri"`, 5},
		{"reserved auth_param", "auth_param state x", `auth_params "state"`, 5},
		{"alb option without alb_headers", "alb_key_path /keys\ncookie_secret " + loginKey, "need alb_headers", 4},
		{"duplicate", "logout /a\nlogout /b", "logout already specified", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cf := ":80 {\n\tcognito_auth {\n\t\taudience x\n\t\tlogin {\n" + tc.block + "\n\t\t}\n\t\tuser_pool us-east-1_AAA\n\t}\n}\n"
			_, err := adapt(t, cf)
			if err == nil {
				t.Fatalf("adapted without error:\n%s", cf)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if want := "Caddyfile:" + strconv.Itoa(tc.line); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name line %d", err, tc.line)
			}
			if strings.Contains(err.Error(), loginKey) {
				t.Errorf("error echoes the cookie key: %q", err)
			}
		})
	}
}

// Secrets given as placeholders are checked once replaced, at provision
// (caddy validate / run); the error names the placeholder, never a value.
func TestLoginProvisionSecrets(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keyFile, []byte(loginKey), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LOGIN_TEST_SHORT_KEY", base64.StdEncoding.EncodeToString(make([]byte, 8)))
	t.Setenv("LOGIN_TEST_KEY", loginKey)
	handler := func(login string) string {
		return `{"handler":"cognito_auth","issuer":"http://127.0.0.1:1","audience":["a"],"startup_wait":"1ms","login":{` + login + `}}`
	}
	for _, tc := range []struct{ login, want string }{
		{`"domain":"http://127.0.0.1:1","cookie_secret":"{env.LOGIN_TEST_SHORT_KEY}"`, "key 1 is 8 bytes"},
		{`"domain":"http://127.0.0.1:1","cookie_secret":"{env.LOGIN_TEST_UNSET_VARIABLE}"`, "LOGIN_TEST_UNSET_VARIABLE"},
		{`"domain":"http://127.0.0.1:1","cookie_secret":"{env.LOGIN_TEST_KEY}","client_auth":"private_key_jwt","private_key":"/nonexistent/key.pem"`, "login private_key"},
		{`"domain":"http://127.0.0.1:1","cookie_secret":"{file.` + keyFile + `}","callback":"cb"`, `callback "cb"`},
		{`"domain":"http://127.0.0.1:1","cookie_secret":"{env.LOGIN_TEST_KEY}","session_timeout":"10ms"`, "session_timeout"},
		{`"domain":"http://127.0.0.1:1","cookie_secret":"{file.` + keyFile + `}","alb_headers":true,"alb_key":"/nonexistent.pem"`, "alb_key"},
	} {
		cfg := `{"apps":{"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[{"handle":[` + handler(tc.login) + `]}]}}}}}`
		err := caddy.Validate(mustConfig(t, cfg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.login, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), loginKey) {
			t.Errorf("error echoes the key: %v", err)
		}
	}
	// And a good one provisions.
	cfg := `{"apps":{"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[{"handle":[` +
		handler(`"domain":"http://127.0.0.1:1","client_secret":"{env.LOGIN_TEST_KEY}","cookie_secret":"{file.`+keyFile+`} {env.LOGIN_TEST_KEY}"`) + `]}]}}}}}`
	if err := caddy.Validate(mustConfig(t, cfg)); err != nil {
		t.Fatalf("valid login config: %v", err)
	}
}
