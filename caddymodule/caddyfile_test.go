package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/caddy-cognito/caddy-cognito/caddymodule"
)

func adapt(t *testing.T, caddyfile string) ([]byte, error) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	return out, err
}

// firstHandler digs the first handler of the first route out of the JSON.
func firstHandler(t *testing.T, cfg []byte) string {
	t.Helper()
	var doc struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []json.RawMessage `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &doc); err != nil {
		t.Fatal(err)
	}
	for _, srv := range doc.Apps.HTTP.Servers {
		return string(srv.Routes[0].Handle[0])
	}
	t.Fatal("no server")
	return ""
}

func TestCaddyfileAdapt(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  string
	}{
		{
			name: "minimal",
			block: `cognito_auth {
				user_pool us-west-2_NMATFlcVJ
				audience 6vo4qadm0jp3e8kkk0c2d2l8im
			}`,
			want: `{"audience":["6vo4qadm0jp3e8kkk0c2d2l8im"],"handler":"cognito_auth","user_pool":"us-west-2_NMATFlcVJ"}`,
		},
		{
			name: "everything",
			block: `cognito_auth {
				issuer https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc
				audience a b
				token_use access
				scopes order/get.order order/post.order
				groups admin
				jwks url https://keys.example/jwks.json {
					refresh 15m
					cooldown 30s
					timeout 3s
				}
				leeway 30s
				header email X-User-Email
				header custom:tenant X-Tenant
				token_source cookie session
				algorithms RS256 PS256
				max_token_size 8192
				startup_wait 2s
				cache_size 5000
				allow_preflight
				strip_authorization
			}`,
			want: `{"algorithms":["RS256","PS256"],"allow_preflight":true,"audience":["a","b"],"cache_size":5000,"groups":["admin"],"handler":"cognito_auth",` +
				`"headers":[{"claim":"email","header":"X-User-Email"},{"claim":"custom:tenant","header":"X-Tenant"}],` +
				`"issuer":"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",` +
				`"jwks":{"cooldown":30000000000,"refresh":900000000000,"source":"url","timeout":3000000000,"url":"https://keys.example/jwks.json"},` +
				`"leeway":30000000000,"max_token_bytes":8192,"scopes":["order/get.order","order/post.order"],"startup_wait":2000000000,"strip_authorization":true,` +
				`"token_source":{"from":"cookie","name":"session"},"token_use":"access"}`,
		},
		{
			name: "discovery",
			block: `cognito_auth {
				user_pool us-west-2_NMATFlcVJ
				audience x
				jwks discovery
			}`,
			want: `{"audience":["x"],"handler":"cognito_auth","jwks":{"source":"discovery"},"user_pool":"us-west-2_NMATFlcVJ"}`,
		},
		{
			name: "file",
			block: `cognito_auth {
				user_pool us-west-2_NMATFlcVJ
				audience x
				jwks file /etc/caddy/jwks.json {
					refresh 10s
				}
			}`,
			want: `{"audience":["x"],"handler":"cognito_auth","jwks":{"path":"/etc/caddy/jwks.json","refresh":10000000000,"source":"file"},"user_pool":"us-west-2_NMATFlcVJ"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := adapt(t, ":80 {\n"+tc.block+"\n}\n")
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			got := firstHandler(t, out)
			if got != tc.want {
				t.Errorf("handler JSON\n got %s\nwant %s", got, tc.want)
			}
			// And the JSON provisions back into the same model.
			var h caddymodule.Handler
			if err := json.Unmarshal([]byte(got), &h); err != nil {
				t.Fatalf("JSON does not load back: %v", err)
			}
		})
	}
}

