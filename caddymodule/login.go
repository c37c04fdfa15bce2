package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/login"
)

// loginGlue is the browser sign-in of one handler: the engine (package
// login) and what ties it to Caddy (paths, metrics, logs).
type loginGlue struct {
	cfg     config.Login // with defaults and secrets replaced: never log it
	engine  *login.Engine
	alb     *login.ALBSigner
	albPath string // alb_key_path + "/"
	m       *loginMetrics
}

// provisionLogin sets up the login block, if any. (The three ALB header
// names are identity headers whether or not login is configured: a backend
// written for an ALB trusts them, so no client may send them; they are in
// config's identity header list.)
func (h *Handler) provisionLogin(ctx caddy.Context) error {
	if h.Login == nil {
		return nil
	}
	cfg := *h.Login
	cfg.Scopes = append([]string(nil), cfg.Scopes...)
	// Secrets and key files may be placeholders ({env.*}, {file.*}),
	// replaced once here; an unknown or empty one is an error that names
	// the placeholder, never its value.
	repl := caddy.NewReplacer()
	for _, f := range []struct {
		name string
		v    *string
	}{
		{"client_secret", &cfg.ClientSecret}, {"cookie_secret", &cfg.CookieSecret},
		{"private_key", &cfg.PrivateKey}, {"alb_key", &cfg.ALBKey}, {"client_id", &cfg.ClientID},
	} {
		if *f.v == "" {
			continue
		}
		v, err := repl.ReplaceOrErr(*f.v, true, true)
		if err != nil {
			return fmt.Errorf("login %s: %w", f.name, err)
		}
		*f.v = v
	}
	// The sign-in's provider is the handler's first trust (user_pool or
	// issuer, or the first pool/issuer block): its issuer's discovery
	// document, its first audience as the default client id.
	trusts := h.rule.TrustList()
	if len(trusts) == 0 {
		return errors.New("login: no trust (user_pool or issuer) to sign in with")
	}
	first := trusts[0]
	cfg.SetDefaults(first.Audience)
	if err := cfg.Validate(); err != nil {
		return err
	}

	issuer := first.PrimaryIssuer()
	opts := login.Options{Issuer: issuer, HTTPClient: &http.Client{Timeout: 10 * time.Second}}
	if cfg.Domain != "" {
		opts.Endpoints = login.DomainEndpoints(cfg.Domain)
	} else {
		client := opts.HTTPClient
		opts.Discover = func(ctx context.Context) (login.Endpoints, error) {
			return login.Discover(ctx, client, issuer)
		}
	}
	if cfg.ClientAuth == config.ClientAuthPrivateKeyJWT {
		data, err := os.ReadFile(cfg.PrivateKey)
		if err != nil {
			return fmt.Errorf("login private_key: %w", err)
		}
		if opts.PrivateKey, opts.KeyID, err = login.ParsePrivateKey(data); err != nil {
			return fmt.Errorf("login private_key %s: %w", cfg.PrivateKey, err)
		}
	}

	// The session's tokens are verified with this handler's keys and
	// claim checks: the ID token for the client by the first trust (no
	// route rules; its nonce is checked by the engine), the access token
	// by the handler's trusts; the route's scopes and groups are applied
	// on every request, as to a bearer token.
	idTrust := first
	idTrust.Audience, idTrust.TokenUse = []string{cfg.ClientID}, ""
	idCfg := h.rule
	idCfg.UserPool, idCfg.Issuer, idCfg.Audience, idCfg.TokenUse = "", "", nil, ""
	idCfg.Trusts = []config.Trust{idTrust}
	idCfg.Scopes, idCfg.Groups = nil, nil
	keyOpts := []authz.Option{authz.WithCache(h.keys.cache), authz.WithKeysFor(h.keys.keysFor)}
	var err error
	if opts.IDTokens, err = authz.New(idCfg, nil, keyOpts...); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if first.TokenUse == config.TokenUseID {
		opts.UseIDToken = true
	} else {
		acCfg := h.rule
		acCfg.Scopes, acCfg.Groups = nil, nil
		if opts.AccessTokens, err = authz.New(acCfg, nil, keyOpts...); err != nil {
			return fmt.Errorf("login: %w", err)
		}
	}
	g := &loginGlue{cfg: cfg}
	if g.engine, err = login.New(cfg, opts); err != nil {
		return err
	}
	if cfg.ALBHeaders {
		var keyPEM []byte
		if cfg.ALBKey != "" {
			if keyPEM, err = os.ReadFile(cfg.ALBKey); err != nil {
				return fmt.Errorf("login alb_key: %w", err)
			}
		}
		if g.alb, err = login.NewALBSigner(keyPEM, cfg.ALBSigner, issuer, cfg.ClientID); err != nil {
			return fmt.Errorf("login: %w", err)
		}
		g.albPath = strings.TrimSuffix(cfg.ALBKeyPath, "/") + "/"
	}
	if g.m, err = newLoginMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("login metrics: %w", err)
	}
	if strings.HasPrefix(cfg.Domain, "http://") || (cfg.Domain == "" && strings.HasPrefix(issuer, "http://")) {
		h.logger.Warn("login: the identity provider is reached over plain http; use https outside tests")
	}
	if opts.Discover != nil {
		// Find the endpoints now if the provider answers; if not, the
		// first sign-in tries again (start-up never waits on it for long).
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if _, err := g.engine.Endpoints(dctx); err != nil {
			h.logger.Warn("login: OpenID discovery failed; retrying on first sign-in", zap.Error(err))
		}
		cancel()
	}
	h.login = g
	return nil
}

