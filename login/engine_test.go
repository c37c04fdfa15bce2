package login

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// The token endpoint below is the test's own: it checks PKCE (S256 of the
// verifier against the challenge the engine sent), the client
// authentication and the grant exactly as a provider does, and mints
// Cognito-shaped tokens with a key generated here. The full flow against a
// real OpenID provider and a real browser is e2e/browser.

const (
	testClient = "client-123"
	testSecret = "s3cret"
)

type staticKeys struct{ set *jwks.Set }

func (s staticKeys) Key(_ context.Context, kid string) (*jwks.Key, error) {
	if k := s.set.Lookup(kid); k != nil {
		return k, nil
	}
	return nil, jwks.ErrUnknownKID
}

type grant struct {
	challenge, nonce string
}

type fakeIdP struct {
	t      *testing.T
	key    *jwttest.Key
	srv    *httptest.Server
	issuer string
	now    func() time.Time
	ttl    time.Duration

	mu      sync.Mutex
	codes   map[string]grant
	forms   []url.Values
	auths   []string // Authorization headers seen
	gate    chan struct{}
	fail    int    // answer this status
	nonce   string // mint ID tokens with this nonce instead
	tokens  atomic.Int64
	refrs   atomic.Int64
	arrived chan struct{} // receives when a request reaches the gate
}

func newFakeIdP(t *testing.T) *fakeIdP {
	p := &fakeIdP{t: t, key: jwttest.NewKey(t, "kid-1"), codes: map[string]grant{}, ttl: time.Hour, now: time.Now}
	p.srv = httptest.NewServer(http.HandlerFunc(p.token))
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL
	return p
}

// authorize plays the provider's authorization endpoint for an auth URL:
// it remembers the challenge and nonce and returns the callback query.
func (p *fakeIdP) authorize(t *testing.T, authURL string) url.Values {
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" || q.Get("client_id") != testClient {
		t.Fatalf("authorization request %v", q)
	}
	code := "code-" + q.Get("state")[:6]
	p.mu.Lock()
	p.codes[code] = grant{challenge: q.Get("code_challenge"), nonce: q.Get("nonce")}
	p.mu.Unlock()
	return url.Values{"code": {code}, "state": {q.Get("state")}}
}

func (p *fakeIdP) mint(use, nonce string, exp time.Time) string {
	c := map[string]any{
		"iss": p.issuer, "sub": "user-1", "token_use": use, "exp": exp.Unix(), "iat": p.now().Unix(),
		"cognito:groups": []string{"staff"},
	}
	if use == "id" {
		c["aud"] = testClient
		c["cognito:username"] = "alice"
		c["email"] = "alice@example.com"
		if nonce != "" {
			c["nonce"] = nonce
		}
	} else {
		c["client_id"] = testClient
		c["username"] = "alice"
		c["scope"] = "openid email"
	}
	return p.key.Sign(p.t, jwttest.Token{Claims: c})
}

func (p *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", 400)
		return
	}
	p.mu.Lock()
	p.forms = append(p.forms, r.PostForm)
	p.auths = append(p.auths, r.Header.Get("Authorization"))
	gate, fail := p.gate, p.fail
	p.mu.Unlock()
	if gate != nil {
		p.arrived <- struct{}{}
		<-gate
	}
	if fail != 0 {
		w.WriteHeader(fail)
		_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"client authentication failed"}`))
		return
	}
	oauthErr := func(code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"error":"` + code + `"}`))
	}
	exp := p.now().Add(p.ttl)
	resp := map[string]any{"token_type": "Bearer", "expires_in": int(p.ttl / time.Second)}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		p.tokens.Add(1)
		p.mu.Lock()
		g, ok := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		nonce := p.nonce
		p.mu.Unlock()
		if !ok {
			oauthErr("invalid_grant")
			return
		}
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			oauthErr("invalid_grant") // PKCE mismatch
			return
		}
		if nonce == "" {
			nonce = g.nonce
		}
		resp["access_token"] = p.mint("access", "", exp)
		resp["id_token"] = p.mint("id", nonce, exp)
		resp["refresh_token"] = "refresh-1"
	case "refresh_token":
		p.refrs.Add(1)
		if r.PostForm.Get("refresh_token") != "refresh-1" {
			oauthErr("invalid_grant")
			return
		}
		resp["access_token"] = p.mint("access", "", exp)
		resp["id_token"] = p.mint("id", "", exp)
	default:
		oauthErr("unsupported_grant_type")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

