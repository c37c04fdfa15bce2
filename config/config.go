// Package config is the configuration model of caddy-cognito: plain structs
// with JSON tags whose doc comments are the user documentation, their
// defaults, their validation, and the derivation of a Cognito user pool's
// issuer from its id.
//
// It imports only the standard library, so the engine (package authz) and the
// Caddy glue (package caddymodule) share one model and one set of rules, and a
// JSON config is checked the same way as a Caddyfile.
package config

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Defaults applied by Authorizer.SetDefaults.
const (
	// DefaultMaxTokenBytes caps the size of a bearer token. Cognito tokens are
	// 1-4 KiB; anything far larger is an attack or a mistake.
	DefaultMaxTokenBytes = 16 << 10

	// DefaultAlgorithm is the only algorithm Cognito signs with.
	DefaultAlgorithm = "RS256"
)

// Token uses of Cognito tokens (the "token_use" claim).
const (
	TokenUseAccess = "access"
	TokenUseID     = "id"
)

// Token sources.
const (
	SourceHeader = "header"
	SourceCookie = "cookie"
	SourceQuery  = "query"
)

// RSAAlgorithms are the JWS algorithms that may be allowed. API Gateway's JWT
// authorizer supports "only RSA-based algorithms"; HMAC, EC and "none" can
// never be configured, so the algorithm-confusion attacks have nothing to
// work with.
var rsaAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// IsRSAAlgorithm reports whether alg is one of the RSA JWS algorithms.
func IsRSAAlgorithm(alg string) bool { return slices.Contains(rsaAlgorithms, alg) }

// Authorizer is the configuration of one authorization rule: who issued the
// token, whom it is for, and what the route requires of it.
type Authorizer struct {
	// The Cognito user pool id, e.g. "us-west-2_NMATFlcVJ". The issuer is
	// derived from it: https://cognito-idp.<region>.amazonaws.com/<pool-id>.
	// Exactly one of user_pool and issuer must be set.
	UserPool string `json:"user_pool,omitempty"`

	// The issuer URL, compared exactly (including any trailing slash) with
	// the token's "iss" claim. Use it for issuers other than a Cognito user
	// pool in the standard partition, e.g. a local Cognito emulator.
	Issuer string `json:"issuer,omitempty"`

	// The app client ids the token may be for. Like API Gateway, the "aud"
	// claim is checked when the token has one, otherwise "client_id".
	// Required.
	Audience []string `json:"audience,omitempty"`

	// Require this "token_use" claim: "access" or "id". Empty accepts both,
	// like API Gateway; set it (or scopes) so ID tokens cannot be used as API
	// credentials.
	TokenUse string `json:"token_use,omitempty"`

	// The token must hold at least one of these OAuth scopes in its "scope"
	// (space-separated string) or "scp" claim, else 403.
	Scopes []string `json:"scopes,omitempty"`

	// The token must hold at least one of these groups in its
	// "cognito:groups" claim, else 403.
	Groups []string `json:"groups,omitempty"`

	// Tolerated clock skew for "exp", "nbf" and "iat". Default 0, like API
	// Gateway. At most 5 minutes.
	Leeway Duration `json:"leeway,omitempty"`

	// The JWS algorithms accepted. Default ["RS256"]. Only RSA algorithms
	// (RS256, RS384, RS512, PS256, PS384, PS512) can be configured.
	Algorithms []string `json:"algorithms,omitempty"`

	// Largest accepted token, in bytes. Default 16384.
	MaxTokenBytes int `json:"max_token_bytes,omitempty"`

	// Where the token is read from. Default: the Authorization header, with
	// or without the "Bearer " prefix.
	TokenSource *TokenSource `json:"token_source,omitempty"`

	// Claims forwarded to the backend as request headers, in addition to the
	// defaults (X-Cognito-Sub, -Username, -Client-Id, -Token-Use, -Scope,
	// -Groups).
	Headers []ClaimHeader `json:"headers,omitempty"`

	// Let CORS preflight requests (OPTIONS with Origin and
	// Access-Control-Request-Method) through without a token.
	AllowPreflight bool `json:"allow_preflight,omitempty"`

	// Remove the Authorization header from the request once the token is
	// verified, so the backend never sees the credential.
	StripAuthorization bool `json:"strip_authorization,omitempty"`
}

