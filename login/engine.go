// Package login is the browser sign-in engine of caddy-cognito: the OpenID
// Connect authorization-code flow with PKCE (S256), client authentication
// at the token endpoint (client_secret_basic, client_secret_post, none,
// private_key_jwt), sealed and chunked session cookies, and the refresh of
// a session's tokens. It does not import Caddy: the handler in package
// caddymodule calls it, and authorizes the token it returns with the same
// authz.Authorizer as a bearer token.
package login

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/config"
)

// Verifier verifies a token: *authz.Authorizer.
type Verifier interface {
	Authorize(ctx context.Context, token string) (*authz.Claims, error)
}

// Options are what the engine needs besides the configuration.
type Options struct {
	// Endpoints of the identity provider, or, when they are empty,
	// Discover finds them on first use (and again after a failure, at
	// most every 10 s), so a provider that is down at start-up does not
	// stop the server.
	Endpoints Endpoints
	Discover  func(ctx context.Context) (Endpoints, error)
	// Issuer is the configured issuer (for the ALB data header).
	Issuer string
	// IDTokens verifies ID tokens: signature with the handler's keys, iss,
	// aud = the client id, exp. The engine checks the nonce itself.
	IDTokens Verifier
	// AccessTokens verifies the access token at sign-in and refresh with
	// the handler's keys and claim checks (not the route's scopes and
	// groups, which every request checks). Nil when the session presents
	// its ID token (routes with token_use id).
	AccessTokens Verifier
	// UseIDToken: the session presents its ID token, not its access token.
	UseIDToken bool
	// PrivateKey and KeyID sign private_key_jwt client assertions.
	PrivateKey *rsa.PrivateKey
	KeyID      string
	// HTTPClient calls the token endpoint. Default: a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Engine runs sign-in, callback, session and logout for one handler. It is
// safe for concurrent use.
type Engine struct {
	cfg      config.Login
	opts     Options
	sealer   *Sealer
	auth     *clientAuth
	client   *http.Client
	now      func() time.Time
	stateFix string // state cookie name prefix

	epMu     sync.Mutex
	ep       Endpoints
	epErr    error
	epFailed time.Time

	refreshes singleflight.Group
	recentMu  sync.Mutex
	recent    map[string]recentRefresh
}

// New returns an engine for cfg, which must have passed Validate with its
// secrets replaced (cookie_secret holds keys, not a placeholder).
func New(cfg config.Login, opts Options) (*Engine, error) {
	keys, err := config.ParseCookieKeys(cfg.CookieSecret)
	if err != nil {
		return nil, err
	}
	sealer, err := NewSealer(keys)
	if err != nil {
		return nil, err
	}
	if (opts.Endpoints.Authorization == "" || opts.Endpoints.Token == "") && opts.Discover == nil {
		return nil, errors.New("login: authorization and token endpoints are required")
	}
	if opts.IDTokens == nil {
		return nil, errors.New("login: no ID token verifier")
	}
	if cfg.ClientAuth == config.ClientAuthPrivateKeyJWT && opts.PrivateKey == nil {
		return nil, errors.New("login: private_key_jwt without a private key")
	}
	e := &Engine{
		cfg:      cfg,
		opts:     opts,
		sealer:   sealer,
		client:   opts.HTTPClient,
		now:      opts.Now,
		stateFix: cfg.CookieName + "-state-",
		recent:   map[string]recentRefresh{},
		ep:       opts.Endpoints,
	}
	if e.client == nil {
		e.client = &http.Client{Timeout: 10 * time.Second}
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.auth = &clientAuth{
		method: cfg.ClientAuth, clientID: cfg.ClientID, secret: cfg.ClientSecret,
		key: opts.PrivateKey, keyID: firstNonEmpty(cfg.PrivateKeyID, opts.KeyID),
		assertAud: cfg.ClientAssertionAudience, now: e.now,
	}
	return e, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// discoverRetry spaces discovery attempts after a failure.
const discoverRetry = 10 * time.Second

// Endpoints returns the provider's endpoints, discovering them on first
// use.
func (e *Engine) Endpoints(ctx context.Context) (Endpoints, error) {
	e.epMu.Lock()
	defer e.epMu.Unlock()
	if e.ep.Token != "" {
		return e.ep, nil
	}
	if e.epErr != nil && e.now().Sub(e.epFailed) < discoverRetry {
		return Endpoints{}, e.epErr
	}
	ep, err := e.opts.Discover(ctx)
	if err != nil {
		e.epErr, e.epFailed = err, e.now()
		return Endpoints{}, err
	}
	e.ep, e.epErr = ep, nil
	return ep, nil
}

// Config returns the engine's configuration (with defaults).
func (e *Engine) Config() *config.Login { return &e.cfg }

// IsNavigation reports whether r is a browser navigating to a page, the
// only kind of request worth a redirect to a sign-in page: Sec-Fetch-Mode
// navigate, or, from browsers that do not send Fetch Metadata, an Accept
// header that names text/html. fetch() and XHR get the 401 they can act
// on (a redirect to another origin would only be an opaque CORS failure).
func IsNavigation(r *http.Request) bool {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/html") {
			return true
		}
	}
	return false
}

// stateTTL is how long a sign-in may take, as the ALB's 15 minutes.
const stateTTL = 15 * time.Minute

// maxStateCookies bounds the parallel sign-ins kept (one per tab): each has
// its own state cookie, so tabs do not overwrite each other's, and the
// oldest beyond this are cleared so cookies cannot pile up.
const maxStateCookies = 4

// loginState is sealed into the state cookie.
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	URL      string `json:"u"`
	Redirect string `json:"r"` // the redirect_uri sent, sent again to the token endpoint
	Created  int64  `json:"c"`
}

