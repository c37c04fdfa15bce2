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

// Bounds of the configuration, each the one home of its rule: Validate
// enforces them, and the engine (the verified-token cache's expiry margin)
// relies on them.
const (
	// MaxTokenBytesLimit is the largest max_token_bytes that may be set.
	MaxTokenBytesLimit = 1 << 20

	// MaxLeeway bounds the clock skew: RFC 7519 speaks of "a few minutes",
	// and a larger value quietly extends every token's life.
	MaxLeeway = 5 * time.Minute
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

// RSAAlgorithms returns the JWS algorithms that may be allowed, the one
// list every part of the module uses (configuration, token header, key
// hygiene): API Gateway's JWT authorizer supports "only RSA-based
// algorithms"; HMAC, EC and "none" can never be configured, so the
// algorithm-confusion attacks have nothing to work with. It is an array, a
// value: callers cannot change the list.
func RSAAlgorithms() [6]string {
	return [6]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
}

// IsRSAAlgorithm reports whether alg is one of the RSA JWS algorithms.
func IsRSAAlgorithm(alg string) bool {
	algs := RSAAlgorithms()
	return slices.Contains(algs[:], alg)
}

// Authorizer is the configuration of one authorization rule: whom tokens
// may come from (the trusts), and what the route requires of them.
//
// A rule trusts either one issuer, written with the shorthand fields
// user_pool or issuer plus audience and token_use, or a list of trusts
// (several pools, issuers or both). The two forms cannot be mixed.
type Authorizer struct {
	// Shorthand for one trust: a Cognito user pool id, e.g.
	// "us-west-2_NMATFlcVJ". Same as one entry of trusts with "pool" set
	// (both issuer formats are accepted; keys come from the token's own
	// issuer). Exactly one of user_pool and issuer, or trusts, must be set.
	UserPool string `json:"user_pool,omitempty"`

	// Shorthand for one trust: an issuer URL, compared exactly (including
	// any trailing slash) with the token's "iss" claim. Use it for issuers
	// other than a Cognito user pool in the standard partition, e.g. a
	// local Cognito emulator.
	Issuer string `json:"issuer,omitempty"`

	// Shorthand for one trust: the app client ids the token may be for.
	// Like API Gateway, the "aud" claim is checked when the token has one,
	// otherwise "client_id". Required with user_pool or issuer.
	Audience []string `json:"audience,omitempty"`

	// Shorthand for one trust: require this "token_use" claim: "access" or
	// "id". Empty accepts both, like API Gateway; set it (or scopes) so ID
	// tokens cannot be used as API credentials.
	TokenUse string `json:"token_use,omitempty"`

	// The pools and issuers whose tokens are accepted, each with its own
	// audience, token_use and keys. The token's "iss" selects the trust
	// before its signature is checked, and only that trust's keys may
	// verify it; a token whose "iss" no trust accepts is refused without
	// any key fetch. Use instead of the shorthand fields.
	Trusts []Trust `json:"trusts,omitempty"`

	// The token must hold at least one of these OAuth scopes in its "scope"
	// (space-separated string) or "scp" claim, else 403. Applies whichever
	// trust verified the token.
	Scopes []string `json:"scopes,omitempty"`

	// The token must hold at least one of these groups in its
	// "cognito:groups" claim, else 403. Applies whichever trust verified
	// the token.
	Groups []string `json:"groups,omitempty"`

	// Route policy: CEL expressions that must all be true, checked after
	// scopes and groups; otherwise 403 with the reason "policy". Each is
	// compiled and type-checked when the config loads. Variables: claims
	// (the verified payload as JSON values), scopes, groups, token_use,
	// issuer, now (a timestamp) and request.method, .host, .path,
	// .path_segments, .query, .headers, .remote_ip. See the README,
	// "Policies".
	Require []string `json:"require,omitempty"`

	// Tolerated clock skew for "exp", "nbf" and "iat". Default 0, like API
	// Gateway. At most 5 minutes.
	Leeway Duration `json:"leeway,omitempty"`

	// The JWS algorithms accepted. Default ["RS256"]. Only RSA algorithms
	// (RS256, RS384, RS512, PS256, PS384, PS512) can be configured.
	Algorithms []string `json:"algorithms,omitempty"`

	// Largest accepted token, in bytes. Default 16384, at most 1048576.
	MaxTokenBytes int `json:"max_token_bytes,omitempty"`

	// Where the token is read from. Default: the Authorization header, with
	// or without the "Bearer " prefix.
	TokenSource *TokenSource `json:"token_source,omitempty"`

	// Claims forwarded to the backend as request headers, in addition to the
	// defaults (X-Cognito-Sub, -Username, -Client-Id, -Token-Use, -Scope,
	// -Groups, -Issuer).
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
	{"X-Cognito-Issuer", []string{"iss"}},
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

// Validate reports the first problem with the configuration, as a
// *FieldError naming the setting and the value. Call it after SetDefaults.
func (a *Authorizer) Validate() error {
	if err := a.validateTrusts(); err != nil {
		return err
	}
	for i, s := range a.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return fieldErr(-1, "scopes", i, "scopes: invalid scope %q", s)
		}
	}
	for i, g := range a.Groups {
		if g == "" {
			return fieldErr(-1, "groups", i, "groups: empty group name")
		}
	}
	if a.Leeway < 0 || time.Duration(a.Leeway) > MaxLeeway {
		return fieldErr(-1, "leeway", -1, "leeway %s: must not be negative, and at most %s", time.Duration(a.Leeway), MaxLeeway)
	}
	for i, alg := range a.Algorithms {
		if !IsRSAAlgorithm(alg) {
			algs := RSAAlgorithms()
			return fieldErr(-1, "algorithms", i, "algorithms: %q is not allowed; only RSA algorithms (%s) are", alg, strings.Join(algs[:], ", "))
		}
	}
	if a.MaxTokenBytes < 0 || a.MaxTokenBytes > MaxTokenBytesLimit {
		return fieldErr(-1, "max_token_bytes", -1, "max_token_bytes %d: must be between 1 and %d", a.MaxTokenBytes, MaxTokenBytesLimit)
	}
	if ts := a.TokenSource; ts != nil {
		switch ts.From {
		case SourceHeader:
			if !IsToken(ts.Name) {
				return fieldErr(-1, "token_source", -1, "token_source header %q: not a valid header name", ts.Name)
			}
		case SourceCookie, SourceQuery:
			if ts.Name == "" {
				return fieldErr(-1, "token_source", -1, "token_source %s: name is required", ts.From)
			}
		default:
			return fieldErr(-1, "token_source", -1, "token_source %q: must be header, cookie or query", ts.From)
		}
	}
	seen := map[string]bool{}
	for _, r := range DefaultHeaders() {
		seen[NormalizeHeaderName(r.Header)] = true
	}
	for i, h := range a.Headers {
		if h.Claim == "" {
			return fieldErr(-1, "headers", i, "header %q: claim name is required", h.Header)
		}
		if !IsToken(h.Header) {
			return fieldErr(-1, "headers", i, "header %s %q: not a valid header name", h.Claim, h.Header)
		}
		n := NormalizeHeaderName(h.Header)
		if reservedHeaders[n] {
			return fieldErr(-1, "headers", i, "header %s %q: this header cannot carry a claim", h.Claim, h.Header)
		}
		if seen[n] {
			return fieldErr(-1, "headers", i, "header %s %q: header already set by another claim", h.Claim, h.Header)
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

// IsToken reports whether s is an RFC 9110 token (§5.6.2): what a header
// name, a method and a cookie name must be. One definition, so the header
// names we accept, the methods we take from a proxy and the cookie names we
// extract and strip agree.
func IsToken(s string) bool {
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

// regionPattern is an AWS region name, e.g. us-west-2, us-gov-west-1.
var regionPattern = regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$`)

// PoolRegion returns the AWS region of a Cognito user pool id.
func PoolRegion(poolID string) (string, error) {
	region, ok := poolRegion(poolID)
	if !ok {
		return "", fmt.Errorf("user_pool %q: %s", poolID, poolIDHint)
	}
	return region, nil
}

const poolIDHint = "not a Cognito user pool id (expected <region>_<id>, e.g. us-west-2_NMATFlcVJ)"

func poolRegion(poolID string) (string, bool) {
	m := poolIDPattern.FindStringSubmatch(poolID)
	if m == nil || len(poolID) > 55 {
		return "", false
	}
	return m[1], true
}

// PoolIssuer returns the ORIGINAL-format issuer of a Cognito user pool:
// https://cognito-idp.<region>.amazonaws.com/<pool-id> (".amazonaws.com.cn"
// in the China regions).
func PoolIssuer(poolID string) (string, error) {
	region, err := PoolRegion(poolID)
	if err != nil {
		return "", err
	}
	return poolIssuer(IssuerFormatOriginal, region, poolID), nil
}

// IssuerURL returns the issuer of the first trust (for a user pool, its
// ORIGINAL-format issuer in the pool's region). Call it on a validated
// configuration.
func (a *Authorizer) IssuerURL() string {
	ts := a.TrustList()
	if len(ts) == 0 {
		return ""
	}
	return ts[0].PrimaryIssuer()
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
