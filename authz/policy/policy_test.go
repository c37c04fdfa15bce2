package policy

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/config"
)

// The claims of the evaluation tests: JSON strings, numbers (integers and
// fractions), booleans, null, lists and objects, escapes.
const evalPayload = `{
	"iss": "` + testIssuer + `",
	"sub": "user-1",
	"client_id": "c1",
	"token_use": "access",
	"scope": "orders/read orders/write",
	"cognito:groups": ["admins", "users"],
	"exp": 1800003600,
	"iat": 1799999900,
	"auth_time": 1799999900,
	"custom:tenant_id": "acme",
	"email_verified": true,
	"phone_verified": false,
	"version": 2,
	"ratio": 0.5,
	"whole_float": 1.0,
	"exp_number": 1e3,
	"negative": -7,
	"huge": 123456789012345678901234567890,
	"nothing": null,
	"amr": ["pwd", "mfa"],
	"address": {"country": "NZ", "zip": 1234, "lines": ["a", "b"], "geo": {"lat": -41.3}},
	"escaped": "a\"b\\c\u00e9",
	"empty_list": []
}`

func TestEvaluate(t *testing.T) {
	_, claims := signedPayload(t, []byte(evalPayload))
	cases := []struct {
		expr string
		req  func(*Request)
		want bool // else: denied (false or error)
	}{
		// claims: strings, bools, null
		{expr: `claims["custom:tenant_id"] == "acme"`, want: true},
		{expr: `claims.sub == "user-1"`, want: true},
		{expr: `claims.email_verified == true`, want: true},
		{expr: `claims.phone_verified == true`},
		{expr: `claims.escaped == "a\"b\\cé"`, want: true},
		{expr: `claims.nothing == null`, want: true},
		{expr: `has(claims.nothing)`, want: true},
		// numbers: JSON integers are int, other numbers double
		{expr: `claims.version == 2`, want: true},
		{expr: `type(claims.version) == int`, want: true},
		{expr: `claims.version + 1 == 3`, want: true},
		{expr: `claims.ratio == 0.5`, want: true},
		{expr: `type(claims.ratio) == double`, want: true},
		{expr: `type(claims.whole_float) == double && claims.whole_float == 1.0`, want: true},
		{expr: `claims.whole_float == 1`, want: true}, // CEL compares numbers across types
		{expr: `type(claims.exp_number) == double && claims.exp_number == 1000.0`, want: true},
		{expr: `claims.negative < 0 && type(claims.negative) == int`, want: true},
		{expr: `type(claims.huge) == double && claims.huge > 1e29`, want: true},
		{expr: `claims.exp > claims.iat`, want: true},
		{expr: `claims.ratio * 2.0 == 1.0`, want: true},
		{expr: `claims.version + 0.5 == 2.5`}, // int + double: no such overload → deny
		// lists
		{expr: `"mfa" in claims.amr`, want: true},
		{expr: `size(claims.amr) == 2 && claims.amr[0] == "pwd"`, want: true},
		{expr: `claims.amr.exists(m, m == "mfa")`, want: true},
		{expr: `size(claims.empty_list) == 0`, want: true},
		{expr: `claims.amr[2] == "x"`}, // out of range → deny
		// maps
		{expr: `claims.address.country == "NZ"`, want: true},
		{expr: `claims.address["zip"] == 1234`, want: true},
		{expr: `claims.address.lines == ["a", "b"]`, want: true},
		{expr: `claims.address.geo.lat < -41.0`, want: true},
		{expr: `has(claims.address.geo) && !has(claims.address.street)`, want: true},
		{expr: `claims.address.street == "x"`}, // missing nested key → deny
		// the claims map as a whole
		{expr: `"custom:tenant_id" in claims`, want: true},
		{expr: `!("custom:other" in claims)`, want: true},
		{expr: `size(claims) == 23`, want: true},
		{expr: `claims.exists(k, k.startsWith("custom:"))`, want: true},
		{expr: `claims.all(k, k != "")`, want: true},
		{expr: `claims.filter(k, k.startsWith("custom:")) == ["custom:tenant_id"]`, want: true},
		// missing claims: an error (deny) without has(), fine with it
		{expr: `claims.missing == "x"`},
		{expr: `claims["custom:missing"] != "x"`}, // even != is an error: the claim is not there
		{expr: `!has(claims.missing)`, want: true},
		{expr: `!has(claims.missing) || claims.missing == "x"`, want: true},
		{expr: `has(claims.missing) && claims.missing == "x"`},
		{expr: `claims.?missing.orValue("none") == "none"`, want: true},
		{expr: `claims[?"custom:tenant_id"].orValue("") == "acme"`, want: true},
		// wrong types deny
		{expr: `claims.sub > 1`},
		{expr: `int(claims.sub) == 1`},
		{expr: `claims.amr.startsWith("p")`},
		{expr: `claims.email_verified == "true"`},
		// scopes, groups, token_use, issuer
		{expr: `"orders/read" in scopes`, want: true},
		{expr: `sets.contains(scopes, ["orders/read", "orders/write"])`, want: true},
		{expr: `sets.contains(scopes, ["orders/read", "orders/admin"])`},
		{expr: `"admins" in groups && !("blocked" in groups)`, want: true},
		{expr: `groups == ["admins", "users"]`, want: true},
		{expr: `token_use == "access"`, want: true},
		{expr: `issuer == "` + testIssuer + `"`, want: true},
		// now
		{expr: `now == timestamp("2027-01-15T08:00:00Z")`, want: true},
		{expr: `now - timestamp(claims.auth_time) < duration("5m")`, want: true},
		{expr: `now - timestamp(claims.auth_time) < duration("60s")`},
		// request
		{expr: `request.method == "GET"`, want: true},
		{expr: `request.method in ["GET", "HEAD"] || "admins" in groups`, want: true},
		{expr: `request.host == "api.example.com"`, want: true},
		{expr: `request.host == "api.example.com"`, req: func(r *Request) { r.Host = "API.Example.com:8443" }, want: true},
		{expr: `request.host == "::1"`, req: func(r *Request) { r.Host = "[::1]:443" }, want: true},
		{expr: `request.path == "/t/acme/orders"`, want: true},
		{expr: `request.path_segments == ["t", "acme", "orders"]`, want: true},
		{expr: `request.path_segments[1] == claims["custom:tenant_id"]`, want: true},
		{expr: `size(request.path_segments) == 3 && "orders" in request.path_segments`, want: true},
		{expr: `request.path_segments.exists(s, s == "acme")`, want: true},
		{expr: `request.path_segments + ["x"] == ["t", "acme", "orders", "x"]`, want: true},
		{expr: `request.path_segments[3] == "x"`}, // out of range → deny
		{expr: `request.path_segments == ["t", "a b", "c/d"]`, req: func(r *Request) {
			r.Path, r.EscapedPath = "/t/a b/c/d", "//t//a%20b/c%2Fd/"
		}, want: true},
		{expr: `size(request.path_segments) == 0`, req: func(r *Request) { r.Path, r.EscapedPath = "/", "/" }, want: true},
		// dot segments: path_segments is an error (deny), other fields work
		{expr: `request.path_segments[1] == "acme"`, req: func(r *Request) {
			r.Path, r.EscapedPath = "/t/acme/../other/orders", "/t/acme/../other/orders"
		}},
		{expr: `request.path_segments[1] == "acme"`, req: func(r *Request) {
			r.Path, r.EscapedPath = "/t/acme/../other/orders", "/t/acme/%2e%2e/other/orders"
		}},
		{expr: `request.path.startsWith("/t/")`, req: func(r *Request) {
			r.Path, r.EscapedPath = "/t/acme/../x", "/t/acme/../x"
		}, want: true},
		{expr: `request.query.x == "1" && request.query.y == ""`, want: true},
		{expr: `request.query == {"x": "1", "y": ""}`, want: true},
		{expr: `!has(request.query.z)`, want: true},
		{expr: `request.headers.accept == "application/json"`, want: true},
		{expr: `request.headers["x-tenant"] == claims["custom:tenant_id"]`, want: true},
		{expr: `!("authorization" in request.headers)`, want: true}, // the credential is hidden
		{expr: `request.headers.cookie == "session=s"`, want: true}, // not the token source here
		{expr: `request.remote_ip == "203.0.113.7"`, want: true},
		{expr: `request.remote_ip.startsWith("203.0.113.")`, want: true},
		// errors deny
		{expr: `1 / (size(groups) - 2) == 1`},
		{expr: `request.headers["x-missing"] == "x"`},
	}
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			p := mustCompile(t, []string{tc.expr})
			err := p.Check(claims, testRequest(tc.req))
			if tc.want && err != nil {
				t.Fatalf("denied: %v", err)
			}
			if !tc.want {
				if err == nil {
					t.Fatal("allowed")
				}
				checkDenial(t, err, 0)
			}
		})
	}
}

