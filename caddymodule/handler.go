// Package caddymodule is the Caddy glue of caddy-cognito: the
// http.handlers.cognito_auth handler and its Caddyfile directive, the key
// source guest modules (http.handlers.cognito_auth.jwks.*), placeholders,
// metrics, and the keyrings shared across routes and config reloads. The
// decisions themselves are made by package authz.
package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/authz/policy"
	"github.com/caddy-cognito/caddy-cognito/config"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler authorizes requests bearing Amazon Cognito tokens (or any RS256
// JWTs) with the checks and answers of the Amazon API Gateway HTTP API JWT
// authorizer, and forwards the verified claims to the next handlers as
// request headers.
//
// Answers: no token → 401 with `WWW-Authenticate: Bearer` and
// `{"message":"Unauthorized"}`; an invalid token → 401 with
// `WWW-Authenticate: Bearer error="invalid_token", error_description="…"`;
// a valid token without a required scope or group, or one that does not
// satisfy the route's `require` expressions → 403 with
// `error="insufficient_scope"` and `{"message":"Forbidden"}`; no keys loaded
// yet → 503 with Retry-After. When the server has `handle_errors` routes,
// the handler returns the error to them instead of writing the body, with
// the WWW-Authenticate header already set and these placeholders:
//
// Placeholder | Description
// ------------|-------------
// `{http.auth.cognito.error}` | missing, invalid_token, insufficient_scope or unavailable
// `{http.auth.cognito.error_description}` | the public description
// `{http.auth.cognito.reason}` | a stable reason, e.g. expired, audience, scope, policy
//
// On success it sets:
//
// Placeholder | Description
// ------------|-------------
// `{http.auth.user.id}` | the "sub" claim, as Caddy's own authentication sets it
// `{http.auth.user.username}` | "username" or "cognito:username"
// `{http.auth.user.client_id}` | "client_id", else "aud"
// `{http.auth.user.token_use}` | "token_use"
// `{http.auth.user.issuer}` | "iss", the verified issuer (which trust accepted the token)
// `{http.auth.user.claims.*}` | any claim, e.g. `{http.auth.user.claims.email}`, rendered like the headers
//
// Inbound headers that could pose as identity — every X-Cognito-* and every
// configured claim header, in any case and with '_' or '.' for '-' — are
// removed from every request before anything else happens, token or not,
// and so are Connection tokens and request trailers naming them. Every
// `{http.auth.user.claims.*}` key resolves, to empty when the claim is
// absent or its value is not forwardable. Denials go to `handle_errors`
// only if those routes cannot proxy the request (no reverse_proxy,
// php_fastcgi, forward_auth); otherwise the handler answers them itself.
//
// Tokens may come from several pools and issuers (trusts); the token's
// "iss" selects the trust before the signature is checked, and only that
// trust's keys verify it.
type Handler struct {
	// The authorization rule: the trusts (or the one-trust shorthand) and
	// the route rules. Its fields are inlined in the handler's JSON.
	Config

	// Shorthand for one trust: where the verification keys come from, a
	// module in the http.handlers.cognito_auth.jwks namespace. Default:
	// the url source with <iss>/.well-known/jwks.json of the issuer the
	// token names. With trusts, set jwks inside each trust instead.
	JWKSRaw json.RawMessage `json:"jwks,omitempty" caddy:"namespace=http.handlers.cognito_auth.jwks inline_key=source"`

	// How long provisioning waits for the first key set. If it does not
	// arrive in time, Caddy starts anyway, answers 503 and keeps trying in
	// the background. Default 5s.
	StartupWait caddy.Duration `json:"startup_wait,omitempty"`

	// Verified tokens cached per key source (the handler uses the cache of
	// its first trust's primary key source). Default 100000 (about 26 MiB
	// with typical Cognito access tokens; 61 MiB at most). Handlers sharing
	// that cache give it the largest size among them; a reload that changes
	// it resizes the running cache.
	CacheSize int `json:"cache_size,omitempty"`

	// Answer instead of passing the request on: the handler becomes the
	// auth service of another proxy (nginx auth_request, Traefik
	// ForwardAuth, Envoy ext_authz, Caddy forward_auth). An authorized
	// request gets 200 with an empty body and the identity as response
	// headers — every X-Cognito-* header and configured claim header, empty
	// when the token lacks the claim — for the proxy to copy onto the
	// upstream request; a denied one gets the usual 401/403/503 answer.
	// Select per-route rules by the original request with the
	// cognito_original_request handler. Listen where only the proxy can
	// reach this server.
	ForwardAuth bool `json:"forward_auth,omitempty"`

	// Browser sign-in (see config.Login): requests without a bearer token
	// are authorized with a session cookie, and browsers without one are
	// sent to the identity provider.
	Login *config.Login `json:"login,omitempty"`

	// rule is Config with the defaults applied.
	rule    config.Authorizer
	authz   *authz.Authorizer
	policy  *policy.Policy
	allowed map[string]prometheus.Counter // decisions_total{result="allow"} by trust label
	keys    *handlerKeys
	rules   []config.HeaderRule
	ids     *config.IdentityHeaders // what an identity header is, for this handler
	metrics *metrics
	login   *loginGlue
	logger  *zap.Logger
	// denyBudget is the process-wide budget of denial log lines.
	denyBudget *denyBudget

	errRoutes *sync.Map // *caddyhttp.Server → bool: may denials go to its error routes (errorroutes.go)

	// issuerJWKSURL, when set (tests), replaces <iss>/.well-known/jwks.json
	// as the default key set URL of an issuer, so the per-form keyrings of
	// a Cognito pool can be exercised against local servers.
	issuerJWKSURL func(iss string) string
}

// Config is the handler's authorization rule: config.Authorizer, whose
// fields it inlines in the handler's JSON, without its methods, so that
// none of them (Validate, SetDefaults …) is promoted to Handler by
// accident.
type Config config.Authorizer

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.cognito_auth", New: func() caddy.Module { return new(Handler) }}
}

