package caddymodule

import (
	"errors"
	"net/http"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/config"
)

// Forward-auth mode (the handler's forward_auth option): the handler is the
// "auth service" of another proxy — nginx auth_request, Traefik ForwardAuth,
// Envoy/Istio ext_authz (HTTP service) or Caddy's own forward_auth — and
// answers the proxy instead of passing the request on. Denials are the
// proxy mode's answers (401/403/503 with WWW-Authenticate and the JSON
// body), which every one of those proxies hands back to the client.

// forwardAuthAllow answers an authorized forward-auth request: 200 (Envoy
// lets only exactly 200 through), an empty body, and the identity as
// response headers for the proxy to copy onto the upstream request.
//
// Every identity header of the handler is in the answer, empty when the
// token lacks the claim (or it cannot be a header value): Envoy's
// allowed_upstream_headers and Traefik's authResponseHeaders only replace a
// client's copy of a header with one the answer has, so an absent header
// would let a client's forged value through. nginx (proxy_set_header with an
// empty variable) and Caddy (copy_headers) drop empty values instead.
// claims is nil for a CORS preflight let through by allow_preflight: all
// headers empty.
//
// Any other identity header already on the answer (config.IdentityHeaders
// decides, e.g. one set by a `header` directive) is removed first: the
// proxy copies identity only from this handler's verified values.
func (h *Handler) forwardAuthAllow(w http.ResponseWriter, claims *authz.Claims) error {
	hdr := w.Header()
	for name := range hdr {
		if h.ids.Is(name) {
			delete(hdr, name)
		}
	}
	vals := make([]string, len(h.rules))
	for i, rule := range h.rules {
		if claims != nil {
			for _, name := range rule.Claims {
				if v, ok := claims.Get(name); ok {
					if config.ForwardableValue(v) {
						vals[i] = v
					}
					break
				}
			}
		}
		// rule.Header is canonical (HeaderRules canonicalizes it).
		hdr[rule.Header] = vals[i : i+1 : i+1]
	}
	// The answer is about one request and one token: never cached.
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// validateForwardAuth refuses options that cannot work in forward-auth
// mode, instead of silently ignoring them.
func (h *Handler) validateForwardAuth() error {
	if h.ForwardAuth && h.Login != nil {
		// The sign-in redirects, sets cookies and serves its callback:
		// an auth service's answers are copied by the proxy only in part
		// (nginx turns a 3xx into 500), so the two do not combine.
		return &config.FieldError{Trust: -1, Field: "login", Index: -1,
			Err: errors.New("login cannot be combined with forward_auth: put cognito_auth with login in front of the site instead")}
	}
	if h.ForwardAuth && h.StripAuthorization {
		return &config.FieldError{Trust: -1, Field: "strip_authorization", Index: -1,
			Err: errors.New("strip_authorization has no effect with forward_auth: the request is not passed on " +
				"(the proxy decides what the upstream gets; e.g. nginx proxy_set_header Authorization \"\")")}
	}
	return nil
}