// checkDenial checks the answer of a policy denial and that its detail
// names expression i.
func checkDenial(t *testing.T, err *authz.Error, i int) {
	t.Helper()
	if err.Kind != authz.KindInsufficientScope || err.Reason != "policy" ||
		err.Description != "the token does not satisfy the route policy" {
		t.Fatalf("denial %+v", err)
	}
	if got, want := err.Challenge(nil), `Bearer error="insufficient_scope", error_description="the token does not satisfy the route policy"`; got != want {
		t.Fatalf("challenge %s, want %s", got, want)
	}
	if err.Body() != `{"message":"Forbidden"}` || err.Kind.Status() != http.StatusForbidden {
		t.Fatalf("answer %d %s", err.Kind.Status(), err.Body())
	}
	if err.Err == nil || !strings.HasPrefix(err.Err.Error(), fmt.Sprintf("require[%d] `", i)) {
		t.Fatalf("detail %v does not name require[%d]", err.Err, i)
	}
}

func TestEvaluationErrorsAreNamed(t *testing.T) {
	_, claims := signedPayload(t, []byte(evalPayload))
	cases := map[string]string{
		`claims.missing == "x"`:                   "no such key: missing",
		`claims.sub > 1`:                          "no such overload",
		`request.path_segments[7] == "x"`:         "index out of bounds",
		`request.method == "POST"`:                "is false",
		`request.path_segments[0] == "t"` + "\n ": "", // allowed
	}
	for expr, want := range cases {
		p := mustCompile(t, []string{`true`, expr})
		err := p.Check(claims, testRequest(nil))
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", expr, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: allowed", expr)
			continue
		}
		checkDenial(t, err, 1)
		if d := err.Err.Error(); !strings.Contains(d, want) || !strings.Contains(d, "`"+strings.TrimSpace(expr)+"`") {
			t.Errorf("%s: detail %q, want the expression and %q", expr, d, want)
		}
	}
}