var testKeys = func() string {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i)
	}
	return base64.StdEncoding.EncodeToString(k)
}()

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	idp   *fakeIdP
	e     *Engine
	clock *clock
}

func newHarness(t *testing.T, mod func(*config.Login, *Options)) *harness {
	t.Helper()
	idp := newFakeIdP(t)
	clk := &clock{t: time.Now()}
	idp.now = clk.now
	set, _, err := jwks.ParseSet(jwttest.JWKS(idp.key))
	if err != nil {
		t.Fatal(err)
	}
	keys := staticKeys{set}
	idv, err := authz.New(config.Authorizer{Issuer: idp.issuer, Audience: []string{testClient}}, keys, authz.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	acv, err := authz.New(config.Authorizer{Issuer: idp.issuer, Audience: []string{testClient}, TokenUse: "access"}, keys, authz.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Login{ClientSecret: testSecret, CookieSecret: testKeys}
	opts := Options{
		Endpoints: Endpoints{Authorization: idp.issuer + "/oauth2/authorize", Token: idp.srv.URL + "/oauth2/token", Logout: idp.issuer + "/logout", Cognito: true},
		Issuer:    idp.issuer, IDTokens: idv, AccessTokens: acv, Now: clk.now,
	}
	if mod != nil {
		mod(&cfg, &opts)
	}
	cfg.SetDefaults([]string{testClient})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{idp: idp, e: e, clock: clk}
}

// cookieJar carries cookies between responses and requests the way a
// browser does for one host (Secure cookies included: the test pretends
// to be on https).
type cookieJar map[string]*http.Cookie

func (j cookieJar) update(rec *httptest.ResponseRecorder) {
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(j, c.Name)
		} else {
			j[c.Name] = c
		}
	}
}

func (j cookieJar) apply(r *http.Request, path string) {
	for _, c := range j {
		if strings.HasPrefix(path, c.Path) {
			r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
}

func (h *harness) request(jar cookieJar, target string) *http.Request {
	r := httptest.NewRequest("GET", "https://app.example.com"+target, nil)
	jar.apply(r, r.URL.Path)
	return r
}

// signIn runs Begin → provider → Callback and returns the jar with the
// session.
func (h *harness) signIn(t *testing.T, target string) (cookieJar, string) {
	t.Helper()
	jar := cookieJar{}
	rec := httptest.NewRecorder()
	authURL, err := h.e.Begin(rec, h.request(jar, target))
	if err != nil {
		t.Fatal(err)
	}
	jar.update(rec)
	q := h.idp.authorize(t, authURL)
	rec = httptest.NewRecorder()
	to, err := h.e.Callback(rec, h.request(jar, "/oauth2/idpresponse?"+q.Encode()))
	if err != nil {
		t.Fatalf("callback: %v", err)
	}
	jar.update(rec)
	return jar, to
}

func TestSignInRoundTrip(t *testing.T) {
	h := newHarness(t, nil)
	jar, to := h.signIn(t, "/app/page?x=1")
	if to != "/app/page?x=1" {
		t.Fatalf("back to %q", to)
	}
	for name := range jar {
		if strings.Contains(name, "-state-") {
			t.Fatalf("state cookie %s left after the callback", name)
		}
	}
	s, st, err := h.e.Load(httptest.NewRecorder(), h.request(jar, "/app"))
	if st != Valid || err != nil {
		t.Fatalf("Load = %v, %v", st, err)
	}
	if !strings.HasPrefix(h.e.Token(s), "ey") || s.RefreshToken != "refresh-1" {
		t.Fatalf("session %+v", s)
	}
	// The token request carried the verifier, the redirect_uri and Basic
	// client authentication.
	f := h.idp.forms[0]
	if f.Get("code_verifier") == "" || f.Get("redirect_uri") != "https://app.example.com/oauth2/idpresponse" || f.Get("client_secret") != "" {
		t.Fatalf("token request form %v", f)
	}
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte(testClient+":"+testSecret)); h.idp.auths[0] != want {
		t.Fatalf("Authorization %q", h.idp.auths[0])
	}
	// Cookie attributes.
	for _, c := range jar {
		if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
			t.Fatalf("cookie %s attributes %+v", c.Name, c)
		}
	}
}

