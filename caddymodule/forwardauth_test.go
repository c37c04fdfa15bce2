package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Forward-auth mode through a real Caddy: the requests are shaped as each
// proxy sends them (Traefik and Caddy's forward_auth: GET + X-Forwarded-*;
// nginx: X-Original-*; Envoy ext_authz: original method, path_prefix +
// original path, Content-Length: 0), and the answers are checked against
// what the proxies rely on — and against the README's configurations for
// Traefik and Envoy. The nginx and Caddy front ends run for real in the e2e
// suite (TestForwardAuthBehindNginxAndCaddy).

// fwdRules is an auth service: rules by the original request, after
// cognito_original_request <from>.
func (e *env) fwdRules(from string) string {
	return fmt.Sprintf(`
	cognito_original_request %s
	@orderWrites {
		path /orders/*
		not method GET HEAD
	}
	handle @orderWrites {
		%s
	}
	handle /public/* {
		respond 200
	}
	handle /unruled/* {
		header X-Unruled yes
	}
	handle /cookie/* {
		%s
	}
	handle /query/* {
		%s
	}
	handle /metrics {
		metrics
	}
	handle {
		%s
	}`, from,
		e.authBlock("forward_auth", "header email X-User-Email", "scopes order/post.order"),
		e.authBlock("forward_auth", "header email X-User-Email", "token_source cookie session"),
		e.authBlock("forward_auth", "header email X-User-Email", "token_source query access_token"),
		e.authBlock("forward_auth", "header email X-User-Email", "allow_preflight"))
}

// identityNames are the headers every rule of fwdRules answers with.
var identityNames = []string{
	"X-Cognito-Sub", "X-Cognito-Username", "X-Cognito-Client-Id", "X-Cognito-Token-Use",
	"X-Cognito-Scope", "X-Cognito-Groups", "X-Cognito-Issuer", "X-User-Email",
}

