package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-cognito/caddy-cognito/config"
)

func init() {
	caddy.RegisterModule(OriginalRequest{})
	httpcaddyfile.RegisterHandlerDirective("cognito_original_request", parseOriginalRequest)
	// First of all, so every matcher and handler after it — map, rewrite,
	// handle, cognito_auth — sees the original request.
	httpcaddyfile.RegisterDirectiveOrder("cognito_original_request", httpcaddyfile.Before, "map")
}

// Where OriginalRequest reads the original request from.
const (
	// X-Forwarded-Method and X-Forwarded-Uri: Traefik ForwardAuth, Caddy's
	// forward_auth.
	OriginalFromXForwarded = "x-forwarded"
	// X-Original-Method and X-Original-URI: nginx auth_request as the
	// README configures it.
	OriginalFromXOriginal = "x-original"
	// The request line itself: Envoy/Istio ext_authz (HTTP service) sends
	// the original method and path_prefix + the original path.
	OriginalFromRequest = "request"
)

// OriginalRequest makes a forward-auth request look like the request the
// proxy is asking about, so ordinary Caddy matchers (path, method,
// path_regexp, query, expression…) choose the cognito_auth rules by the
// original method and URI. It sets the request's method, path and query
// from the proxy's headers (or strips the proxy's path prefix), with the
// path cleaned as a proxy routes it ("..", "." and repeated slashes
// resolved, percent-encoding decoded), so a crafted path cannot pick a
// weaker rule than the route the proxy serves.
//
// It fails closed. A request without the original method or URI, or with
// an invalid one, gets 400 (nginx turns it into 500; every proxy denies);
// and a request that no handler after it answered gets 403
// {"message":"Forbidden"} instead of Caddy's default empty 200, which every
// proxy would read as "allow". Routes meant to be public need an explicit
// answer (e.g. `respond 200`).
//
// Trusting these headers is only safe when the proxy alone can reach this
// server and sets them itself (overwriting any client copy): bind the site
// to loopback or an internal network.
type OriginalRequest struct {
	// "x-forwarded" (X-Forwarded-Method, X-Forwarded-Uri: Traefik, Caddy's
	// forward_auth), "x-original" (X-Original-Method, X-Original-URI: nginx)
	// or "request" (the request line: Envoy ext_authz with path_prefix).
	// Required.
	From string `json:"from"`

	// A path prefix in front of the original path, removed before the rules
	// are matched: Envoy's path_prefix, or the location an nginx
	// auth_request goes to when the original URI is appended to it. A
	// request whose path does not start with it is refused.
	StripPrefix string `json:"strip_prefix,omitempty"`

	methodHeader, uriHeader string
	logger                  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (OriginalRequest) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.cognito_original_request",
		New: func() caddy.Module { return new(OriginalRequest) },
	}
}

// Provision sets up the handler.
func (o *OriginalRequest) Provision(ctx caddy.Context) error {
	// Misconfigured proxies send every request wrong; keep the log bounded.
	o.logger = ctx.Logger().WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 10, 100)
	}))
	switch o.From {
	case OriginalFromXForwarded:
		o.methodHeader, o.uriHeader = "X-Forwarded-Method", "X-Forwarded-Uri"
	case OriginalFromXOriginal:
		o.methodHeader, o.uriHeader = "X-Original-Method", "X-Original-Uri"
	}
	return nil
}