// The directive is ordered: placed after respond/reverse_proxy in the
// Caddyfile, it still runs first, with no `order` option.
func TestCaddyfileDirectiveOrder(t *testing.T) {
	out, err := adapt(t, `:80 {
	reverse_proxy localhost:9000
	cognito_auth {
		user_pool us-west-2_NMATFlcVJ
		audience x
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	if h := firstHandler(t, out); !strings.Contains(h, `"handler":"cognito_auth"`) {
		t.Fatalf("first handler is %s", h)
	}
}

func TestCaddyfileErrors(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  string // substring of the error
	}{
		{"unknown subdirective", "user_pool us-west-2_NMATFlcVJ\naudience x\nscope x", `unrecognized subdirective "scope"`},
		{"missing audience", "user_pool us-west-2_NMATFlcVJ", "audience is required"},
		{"empty audience", "user_pool us-west-2_NMATFlcVJ\naudience", "at least one app client id"},
		{"neither pool nor issuer", "audience x", "one of user_pool or issuer is required"},
		{"both pool and issuer", "user_pool us-west-2_NMATFlcVJ\nissuer https://x.example\naudience x", "mutually exclusive"},
		{"malformed pool id", "user_pool NMATFlcVJ\naudience x", `user_pool "NMATFlcVJ": not a Cognito user pool id`},
		{"pool id with bad region", "user_pool US-WEST-2_abc\naudience x", "not a Cognito user pool id"},
		{"duplicate", "user_pool us-west-2_NMATFlcVJ\nuser_pool us-west-2_NMATFlcVJ\naudience x", "user_pool already specified"},
		{"bad leeway", "user_pool us-west-2_NMATFlcVJ\naudience x\nleeway soon", `leeway "soon"`},
		{"huge leeway", "user_pool us-west-2_NMATFlcVJ\naudience x\nleeway 1h", "at most 5m"},
		{"bad token_use", "user_pool us-west-2_NMATFlcVJ\naudience x\ntoken_use refresh", `token_use "refresh"`},
		{"token_use two args", "user_pool us-west-2_NMATFlcVJ\naudience x\ntoken_use access id", "wrong argument count"},
		{"issuer not a URL", "issuer cognito\naudience x", `issuer "cognito"`},
		{"issuer with query", "issuer https://x.example/?a=b\naudience x", "must not have a query"},
		{"HS256", "user_pool us-west-2_NMATFlcVJ\naudience x\nalgorithms HS256", `"HS256" is not allowed`},
		{"none", "user_pool us-west-2_NMATFlcVJ\naudience x\nalgorithms none", `"none" is not allowed`},
		{"header arity", "user_pool us-west-2_NMATFlcVJ\naudience x\nheader email", "want <claim> <Header>"},
		{"header reserved", "user_pool us-west-2_NMATFlcVJ\naudience x\nheader sub Authorization", "cannot carry a claim"},
		{"header duplicate", "user_pool us-west-2_NMATFlcVJ\naudience x\nheader sub X-Cognito-Sub", "already set"},
		{"header invalid name", "user_pool us-west-2_NMATFlcVJ\naudience x\nheader sub X:Y", "not a valid header name"},
		{"token_source bad kind", "user_pool us-west-2_NMATFlcVJ\naudience x\ntoken_source body tok", `token_source "body"`},
		{"jwks unknown source", "user_pool us-west-2_NMATFlcVJ\naudience x\njwks vault /x", "http.handlers.cognito_auth.jwks.vault"},
		{"jwks no source", "user_pool us-west-2_NMATFlcVJ\naudience x\njwks", "jwks: want url"},
		{"jwks url invalid", "user_pool us-west-2_NMATFlcVJ\naudience x\njwks url ftp://x/jwks", "must be an absolute http(s) URL"},
		{"jwks file no path", "user_pool us-west-2_NMATFlcVJ\naudience x\njwks file", "path is required"},
		{"jwks bad refresh", "user_pool us-west-2_NMATFlcVJ\naudience x\njwks url {\nrefresh never\n}", `refresh "never"`},
		{"jwks unknown option", "user_pool us-west-2_NMATFlcVJ\naudience x\njwks url {\nretries 3\n}", `unrecognized option "retries"`},
		{"max_token_size bad", "user_pool us-west-2_NMATFlcVJ\naudience x\nmax_token_size big", `max_token_size "big"`},
		{"flag with argument", "user_pool us-west-2_NMATFlcVJ\naudience x\nallow_preflight yes", "wrong argument count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cf := ":80 {\n\tcognito_auth {\n" + tc.block + "\n\t}\n}\n"
			_, err := adapt(t, cf)
			if err == nil {
				t.Fatalf("adapted without error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "Caddyfile:") {
				t.Errorf("error %q does not name the line", err)
			}
		})
	}
}

// A JSON config gets the same validation, at provision time (what
// `caddy validate` and `caddy run` do).
func TestJSONConfigValidation(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"handler":"cognito_auth","user_pool":"us-west-2_NMATFlcVJ"}`, "audience is required"},
		{`{"handler":"cognito_auth","issuer":"https://x.example","audience":["a"],"algorithms":["HS256"]}`, `"HS256" is not allowed`},
		{`{"handler":"cognito_auth","issuer":"https://x.example","audience":["a"],"jwks":{"source":"nope"}}`, "nope"},
		{`{"handler":"cognito_auth","issuer":"https://x.example","audience":["a"],"leeway":"1 day"}`, `duration "1 day"`},
	} {
		cfg := `{"apps":{"http":{"servers":{"s":{"listen":[":0"],"routes":[{"handle":[` + tc.json + `]}]}}}}}`
		err := caddy.Validate(mustConfig(t, cfg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.json, err, tc.want)
		}
	}
}