func TestBeginAuthorizationRequest(t *testing.T) {
	h := newHarness(t, func(c *config.Login, _ *Options) {
		c.Scopes = []string{"openid", "email"}
		c.AuthParams = map[string]string{"identity_provider": "Google"}
	})
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "https://app.example.com//evil.example/x", nil)
	authURL, err := h.e.Begin(rec, r)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	if q.Get("scope") != "openid email" || q.Get("identity_provider") != "Google" || len(q.Get("state")) < 20 ||
		len(q.Get("nonce")) < 20 || len(q.Get("code_challenge")) != 43 || q.Get("state") == q.Get("nonce") {
		t.Fatalf("authorization URL %s", authURL)
	}
	cs := rec.Result().Cookies()
	if len(cs) != 1 || cs[0].Path != "/oauth2/idpresponse" || cs[0].MaxAge != 900 || !cs[0].HttpOnly || !cs[0].Secure {
		t.Fatalf("state cookie %+v", cs)
	}
	// The remembered URL of "//evil.example/x" is "/" (no open redirect),
	// and nothing of the state leaks into the cookie in clear.
	raw, err := h.e.sealer.Open(cs[0].Name, cs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	var st loginState
	_ = json.Unmarshal(raw, &st)
	if st.URL != "/" || strings.Contains(cs[0].Value, q.Get("state")) {
		t.Fatalf("state %+v", st)
	}
}

func TestCallbackRefusals(t *testing.T) {
	type tc struct {
		name   string
		mod    func(h *harness, jar cookieJar, q url.Values)
		status int
		reason string
	}
	for _, c := range []tc{
		{"state mismatch", func(h *harness, jar cookieJar, q url.Values) {
			s := q.Get("state")
			q.Set("state", s[:8]+strings.Repeat("A", len(s)-8))
		}, 401, "state"},
		{"no state cookie (CSRF: callback forged from another site)", func(h *harness, jar cookieJar, q url.Values) {
			for k := range jar {
				delete(jar, k)
			}
		}, 401, "state"},
		{"no state", func(h *harness, jar cookieJar, q url.Values) { q.Del("state") }, 401, "state"},
		{"state cookie sealed with another key", func(h *harness, jar cookieJar, q url.Values) {
			other, _ := NewSealer([][]byte{make([]byte, 32)})
			for _, c := range jar {
				c.Value = other.Seal(c.Name, []byte(`{"s":"`+q.Get("state")+`"}`))
			}
		}, 401, "state"},
		{"state expired", func(h *harness, jar cookieJar, q url.Values) { h.clock.add(16 * time.Minute) }, 401, "state"},
		{"PKCE verifier does not match", func(h *harness, jar cookieJar, q url.Values) {
			h.idp.mu.Lock()
			g := h.idp.codes[q.Get("code")]
			g.challenge = pkceChallenge("another verifier")
			h.idp.codes[q.Get("code")] = g
			h.idp.mu.Unlock()
		}, 502, "token_endpoint"},
		{"nonce mismatch", func(h *harness, jar cookieJar, q url.Values) { h.idp.nonce = "replayed-nonce" }, 401, "nonce"},
		{"code reused", func(h *harness, jar cookieJar, q url.Values) { q.Set("code", "code-unknown") }, 502, "token_endpoint"},
		{"token endpoint refuses the client", func(h *harness, jar cookieJar, q url.Values) { h.idp.fail = 401 }, 502, "token_endpoint"},
		{"provider error", func(h *harness, jar cookieJar, q url.Values) {
			q.Del("code")
			q.Set("error", "access_denied")
			q.Set("error_description", "<script>alert(1)</script>")
		}, 401, "idp_error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			jar := cookieJar{}
			rec := httptest.NewRecorder()
			authURL, err := h.e.Begin(rec, h.request(jar, "/app"))
			if err != nil {
				t.Fatal(err)
			}
			jar.update(rec)
			q := h.idp.authorize(t, authURL)
			c.mod(h, jar, q)
			rec = httptest.NewRecorder()
			_, err = h.e.Callback(rec, h.request(jar, "/oauth2/idpresponse?"+q.Encode()))
			ce, ok := err.(*CallbackError)
			if !ok || ce.Status != c.status || ce.Reason != c.reason {
				t.Fatalf("Callback error = %#v, want %d %s", err, c.status, c.reason)
			}
			jar.update(rec)
			if _, st, _ := h.e.Load(httptest.NewRecorder(), h.request(jar, "/app")); st != NoSession {
				t.Fatalf("a refused callback left a session (%v)", st)
			}
		})
	}
}

