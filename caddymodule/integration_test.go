package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/caddy-cognito/caddy-cognito/caddymodule"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// These tests run a real Caddy (in-process, driven through its admin API by
// caddytest) in front of a recording backend, with keys served by a local
// JWKS server. They share Caddy's fixed admin port, so they do not run in
// parallel.

const (
	sitePort   = 9080
	testClient = "6vo4qadm0jp3e8kkk0c2d2l8im"
)

// backend records the last request it served: headers (cookies
// included), query, body and trailers (read after the body, as net/http
// fills them in only then).
type backend struct {
	*httptest.Server
	mu          sync.Mutex
	last        http.Header
	lastQuery   string
	lastBody    string
	lastTrailer http.Header
	n           int
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.last = r.Header.Clone()
		b.lastQuery = r.URL.RawQuery
		b.lastBody = string(body)
		b.lastTrailer = r.Trailer.Clone()
		b.n++
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sub":%q}`, r.Header.Get("X-Cognito-Sub"))
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) lastHeaders() (http.Header, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, b.n
}

// lastRequest returns the query, body and trailers of the last request.
func (b *backend) lastRequest() (query, body string, trailer http.Header) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastQuery, b.lastBody, b.lastTrailer
}

// env is one test setup: keys, a JWKS server, a backend and an issuer.
type env struct {
	t       *testing.T
	key     *jwttest.Key
	jwks    *jwttest.Server
	backend *backend
	issuer  string
	tester  *caddytest.Tester
}

var (
	keyOnce      sync.Once
	sharedKey    *jwttest.Key
	rotatedKey   *jwttest.Key
	attackerKeyG *jwttest.Key
)

func newEnv(t *testing.T) *env {
	keyOnce.Do(func() {
		sharedKey = jwttest.NewKey(t, "key-1")
		rotatedKey = jwttest.NewKey(t, "key-2")
		attackerKeyG = jwttest.NewKey(t, "key-1")
	})
	e := &env{t: t, key: sharedKey}
	e.jwks = jwttest.NewServer(t, jwttest.JWKS(sharedKey))
	e.backend = newBackend(t)
	// Each test gets its own issuer path, so keyrings (pooled by URL) and
	// cached tokens never leak from one test into the next.
	e.issuer = e.jwks.URL + "/" + strings.ReplaceAll(t.Name(), "/", "_")
	e.tester = caddytest.NewTester(t)
	return e
}

func (e *env) load(siteBody string) {
	e.t.Helper()
	e.loadWithGlobals("grace_period 1ns", siteBody)
}

// authBlock is a cognito_auth block for this env with extra lines.
func (e *env) authBlock(extra ...string) string {
	return fmt.Sprintf(`cognito_auth {
		issuer %s
		audience %s
		jwks url %s
		startup_wait 2s
		%s
	}`, e.issuer, testClient, e.jwks.JWKSURL(), strings.Join(extra, "\n\t\t"))
}

func (e *env) claims(kv ...any) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{
		"sub":            "11111111-2222-3333-4444-555555555555",
		"iss":            e.issuer,
		"client_id":      testClient,
		"token_use":      "access",
		"scope":          "order/get.order openid",
		"username":       "alice",
		"cognito:groups": []string{"admin", "users"},
		"email":          "alice@example.com",
		"exp":            now + 3600,
		"iat":            now - 10,
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func (e *env) token(kv ...any) string {
	return e.key.Sign(e.t, jwttest.Token{Claims: e.claims(kv...)})
}

type response struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(method, path string, hdr ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://localhost:%d%s", sitePort, path), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := e.tester.Client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(body)}
}

func (e *env) expect(r response, status int, challenge, body string) {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d (body %q, challenge %q)", r.status, status, r.body, r.header.Get("WWW-Authenticate"))
	}
	if challenge != "" && r.header.Get("WWW-Authenticate") != challenge {
		e.t.Errorf("WWW-Authenticate %q, want %q", r.header.Get("WWW-Authenticate"), challenge)
	}
	if body != "" && r.body != body {
		e.t.Errorf("body %q, want %q", r.body, body)
	}
}