// Provision sets up the handler: it applies the defaults, checks the
// configuration (Caddy calls Validate only after Provision, and Provision
// must not start fetching keys for a configuration that is wrong), loads
// the key sources, acquires every keyring the trusts need — shared per
// source across routes and reloads — without blocking, then waits once,
// for all of them together, for the first key sets.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := h.Validate(); err != nil {
		return err
	}
	h.rule = config.Authorizer(h.Config)
	h.rule.SetDefaults()
	if h.StartupWait == 0 {
		h.StartupWait = caddy.Duration(5 * time.Second)
	}
	for _, t := range h.rule.TrustList() {
		for _, iss := range t.Issuers() {
			if strings.HasPrefix(iss.Issuer, "http://") && !jwks.IsLoopbackURL(iss.Issuer) {
				h.logger.Warn("issuer uses plain http", zap.String("issuer", iss.Issuer))
			}
		}
	}

	// Denials can come in floods: one budget for the whole process keeps
	// an attack from drowning the log (see denylog.go).
	var err error
	if h.denyBudget, err = acquireDenyBudget(); err != nil {
		return fmt.Errorf("cognito_auth: denial log: %w", err)
	}
	if h.keys, err = h.acquireTrustKeys(ctx); err != nil {
		return fmt.Errorf("cognito_auth: %w", err)
	}
	// The keyrings are started; the config's start waits for them once,
	// together with every other handler's (startupApp).
	if err := awaitKeysAtStart(ctx, h.keys.startup, time.Duration(h.StartupWait), h.keys.cache, h.CacheSize); err != nil {
		return fmt.Errorf("cognito_auth: %w", err)
	}

	h.authz, err = authz.New(h.rule, nil, authz.WithCache(h.keys.cache), authz.WithKeysFor(h.keys.keysFor))
	if err != nil {
		return fmt.Errorf("cognito_auth: %w", err)
	}
	if err := h.provisionPolicy(); err != nil {
		return err
	}
	h.rules = h.rule.HeaderRules()
	h.ids = identityHeaders(h.rules)
	h.errRoutes = new(sync.Map)
	if h.metrics, err = newMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("cognito_auth: metrics: %w", err)
	}
	for _, u := range h.keys.uses {
		h.metrics.keyrings.add(u.shared.ring, u.lazy)
	}
	if len(h.keys.uses) > 0 {
		h.metrics.keyrings.addCache(h.keys.cache, h.keys.uses[0].shared.ring.Source().String())
	}
	h.allowed = map[string]prometheus.Counter{}
	for _, t := range h.rule.TrustList() {
		label := t.PrimaryIssuer()
		h.allowed[label] = h.metrics.decisions.WithLabelValues(label, "allow", "")
	}
	if err := h.provisionLogin(ctx); err != nil {
		return fmt.Errorf("cognito_auth: %w", err)
	}
	return nil
}

