package caddymodule_test

// FuzzCaddyfile: the cognito_auth Caddyfile unmarshaler never panics, every
// error it returns names the file and line ("Caddyfile:<n>"), and every
// configuration it accepts is valid (its require expressions compile) and
// survives a JSON round trip. Run it
// for longer with
//
//	go test ./caddymodule -run '^$' -fuzz '^FuzzCaddyfile$' -fuzztime 10m

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-cognito/caddy-cognito/authz/policy"
	"github.com/caddy-cognito/caddy-cognito/caddymodule"
)

// caddyfileSeeds are cognito_auth directives, valid and not.
var caddyfileSeeds = map[string]string{
	"trusts":       "cognito_auth {\n\tpool us-east-1_AAA {\n\t\taudience c1 c2\n\t\treplica_regions us-west-2\n\t\tissuer_format any\n\t\ttoken_use access\n\t\tjwks file /x.json\n\t}\n\tissuer https://login.partner.example {\n\t\taudience api://orders\n\t\tjwks discovery\n\t}\n\tscopes a\n}",
	"trusts-mixed": "cognito_auth {\n\tuser_pool us-east-1_AAA\n\taudience a\n\tpool eu-west-1_BBB {\n\t\taudience b\n\t}\n}",
	"trusts-dup":   "cognito_auth {\n\tpool us-east-1_AAA {\n\t\taudience a\n\t}\n\tissuer https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AAA {\n\t\taudience a\n\t}\n}",
	"minimal":      "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience 6vo4qadm0jp3e8kkk0c2d2l8im\n}",
	"everything": `cognito_auth {
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
	"matcher":           "cognito_auth /api/* {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n}",
	"discovery":         "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tjwks discovery {\n\t\trefresh 1h\n\t}\n}",
	"file":              "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tjwks file /etc/jwks.json\n}",
	"ssm":               "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tjwks ssm /cognito/jwks {\n\t\tregion us-west-2\n\t}\n}",
	"no block":          "cognito_auth",
	"empty block":       "cognito_auth {\n}",
	"argument":          "cognito_auth foo bar {\n}",
	"unknown":           "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tscope x\n}",
	"duplicate":         "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n}",
	"both":              "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\tissuer https://x.example\n\taudience x\n}",
	"bad pool":          "cognito_auth {\n\tuser_pool NMATFlcVJ\n\taudience x\n}",
	"bad leeway":        "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tleeway -1s\n}",
	"huge leeway":       "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tleeway 1h\n}",
	"HS256":             "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\talgorithms RS256 HS256\n}",
	"header reserved":   "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\theader sub Authorization\n}",
	"header spoofable":  "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\theader sub X_Cognito_Sub\n}",
	"token_source":      "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\ttoken_source query\n}",
	"jwks no source":    "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tjwks\n}",
	"jwks path source":  "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tjwks ../../x\n}",
	"jwks bad option":   "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tjwks url {\n\t\tretries 3\n\t}\n}",
	"jwks nested block": "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tjwks url {\n\t\trefresh {\n\t\t}\n\t}\n}",
	"max_token_size":    "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tmax_token_size 99999999999999999999\n}",
	"nested block":      "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ {\n\t}\n\taudience x\n}",
	"quoted":            "cognito_auth {\n\tuser_pool \"us-west-2_NMATFlcVJ\"\n\taudience `x y`\n\theader \"custom:a b\" X-A\n}",
	"two directives":    "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n}\ncognito_auth {\n\taudience\n}",
	"placeholder":       "cognito_auth {\n\tissuer {env.ISSUER}\n\taudience {$CLIENT}\n}",
	"require": "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tscopes orders/read\n" +
		"\trequire `claims[\"custom:tenant_id\"] == request.path_segments[1]`\n" +
		"\trequire `request.method == \"GET\" || \"admins\" in groups`\n" +
		"\trequire `request.query == {\"a\": \"b\"} || now > timestamp(\"2020-01-01T00:00:00Z\")`\n}",
	"require unquoted":   "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\trequire \"admins\" in groups && claims.email_verified == true\n}",
	"require quoted":     "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\trequire \"size(scopes) > 1\"\n}",
	"require empty":      "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\trequire\n}",
	"require syntax":     "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\trequire `claims.sub ==`\n}",
	"require not bool":   "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\trequire `request.path`\n}",
	"require undeclared": "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\trequire `request.mehtod == \"GET\"`\n}",
	"require block":      "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\trequire {\n\t}\n}",
	"forward_auth":       "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tforward_auth\n}",
	"forward_auth strip": "cognito_auth {\n\tuser_pool us-west-2_NMATFlcVJ\n\taudience x\n\tforward_auth\n\tstrip_authorization\n}",
}

func FuzzCaddyfile(f *testing.F) {
	for _, s := range caddyfileSeeds {
		f.Add(s)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	f.Fuzz(func(t *testing.T, directive string) {
		if strings.Contains(directive, "import") {
			t.Skip("imports read files")
		}
		site := ":80 {\n" + directive + "\n}\n"
		blocks, err := caddyfile.Parse("Caddyfile", []byte(site))
		if err != nil || len(blocks) != 1 || len(blocks[0].Keys) != 1 || blocks[0].Keys[0].Text != ":80" {
			return // Caddy's own parser said no, or the input escaped the site block
		}
		for _, seg := range blocks[0].Segments {
			if seg.Directive() != "cognito_auth" {
				return // another directive: not ours to judge
			}
		}
		for _, seg := range blocks[0].Segments {
			var h caddymodule.Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(seg))
			if err != nil {
				if !strings.Contains(err.Error(), "Caddyfile:") {
					t.Fatalf("error without file and line: %v", err)
				}
				continue
			}
			// Accepted: the model validates, and the JSON loads back the same.
			if err := h.Validate(); err != nil {
				t.Fatalf("accepted an invalid configuration: %v", err)
			}
			if _, err := policy.Compile(h.Require); err != nil {
				t.Fatalf("accepted a require that does not compile: %v", err)
			}
			out, err := json.Marshal(&h)
			if err != nil {
				t.Fatalf("accepted configuration does not marshal: %v", err)
			}
			var back caddymodule.Handler
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatalf("JSON %s does not load back: %v", out, err)
			}
			if again, _ := json.Marshal(&back); !bytes.Equal(again, out) {
				t.Fatalf("JSON round trip changed the configuration:\n%s\n%s", out, again)
			}
		}
		// The whole adapter (matcher extraction, directive ordering) must
		// not panic either; its errors about our directive name the line.
		if _, _, err := adapter.Adapt([]byte(site), map[string]any{"filename": "Caddyfile"}); err != nil &&
			!strings.Contains(err.Error(), "Caddyfile:") && !strings.Contains(err.Error(), "matcher") {
			t.Fatalf("adapter error without file and line: %v", err)
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzCaddyfile (run with
// WRITE_FUZZ_SEEDS=1).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzCaddyfile")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range caddyfileSeeds {
		body := fmt.Sprintf("go test fuzz v1\nstring(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+strings.ReplaceAll(name, " ", "-")), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