func TestIntegrationAllowForwardsClaims(t *testing.T) {
	e := newEnv(t)
	e.load(fmt.Sprintf(`
	route {
		%s
		reverse_proxy %s
	}`, e.authBlock("header email X-User-Email", "header cognito:groups X-Groups"), e.backend.URL))

	tok := e.token()
	r := e.do("GET", "/orders", "Authorization", "Bearer "+tok)
	e.expect(r, 200, "", `{"sub":"11111111-2222-3333-4444-555555555555"}`)
	h, _ := e.backend.lastHeaders()
	want := map[string]string{
		"X-Cognito-Sub":       "11111111-2222-3333-4444-555555555555",
		"X-Cognito-Username":  "alice",
		"X-Cognito-Client-Id": testClient,
		"X-Cognito-Token-Use": "access",
		"X-Cognito-Scope":     "order/get.order openid",
		"X-Cognito-Groups":    "admin,users",
		"X-User-Email":        "alice@example.com",
		"X-Groups":            "admin,users",
		"Authorization":       "Bearer " + tok,
	}
	for name, v := range want {
		if got := h.Values(name); len(got) != 1 || got[0] != v {
			t.Errorf("backend got %s = %q, want %q", name, got, v)
		}
	}
	// A bare token (no "Bearer ") works like API Gateway's.
	e.expect(e.do("GET", "/orders", "Authorization", tok), 200, "", "")
	// An ID token: aud instead of client_id, cognito:username.
	id := e.token("client_id", nil, "aud", testClient, "token_use", "id", "username", nil, "cognito:username", "bob", "scope", nil)
	e.expect(e.do("GET", "/x", "Authorization", "Bearer "+id), 200, "", "")
	h, _ = e.backend.lastHeaders()
	if h.Get("X-Cognito-Username") != "bob" || h.Get("X-Cognito-Client-Id") != testClient {
		t.Errorf("ID token headers: %v", h)
	}
	if h.Get("X-Cognito-Scope") != "" {
		t.Errorf("absent claim produced a header: %q", h.Get("X-Cognito-Scope"))
	}
}

func TestIntegrationDenials(t *testing.T) {
	e := newEnv(t)
	e.load(fmt.Sprintf(`
	route {
		%s
		reverse_proxy %s
	}`, e.authBlock("scopes order/post.order admin/all"), e.backend.URL))

	e.expect(e.do("POST", "/order"), 401, "Bearer", `{"message":"Unauthorized"}`)
	e.expect(e.do("POST", "/order", "Authorization", "Bearer not-a-token"), 401,
		`Bearer error="invalid_token", error_description="token contains an invalid number of segments"`, `{"message":"Unauthorized"}`)
	e.expect(e.do("POST", "/order", "Authorization", "Bearer "+e.token("client_id", "other")), 401,
		`Bearer error="invalid_token", error_description="the token does not have a valid audience"`, "")
	e.expect(e.do("POST", "/order", "Authorization", "Bearer "+e.token("exp", time.Now().Unix()-1)), 401,
		`Bearer error="invalid_token", error_description="token is expired"`, "")
	e.expect(e.do("POST", "/order", "Authorization", "Bearer "+e.token("iss", e.issuer+"/")), 401,
		`Bearer error="invalid_token", error_description="issuer does not match"`, "")
	forged := attackerKeyG.Sign(t, jwttest.Token{Claims: e.claims("scope", "order/post.order")})
	e.expect(e.do("POST", "/order", "Authorization", "Bearer "+forged), 401,
		`Bearer error="invalid_token", error_description="token signature is invalid"`, "")
	r := e.do("POST", "/order", "Authorization", "Bearer "+e.token())
	e.expect(r, 403, `Bearer error="insufficient_scope", error_description="the token does not have a required scope", scope="order/post.order admin/all"`, `{"message":"Forbidden"}`)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	e.expect(e.do("POST", "/order", "Authorization", "Bearer "+e.token("scope", "openid order/post.order")), 200, "", "")
	e.expect(e.do("POST", "/order", "Authorization", "Bearer a", "Authorization", "Bearer b"), 401, "", "")
	if _, n := e.backend.lastHeaders(); n != 1 {
		t.Errorf("backend saw %d requests, want 1 (only the allowed one)", n)
	}
}