// serveLogin handles the login block's share of a request. done is false
// when the request goes on to the bearer-token path unchanged: it carries
// a token, or there is no session and the answer is today's 401.
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, next caddyhttp.Handler) (done bool, err error) {
	g := h.login
	switch {
	case r.URL.Path == g.cfg.Callback:
		return true, h.loginCallback(w, r)
	case g.cfg.Logout != "" && r.URL.Path == g.cfg.Logout:
		g.engine.Clear(w, r)
		g.m.logouts.Inc()
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, g.engine.LogoutURL(r), http.StatusFound)
		return true, nil
	case g.alb != nil && strings.HasPrefix(r.URL.Path, g.albPath) && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		if r.URL.Path[len(g.albPath):] != g.alb.KeyID() {
			http.NotFound(w, r)
			return true, nil
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(g.alb.PublicKeyPEM())
		return true, nil
	}
	// A bearer token (or anything in the token's place, even malformed)
	// is handled exactly as without login: never redirected.
	if _, xerr := authz.ExtractToken(r, *h.rule.TokenSource); xerr == nil || xerr.Kind != authz.KindMissing {
		g.engine.StripCookies(r)
		return false, nil
	}
	sess, state, lerr := g.engine.Load(w, r)
	g.engine.StripCookies(r)
	g.m.sessions.WithLabelValues(state.String()).Inc()
	switch state {
	case login.Refreshed:
		g.m.refreshes.WithLabelValues("ok").Inc()
	case login.RefreshFailed:
		g.m.refreshes.WithLabelValues("error").Inc()
		h.logger.Info("login: session refresh failed; signing in again", zap.Error(lerr), zap.String("remote_ip", r.RemoteAddr))
	case login.Invalid:
		h.logRefusal("login: session cookie refused", zap.Error(lerr), zap.String("remote_ip", r.RemoteAddr))
	}
	if sess != nil {
		claims, aerr := h.authz.Authorize(r.Context(), g.engine.Token(sess))
		if aerr == nil {
			// The route's require expressions apply to sessions too.
			aerr = h.checkPolicy(r, claims)
		}
		if aerr == nil {
			if g.alb != nil {
				h.setALBHeaders(r, sess, claims)
			}
			return true, h.allow(w, r, repl, claims, next, false)
		}
		e := authz.AsError(aerr)
		if e.Kind == authz.KindInsufficientScope || e.Kind == authz.KindUnavailable {
			// Signed in but not allowed here (403, never a redirect
			// loop), or keys not loaded (503).
			return true, h.deny(w, r, repl, claims, e)
		}
		// The session's token no longer verifies (expired, key retired):
		// the session is over.
		g.engine.Clear(w, r)
		h.logRefusal("login: session token refused", zap.String("reason", e.Reason), zap.String("remote_ip", r.RemoteAddr))
	}
	switch g.cfg.OnUnauthenticated {
	case config.OnUnauthAllow:
		// Identity headers were stripped on entry; nothing is set.
		return true, next.ServeHTTP(w, r)
	case config.OnUnauthAuthenticate:
		if login.IsNavigation(r) {
			to, err := g.engine.Begin(w, r)
			if err != nil {
				h.logger.Error("login: cannot start a sign-in: the identity provider's endpoints are unknown", zap.Error(err))
				return true, h.loginPage(w, http.StatusServiceUnavailable, "Sign-in is unavailable right now. Try again in a minute.")
			}
			g.m.signins.Inc()
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, to, http.StatusFound)
			return true, nil
		}
	}
	return false, nil // today's 401
}