func TestTokenEndpointFailureHint(t *testing.T) {
	h := newHarness(t, nil)
	h.idp.fail = 401
	jar := cookieJar{}
	rec := httptest.NewRecorder()
	authURL, _ := h.e.Begin(rec, h.request(jar, "/app"))
	jar.update(rec)
	q := h.idp.authorize(t, authURL)
	_, err := h.e.Callback(httptest.NewRecorder(), h.request(jar, "/oauth2/idpresponse?"+q.Encode()))
	ce := err.(*CallbackError)
	if !strings.Contains(ce.Hint, "client_secret") || !strings.Contains(ce.Error(), "invalid_client") || strings.Contains(ce.Error(), testSecret) {
		t.Fatalf("error %q hint %q", ce.Error(), ce.Hint)
	}
}

func TestChunkingTamperAndRotation(t *testing.T) {
	h := newHarness(t, nil)
	// A session large enough for three chunks.
	big := &Session{AccessToken: strings.Repeat("a", 5000), IDToken: strings.Repeat("i", 3000), RefreshToken: "r",
		Expires: h.clock.now().Add(time.Hour).Unix(), Created: h.clock.now().Unix()}
	rec := httptest.NewRecorder()
	if err := h.e.writeSession(rec, httptest.NewRequest("GET", "/", nil), big); err != nil {
		t.Fatal(err)
	}
	lines := rec.Result().Header.Values("Set-Cookie")
	if len(lines) != 3 {
		t.Fatalf("%d chunks, want 3", len(lines))
	}
	for i, l := range lines {
		if len(l) >= 4096 || !strings.HasPrefix(l, "cognito_session-"+string(rune('0'+i))+"=") {
			t.Fatalf("chunk %d: %d bytes: %.60s", i, len(l), l)
		}
	}
	jar := cookieJar{}
	jar.update(rec)
	load := func(jar cookieJar, e *Engine) State {
		_, st, _ := e.Load(httptest.NewRecorder(), h.request(jar, "/"))
		return st
	}
	if st := load(jar, h.e); st != Valid {
		t.Fatalf("intact: %v", st)
	}
	clone := func() cookieJar {
		c := cookieJar{}
		for k, v := range jar {
			cc := *v
			c[k] = &cc
		}
		return c
	}
	t.Run("tampered byte", func(t *testing.T) {
		j := clone()
		v := []byte(j["cognito_session-1"].Value)
		v[100] ^= 1
		j["cognito_session-1"].Value = string(v)
		if st := load(j, h.e); st != Invalid {
			t.Fatalf("got %v", st)
		}
	})
	t.Run("truncated: last chunk missing", func(t *testing.T) {
		j := clone()
		delete(j, "cognito_session-2")
		if st := load(j, h.e); st != Invalid {
			t.Fatalf("got %v", st)
		}
	})
	t.Run("chunks swapped", func(t *testing.T) {
		j := clone()
		j["cognito_session-0"].Value, j["cognito_session-1"].Value = j["cognito_session-1"].Value, j["cognito_session-0"].Value
		if st := load(j, h.e); st != Invalid {
			t.Fatalf("got %v", st)
		}
	})
	t.Run("chunk sent twice", func(t *testing.T) {
		r := h.request(jar, "/")
		r.AddCookie(&http.Cookie{Name: "cognito_session-0", Value: jar["cognito_session-0"].Value})
		if _, st, _ := h.e.Load(httptest.NewRecorder(), r); st != Invalid {
			t.Fatalf("got %v", st)
		}
	})
	newKey := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	engineWith := func(secret string) *Engine {
		cfg := h.e.cfg
		cfg.CookieSecret = secret
		e, err := New(cfg, h.e.opts)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	t.Run("wrong key", func(t *testing.T) {
		if st := load(jar, engineWith(newKey)); st != Invalid {
			t.Fatalf("got %v", st)
		}
	})
	t.Run("rotation: new key first, old still opens", func(t *testing.T) {
		rotated := engineWith(newKey + " " + testKeys)
		if st := load(jar, rotated); st != Valid {
			t.Fatalf("old session under rotated keys: %v", st)
		}
		rec := httptest.NewRecorder()
		_ = rotated.writeSession(rec, httptest.NewRequest("GET", "/", nil), big)
		j := cookieJar{}
		j.update(rec)
		if st := load(j, engineWith(newKey)); st != Valid {
			t.Fatalf("new session not sealed with the new key: %v", st)
		}
		if st := load(j, h.e); st != Invalid {
			t.Fatalf("new session opened with only the old key: %v", st)
		}
	})
	t.Run("a state cookie value is not a session", func(t *testing.T) {
		j := cookieJar{"cognito_session-0": {Name: "cognito_session-0", Value: h.e.sealer.Seal("cognito_session-state-abcdefgh", []byte(`{"a":"x","i":"y","c":1,"e":9999999999}`))}}
		if st := load(j, h.e); st != Invalid {
			t.Fatalf("got %v", st)
		}
	})
	t.Run("absolute timeout", func(t *testing.T) {
		h.clock.add(7*24*time.Hour + time.Second)
		defer h.clock.add(-(7*24*time.Hour + time.Second))
		if st := load(jar, h.e); st != Expired {
			t.Fatalf("got %v", st)
		}
	})
	t.Run("too large", func(t *testing.T) {
		huge := *big
		huge.AccessToken = strings.Repeat("a", 40000)
		if err := h.e.writeSession(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), &huge); err == nil {
			t.Fatal("a 40 KB session was written")
		}
	})
	t.Run("smaller session expires the extra chunks", func(t *testing.T) {
		small := *big
		small.AccessToken, small.IDToken = "a", "i"
		rec := httptest.NewRecorder()
		_ = h.e.writeSession(rec, h.request(jar, "/"), &small)
		var expired []string
		for _, c := range rec.Result().Cookies() {
			if c.MaxAge < 0 {
				expired = append(expired, c.Name)
			}
		}
		if strings.Join(expired, ",") != "cognito_session-1,cognito_session-2" {
			t.Fatalf("expired %v", expired)
		}
	})
}