func TestEveryExpressionMustHold(t *testing.T) {
	_, claims := signedPayload(t, []byte(evalPayload))
	p := mustCompile(t, []string{`"admins" in groups`, `request.method == "GET"`, `claims["custom:tenant_id"] == request.path_segments[1]`})
	if err := p.Check(claims, testRequest(nil)); err != nil {
		t.Fatalf("all true: %v", err)
	}
	err := p.Check(claims, testRequest(func(r *Request) { r.Method = "POST" }))
	if err == nil {
		t.Fatal("second false: allowed")
	}
	checkDenial(t, err, 1)
	err = p.Check(claims, testRequest(func(r *Request) { r.Path, r.EscapedPath = "/t/other/orders", "/t/other/orders" }))
	if err == nil {
		t.Fatal("other tenant: allowed")
	}
	checkDenial(t, err, 2)
	var nilPolicy *Policy
	if err := nilPolicy.Check(claims, testRequest(nil)); err != nil || nilPolicy.Len() != 0 {
		t.Fatalf("nil policy: %v", err)
	}
	if p, err := Compile(nil); p != nil || err != nil {
		t.Fatalf("Compile(nil) = %v, %v", p, err)
	}
}

// TestTokenSourceHidden: the header, cookie or query parameter that
// carries the token is not visible to expressions, whichever it is.
func TestTokenSourceHidden(t *testing.T) {
	_, claims := signedPayload(t, []byte(evalPayload))
	req := testRequest(func(r *Request) {
		r.Header.Set("X-Token", "t")
		r.RawQuery = "access_token=t&x=1"
	})
	cases := []struct {
		ts   config.TokenSource
		expr string
	}{
		{config.TokenSource{From: "header", Name: "x-token"}, `!("x-token" in request.headers) && !("authorization" in request.headers) && "cookie" in request.headers`},
		{config.TokenSource{From: "cookie", Name: "id"}, `!("cookie" in request.headers) && "x-token" in request.headers`},
		{config.TokenSource{From: "query", Name: "access_token"}, `!("access_token" in request.query) && request.query.x == "1"`},
	}
	for _, tc := range cases {
		p := mustCompile(t, []string{tc.expr}, WithTokenSource(tc.ts))
		if err := p.Check(claims, req); err != nil {
			t.Errorf("%s: %v", tc.ts.From, err)
		}
	}
}