func TestIntegrationPerRouteScopes(t *testing.T) {
	e := newEnv(t)
	e.load(fmt.Sprintf(`
	handle /health {
		respond "ok"
	}
	@post method POST
	@get  method GET
	handle /api/v1/order {
		route @post {
			%s
		}
		route @get {
			%s
		}
		reverse_proxy %s
	}
	handle {
		respond 404
	}`, e.authBlock("scopes order/post.order"), e.authBlock("scopes order/get.order"), e.backend.URL))

	get := e.token("scope", "order/get.order")
	post := e.token("scope", "order/post.order")
	e.expect(e.do("GET", "/health"), 200, "", "ok")
	e.expect(e.do("GET", "/api/v1/order", "Authorization", "Bearer "+get), 200, "", "")
	e.expect(e.do("POST", "/api/v1/order", "Authorization", "Bearer "+get), 403, "", `{"message":"Forbidden"}`)
	e.expect(e.do("POST", "/api/v1/order", "Authorization", "Bearer "+post), 200, "", "")
	e.expect(e.do("GET", "/api/v1/order", "Authorization", "Bearer "+post), 403, "", "")
	e.expect(e.do("GET", "/api/v1/order"), 401, "Bearer", "")
	e.expect(e.do("PUT", "/api/v1/order", "Authorization", "Bearer "+post), 200, "", "")
}

func TestIntegrationSpoofedIdentityHeadersNeverReachBackend(t *testing.T) {
	e := newEnv(t)
	e.load(fmt.Sprintf(`
	route {
		%s
		reverse_proxy %s
	}`, e.authBlock("header email X-User-Email", "allow_preflight"), e.backend.URL))

	spoof := []string{
		"X-Cognito-Sub", "admin", "x-cognito-sub", "admin2", "X_Cognito_Sub", "admin3",
		"X-Cognito-Groups", "admin", "X-Cognito-Anything", "x", "x_user_email", "ceo@example.com",
		"X-User-Email", "ceo@example.com",
	}
	check := func(label string) {
		t.Helper()
		h, _ := e.backend.lastHeaders()
		for name, vals := range h {
			for _, v := range vals {
				if strings.Contains(v, "admin2") || strings.Contains(v, "admin3") || v == "ceo@example.com" || v == "x" {
					t.Errorf("%s: spoofed %s: %q reached the backend", label, name, v)
				}
			}
			if n := strings.ToLower(strings.ReplaceAll(name, "_", "-")); strings.HasPrefix(n, "x-cognito-") && len(vals) != 1 {
				t.Errorf("%s: %s arrived %d times", label, name, len(vals))
			}
		}
		if h.Get("X-Cognito-Groups") == "admin" {
			t.Errorf("%s: spoofed group reached the backend", label)
		}
	}
	// Valid token: the verified values replace the spoofed ones.
	tok := e.token("cognito:groups", []string{"users"})
	e.expect(e.do("GET", "/", append([]string{"Authorization", "Bearer " + tok}, spoof...)...), 200, "", "")
	check("valid token")
	h, _ := e.backend.lastHeaders()
	if h.Get("X-Cognito-Sub") != "11111111-2222-3333-4444-555555555555" || h.Get("X-User-Email") != "alice@example.com" {
		t.Errorf("verified headers missing: %v", h)
	}
	// A token without email: the spoofed X-User-Email must not survive.
	e.expect(e.do("GET", "/", append([]string{"Authorization", "Bearer " + e.token("email", nil)}, spoof...)...), 200, "", "")
	check("valid token without the claim")
	if h, _ := e.backend.lastHeaders(); h.Get("X-User-Email") != "" {
		t.Errorf("spoofed X-User-Email survived: %q", h.Get("X-User-Email"))
	}
	// Preflight passes without a token, but still without spoofed headers.
	e.expect(e.do("OPTIONS", "/", append([]string{"Origin", "https://app.example", "Access-Control-Request-Method", "POST"}, spoof...)...), 200, "", "")
	check("preflight")
	// Invalid and missing tokens never reach the backend at all.
	_, before := e.backend.lastHeaders()
	e.expect(e.do("GET", "/", append([]string{"Authorization", "Bearer x.y.z"}, spoof...)...), 401, "", "")
	e.expect(e.do("GET", "/", spoof...), 401, "", "")
	// OPTIONS without the CORS headers is not a preflight.
	e.expect(e.do("OPTIONS", "/"), 401, "", "")
	if _, after := e.backend.lastHeaders(); after != before {
		t.Errorf("denied requests reached the backend")
	}
}