func TestRefreshSingleflight(t *testing.T) {
	h := newHarness(t, nil)
	h.idp.ttl = 10 * time.Minute
	jar, _ := h.signIn(t, "/")
	h.clock.add(9*time.Minute + 30*time.Second) // within 60 s of exp
	h.idp.ttl = time.Hour
	const n = 16
	gate := make(chan struct{})
	h.idp.mu.Lock()
	h.idp.gate = gate
	h.idp.arrived = make(chan struct{}, n)
	h.idp.mu.Unlock()
	var wg sync.WaitGroup
	toks := make([]string, n)
	states := make([]State, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, st, _ := h.e.Load(httptest.NewRecorder(), h.request(jar, "/"))
			states[i] = st
			if s != nil {
				toks[i] = s.AccessToken
			}
		}()
	}
	// Let the one refresh through once it is in flight.
	<-h.idp.arrived
	close(gate)
	wg.Wait()
	if got := h.idp.refrs.Load(); got != 1 {
		t.Fatalf("%d refreshes, want 1", got)
	}
	for i := range n {
		if states[i] != Refreshed || toks[i] != toks[0] {
			t.Fatalf("request %d: %v", i, states[i])
		}
	}
	// A later request still carrying the old cookie gets the same result
	// without spending the refresh token again.
	if _, st, _ := h.e.Load(httptest.NewRecorder(), h.request(jar, "/")); st != Refreshed || h.idp.refrs.Load() != 1 {
		t.Fatalf("late request: %v, %d refreshes", st, h.idp.refrs.Load())
	}
}

func TestRefreshFailureSignsOut(t *testing.T) {
	h := newHarness(t, nil)
	h.idp.ttl = 2 * time.Minute
	jar, _ := h.signIn(t, "/")
	h.clock.add(90 * time.Second)
	h.idp.fail = 400
	rec := httptest.NewRecorder()
	s, st, err := h.e.Load(rec, h.request(jar, "/"))
	if s != nil || st != RefreshFailed || err == nil {
		t.Fatalf("Load = %v %v %v", s, st, err)
	}
	cleared := 0
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 && strings.HasPrefix(c.Name, "cognito_session-") {
			cleared++
		}
	}
	if cleared == 0 {
		t.Fatal("failed refresh left the session cookie")
	}
}

func TestExpiredWithoutRefreshToken(t *testing.T) {
	h := newHarness(t, nil)
	s := &Session{AccessToken: "a", IDToken: "i", Expires: h.clock.now().Add(30 * time.Second).Unix(), Created: h.clock.now().Unix()}
	rec := httptest.NewRecorder()
	_ = h.e.writeSession(rec, httptest.NewRequest("GET", "/", nil), s)
	jar := cookieJar{}
	jar.update(rec)
	if _, st, _ := h.e.Load(httptest.NewRecorder(), h.request(jar, "/")); st != Valid {
		t.Fatalf("30 s left, no refresh token: %v", st)
	}
	h.clock.add(31 * time.Second)
	if _, st, _ := h.e.Load(httptest.NewRecorder(), h.request(jar, "/")); st != Expired {
		t.Fatalf("expired: %v", st)
	}
}

