package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Client authentication methods at the token endpoint (OpenID Connect Core
// §9).
const (
	ClientAuthBasic         = "client_secret_basic"
	ClientAuthPost          = "client_secret_post"
	ClientAuthNone          = "none"
	ClientAuthPrivateKeyJWT = "private_key_jwt"
)

// What happens to a request without a bearer token and without a valid
// session: the three answers of the ALB's OnUnauthenticatedRequest.
const (
	OnUnauthAuthenticate = "authenticate"
	OnUnauthDeny         = "deny"
	OnUnauthAllow        = "allow"
)

// Login defaults.
const (
	DefaultCallback        = "/oauth2/idpresponse"
	DefaultSessionCookie   = "cognito_session"
	DefaultSessionTimeout  = 7 * 24 * time.Hour
	DefaultALBKeyPath      = "/oauth2/alb-public-keys"
	DefaultALBSigner       = "caddy-cognito"
	CookieKeyBytes         = 32
	maxCookieNameBytes     = 64
	maxAuthExtraParameters = 10
)

// Login is browser sign-in in the same handler, after the ALB's
// authenticate-cognito action: the OpenID Connect authorization-code flow
// with PKCE (S256), an encrypted, stateless cookie session, and the same
// route rules, headers and placeholders as for bearer tokens.
//
// Requests that carry a bearer token are never redirected. A request with a
// valid session is authorized with the session's access token (its ID token
// when the route has token_use id). A request with neither is, by default,
// redirected to the identity provider when it is a browser navigation
// (Sec-Fetch-Mode: navigate, or Accept with text/html when that header is
// absent) and answered 401 otherwise.
type Login struct {
	// The Cognito managed login (hosted UI) domain, e.g.
	// https://auth.example.com or https://myapp.auth.us-east-1.amazoncognito.com:
	// the authorization, token and logout endpoints are
	// <domain>/oauth2/authorize, <domain>/oauth2/token and <domain>/logout.
	// Default: the endpoints from <issuer>/.well-known/openid-configuration.
	Domain string `json:"domain,omitempty"`

	// The OAuth client id. Default: the first audience.
	ClientID string `json:"client_id,omitempty"`

	// The client secret, usually a placeholder such as
	// {env.COGNITO_CLIENT_SECRET} or {file./run/secrets/client_secret},
	// replaced at provision time. Without it (and without private_key) the
	// client is public and PKCE alone protects the code. Never logged.
	ClientSecret string `json:"client_secret,omitempty"`

	// Client authentication at the token endpoint: client_secret_basic,
	// client_secret_post, none or private_key_jwt. Default:
	// client_secret_basic with a client_secret, private_key_jwt with a
	// private_key, else none.
	ClientAuth string `json:"client_auth,omitempty"`

	// For private_key_jwt: a file with the RSA private key (PEM, PKCS#1 or
	// PKCS#8, or a JWK) that signs the RS256 client assertion (RFC 7523:
	// iss = sub = client id, aud = the token endpoint, a unique jti, a
	// lifetime of 5 minutes at most). A placeholder may name it.
	PrivateKey string `json:"private_key,omitempty"`

	// The "kid" header of the client assertion. Default: the JWK's kid, if
	// the key is a JWK.
	PrivateKeyID string `json:"private_key_id,omitempty"`

	// The "aud" of the client assertion. Default: the token endpoint (RFC
	// 7523). Some providers want their issuer identifier instead, as the
	// current draft revision of RFC 7523 recommends.
	ClientAssertionAudience string `json:"client_assertion_audience,omitempty"`

	// The scopes requested. Default ["openid"]. Must include openid: the
	// sign-in is verified with the ID token and its nonce.
	Scopes []string `json:"scopes,omitempty"`

	// Extra query parameters for the authorization request (at most 10, as
	// the ALB's AuthenticationRequestExtraParams), e.g. {"prompt":"login"}
	// or {"identity_provider":"Google"}.
	AuthParams map[string]string `json:"auth_params,omitempty"`

	// The path the identity provider redirects back to. It must be
	// registered as a callback URL of the client as
	// <scheme>://<host><callback>. Default /oauth2/idpresponse (the ALB's).
	Callback string `json:"callback,omitempty"`

	// A path that ends the session: every session cookie is cleared, then
	// the browser goes to the identity provider's logout (Cognito:
	// <domain>/logout?client_id=…&logout_uri=…; other providers: their
	// end_session_endpoint). Default: no logout path.
	Logout string `json:"logout,omitempty"`

	// Where the identity provider sends the browser after logout (Cognito:
	// a registered sign-out URL). An absolute URL or a path on this site.
	// Default: the site's root.
	LogoutRedirect string `json:"logout_redirect,omitempty"`

	// The session cookie's name; it is split into <name>-0, <name>-1, …
	// below 4096 bytes each. The short-lived sign-in state cookie is
	// <name>-state. Default cognito_session.
	CookieName string `json:"cookie_name,omitempty"`

	// The keys that seal cookies with AES-256-GCM: base64 (standard or
	// URL alphabet) encodings of 32 random bytes, separated by spaces. The
	// first seals; all open, so a key can be rotated in by putting it
	// first and out by removing it later. Sidecars that share the keys
	// share the sessions. Required; use a placeholder such as
	// {env.SESSION_KEYS}. Never logged. Make one with
	// `head -c32 /dev/urandom | base64`.
	CookieSecret string `json:"cookie_secret,omitempty"`

	// The absolute session lifetime, refreshes or not. Default 7 days (the
	// ALB's 604800 s).
	SessionTimeout Duration `json:"session_timeout,omitempty"`

	// What a request without a bearer token or a valid session gets:
	// "authenticate" (a browser navigation goes to the sign-in, anything
	// else gets 401), "deny" (401) or "allow" (passed on with every
	// identity header removed). Default authenticate.
	OnUnauthenticated string `json:"on_unauthenticated,omitempty"`

	// Also send the ALB's headers to the backend: x-amzn-oidc-accesstoken
	// (the access token), x-amzn-oidc-identity ("sub") and
	// x-amzn-oidc-data (the user's claims as an ES256 JWT with the ALB's
	// header fields alg, kid, signer, iss, client, exp, base64url with
	// padding as the ALB sends it). Whether or not this is set, clients
	// can never send these three headers: they are removed from every
	// request.
	ALBHeaders bool `json:"alb_headers,omitempty"`

	// A file with the EC P-256 private key (PEM) that signs
	// x-amzn-oidc-data. Default: a key generated at start-up (each sidecar
	// then has its own kid, and serves its own public key).
	ALBKey string `json:"alb_key,omitempty"`

	// Where the public key of x-amzn-oidc-data is served as PEM:
	// GET <alb_key_path>/<kid>, as the ALB's
	// https://public-keys.auth.elb.<region>.amazonaws.com/<kid>. Default
	// /oauth2/alb-public-keys.
	ALBKeyPath string `json:"alb_key_path,omitempty"`

	// The "signer" header field of x-amzn-oidc-data (an ALB puts its ARN
	// there; backends should check it). Default caddy-cognito.
	ALBSigner string `json:"alb_signer,omitempty"`
}

// SetDefaults fills in the defaults that do not depend on secrets.
// audience is the authorizer's audience (the client id default).
func (l *Login) SetDefaults(audience []string) {
	if l.ClientID == "" && len(audience) > 0 {
		l.ClientID = audience[0]
	}
	if l.ClientAuth == "" {
		switch {
		case l.ClientSecret != "":
			l.ClientAuth = ClientAuthBasic
		case l.PrivateKey != "":
			l.ClientAuth = ClientAuthPrivateKeyJWT
		default:
			l.ClientAuth = ClientAuthNone
		}
	}
	if len(l.Scopes) == 0 {
		l.Scopes = []string{"openid"}
	}
	if l.Callback == "" {
		l.Callback = DefaultCallback
	}
	if l.CookieName == "" {
		l.CookieName = DefaultSessionCookie
	}
	if l.SessionTimeout == 0 {
		l.SessionTimeout = Duration(DefaultSessionTimeout)
	}
	if l.OnUnauthenticated == "" {
		l.OnUnauthenticated = OnUnauthAuthenticate
	}
	if l.ALBHeaders {
		if l.ALBKeyPath == "" {
			l.ALBKeyPath = DefaultALBKeyPath
		}
		if l.ALBSigner == "" {
			l.ALBSigner = DefaultALBSigner
		}
	}
}

// HasPlaceholder reports whether s holds a {…} placeholder, whose value is
// only known at provision time.
func HasPlaceholder(s string) bool {
	i := strings.IndexByte(s, '{')
	return i >= 0 && strings.IndexByte(s[i:], '}') > 0
}

// Validate reports the first problem with the login configuration, naming
// the option and (for anything but a secret) the value. Secrets given as
// placeholders are checked after replacement, by ParseCookieKeys.
func (l *Login) Validate() error {
	if l.Domain != "" {
		u, err := url.Parse(l.Domain)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("login domain %q: must be an http(s) URL with a host and no path, e.g. https://auth.example.com", l.Domain)
		}
	}
	if l.ClientID == "" {
		return errors.New("login client_id: required (or an audience to default to)")
	}
	switch l.ClientAuth {
	case ClientAuthBasic, ClientAuthPost:
		if l.ClientSecret == "" {
			return fmt.Errorf("login client_auth %s: needs client_secret", l.ClientAuth)
		}
	case ClientAuthNone:
		if l.ClientSecret != "" {
			return errors.New("login client_auth none: client_secret is set; use client_secret_basic or client_secret_post, or remove the secret")
		}
	case ClientAuthPrivateKeyJWT:
		if l.PrivateKey == "" {
			return errors.New("login client_auth private_key_jwt: needs private_key (a file with the RSA private key)")
		}
	default:
		return fmt.Errorf("login client_auth %q: must be client_secret_basic, client_secret_post, none or private_key_jwt", l.ClientAuth)
	}
	if l.PrivateKey != "" && l.ClientAuth != ClientAuthPrivateKeyJWT {
		return fmt.Errorf("login private_key: only used with client_auth private_key_jwt, not %s", l.ClientAuth)
	}
	if l.ClientAssertionAudience != "" {
		if u, err := url.Parse(l.ClientAssertionAudience); err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("login client_assertion_audience %q: must be an absolute URL", l.ClientAssertionAudience)
		}
	}
	if !slices.Contains(l.Scopes, "openid") {
		return fmt.Errorf("login scopes %q: must include openid (the sign-in is verified with the ID token)", strings.Join(l.Scopes, " "))
	}
	for _, s := range l.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return fmt.Errorf("login scopes: invalid scope %q", s)
		}
	}
	if len(l.AuthParams) > maxAuthExtraParameters {
		return fmt.Errorf("login auth_params: at most %d parameters", maxAuthExtraParameters)
	}
	for k := range l.AuthParams {
		switch k {
		case "response_type", "client_id", "redirect_uri", "state", "nonce", "scope",
			"code_challenge", "code_challenge_method":
			return fmt.Errorf("login auth_params %q: set by the sign-in itself", k)
		}
		if k == "" {
			return errors.New("login auth_params: empty parameter name")
		}
	}
	if err := checkLocalPath("callback", l.Callback); err != nil {
		return err
	}
	if l.Logout != "" {
		if err := checkLocalPath("logout", l.Logout); err != nil {
			return err
		}
		if l.Logout == l.Callback {
			return fmt.Errorf("login logout %q: same path as callback", l.Logout)
		}
	}
	if l.LogoutRedirect != "" {
		u, err := url.Parse(l.LogoutRedirect)
		if err != nil || !(u.Scheme == "https" || u.Scheme == "http") && !(u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/")) ||
			(u.Scheme != "" && u.Host == "") {
			return fmt.Errorf("login logout_redirect %q: must be an absolute http(s) URL or a path", l.LogoutRedirect)
		}
	}
	if !validCookieName(l.CookieName) {
		return fmt.Errorf("login cookie_name %q: letters, digits, '-' and '_' only, at most %d bytes", l.CookieName, maxCookieNameBytes)
	}
	if l.CookieSecret == "" {
		return errors.New("login cookie_secret: required (space-separated base64 32-byte keys, e.g. {env.SESSION_KEYS})")
	}
	if !HasPlaceholder(l.CookieSecret) {
		if _, err := ParseCookieKeys(l.CookieSecret); err != nil {
			return err
		}
	}
	if l.SessionTimeout < Duration(time.Second) {
		return fmt.Errorf("login session_timeout %s: must be at least 1s", time.Duration(l.SessionTimeout))
	}
	switch l.OnUnauthenticated {
	case OnUnauthAuthenticate, OnUnauthDeny, OnUnauthAllow:
	default:
		return fmt.Errorf("login on_unauthenticated %q: must be authenticate, deny or allow", l.OnUnauthenticated)
	}
	if l.ALBHeaders {
		if err := checkLocalPath("alb_key_path", l.ALBKeyPath); err != nil {
			return err
		}
		if l.ALBKeyPath == l.Callback || l.ALBKeyPath == l.Logout {
			return fmt.Errorf("login alb_key_path %q: same path as callback or logout", l.ALBKeyPath)
		}
		for i := 0; i < len(l.ALBSigner); i++ {
			if c := l.ALBSigner[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
				return fmt.Errorf("login alb_signer %q: printable ASCII only, no quotes", l.ALBSigner)
			}
		}
	} else if l.ALBKey != "" || l.ALBKeyPath != "" || l.ALBSigner != "" {
		return errors.New("login alb_key, alb_key_path and alb_signer need alb_headers")
	}
	return nil
}