func TestIntegrationPlaceholdersAndStripAuthorization(t *testing.T) {
	e := newEnv(t)
	e.load(fmt.Sprintf(`
	route /who {
		%s
		respond "{http.auth.user.id} {http.auth.user.username} {http.auth.user.claims.email} {http.auth.user.claims.cognito:groups} {http.auth.user.client_id}"
	}
	route {
		%s
		reverse_proxy %s
	}`, e.authBlock(), e.authBlock("strip_authorization"), e.backend.URL))

	tok := e.token()
	e.expect(e.do("GET", "/who", "Authorization", "Bearer "+tok), 200, "",
		"11111111-2222-3333-4444-555555555555 alice alice@example.com admin,users "+testClient)
	e.expect(e.do("GET", "/x", "Authorization", "Bearer "+tok), 200, "", "")
	if h, _ := e.backend.lastHeaders(); h.Get("Authorization") != "" {
		t.Errorf("Authorization reached the backend despite strip_authorization")
	}
}

func TestIntegrationHandleErrorsRestyles(t *testing.T) {
	e := newEnv(t)
	e.loadWithGlobals("", fmt.Sprintf(`
	route {
		%s
		respond "hello"
	}
	handle_errors {
		respond "denied: {http.auth.cognito.error} / {http.auth.cognito.reason} / {http.error.status_code} [{http.auth.user.claims.email}]"
	}`, e.authBlock()))
	// A claim placeholder resolves on a denial too: empty, never its text.
	r := e.do("GET", "/", "Authorization", "Bearer "+e.token("exp", time.Now().Unix()-5))
	e.expect(r, 401, `Bearer error="invalid_token", error_description="token is expired"`, "denied: invalid_token / expired / 401 []")
	e.expect(e.do("GET", "/"), 401, "Bearer", "denied: missing / missing / 401 []")
}

func TestIntegrationKeyRotationAndCooldown(t *testing.T) {
	e := newEnv(t)
	e.load(fmt.Sprintf(`
	route {
		cognito_auth {
			issuer %s
			audience %s
			jwks url %s {
				cooldown 1h
			}
		}
		respond "ok"
	}`, e.issuer, testClient, e.jwks.JWKSURL()))

	e.expect(e.do("GET", "/", "Authorization", "Bearer "+e.token()), 200, "", "ok")
	base := e.jwks.Hits()

	// A new key is published: tokens it signed work on first sight.
	e.jwks.Set(jwttest.JWKS(sharedKey, rotatedKey))
	rotated := rotatedKey.Sign(t, jwttest.Token{Claims: e.claims()})
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+rotated), 200, "", "ok")
	if got := e.jwks.Hits() - base; got != 1 {
		t.Fatalf("%d JWKS fetches for a new kid, want 1", got)
	}
	// Unknown kids during the cooldown are refused without fetching.
	for i := range 50 {
		tok := sharedKey.Sign(t, jwttest.Token{Header: map[string]any{"kid": fmt.Sprintf("rnd-%d", i)}, Claims: e.claims()})
		e.expect(e.do("GET", "/", "Authorization", "Bearer "+tok), 401,
			`Bearer error="invalid_token", error_description="token signing key is not known"`, "")
	}
	if got := e.jwks.Hits() - base; got != 1 {
		t.Fatalf("%d JWKS fetches after 50 unknown kids in the cooldown, want 1", got)
	}
	// The JWKS server goes down: known keys keep working.
	e.jwks.Fail(http.StatusInternalServerError, nil)
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+rotated), 200, "", "ok")
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+e.token()), 200, "", "ok")
}