func TestIsNavigation(t *testing.T) {
	for _, c := range []struct {
		hdr  map[string]string
		want bool
	}{
		{map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}, true},
		{map[string]string{"Sec-Fetch-Mode": "navigate"}, true},
		{map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "text/html,*/*"}, false},
		{map[string]string{"Sec-Fetch-Mode": "no-cors", "Accept": "text/html"}, false},
		{map[string]string{"Accept": "text/html,application/xhtml+xml"}, true},
		{map[string]string{"Accept": "application/json"}, false},
		{map[string]string{"Accept": "*/*"}, false},
		{map[string]string{}, false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		if got := IsNavigation(r); got != c.want {
			t.Errorf("IsNavigation(%v) = %v", c.hdr, got)
		}
	}
}

func TestClientAuthentication(t *testing.T) {
	pk := jwttest.NewKey(t, "client-key")
	for _, method := range []string{config.ClientAuthPost, config.ClientAuthNone, config.ClientAuthPrivateKeyJWT} {
		t.Run(method, func(t *testing.T) {
			h := newHarness(t, func(c *config.Login, o *Options) {
				c.ClientAuth = method
				switch method {
				case config.ClientAuthNone:
					c.ClientSecret = ""
				case config.ClientAuthPrivateKeyJWT:
					c.ClientSecret, c.PrivateKey = "", "/unused"
					o.PrivateKey, o.KeyID = pk.Private, pk.ID
				}
			})
			h.signIn(t, "/")
			h.signIn(t, "/")
			f, auth := h.idp.forms[0], h.idp.auths[0]
			if auth != "" || f.Get("client_id") != testClient {
				t.Fatalf("Authorization %q, form %v", auth, f)
			}
			switch method {
			case config.ClientAuthPost:
				if f.Get("client_secret") != testSecret {
					t.Fatalf("form %v", f)
				}
			case config.ClientAuthNone:
				if f.Has("client_secret") || f.Has("client_assertion") {
					t.Fatalf("form %v", f)
				}
			case config.ClientAuthPrivateKeyJWT:
				if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || f.Has("client_secret") {
					t.Fatalf("form %v", f)
				}
				c1 := checkAssertion(t, f.Get("client_assertion"), &pk.Private.PublicKey, pk.ID)
				c2 := checkAssertion(t, h.idp.forms[1].Get("client_assertion"), &pk.Private.PublicKey, pk.ID)
				if c1["aud"] != h.idp.srv.URL+"/oauth2/token" {
					t.Fatalf("aud %v, want the token endpoint", c1["aud"])
				}
				if c1["jti"] == c2["jti"] {
					t.Fatal("jti reused")
				}
			}
		})
	}
}

// checkAssertion verifies an RS256 client assertion and its claims: iss =
// sub = client id, a jti, exp at most 5 minutes after iat.
func checkAssertion(t *testing.T, a string, pub *rsa.PublicKey, kid string) map[string]any {
	t.Helper()
	parts := strings.Split(a, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion %q", a)
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	var hdr map[string]any
	var c map[string]any
	_ = json.Unmarshal(hb, &hdr)
	_ = json.Unmarshal(pb, &c)
	if hdr["alg"] != "RS256" || hdr["kid"] != kid {
		t.Fatalf("header %v", hdr)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, 5 /* crypto.SHA256 */, sum[:], sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	iat, exp := c["iat"].(float64), c["exp"].(float64)
	if c["iss"] != testClient || c["sub"] != testClient || c["jti"] == "" || exp-iat > 300 || exp <= iat {
		t.Fatalf("claims %v", c)
	}
	return c
}

func TestLogoutURL(t *testing.T) {
	h := newHarness(t, func(c *config.Login, _ *Options) { c.LogoutRedirect = "/bye" })
	r := httptest.NewRequest("GET", "https://app.example.com/logout", nil)
	got := h.e.LogoutURL(r)
	want := h.idp.issuer + "/logout?client_id=" + testClient + "&logout_uri=" + url.QueryEscape("https://app.example.com/bye")
	if got != want {
		t.Fatalf("LogoutURL = %s, want %s", got, want)
	}
}