// Validate checks the configuration, with the defaults applied, and
// reports the first problem naming the setting and its value. The
// Caddyfile adapter calls it too, so `caddy adapt` reports the same words
// with the line.
func (h *Handler) Validate() error {
	rule := config.Authorizer(h.Config)
	rule.SetDefaults()
	if err := rule.Validate(); err != nil {
		return fmt.Errorf("cognito_auth: %w", err)
	}
	if h.JWKSRaw != nil && len(h.Trusts) > 0 {
		return fmt.Errorf("cognito_auth: %w", &config.FieldError{Trust: -1, Field: "jwks", Index: -1,
			Err: fmt.Errorf("jwks: a top-level jwks belongs to the one-trust shorthand; with pool or issuer blocks (trusts), set jwks inside each block")})
	}
	if h.StartupWait < 0 {
		return fmt.Errorf("cognito_auth: %w", &config.FieldError{Trust: -1, Field: "startup_wait", Index: -1,
			Err: fmt.Errorf("startup_wait %s: must not be negative", time.Duration(h.StartupWait))})
	}
	if h.CacheSize < 0 {
		return fmt.Errorf("cognito_auth: %w", &config.FieldError{Trust: -1, Field: "cache_size", Index: -1,
			Err: fmt.Errorf("cache_size %d: must not be negative", h.CacheSize)})
	}
	if err := validateRequire(rule); err != nil {
		return fmt.Errorf("cognito_auth: %w", err)
	}
	if err := h.validateForwardAuth(); err != nil {
		return fmt.Errorf("cognito_auth: %w", err)
	}
	return nil
}

// Cleanup releases the shared keyrings and the denial log budget.
func (h *Handler) Cleanup() error {
	if h.denyBudget != nil {
		_, _ = denyBudgets.Delete(denyBudgetKey)
		h.denyBudget = nil
	}
	if h.keys == nil {
		return nil
	}
	return h.keys.release()
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
//
// The allow path is kept free of avoidable allocations: header names are
// compared without building lower-case copies, claim headers are set
// straight into the header map under their canonical names (HeaderRules
// canonicalizes them), all their values share one allocation, and the
// client id and token_use placeholders get interface values made once per
// cached set of claims.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.stripIdentity(r)
	if h.AllowPreflight && isPreflight(r) {
		if h.ForwardAuth {
			return h.forwardAuthAllow(w, nil)
		}
		return next.ServeHTTP(w, r)
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if h.login != nil {
		if done, err := h.serveLogin(w, r, repl, next); done {
			return err
		}
	}
	tok, xerr := authz.ExtractToken(r, *h.rule.TokenSource)
	var claims *authz.Claims
	var err error
	if xerr != nil {
		err = xerr
	} else if claims, err = h.authz.Authorize(r.Context(), tok); err == nil {
		err = h.checkPolicy(r, claims)
	}
	if err != nil {
		return h.deny(w, r, repl, claims, authz.AsError(err))
	}
	return h.allow(w, r, repl, claims, next, true)
}

// allow sets the identity headers and placeholders of verified claims and
// calls the next handler. stripCred removes the bearer credential
// (strip_authorization); a session has none to remove.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, claims *authz.Claims, next caddyhttp.Handler, stripCred bool) error {
	if c := h.allowed[h.authz.TrustLabel(claims.Issuer)]; c != nil {
		c.Inc()
	} else {
		h.metrics.decisions.WithLabelValues(h.authz.TrustLabel(claims.Issuer), "allow", "").Inc()
	}
	if h.ForwardAuth {
		if repl != nil {
			setIdentityPlaceholders(repl, claims)
		}
		return h.forwardAuthAllow(w, claims)
	}

	vals := make([]string, len(h.rules))
	n := 0
	for _, rule := range h.rules {
		for _, name := range rule.Claims {
			if v, ok := claims.Get(name); ok {
				if config.ForwardableValue(v) {
					// = r.Header.Set(rule.Header, v): rule.Header is canonical.
					vals[n] = v
					r.Header[rule.Header] = vals[n : n+1 : n+1]
					n++
				}
				break
			}
		}
	}
	if stripCred && h.StripAuthorization {
		authz.StripToken(r, *h.rule.TokenSource)
	}
	if repl != nil {
		setIdentityPlaceholders(repl, claims)
	}
	return next.ServeHTTP(w, r)
}