// wantAllow checks an allow answer: exactly 200, no body, and exactly one
// value for every identity header.
func wantAllow(t *testing.T, r response, want map[string]string) {
	t.Helper()
	if r.status != http.StatusOK || r.body != "" {
		t.Fatalf("want 200 with an empty body, got %d %q (WWW-Authenticate %q)", r.status, r.body, r.header.Get("WWW-Authenticate"))
	}
	for _, name := range identityNames {
		got := r.header.Values(name)
		if len(got) != 1 {
			t.Errorf("%s: %q, want exactly one value (empty when the claim is absent)", name, got)
			continue
		}
		if w, ok := want[name]; ok && got[0] != w {
			t.Errorf("%s = %q, want %q", name, got[0], w)
		}
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
}

func xf(method, uri string, more ...string) []string {
	return append([]string{"X-Forwarded-Method", method, "X-Forwarded-Uri", uri}, more...)
}

func TestIntegrationForwardAuthXForwarded(t *testing.T) {
	e := newEnv(t)
	logPath := filepath.Join(t.TempDir(), "caddy.log")
	e.loadWithGlobals(fmt.Sprintf("grace_period 1ns\n\tlog {\n\t\toutput file %s\n\t\tformat json\n\t}", logPath), e.fwdRules("x-forwarded"))

	tok := e.token()
	bearer := "Bearer " + tok
	sub := "11111111-2222-3333-4444-555555555555"

	t.Run("allowed: 200, empty body, the identity as headers", func(t *testing.T) {
		r := e.do("GET", "/", xf("GET", "/any/thing?x=1", "Authorization", bearer)...)
		wantAllow(t, r, map[string]string{
			"X-Cognito-Sub": sub, "X-Cognito-Username": "alice", "X-Cognito-Client-Id": testClient,
			"X-Cognito-Token-Use": "access", "X-Cognito-Scope": "order/get.order openid",
			"X-Cognito-Groups": "admin,users", "X-Cognito-Issuer": e.issuer, "X-User-Email": "alice@example.com",
		})
		// An absent claim is an empty header, so a proxy that only replaces
		// headers present in the answer still replaces a forged copy.
		r = e.do("GET", "/", xf("GET", "/x", "Authorization", "Bearer "+e.token("email", nil, "cognito:groups", nil))...)
		wantAllow(t, r, map[string]string{"X-User-Email": "", "X-Cognito-Groups": "", "X-Cognito-Sub": sub})
	})
	t.Run("identity headers sent to the auth service are not echoed", func(t *testing.T) {
		r := e.do("GET", "/", xf("GET", "/x", "Authorization", "Bearer "+e.token("email", nil),
			"X-Cognito-Sub", "evil", "X-User-Email", "ceo@example.com", "X-Cognito-Admin", "yes")...)
		wantAllow(t, r, map[string]string{"X-Cognito-Sub": sub, "X-User-Email": ""})
		if v := r.header.Values("X-Cognito-Admin"); len(v) != 0 {
			t.Errorf("X-Cognito-Admin %q in the answer", v)
		}
	})
	t.Run("denied: the proxy-mode answers", func(t *testing.T) {
		e.expect(e.do("GET", "/", xf("GET", "/x")...), 401, "Bearer", `{"message":"Unauthorized"}`)
		e.expect(e.do("GET", "/", xf("GET", "/x", "Authorization", "Bearer not-a-token")...), 401,
			`Bearer error="invalid_token", error_description="token contains an invalid number of segments"`, `{"message":"Unauthorized"}`)
		r := e.do("GET", "/", xf("POST", "/orders/1", "Authorization", bearer)...)
		e.expect(r, 403, `Bearer error="insufficient_scope", error_description="the token does not have a required scope", scope="order/post.order"`, `{"message":"Forbidden"}`)
		for _, name := range identityNames {
			if v := r.header.Values(name); len(v) != 0 {
				t.Errorf("denial carries %s %q", name, v)
			}
		}
	})
	t.Run("rules by the original method and path", func(t *testing.T) {
		post := "Bearer " + e.token("scope", "order/post.order")
		wantAllow(t, e.do("GET", "/", xf("GET", "/orders/1", "Authorization", bearer)...), nil)
		wantAllow(t, e.do("GET", "/", xf("POST", "/orders/1", "Authorization", post)...), nil)
		e.expect(e.do("GET", "/", xf("DELETE", "/orders/1", "Authorization", bearer)...), 403, "", "")
		// the auth request's own method and path do not matter
		e.expect(e.do("POST", "/orders/9", xf("GET", "/x", "Authorization", bearer)...), 200, "", "")
	})
	t.Run("a crafted path cannot choose a weaker rule", func(t *testing.T) {
		for _, uri := range []string{"/public/../orders/1", "/public/%2e%2e/orders/1", "/%6frders/1", "/public/..//orders/1", "/./orders/1"} {
			r := e.do("GET", "/", xf("POST", uri, "Authorization", bearer)...)
			if r.status != 403 {
				t.Errorf("POST %s: %d %q, want 403 from the /orders/* write rule", uri, r.status, r.body)
			}
		}
		e.expect(e.do("GET", "/", xf("GET", "/public/x")...), 200, "", "")
	})
	t.Run("no usable original request is 400", func(t *testing.T) {
		for name, hdr := range map[string][]string{
			"no headers":      nil,
			"no method":       {"X-Forwarded-Uri", "/x"},
			"no URI":          {"X-Forwarded-Method", "GET"},
			"two URIs":        xf("GET", "/public/x", "X-Forwarded-Uri", "/x"),
			"two methods":     xf("GET", "/public/x", "X-Forwarded-Method", "GET"),
			"absolute URI":    xf("GET", "http://evil.example/public/x"),
			"scheme-relative": xf("GET", "//evil.example/public/x"),
			"relative":        xf("GET", "public/x"),
			"empty URI":       xf("GET", ""),
			"bad method":      xf("GE(T", "/public/x"),
			"empty method":    xf("", "/public/x"),
			"fragment":        xf("GET", "/public/x#frag"),
		} {
			r := e.do("GET", "/", append(hdr, "Authorization", bearer)...)
			if r.status != 400 || r.body != `{"message":"Bad Request"}` {
				t.Errorf("%s: %d %q, want 400", name, r.status, r.body)
			}
		}
	})
	t.Run("a request no rule answers is 403, never the default empty 200", func(t *testing.T) {
		r := e.do("GET", "/", xf("GET", "/unruled/x", "Authorization", bearer)...)
		e.expect(r, 403, "", `{"message":"Forbidden"}`)
	})
	t.Run("token from a forwarded cookie or the original query", func(t *testing.T) {
		wantAllow(t, e.do("GET", "/", xf("GET", "/cookie/x", "Cookie", "theme=dark; session="+tok)...), nil)
		e.expect(e.do("GET", "/", xf("GET", "/cookie/x", "Authorization", bearer)...), 401, "Bearer", "")
		wantAllow(t, e.do("GET", "/", xf("GET", "/query/x?page=2&access_token="+tok)...), nil)
		// the auth request's own query is not the original one
		e.expect(e.do("GET", "/?access_token="+tok, xf("GET", "/query/x")...), 401, "Bearer", "")
	})
	t.Run("CORS preflight with allow_preflight: 200, every identity header empty", func(t *testing.T) {
		r := e.do("GET", "/", xf("OPTIONS", "/x", "Origin", "https://app.example", "Access-Control-Request-Method", "POST",
			"X-Cognito-Sub", "evil")...)
		wantAllow(t, r, map[string]string{"X-Cognito-Sub": "", "X-Cognito-Groups": "", "X-User-Email": ""})
	})
	t.Run("metrics and logs as in proxy mode", func(t *testing.T) {
		m := e.do("GET", "/", xf("GET", "/metrics")...)
		allow, _ := metricValue(m.body, "caddy_cognito_decisions_total", `issuer="`+e.issuer+`",reason="",result="allow"`)
		scope, _ := metricValue(m.body, "caddy_cognito_decisions_total", `issuer="`+e.issuer+`",reason="scope",result="deny"`)
		if allow < 5 || scope < 1 {
			t.Errorf("decisions allow=%v deny/scope=%v: forward-auth decisions are not counted\n%s", allow, scope, m.body)
		}
		lines := logLines(t, logPath)
		if !hasLog(lines, "request denied", "method", "DELETE", "uri", "/orders/1", "reason", "scope") {
			t.Errorf("no denial log with the original method and path")
		}
		if !hasLog(lines, "no rule answered the forward-auth request; denying", "uri", "/unruled/x") {
			t.Errorf("no log for the request no rule answered")
		}
		if !hasLog(lines, "forward-auth request without a usable original request; is the proxy configured as documented?", "from", "x-forwarded") {
			t.Errorf("no log for the request without an original request")
		}
		for _, l := range lines {
			if s := fmt.Sprint(l); strings.Contains(s, tok) {
				t.Fatalf("the token was logged: %s", s)
			}
		}
	})
}

func TestIntegrationForwardAuthXOriginal(t *testing.T) {
	e := newEnv(t)
	e.load(e.fwdRules("x-original"))
	bearer := "Bearer " + e.token()
	// nginx sends GET to the auth location; the original request is in X-Original-*.
	xo := func(method, uri string) []string {
		return []string{"X-Original-Method", method, "X-Original-URI", uri, "Authorization", bearer}
	}
	wantAllow(t, e.do("GET", "/", xo("GET", "/orders/1")...), nil)
	e.expect(e.do("GET", "/", xo("PUT", "/orders/1")...), 403, "", `{"message":"Forbidden"}`)
	// X-Forwarded-* mean nothing here
	r := e.do("GET", "/", "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/public/x")
	e.expect(r, 400, "", `{"message":"Bad Request"}`)
}

func TestIntegrationForwardAuthEnvoy(t *testing.T) {
	e := newEnv(t)
	e.load(e.fwdRules("request /ext-authz"))
	bearer := "Bearer " + e.token()
	post := "Bearer " + e.token("scope", "order/post.order")

	// Envoy: the original method, path_prefix + the original path and
	// query, Content-Length: 0, only Authorization (and listed headers).
	envoy := func(method, path, auth string) response {
		t.Helper()
		req, err := http.NewRequest(method, fmt.Sprintf("http://localhost:%d%s", sitePort, path), http.NoBody)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 0
		req.Header.Set("Content-Length", "0")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := e.tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return response{resp.StatusCode, resp.Header, string(b)}
	}
	// Only exactly 200 lets the request through Envoy.
	wantAllow(t, envoy("DELETE", "/ext-authz/any/1", bearer), nil)
	wantAllow(t, envoy("POST", "/ext-authz/orders/1?dry=1", post), nil)
	e.expect(envoy("POST", "/ext-authz/orders/1", bearer), 403, `Bearer error="insufficient_scope", error_description="the token does not have a required scope", scope="order/post.order"`, "")
	e.expect(envoy("PATCH", "/ext-authz/orders/1", ""), 401, "Bearer", "")
	wantAllow(t, envoy("GET", "/ext-authz", bearer), nil) // the original path "/"
	wantAllow(t, envoy("GET", "/ext-authz/query/x?access_token="+e.token(), ""), nil)
	e.expect(envoy("GET", "/ext-authz/public/../orders/1", bearer), 200, "", "")
	e.expect(envoy("PUT", "/ext-authz/public/../orders/1", bearer), 403, "", "")
	for _, p := range []string{"/any/1", "/ext-authzx/any/1", "/EXT-AUTHZ/any/1"} {
		e.expect(envoy("GET", p, bearer), 400, "", "")
	}
}

// readmeBlock returns the fenced code block after the README marker
// "<!-- forward-auth: <name> -->".
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- forward-auth: " + name + " -->"
	_, rest, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("README.md has no %s", marker)
	}
	_, rest, ok = strings.Cut(rest, "```")
	if ok {
		_, rest, ok = strings.Cut(rest, "\n")
	}
	block, _, closed := strings.Cut(rest, "\n```")
	if !ok || !closed {
		t.Fatalf("README.md: no code block after %s", marker)
	}
	return block
}