// Validate checks the configuration.
func (o *OriginalRequest) Validate() error {
	switch o.From {
	case OriginalFromXForwarded, OriginalFromXOriginal, OriginalFromRequest:
	default:
		return fmt.Errorf("cognito_original_request: from %q: must be %s, %s or %s",
			o.From, OriginalFromXForwarded, OriginalFromXOriginal, OriginalFromRequest)
	}
	if p := o.StripPrefix; p != "" && (!strings.HasPrefix(p, "/") || p == "/" || strings.HasSuffix(p, "/")) {
		return fmt.Errorf("cognito_original_request: strip_prefix %q: must start with / and not end with one", p)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (o *OriginalRequest) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	method, uri := r.Method, r.URL.RequestURI()
	if o.methodHeader != "" {
		// One value each: a proxy sets exactly one; two are a client's
		// addition that the proxy appended to, not replaced.
		mv, uv := r.Header.Values(o.methodHeader), r.Header.Values(o.uriHeader)
		if len(mv) != 1 || len(uv) != 1 {
			return o.refuse(w, r, fmt.Sprintf("want exactly one %s and one %s header, got %d and %d",
				o.methodHeader, o.uriHeader, len(mv), len(uv)))
		}
		method, uri = mv[0], uv[0]
	}
	if !validMethod(method) {
		return o.refuse(w, r, "invalid original method")
	}
	u, err := parseOriginalURI(uri)
	if err != nil {
		return o.refuse(w, r, err.Error())
	}
	if o.StripPrefix != "" {
		rest, ok := strings.CutPrefix(u.Path, o.StripPrefix)
		if !ok || rest != "" && rest[0] != '/' {
			return o.refuse(w, r, "path does not start with strip_prefix "+o.StripPrefix)
		}
		if rest == "" {
			rest = "/"
		}
		u.Path = rest
	}

	r.Method = method
	r.URL.Path = caddyhttp.CleanPath(u.Path, true)
	r.URL.RawPath = ""
	r.URL.RawQuery = u.RawQuery
	r.RequestURI = r.URL.RequestURI()

	aw := &answerWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	if err := next.ServeHTTP(aw, r); err != nil || aw.answered {
		return err
	}
	if ce := o.logger.Check(zapcore.WarnLevel, "no rule answered the forward-auth request; denying"); ce != nil {
		ce.Write(zap.String("method", r.Method), zap.String("uri", r.URL.Path))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(`{"message":"Forbidden"}`))
	return nil
}

// refuse answers a request that does not say what the original request
// was: 400, never an allow.
func (o *OriginalRequest) refuse(w http.ResponseWriter, r *http.Request, why string) error {
	if ce := o.logger.Check(zapcore.ErrorLevel, "forward-auth request without a usable original request; is the proxy configured as documented?"); ce != nil {
		ce.Write(zap.String("from", o.From), zap.String("problem", why), zap.String("remote_ip", r.RemoteAddr))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(`{"message":"Bad Request"}`))
	return nil
}

// maxOriginalURI bounds the original URI; the server's header limit bounds
// it anyway, this keeps the error clear.
const maxOriginalURI = 16 << 10

// parseOriginalURI accepts an origin-form request target ("/path?query"),
// the only form the proxies send.
func parseOriginalURI(s string) (*url.URL, error) {
	if s == "" || s[0] != '/' || strings.HasPrefix(s, "//") {
		return nil, fmt.Errorf("original URI %.80q: must be a path starting with a single /", s)
	}
	if len(s) > maxOriginalURI {
		return nil, fmt.Errorf("original URI: longer than %d bytes", maxOriginalURI)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '#' {
			return nil, fmt.Errorf("original URI %.80q: control character, space or fragment", s)
		}
	}
	u, err := url.ParseRequestURI(s)
	if err != nil {
		return nil, fmt.Errorf("original URI %.80q: %w", s, err)
	}
	return u, nil
}

// validMethod reports whether m is an HTTP method token (RFC 9110 §9.1) of
// a sane length.
func validMethod(m string) bool { return len(m) <= 32 && config.IsToken(m) }

// answerWriter records whether a handler wrote a response.
type answerWriter struct {
	*caddyhttp.ResponseWriterWrapper
	answered bool
}

func (w *answerWriter) WriteHeader(code int) {
	// 1xx are interim: the final answer is still to come.
	if code >= 200 {
		w.answered = true
	}
	w.ResponseWriterWrapper.WriteHeader(code)
}

func (w *answerWriter) Write(b []byte) (int, error) {
	w.answered = true
	return w.ResponseWriterWrapper.Write(b)
}

func (w *answerWriter) ReadFrom(src io.Reader) (int64, error) {
	w.answered = true
	return w.ResponseWriterWrapper.ReadFrom(src)
}

func parseOriginalRequest(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var o OriginalRequest
	err := o.UnmarshalCaddyfile(h.Dispenser)
	return &o, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	cognito_original_request x-forwarded|x-original|request [<strip_prefix>]
func (o *OriginalRequest) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if !d.NextArg() {
		return d.Errf("cognito_original_request: want x-forwarded, x-original or request")
	}
	o.From = d.Val()
	if d.NextArg() {
		o.StripPrefix = d.Val()
	}
	if d.NextArg() || d.NextBlock(0) {
		return d.ArgErr()
	}
	if err := o.Validate(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*OriginalRequest)(nil)
	_ caddy.Validator             = (*OriginalRequest)(nil)
	_ caddyhttp.MiddlewareHandler = (*OriginalRequest)(nil)
	_ caddyfile.Unmarshaler       = (*OriginalRequest)(nil)
)