// TokenSource says where a request carries its token.
type TokenSource struct {
	// "header", "cookie" or "query".
	From string `json:"from"`
	// The header, cookie or query parameter name.
	Name string `json:"name"`
}

// ClaimHeader forwards one claim as one request header.
type ClaimHeader struct {
	// The claim name, e.g. "email" or "custom:tenant".
	Claim string `json:"claim"`
	// The header name, e.g. "X-User-Email".
	Header string `json:"header"`
}

// DefaultHeaders are the claim headers always set on an authorized request.
// A claim list means "the first claim present".
var defaultHeaders = []struct {
	Header string
	Claims []string
}{
	{"X-Cognito-Sub", []string{"sub"}},
	{"X-Cognito-Username", []string{"username", "cognito:username"}},
	{"X-Cognito-Client-Id", []string{"client_id", "aud"}},
	{"X-Cognito-Token-Use", []string{"token_use"}},
	{"X-Cognito-Scope", []string{"scope"}},
	{"X-Cognito-Groups", []string{"cognito:groups"}},
}

// DefaultHeaders returns the default claim headers: header name → the claims
// tried in order.
func DefaultHeaders() []HeaderRule {
	out := make([]HeaderRule, len(defaultHeaders))
	for i, d := range defaultHeaders {
		out[i] = HeaderRule{Header: d.Header, Claims: slices.Clone(d.Claims)}
	}
	return out
}

// HeaderRule sets Header from the first of Claims the token has.
type HeaderRule struct {
	Header string
	Claims []string
}

// HeaderRules returns the default rules followed by the configured ones.
func (a *Authorizer) HeaderRules() []HeaderRule {
	rules := DefaultHeaders()
	for _, h := range a.Headers {
		rules = append(rules, HeaderRule{Header: http.CanonicalHeaderKey(h.Header), Claims: []string{h.Claim}})
	}
	return rules
}

// SetDefaults fills in the defaults and derives the issuer from the user
// pool. Call Validate afterwards.
func (a *Authorizer) SetDefaults() {
	if len(a.Algorithms) == 0 {
		a.Algorithms = []string{DefaultAlgorithm}
	}
	if a.MaxTokenBytes == 0 {
		a.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if a.TokenSource == nil {
		a.TokenSource = &TokenSource{From: SourceHeader, Name: "Authorization"}
	}
}

// maxLeeway bounds the clock skew: RFC 7519 speaks of "a few minutes", and a
// larger value quietly extends every token's life.
const maxLeeway = 5 * time.Minute

// Validate reports the first problem with the configuration, naming the
// field and the value.
func (a *Authorizer) Validate() error {
	switch {
	case a.UserPool != "" && a.Issuer != "":
		return errors.New("user_pool and issuer are mutually exclusive: set one")
	case a.UserPool == "" && a.Issuer == "":
		return errors.New("one of user_pool or issuer is required")
	}
	if a.UserPool != "" {
		if _, err := PoolRegion(a.UserPool); err != nil {
			return err
		}
	} else if err := CheckIssuer(a.Issuer); err != nil {
		return err
	}
	if len(a.Audience) == 0 {
		return errors.New("audience is required: list the app client ids the tokens are issued for")
	}
	for _, aud := range a.Audience {
		if strings.TrimSpace(aud) == "" {
			return errors.New("audience: empty client id")
		}
	}
	switch a.TokenUse {
	case "", TokenUseAccess, TokenUseID:
	default:
		return fmt.Errorf("token_use %q: must be %q or %q", a.TokenUse, TokenUseAccess, TokenUseID)
	}
	for _, s := range a.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return fmt.Errorf("scopes: invalid scope %q", s)
		}
	}
	for _, g := range a.Groups {
		if g == "" {
			return errors.New("groups: empty group name")
		}
	}
	if a.Leeway < 0 || time.Duration(a.Leeway) > maxLeeway {
		return fmt.Errorf("leeway %s: must be between 0 and %s", time.Duration(a.Leeway), maxLeeway)
	}
	for _, alg := range a.Algorithms {
		if !IsRSAAlgorithm(alg) {
			return fmt.Errorf("algorithms: %q is not allowed; only RSA algorithms (%s) are", alg, strings.Join(rsaAlgorithms, ", "))
		}
	}
	if a.MaxTokenBytes < 0 || a.MaxTokenBytes > 1<<20 {
		return fmt.Errorf("max_token_bytes %d: must be between 1 and 1048576", a.MaxTokenBytes)
	}
	if ts := a.TokenSource; ts != nil {
		switch ts.From {
		case SourceHeader:
			if !validHeaderName(ts.Name) {
				return fmt.Errorf("token_source header %q: not a valid header name", ts.Name)
			}
		case SourceCookie, SourceQuery:
			if ts.Name == "" {
				return fmt.Errorf("token_source %s: name is required", ts.From)
			}
		default:
			return fmt.Errorf("token_source %q: must be header, cookie or query", ts.From)
		}
	}
	seen := map[string]bool{}
	for _, r := range DefaultHeaders() {
		seen[NormalizeHeaderName(r.Header)] = true
	}
	for _, h := range a.Headers {
		if h.Claim == "" {
			return fmt.Errorf("header %q: claim name is required", h.Header)
		}
		if !validHeaderName(h.Header) {
			return fmt.Errorf("header %s %q: not a valid header name", h.Claim, h.Header)
		}
		n := NormalizeHeaderName(h.Header)
		if reservedHeaders[n] {
			return fmt.Errorf("header %s %q: this header cannot carry a claim", h.Claim, h.Header)
		}
		if seen[n] {
			return fmt.Errorf("header %s %q: header already set by another claim", h.Claim, h.Header)
		}
		seen[n] = true
	}
	return nil
}