// RedirectURI is the callback URL for this request's host and scheme.
func (e *Engine) RedirectURI(r *http.Request) string {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host + e.cfg.Callback
}

// Begin starts a sign-in: it sets a state cookie and returns the
// authorization URL to redirect to. Any session cookie the request still
// carries is cleared (a stale or planted session must not survive a
// sign-in).
func (e *Engine) Begin(w http.ResponseWriter, r *http.Request) (string, error) {
	ep, err := e.Endpoints(r.Context())
	if err != nil {
		return "", err
	}
	st := loginState{
		State:    rand.Text(),
		Nonce:    rand.Text(),
		Verifier: pkceVerifier(),
		URL:      SafeRedirect(r.URL.RequestURI()),
		Redirect: e.RedirectURI(r),
		Created:  e.now().Unix(),
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// The body cannot be replayed after the sign-in; land on the
		// page rather than re-posting.
		st.URL = SafeRedirect(r.URL.Path)
	}
	raw, _ := json.Marshal(st)
	name := e.stateFix + st.State[:8]
	http.SetCookie(w, newCookie(name, e.sealer.Seal(name, raw), e.cfg.Callback, int(stateTTL/time.Second)))
	var old []string
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, e.stateFix) {
			old = append(old, c.Name)
		}
	}
	for i := 0; i+maxStateCookies-1 < len(old); i++ {
		http.SetCookie(w, newCookie(old[i], "", e.cfg.Callback, -1))
	}
	if _, present, _, _ := readChunks(r, e.cfg.CookieName); present > 0 {
		clearChunks(w, r, e.cfg.CookieName)
	}

	q := url.Values{}
	q.Set("response_type", "code")
	q.Set("client_id", e.cfg.ClientID)
	q.Set("redirect_uri", st.Redirect)
	q.Set("scope", strings.Join(e.cfg.Scopes, " "))
	q.Set("state", st.State)
	q.Set("nonce", st.Nonce)
	q.Set("code_challenge", pkceChallenge(st.Verifier))
	q.Set("code_challenge_method", "S256")
	for k, v := range e.cfg.AuthParams {
		q.Set(k, v)
	}
	return withQuery(ep.Authorization, q), nil
}

func withQuery(endpoint string, q url.Values) string {
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
	}
	return endpoint + sep + q.Encode()
}

// pkceVerifier is a code_verifier of 43 characters (256 bits), RFC 7636 §4.1.
func pkceVerifier() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// pkceChallenge is the S256 code_challenge of a verifier.
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CallbackError is a failed callback: the status and public message for
// the browser, a stable reason for metrics, the detail and a hint for the
// log.
type CallbackError struct {
	Status  int
	Reason  string // idp_error, state, token_endpoint, id_token, nonce, access_token, session
	Message string // public, shown HTML-escaped
	Err     error  // detail, log only
	Hint    string // what to fix, log only
}

func (e *CallbackError) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *CallbackError) Unwrap() error { return e.Err }

func cbErr(status int, reason, msg string, err error) *CallbackError {
	return &CallbackError{Status: status, Reason: reason, Message: msg, Err: err}
}