// CheckLoginOption checks one option of l on its own (for the Caddyfile,
// which reports it with its line); Validate checks them all together.
func CheckLoginOption(l *Login, opt string) error {
	switch opt {
	case "callback":
		return checkLocalPath(opt, l.Callback)
	case "logout":
		return checkLocalPath(opt, l.Logout)
	case "alb_key_path":
		return checkLocalPath(opt, l.ALBKeyPath)
	case "domain", "logout_redirect", "cookie_name", "on_unauthenticated", "scopes", "client_assertion_audience", "alb_signer", "auth_param":
		probe := Login{
			Domain: l.Domain, LogoutRedirect: l.LogoutRedirect, CookieName: l.CookieName,
			OnUnauthenticated: l.OnUnauthenticated, Scopes: l.Scopes, ClientAssertionAudience: l.ClientAssertionAudience,
			AuthParams: l.AuthParams, ALBSigner: l.ALBSigner, ALBHeaders: l.ALBSigner != "",
			ClientID: "probe", CookieSecret: "{probe}",
		}
		probe.SetDefaults(nil)
		return probe.Validate()
	}
	return nil
}

// checkLocalPath: an absolute path of this site, nothing that a browser or
// a proxy could read as another host or as a query.
func checkLocalPath(opt, p string) error {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "?#\\ ") {
		return fmt.Errorf("login %s %q: must be an absolute path such as /oauth2/idpresponse, without query", opt, p)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x21 || c >= 0x7f {
			return fmt.Errorf("login %s %q: must be printable ASCII", opt, p)
		}
	}
	return nil
}

func validCookieName(s string) bool {
	if s == "" || len(s) > maxCookieNameBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ParseCookieKeys decodes cookie_secret: space-separated base64 (standard
// or URL alphabet, padded or not) encodings of 32-byte keys. The error
// names the key by position only: it must not echo a secret.
func ParseCookieKeys(s string) ([][]byte, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, errors.New("login cookie_secret: empty (space-separated base64 32-byte keys)")
	}
	keys := make([][]byte, 0, len(fields))
	for i, f := range fields {
		var k []byte
		var err error
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if k, err = enc.DecodeString(f); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("login cookie_secret: key %d is not base64", i+1)
		}
		if len(k) != CookieKeyBytes {
			return nil, fmt.Errorf("login cookie_secret: key %d is %d bytes, must be %d (head -c32 /dev/urandom | base64)", i+1, len(k), CookieKeyBytes)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