// reservedHeaders cannot be claim headers: hop-by-hop, framing, routing and
// the credential itself (list after API Gateway's reserved headers).
var reservedHeaders = func() map[string]bool {
	m := map[string]bool{}
	for _, h := range []string{"authorization", "connection", "content-encoding", "content-length",
		"content-location", "content-type", "cookie", "forwarded", "host", "keep-alive", "origin",
		"proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "trailers", "transfer-encoding",
		"upgrade", "via", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"} {
		m[h] = true
	}
	return m
}()

// NormalizeHeaderName folds a header name the way backends might: lower
// case, with '_' and '.' read as '-' (CGI/FastCGI and PHP turn all three into
// '_'). Two names with the same normal form must be treated as the same
// header when stripping spoofed identity headers.
func NormalizeHeaderName(name string) string {
	return headerNameFolder.Replace(strings.ToLower(name))
}

var headerNameFolder = strings.NewReplacer("_", "-", ".", "-")

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// poolIDPattern is the user pool id: "<region>_<id>". The region part is
// stricter than Cognito's API pattern ([\w-]+_[0-9a-zA-Z]+) because the
// issuer is derived from it.
var poolIDPattern = regexp.MustCompile(`^([a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})_([0-9A-Za-z]+)$`)

// PoolRegion returns the AWS region of a Cognito user pool id.
func PoolRegion(poolID string) (string, error) {
	m := poolIDPattern.FindStringSubmatch(poolID)
	if m == nil || len(poolID) > 55 {
		return "", fmt.Errorf("user_pool %q: not a Cognito user pool id (expected <region>_<id>, e.g. us-west-2_NMATFlcVJ)", poolID)
	}
	return m[1], nil
}

// PoolIssuer returns the issuer of a Cognito user pool:
// https://cognito-idp.<region>.amazonaws.com/<pool-id> (".amazonaws.com.cn"
// in the China regions).
func PoolIssuer(poolID string) (string, error) {
	region, err := PoolRegion(poolID)
	if err != nil {
		return "", err
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return "https://cognito-idp." + region + "." + domain + "/" + poolID, nil
}

// IssuerURL returns the configured issuer, derived from the user pool when
// that is what is set. Call it on a validated configuration.
func (a *Authorizer) IssuerURL() string {
	if a.Issuer != "" {
		return a.Issuer
	}
	iss, _ := PoolIssuer(a.UserPool)
	return iss
}

// CheckIssuer validates an issuer URL: absolute http(s), with a host, no
// query or fragment. http is allowed for local emulators and in-VPC
// mirrors; callers warn about it.
func CheckIssuer(iss string) error {
	u, err := url.Parse(iss)
	if err != nil {
		return fmt.Errorf("issuer %q: %w", iss, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("issuer %q: must be an absolute http(s) URL", iss)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.Contains(iss, "#") {
		return fmt.Errorf("issuer %q: must not have a query or fragment", iss)
	}
	return nil
}

// JWKSURL returns the conventional JWKS location of an issuer.
func JWKSURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/jwks.json"
}

// DiscoveryURL returns the OpenID Connect discovery document of an issuer.
func DiscoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}