// loginCallback completes a sign-in.
func (h *Handler) loginCallback(w http.ResponseWriter, r *http.Request) error {
	g := h.login
	w.Header().Set("Cache-Control", "no-store")
	to, err := g.engine.Callback(w, r)
	if err != nil {
		var ce *login.CallbackError
		if !errors.As(err, &ce) {
			ce = &login.CallbackError{Status: http.StatusInternalServerError, Reason: "internal", Message: "Sign-in failed.", Err: err}
		}
		g.m.callbacks.WithLabelValues(ce.Reason).Inc()
		fields := []zap.Field{zap.Int("status", ce.Status), zap.String("reason", ce.Reason), zap.String("remote_ip", r.RemoteAddr)}
		if ce.Err != nil {
			fields = append(fields, zap.String("detail", ce.Err.Error()))
		}
		if ce.Hint != "" {
			fields = append(fields, zap.String("fix", ce.Hint))
		}
		if ce.Status >= 500 {
			h.logger.Error("login: sign-in failed", fields...)
		} else {
			h.logRefusal("login: sign-in refused", fields...)
		}
		return h.loginPage(w, ce.Status, ce.Message)
	}
	g.m.callbacks.WithLabelValues("ok").Inc()
	http.Redirect(w, r, to, http.StatusFound)
	return nil
}

// loginPage writes a minimal HTML page; msg is escaped (it may carry the
// provider's error_description, which an attacker can choose).
func (h *Handler) loginPage(w http.ResponseWriter, status int, msg string) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign-in</title></head><body><p>%s</p></body></html>\n", html.EscapeString(msg))
	return nil
}

// setALBHeaders sets the ALB's three headers for a session.
func (h *Handler) setALBHeaders(r *http.Request, s *login.Session, c *authz.Claims) {
	data, err := h.login.alb.Data(s.IDToken, c.Expires, time.Now())
	if err != nil {
		h.logger.Error("login: cannot make x-amzn-oidc-data", zap.Error(err))
		return
	}
	if config.ForwardableValue(s.AccessToken) {
		r.Header.Set(login.HeaderALBAccessToken, s.AccessToken)
	}
	if config.ForwardableValue(c.Subject) {
		r.Header.Set(login.HeaderALBIdentity, c.Subject)
	}
	r.Header.Set(login.HeaderALBData, data)
}

// loginMetrics are the sign-in counters.
type loginMetrics struct {
	signins   prometheus.Counter
	logouts   prometheus.Counter
	callbacks *prometheus.CounterVec
	refreshes *prometheus.CounterVec
	sessions  *prometheus.CounterVec
}

func newLoginMetrics(reg *prometheus.Registry) (*loginMetrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &loginMetrics{}
	var err error
	if m.signins, err = registerOr(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "cognito", Name: "login_signins_total",
		Help: "Browsers sent to the identity provider to sign in.",
	})); err != nil {
		return nil, err
	}
	if m.logouts, err = registerOr(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "cognito", Name: "login_logouts_total",
		Help: "Sessions ended at the logout path.",
	})); err != nil {
		return nil, err
	}
	if m.callbacks, err = registerOr(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "cognito", Name: "login_callbacks_total",
		Help: "Sign-in callbacks by result (ok, idp_error, state, code, token_endpoint, id_token, nonce, access_token, session).",
	}, []string{"result"})); err != nil {
		return nil, err
	}
	if m.refreshes, err = registerOr(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "cognito", Name: "login_refreshes_total",
		Help: "Session token refreshes by result (ok, error).",
	}, []string{"result"})); err != nil {
		return nil, err
	}
	if m.sessions, err = registerOr(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "cognito", Name: "login_sessions_total",
		Help: "Session cookie decisions on requests without a bearer token (none, valid, refreshed, invalid, expired, refresh_failed).",
	}, []string{"state"})); err != nil {
		return nil, err
	}
	return m, nil
}

// registerOr registers c, or returns the collector already registered
// under its name (several handlers, one registry per config).
func registerOr[C prometheus.Collector](reg *prometheus.Registry, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return c, err
		}
		existing, ok := are.ExistingCollector.(C)
		if !ok {
			return c, err
		}
		return existing, nil
	}
	return c, nil
}

// logRefusal logs a refused session or sign-in within the process-wide
// denial log budget: refusals can come in floods, as bearer denials can.
func (h *Handler) logRefusal(msg string, fields ...zap.Field) {
	if h.denyBudget != nil && !h.denyBudget.allow(time.Now()) {
		return
	}
	h.logger.Info(msg, fields...)
}