func mustConfig(t *testing.T, s string) *caddy.Config {
	t.Helper()
	var c caddy.Config
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// Caddyfile.example is documentation users copy: it must always adapt, with
// keys over HTTPS and from SSM.
func TestCaddyfileExampleAdapts(t *testing.T) {
	body, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	for source, want := range map[string]string{"https": `"source":"url"`, "ssm": `"source":"ssm"`} {
		t.Setenv("JWKS_SOURCE", source)
		out, err := adapt(t, string(body))
		if err != nil {
			t.Fatalf("Caddyfile.example (JWKS_SOURCE=%s): %v", source, err)
		}
		for _, w := range []string{`"handler":"cognito_auth"`, want, `"scopes":["order/post.order"]`, `"scopes":["order/get.order"]`, `"trusts":[{`} {
			if !strings.Contains(string(out), w) {
				t.Errorf("Caddyfile.example (JWKS_SOURCE=%s) lacks %s", source, w)
			}
		}
	}
}

func TestCaddyfileTrusts(t *testing.T) {
	out, err := adapt(t, `:80 {
	cognito_auth {
		pool us-east-1_AAA {
			audience c1 c2
			replica_regions us-west-2 eu-west-1
			issuer_format any
			token_use access
			jwks file /etc/caddy/a.json
		}
		pool eu-west-1_BBB {
			audience c3
		}
		issuer https://login.partner.example {
			audience api://orders
			jwks discovery
		}
		scopes order/get.order
		groups admins
		header email X-User-Email
		max_token_bytes 8192
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"groups":["admins"],"handler":"cognito_auth","headers":[{"claim":"email","header":"X-User-Email"}],"max_token_bytes":8192,"scopes":["order/get.order"],` +
		`"trusts":[{"audience":["c1","c2"],"issuer_format":"any","jwks":{"path":"/etc/caddy/a.json","source":"file"},"pool":"us-east-1_AAA","replica_regions":["us-west-2","eu-west-1"],"token_use":"access"},` +
		`{"audience":["c3"],"pool":"eu-west-1_BBB"},` +
		`{"audience":["api://orders"],"issuer":"https://login.partner.example","jwks":{"source":"discovery"}}]}`
	if got := firstHandler(t, out); got != want {
		t.Errorf("handler JSON\n got %s\nwant %s", got, want)
	}
	// The shorthand's JSON is unchanged, and max_token_size is an alias.
	out, err = adapt(t, ":80 {\ncognito_auth {\nuser_pool us-west-2_NMATFlcVJ\naudience x\nmax_token_size 100\n}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := firstHandler(t, out); got != `{"audience":["x"],"handler":"cognito_auth","max_token_bytes":100,"user_pool":"us-west-2_NMATFlcVJ"}` {
		t.Errorf("shorthand JSON %s", got)
	}
}

// Bad trust configurations fail `caddy adapt` with Validate's words and
// the line of the setting at fault.
func TestCaddyfileTrustErrors(t *testing.T) {
	tests := []struct {
		name  string
		block string
		line  int // line of the setting at fault, in the Caddyfile below
		want  string
	}{
		{"trust without audience", "pool us-east-1_AAA {\ntoken_use id\n}", 3, "pool us-east-1_AAA: audience is required"},
		{"same pool twice", "pool us-east-1_AAA {\naudience a\n}\npool us-east-1_AAA {\naudience b\n}", 6, "pool us-east-1_AAA: listed twice"},
		{"same issuer twice", "issuer https://x.example {\naudience a\n}\nissuer https://x.example {\naudience b\n}", 6, "listed twice"},
		{"pool and its issuer", "pool us-east-1_AAA {\naudience a\n}\nissuer https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AAA {\naudience b\n}", 6, "which pool us-east-1_AAA accepts already"},
		{"replica not a region", "pool us-east-1_AAA {\naudience a\nreplica_regions us-west-2 mars\n}", 5, `replica_regions "mars": not an AWS Region name`},
		{"replica is own region", "pool us-east-1_AAA {\naudience a\nreplica_regions us-east-1\n}", 5, `replica_regions "us-east-1": the pool's own Region`},
		{"replica with updated", "pool us-east-1_AAA {\naudience a\nissuer_format updated\nreplica_regions us-west-2\n}", 6, "replica_regions: UPDATED-format issuers"},
		{"bad issuer_format", "pool us-east-1_AAA {\naudience a\nissuer_format new\n}", 5, `issuer_format "new": must be any, original or updated`},
		{"issuer_format on issuer", "issuer https://x.example {\naudience a\nissuer_format any\n}", 5, "issuer_format applies to Cognito pools only"},
		{"malformed pool id", "pool useast1AAA {\naudience a\n}", 3, `pool "useast1AAA": not a Cognito user pool id`},
		{"mixed with shorthand", "user_pool us-east-1_AAA\naudience a\npool eu-west-1_BBB {\naudience b\n}", 3, "cannot be mixed with pool or issuer blocks"},
		{"top-level jwks with trusts", "jwks discovery\npool eu-west-1_BBB {\naudience b\n}", 3, "a top-level jwks belongs to the one-trust shorthand"},
		{"unknown trust option", "pool us-east-1_AAA {\naudience a\nscopes x\n}", 5, `unrecognized option "scopes"`},
		{"duplicate trust option", "pool us-east-1_AAA {\naudience a\naudience b\n}", 5, "audience already specified"},
		{"huge leeway, line of leeway", "user_pool us-east-1_AAA\naudience a\nleeway 1h\nscopes x", 5, "at most 5m"},
		{"header at its line", "user_pool us-east-1_AAA\naudience a\nheader email X-Email\nheader sub Authorization", 6, "cannot carry a claim"},
		{"max_token_bytes too big", "user_pool us-east-1_AAA\naudience a\nmax_token_bytes 99999999", 5, "max_token_bytes 99999999: must be between 1 and 1048576"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cf := ":80 {\n\tcognito_auth {\n" + tc.block + "\n\t}\n}\n"
			_, err := adapt(t, cf)
			if err == nil {
				t.Fatalf("adapted without error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if at := fmt.Sprintf("Caddyfile:%d", tc.line); !strings.Contains(err.Error(), at) {
				t.Errorf("error %q does not name line %d", err, tc.line)
			}
		})
	}
}

// A JSON config with trusts gets the same checks at provision time.
func TestJSONTrustValidation(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"handler":"cognito_auth","trusts":[{"pool":"us-east-1_AAA"}]}`, "pool us-east-1_AAA: audience is required"},
		{`{"handler":"cognito_auth","trusts":[{"pool":"us-east-1_AAA","audience":["a"],"replica_regions":["us-east-1"]}]}`, "the pool's own Region"},
		{`{"handler":"cognito_auth","user_pool":"us-east-1_AAA","trusts":[{"pool":"eu-west-1_BBB","audience":["a"]}]}`, "cannot be mixed"},
		{`{"handler":"cognito_auth","trusts":[{"issuer":"https://x.example","audience":["a"],"jwks":{"source":"nope"}}]}`, "nope"},
	} {
		cfg := `{"apps":{"http":{"servers":{"s":{"listen":[":0"],"routes":[{"handle":[` + tc.json + `]}]}}}}}`
		err := caddy.Validate(mustConfig(t, cfg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.json, err, tc.want)
		}
	}
}
