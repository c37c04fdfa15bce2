package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestPoolIssuer(t *testing.T) {
	tests := []struct {
		pool, issuer, err string
	}{
		{"us-west-2_NMATFlcVJ", "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_NMATFlcVJ", ""},
		{"eu-central-1_abc123", "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_abc123", ""},
		{"us-gov-west-1_abc", "https://cognito-idp.us-gov-west-1.amazonaws.com/us-gov-west-1_abc", ""},
		{"cn-north-1_abc", "https://cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_abc", ""},
		{"NMATFlcVJ", "", "not a Cognito user pool id"},
		{"us-west-2_", "", "not a Cognito user pool id"},
		{"us-west-2_abc/../x", "", "not a Cognito user pool id"},
		{"US-WEST-2_abc", "", "not a Cognito user pool id"},
		{"us-west-2_" + strings.Repeat("a", 60), "", "not a Cognito user pool id"},
		{"https://cognito-idp.us-west-2.amazonaws.com/us-west-2_abc", "", "not a Cognito user pool id"},
	}
	for _, tc := range tests {
		iss, err := PoolIssuer(tc.pool)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "user_pool") {
				t.Errorf("%s: err %v, want %q naming user_pool", tc.pool, err, tc.err)
			}
			continue
		}
		if err != nil || iss != tc.issuer {
			t.Errorf("%s: %q, %v; want %q", tc.pool, iss, err, tc.issuer)
		}
	}
}

func valid() Authorizer {
	return Authorizer{UserPool: "us-west-2_NMATFlcVJ", Audience: []string{"client"}}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Authorizer)
		err  string
	}{
		{"valid", func(a *Authorizer) {}, ""},
		{"issuer instead of pool", func(a *Authorizer) { a.UserPool, a.Issuer = "", "http://127.0.0.1:9229/local_pool" }, ""},
		{"both", func(a *Authorizer) { a.Issuer = "https://x" }, "mutually exclusive"},
		{"neither", func(a *Authorizer) { a.UserPool = "" }, "one of user_pool or issuer"},
		{"no audience", func(a *Authorizer) { a.Audience = nil }, "audience is required"},
		{"blank audience", func(a *Authorizer) { a.Audience = []string{" "} }, "empty client id"},
		{"token_use", func(a *Authorizer) { a.TokenUse = "refresh" }, `token_use "refresh"`},
		{"scope with space", func(a *Authorizer) { a.Scopes = []string{"a b"} }, "invalid scope"},
		{"scope with quote", func(a *Authorizer) { a.Scopes = []string{`a"b`} }, "invalid scope"},
		{"negative leeway", func(a *Authorizer) { a.Leeway = Duration(-time.Second) }, "leeway"},
		{"big leeway", func(a *Authorizer) { a.Leeway = Duration(time.Hour) }, "leeway 1h0m0s"},
		{"HS256", func(a *Authorizer) { a.Algorithms = []string{"HS256"} }, `"HS256" is not allowed`},
		{"none", func(a *Authorizer) { a.Algorithms = []string{"none"} }, `"none" is not allowed`},
		{"ES256", func(a *Authorizer) { a.Algorithms = []string{"ES256"} }, `"ES256" is not allowed`},
		{"token source", func(a *Authorizer) { a.TokenSource = &TokenSource{From: "body", Name: "x"} }, "token_source"},
		{"token header name", func(a *Authorizer) { a.TokenSource = &TokenSource{From: "header", Name: "A B"} }, "not a valid header name"},
		{"reserved header", func(a *Authorizer) { a.Headers = []ClaimHeader{{"sub", "Host"}} }, "cannot carry a claim"},
		// A proxy drops hop-by-hop headers: the backend would see no claim.
		{"hop-by-hop header", func(a *Authorizer) { a.Headers = []ClaimHeader{{"custom:tenant", "Proxy-Connection"}} }, "cannot carry a claim"},
		{"default header reused", func(a *Authorizer) { a.Headers = []ClaimHeader{{"sub", "x_cognito_sub"}} }, "already set"},
		{"header twice", func(a *Authorizer) { a.Headers = []ClaimHeader{{"a", "X-A"}, {"b", "x-a"}} }, "already set"},
		{"issuer with fragment", func(a *Authorizer) { a.UserPool, a.Issuer = "", "https://x/#f" }, "query or fragment"},
		{"issuer relative", func(a *Authorizer) { a.UserPool, a.Issuer = "", "/pool" }, "absolute"},
		{"max token", func(a *Authorizer) { a.MaxTokenBytes = 1 << 21 }, "max_token_bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := valid()
			tc.mod(&a)
			a.SetDefaults()
			err := a.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
}

func TestDefaultsAndHeaderRules(t *testing.T) {
	a := valid()
	a.Headers = []ClaimHeader{{"email", "x-user-email"}}
	a.SetDefaults()
	if a.MaxTokenBytes != 16384 || len(a.Algorithms) != 1 || a.Algorithms[0] != "RS256" || a.TokenSource.Name != "Authorization" {
		t.Fatalf("defaults: %+v", a)
	}
	rules := a.HeaderRules()
	last := rules[len(rules)-1]
	if last.Header != "X-User-Email" || last.Claims[0] != "email" || len(rules) != 8 {
		t.Fatalf("rules: %+v", rules)
	}
	if a.IssuerURL() != "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_NMATFlcVJ" {
		t.Fatal(a.IssuerURL())
	}
}

func TestDurationJSON(t *testing.T) {
	for in, want := range map[string]time.Duration{`"90s"`: 90 * time.Second, `1000000000`: time.Second, `"1m30s"`: 90 * time.Second} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("%s: %v %v", in, time.Duration(d), err)
		}
	}
	for _, in := range []string{`"soon"`, `true`, `1.5`} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

func TestNormalizeHeaderName(t *testing.T) {
	for in, want := range map[string]string{"X-Cognito-Sub": "x-cognito-sub", "X_Cognito_Sub": "x-cognito-sub", "x_COGNITO-sub": "x-cognito-sub", "X.Cognito.Sub": "x-cognito-sub"} {
		if got := NormalizeHeaderName(in); got != want {
			t.Errorf("%s → %s", in, got)
		}
	}
}