// The README's Traefik and Envoy configurations select headers by name:
// every identity header the endpoint answers with must be selected (else a
// client's forged copy would survive), and the spellings a client could use
// to smuggle one must be stripped (Traefik's regex deletes every matching
// request header). The answers themselves are checked above: exactly 200
// to allow, 401/403 with WWW-Authenticate to deny, every identity header
// present.
func TestREADMEProxyConfigsMatchTheAnswers(t *testing.T) {
	answered := identityNames // what TestIntegrationForwardAuth* get from the catch-all rule

	traefik := readmeBlock(t, "traefik")
	m := regexp.MustCompile(`authResponseHeadersRegex:\s*"([^"]+)"`).FindStringSubmatch(traefik)
	if m == nil {
		t.Fatal("README Traefik config has no authResponseHeadersRegex")
	}
	re := regexp.MustCompile(m[1]) // Traefik compiles it with Go's regexp
	listed := regexp.MustCompile(`(?m)^\s*-\s*(\S+)\s*$`).FindAllStringSubmatch(traefik, -1)
	for _, name := range answered {
		if re.MatchString(http.CanonicalHeaderKey(name)) {
			continue
		}
		if !slices.ContainsFunc(listed, func(l []string) bool { return strings.EqualFold(l[1], name) }) {
			t.Errorf("Traefik: %s is answered but neither matches %q nor is listed in authResponseHeaders", name, m[1])
		}
	}
	for _, spoof := range []string{"X-Cognito-Sub", "X_cognito_sub", "X.cognito.sub", "X-Cognito-Anything", "x-cognito-admin"} {
		if !re.MatchString(spoof) {
			t.Errorf("Traefik: a client's %s is not removed by %q", spoof, m[1])
		}
	}
	if !strings.Contains(traefik, "trustForwardHeader: false") {
		t.Error("Traefik: X-Forwarded-* from clients must not be trusted")
	}

	envoy := readmeBlock(t, "envoy")
	up, _, _ := strings.Cut(envoy[strings.Index(envoy, "allowed_upstream_headers"):], "allowed_client_headers")
	pm := regexp.MustCompile(`prefix:\s*(\S+)`).FindStringSubmatch(up)
	if pm == nil || !strings.Contains(up, "ignore_case: true") {
		t.Fatalf("README Envoy config: allowed_upstream_headers needs a case-insensitive prefix: %s", up)
	}
	for _, name := range answered {
		if !strings.HasPrefix(strings.ToLower(name), strings.ToLower(pm[1])) && !strings.Contains(up, "exact: "+strings.ToLower(name)) {
			t.Errorf("Envoy: %s is answered but not in allowed_upstream_headers", name)
		}
	}
	for _, want := range []string{"path_prefix: /ext-authz", "failure_mode_allow: false"} {
		if !strings.Contains(envoy, want) {
			t.Errorf("Envoy config lacks %q", want)
		}
	}
}