// Placeholder prefix under which every claim is available.
const claimPlaceholderPrefix = "http.auth.user.claims."

// setIdentityPlaceholders sets the identity placeholders. A value that is
// not forwardable (control characters, edge whitespace) becomes empty, as
// an absent claim's header is: a placeholder can end up in a header too
// (header_up). Every key under the claims prefix resolves — to empty for
// an absent claim — so that `header_up X-Email {http.auth.user.claims.email}`
// never forwards its own text.
func setIdentityPlaceholders(repl *caddy.Replacer, c *authz.Claims) {
	id, username, clientID, tokenUse := c.PlaceholderValues()
	repl.Set("http.auth.user.id", safePlaceholder(id))
	repl.Set("http.auth.user.username", safePlaceholder(username))
	repl.Set("http.auth.user.client_id", safePlaceholder(clientID))
	repl.Set("http.auth.user.token_use", safePlaceholder(tokenUse))
	repl.Set("http.auth.user.issuer", safePlaceholder(c.IssuerValue()))
	repl.Map(func(key string) (any, bool) {
		name, ok := strings.CutPrefix(key, claimPlaceholderPrefix)
		if !ok {
			return nil, false
		}
		if v, ok := c.Get(name); ok && config.ForwardableValue(v) {
			return v, true
		}
		return "", true
	})
}

// noClaimPlaceholders resolves every claim placeholder to empty on a
// denial, so that error routes never see their text either.
func noClaimPlaceholders(key string) (any, bool) {
	if strings.HasPrefix(key, claimPlaceholderPrefix) {
		return "", true
	}
	return nil, false
}

// safePlaceholder is v, or "" if v is a string that is not forwardable.
func safePlaceholder(v any) any {
	if s, ok := v.(string); ok && !config.ForwardableValue(s) {
		return ""
	}
	return v
}

func (h *Handler) deny(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, c *authz.Claims, e *authz.Error) error {
	h.metrics.decisions.WithLabelValues(h.denyLabel(c), "deny", e.Reason).Inc()
	h.logDenial(r, c, e)

	var scopes []string
	if e.Reason == "scope" {
		scopes = h.authz.Scopes()
	}
	w.Header().Set("WWW-Authenticate", e.Challenge(scopes))
	if e.Kind == authz.KindUnavailable {
		w.Header().Set("Retry-After", h.keys.retryAfter())
	}
	if repl != nil {
		repl.Set("http.auth.cognito.error", e.Kind.String())
		repl.Set("http.auth.cognito.error_description", e.Description)
		repl.Set("http.auth.cognito.reason", e.Reason)
		repl.Map(noClaimPlaceholders)
	}
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && h.errorRoutesSafe(srv) {
		return caddyhttp.Error(e.Kind.Status(), e)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Kind.Status())
	_, _ = w.Write([]byte(e.Body()))
	return nil
}

// denyLabel is the issuer label of a denial: the trust that accepted the
// token's verified issuer; else, with one trust, that trust (a missing or
// foreign token of a one-pool route is counted under its pool, as before
// trusts); else empty. Never the token's own claim: its cardinality is the
// attacker's.
func (h *Handler) denyLabel(c *authz.Claims) string {
	if c != nil {
		if l := h.authz.TrustLabel(c.Issuer); l != "" {
			return l
		}
	}
	if len(h.allowed) == 1 {
		return h.authz.Issuer()
	}
	return ""
}

func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