// TestDenialNeverHoldsTheToken: whatever fails, the detail that is logged
// never contains the token or a part of it.
func TestDenialNeverHoldsTheToken(t *testing.T) {
	tok, claims := signedPayload(t, []byte(evalPayload))
	req := testRequest(func(r *Request) { r.Header.Set("Authorization", "Bearer "+tok) })
	for _, expr := range []string{
		`request.headers.authorization == "x"`,
		`int(request.headers.authorization) == 1`,
		`claims.sub > 1`,
		`claims.all(k, int(claims[k]) > 0)`,
		`string(claims) == ""`,
		`size(string(claims.address)) > 0`,
		`claims.address == request.headers`,
	} {
		p, err := Compile([]string{expr})
		if err != nil {
			continue // refused at compile time: nothing evaluated
		}
		derr := p.Check(claims, req)
		if derr == nil {
			t.Fatalf("%s: allowed", expr)
		}
		detail := derr.Error()
		for _, part := range strings.Split(tok, ".") {
			if strings.Contains(detail, part[:16]) {
				t.Fatalf("%s: detail %q contains the token", expr, detail)
			}
		}
	}
}

func TestScpClaim(t *testing.T) {
	_, claims := signedClaims(t, baseClaims(map[string]any{"scope": nil, "scp": []string{"a", "b"}}))
	p := mustCompile(t, []string{`scopes == ["a", "b"]`})
	if err := p.Check(claims, testRequest(nil)); err != nil {
		t.Fatal(err)
	}
	_, claims = signedClaims(t, baseClaims(map[string]any{"scope": nil, "cognito:groups": nil}))
	p = mustCompile(t, []string{`size(scopes) == 0 && size(groups) == 0 && !has(claims.scope)`})
	if err := p.Check(claims, testRequest(nil)); err != nil {
		t.Fatal(err)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := map[string]string{
		`claims.sub ==`:                          "Syntax error",
		`claims.sub == "a`:                       "Syntax error",
		`nosuch == 1`:                            "undeclared reference to 'nosuch'",
		`request.mehtod == "GET"`:                "request has the fields method, host, path",
		`request.method == 1`:                    "found no matching overload for '_==_' applied to '(string, int)'",
		`"a" in request.method`:                  "found no matching overload",
		`request.method`:                         "must be a bool expression, not string",
		`claims.email_verified`:                  "compare it",
		`size(groups)`:                           "must be a bool expression, not int",
		`  `:                                     "empty expression",
		`timestamp("x") == now && foo(1)`:        "undeclared reference to 'foo'",
		strings.Repeat("true && ", 600) + "true": "at most 4096",
	}
	for expr, want := range cases {
		_, err := Compile([]string{`true`, expr})
		if err == nil {
			t.Errorf("%q compiled", expr)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "require[1] `") {
			t.Errorf("%q: error %q, want require[1] and %q", expr, err, want)
		}
		if err2 := CheckExpression(expr); err2 == nil || !strings.Contains(err2.Error(), want) {
			t.Errorf("CheckExpression(%q) = %v", expr, err2)
		}
	}
	many := make([]string, maxExpressions+1)
	for i := range many {
		many[i] = "true"
	}
	if _, err := Compile(many); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("65 expressions: %v", err)
	}
}

// TestStringListsMatchJSON: the direct reading of string arrays agrees
// with encoding/json's, and leaves everything else to it.
func TestStringListsMatchJSON(t *testing.T) {
	for raw, want := range map[string]string{
		`[]`:                   `[]`,
		`[ ]`:                  `[]`,
		`["a"]`:                `[a]`,
		`["a","b" , "c"]`:      `[a b c]`,
		`["a\"b","c"]`:         `[a"b c]`,
		`["é", "\u00e9"]`:      `[é é]`,
		`["a", 1, true, null]`: `[a 1 true NULL_VALUE]`,
		`[["a"], {"b": "c"}]`:  `[[a] map[b:c]]`,
		`[ "x" ,"y" ]`:         `[x y]`,
	} {
		v := jsonValue(raw)
		got, err := v.ConvertToNative(reflect.TypeOf([]any{}))
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if s := fmt.Sprint(got); s != want {
			t.Errorf("%s: %s, want %s", raw, s, want)
		}
	}
	if _, ok := stringList(`["a",]`); ok {
		t.Error(`["a",] read as a list`)
	}
	if _, ok := stringList(`["a"`); ok {
		t.Error(`["a" read as a list`)
	}
}