func TestIntegrationKeysDownAtStartThen503ThenRecovers(t *testing.T) {
	e := newEnv(t)
	e.jwks.Fail(http.StatusServiceUnavailable, nil)
	e.load(fmt.Sprintf(`
	route {
		cognito_auth {
			issuer %s
			audience %s
			jwks url %s {
				cooldown 50ms
			}
			startup_wait 200ms
		}
		respond "ok"
	}`, e.issuer, testClient, e.jwks.JWKSURL()))

	r := e.do("GET", "/", "Authorization", "Bearer "+e.token())
	e.expect(r, 503, "Bearer", `{"message":"Service Unavailable"}`)
	if r.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	e.jwks.Set(jwttest.JWKS(sharedKey))
	deadline := time.Now().Add(10 * time.Second)
	for {
		time.Sleep(60 * time.Millisecond) // let the cooldown pass
		r = e.do("GET", "/", "Authorization", "Bearer "+e.token())
		if r.status == 200 {
			break
		}
		if r.status != 503 || time.Now().After(deadline) {
			t.Fatalf("status %d while keys recover", r.status)
		}
	}
}

func TestIntegrationMetrics(t *testing.T) {
	e := newEnv(t)
	e.load(fmt.Sprintf(`
	route /metrics {
		metrics
	}
	route {
		%s
		respond "ok"
	}`, e.authBlock()))
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+e.token()), 200, "", "")
	e.expect(e.do("GET", "/"), 401, "", "")
	r := e.do("GET", "/metrics")
	for _, want := range []string{
		`caddy_cognito_decisions_total{issuer="` + e.issuer + `",reason="",result="allow"} 1`,
		`caddy_cognito_decisions_total{issuer="` + e.issuer + `",reason="missing",result="deny"} 1`,
		`caddy_cognito_jwks_fetches_total{result="ok",source="` + e.jwks.JWKSURL() + `"} 1`,
		`caddy_cognito_jwks_keys{source="` + e.jwks.JWKSURL() + `"} 1`,
		`caddy_cognito_jwks_last_success_timestamp_seconds{source="` + e.jwks.JWKSURL() + `"}`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// strip_authorization removes the credential wherever the token came from:
// a cookie or a query parameter must not reach the backend either, while
// the request's other cookies and parameters do.
func TestIntegrationStripCredentialFromCookieAndQuery(t *testing.T) {
	e := newEnv(t)
	e.load(fmt.Sprintf(`
	route /c/* {
		%s
		reverse_proxy %s
	}
	route /q/* {
		%s
		reverse_proxy %s
	}`, e.authBlock("token_source cookie session", "strip_authorization"), e.backend.URL,
		e.authBlock("token_source query access_token", "strip_authorization"), e.backend.URL))

	tok := e.token()
	e.expect(e.do("GET", "/c/x", "Cookie", "theme=dark; session="+tok+"; lang=en"), 200, "", "")
	h, _ := e.backend.lastHeaders()
	if c := h.Get("Cookie"); strings.Contains(c, tok) || !strings.Contains(c, "theme=dark") || !strings.Contains(c, "lang=en") {
		t.Errorf("backend Cookie %q: want the other cookies without the session", c)
	}
	e.expect(e.do("GET", "/q/x?page=2&access_token="+tok), 200, "", "")
	e.backend.mu.Lock()
	q := e.backend.lastQuery
	e.backend.mu.Unlock()
	if strings.Contains(q, tok) || q != "page=2" {
		t.Errorf("backend query %q, want page=2 only", q)
	}
}