// Callback completes a sign-in: it checks the state against the state
// cookie (CSRF), exchanges the code with the PKCE verifier, verifies the
// ID token (and its nonce) and the access token, seals the session into
// the cookie and returns the URL to go back to. The state cookie is
// cleared whatever the outcome.
func (e *Engine) Callback(w http.ResponseWriter, r *http.Request) (string, error) {
	q := r.URL.Query()
	state := q.Get("state")
	var st loginState
	var stErr error
	if len(state) < 8 {
		stErr = errors.New("no state parameter")
	} else {
		name := e.stateFix + state[:8]
		c, err := r.Cookie(name)
		if err != nil {
			stErr = errors.New("no state cookie for this state (sign-in started in another browser, or expired)")
		} else {
			http.SetCookie(w, newCookie(name, "", e.cfg.Callback, -1))
			raw, err := e.sealer.Open(name, c.Value)
			switch {
			case err != nil:
				stErr = err
			case json.Unmarshal(raw, &st) != nil:
				stErr = errors.New("state cookie is malformed")
			case !constantTimeEqual(st.State, state):
				stErr = errors.New("state does not match the state cookie")
			case e.now().Sub(time.Unix(st.Created, 0)) > stateTTL:
				stErr = fmt.Errorf("sign-in took longer than %s", stateTTL)
			}
		}
	}
	if idpErr := q.Get("error"); idpErr != "" {
		// The provider refused (e.g. access_denied, login_required). Shown
		// to the user, escaped by the caller; no state needed to say no.
		msg := printable(idpErr, 64)
		if d := printable(q.Get("error_description"), 300); d != "" {
			msg += ": " + d
		}
		return "", &CallbackError{Status: http.StatusUnauthorized, Reason: "idp_error", Message: "Sign-in failed: " + msg,
			Err: errors.New(msg), Hint: "the identity provider answered with an error"}
	}
	if stErr != nil {
		return "", &CallbackError{Status: http.StatusUnauthorized, Reason: "state", Message: "Sign-in failed: this sign-in was not started here or has expired. Go back to the page and try again.",
			Err: stErr, Hint: "a callback without its state cookie: a forged request (CSRF), an expired sign-in, or a callback URL on another host or scheme than the protected site"}
	}
	code := q.Get("code")
	if code == "" {
		return "", cbErr(http.StatusBadRequest, "code", "Sign-in failed: no authorization code.", errors.New("callback without code"))
	}
	form := url.Values{}
	form.Set("grant_type", "authorization_code")
	form.Set("code", code)
	form.Set("redirect_uri", st.Redirect)
	form.Set("code_verifier", st.Verifier)
	ep, err := e.Endpoints(r.Context())
	if err != nil {
		return "", &CallbackError{Status: http.StatusBadGateway, Reason: "token_endpoint", Message: "Sign-in failed: the identity provider cannot be reached. Try again later.",
			Err: err, Hint: "the provider's discovery document could not be read"}
	}
	tr, err := tokenRequest(r.Context(), e.client, e.auth, ep.Token, form)
	if err != nil {
		ce := cbErr(http.StatusBadGateway, "token_endpoint", "Sign-in failed: the identity provider did not answer as expected. Try again later.", err)
		var te *TokenError
		if errors.As(err, &te) {
			ce.Hint = te.Hint()
		}
		return "", ce
	}
	sess, cerr := e.verifyTokens(r.Context(), tr, "", st.Nonce)
	if cerr != nil {
		return "", cerr
	}
	sess.Created = e.now().Unix()
	if err := e.writeSession(w, r, sess); err != nil {
		return "", cbErr(http.StatusInternalServerError, "session", "Sign-in failed: the session is too large.", err)
	}
	return SafeRedirect(st.URL), nil
}

func constantTimeEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// verifyTokens checks a token response and makes the session of it (nonce
// "" skips the nonce check, for refreshes: OpenID Connect Core §12.2 lets
// a refreshed ID token omit it). oldRefresh is kept when the provider does
// not rotate the refresh token.
func (e *Engine) verifyTokens(ctx context.Context, tr *TokenResponse, oldRefresh, nonce string) (*Session, *CallbackError) {
	if tr.IDToken == "" {
		return nil, cbErr(http.StatusBadGateway, "id_token", "Sign-in failed: the identity provider sent no ID token.",
			errors.New("token response without id_token (is openid among the client's allowed scopes?)"))
	}
	idc, err := e.opts.IDTokens.Authorize(ctx, tr.IDToken)
	if err != nil {
		return nil, cbErr(http.StatusUnauthorized, "id_token", "Sign-in failed: the ID token is not valid.", fmt.Errorf("id token: %w", err))
	}
	if got, _ := idc.Get("nonce"); nonce != "" && !constantTimeEqual(got, nonce) {
		return nil, cbErr(http.StatusUnauthorized, "nonce", "Sign-in failed: the ID token is not for this sign-in.", errors.New("id token nonce does not match the sign-in's"))
	}
	s := &Session{IDToken: tr.IDToken, AccessToken: tr.AccessToken, RefreshToken: firstNonEmpty(tr.RefreshToken, oldRefresh)}
	exp := idc.Expires
	if e.opts.AccessTokens != nil {
		ac, err := e.opts.AccessTokens.Authorize(ctx, tr.AccessToken)
		if err != nil {
			return nil, cbErr(http.StatusUnauthorized, "access_token", "Sign-in failed: the access token is not valid.", fmt.Errorf("access token: %w", err))
		}
		if ac.Subject != idc.Subject {
			return nil, cbErr(http.StatusUnauthorized, "access_token", "Sign-in failed: the tokens are for different users.", errors.New("access token sub differs from the id token's"))
		}
		exp = ac.Expires
	}
	s.Expires = exp
	return s, nil
}
