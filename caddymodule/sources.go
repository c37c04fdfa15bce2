package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/config"
)

func init() {
	caddy.RegisterModule(URLSource{})
	caddy.RegisterModule(DiscoverySource{})
	caddy.RegisterModule(FileSource{})
}

// KeySource is implemented by the key-source guest modules in the
// http.handlers.cognito_auth.jwks namespace. Add a source (Vault, S3, …) by
// registering a module there; the handler and keyring need no change.
type KeySource interface {
	// NewKeySource returns the source for a handler and the keyring
	// timing for it. Handlers whose sources have the same String() and
	// timing share one keyring, across routes and config reloads.
	NewKeySource(SourceContext) (jwks.Source, jwks.Options, error)
}

// SourceContext is what a key source may use from its handler.
type SourceContext struct {
	// Context is the provisioning context, for work done while building
	// the source (loading AWS configuration …); it ends with the config
	// load, so the source must not keep it for fetching (the keyring gives
	// each fetch its own context).
	Context context.Context
	// Issuer whose keys the source provides: the issuer of the trust, or
	// for a Cognito pool the accepted form being served (its primary,
	// ORIGINAL-format issuer for a source configured with jwks).
	Issuer string
	// UserPool id of the trust, when it is a pool (its region prefix is a
	// fallback region).
	UserPool string
	Logger   *zap.Logger
}

// ctx returns the provisioning context, or a background one for callers
// outside Caddy (tests).
func (sc SourceContext) ctx() context.Context {
	if sc.Context != nil {
		return sc.Context
	}
	return context.Background()
}

// Timing is the refresh policy shared by all key sources.
type Timing struct {
	// How often the key set is fetched again in the background, with
	// jitter. Default 1h.
	Refresh caddy.Duration `json:"refresh,omitempty"`
	// Least time between two fetches triggered by an unknown key id.
	// Default 10s (60s for SSM).
	Cooldown caddy.Duration `json:"cooldown,omitempty"`
	// Bound on one fetch. Default 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// Options turns the timing into keyring options, with per-source defaults.
func (t Timing) Options(defRefresh, defCooldown time.Duration) jwks.Options {
	o := jwks.Options{Refresh: time.Duration(t.Refresh), Cooldown: time.Duration(t.Cooldown), FetchTimeout: time.Duration(t.Timeout)}
	if o.Refresh <= 0 {
		o.Refresh = defRefresh
	}
	if o.Cooldown <= 0 {
		o.Cooldown = defCooldown
	}
	return o
}

// Validate rejects negative durations.
func (t Timing) Validate() error {
	for name, d := range map[string]caddy.Duration{"refresh": t.Refresh, "cooldown": t.Cooldown, "timeout": t.Timeout} {
		if d < 0 {
			return fmt.Errorf("%s %s: must not be negative", name, time.Duration(d))
		}
	}
	if t.Refresh > 0 && time.Duration(t.Refresh) < time.Second {
		return fmt.Errorf("refresh %s: must be at least 1s", time.Duration(t.Refresh))
	}
	return nil
}

// UnmarshalTimingOption parses one timing subdirective (refresh, cooldown,
// timeout) of a key source block; it reports whether it recognized one.
// Other sources call it from their own UnmarshalCaddyfile.
func (t *Timing) UnmarshalTimingOption(d *caddyfile.Dispenser) (bool, error) {
	var dst *caddy.Duration
	switch d.Val() {
	case "refresh":
		dst = &t.Refresh
	case "cooldown":
		dst = &t.Cooldown
	case "timeout":
		dst = &t.Timeout
	default:
		return false, nil
	}
	name := d.Val()
	if *dst != 0 {
		return true, d.Errf("%s already specified", name)
	}
	if !d.NextArg() {
		return true, d.ArgErr()
	}
	v, err := caddy.ParseDuration(d.Val())
	if err != nil {
		return true, d.WrapErr(fmt.Errorf("%s %q: %w", name, d.Val(), err))
	}
	if v <= 0 {
		return true, d.Errf("%s %q: must be positive", name, d.Val())
	}
	*dst = caddy.Duration(v)
	if d.NextArg() {
		return true, d.ArgErr()
	}
	return true, nil
}

func unmarshalTimingBlock(d *caddyfile.Dispenser, t *Timing, source string) error {
	for d.NextBlock(0) {
		ok, err := t.UnmarshalTimingOption(d)
		if err != nil {
			return err
		}
		if !ok {
			return d.Errf("jwks %s: unrecognized option %q (want refresh, cooldown or timeout)", source, d.Val())
		}
	}
	return nil
}

// URLSource fetches the JWKS document from a URL, by default the issuer's
// /.well-known/jwks.json (the Cognito user pool's key set).
type URLSource struct {
	// The JWKS URL. Default: <issuer>/.well-known/jwks.json. Plain http
	// works (local emulators, in-VPC mirrors) but is logged as a warning
	// unless the host is loopback.
	URL string `json:"url,omitempty"`
	Timing
}

// CaddyModule returns the Caddy module information.
func (URLSource) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.cognito_auth.jwks.url", New: func() caddy.Module { return new(URLSource) }}
}

// NewKeySource implements KeySource.
func (s *URLSource) NewKeySource(sc SourceContext) (jwks.Source, jwks.Options, error) {
	if err := s.Timing.Validate(); err != nil {
		return nil, jwks.Options{}, fmt.Errorf("jwks url: %w", err)
	}
	u := s.URL
	if u == "" {
		u = config.JWKSURL(sc.Issuer)
	}
	src, err := jwks.NewHTTPSource(u, nil)
	if err != nil {
		return nil, jwks.Options{}, err
	}
	warnPlainHTTP(sc.Logger, u)
	return src, s.Timing.Options(time.Hour, 10*time.Second), nil
}

// UnmarshalCaddyfile sets up the source from Caddyfile tokens. Syntax:
//
//	jwks url [<url>] {
//	    refresh  <duration>
//	    cooldown <duration>
//	    timeout  <duration>
//	}
func (s *URLSource) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // source name
	if d.NextArg() {
		s.URL = d.Val()
		if _, err := jwks.NewHTTPSource(s.URL, nil); err != nil {
			return d.Errf("jwks url %q: must be an absolute http(s) URL", s.URL)
		}
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	return unmarshalTimingBlock(d, &s.Timing, "url")
}

// DiscoverySource finds the JWKS through the issuer's OpenID Connect
// discovery document, as API Gateway does: jwks_uri from
// <issuer>/.well-known/openid-configuration.
type DiscoverySource struct {
	Timing
}

// CaddyModule returns the Caddy module information.
func (DiscoverySource) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.cognito_auth.jwks.discovery", New: func() caddy.Module { return new(DiscoverySource) }}
}

// NewKeySource implements KeySource.
func (s *DiscoverySource) NewKeySource(sc SourceContext) (jwks.Source, jwks.Options, error) {
	if err := s.Timing.Validate(); err != nil {
		return nil, jwks.Options{}, fmt.Errorf("jwks discovery: %w", err)
	}
	src, err := jwks.NewDiscoverySource(sc.Issuer, nil)
	if err != nil {
		return nil, jwks.Options{}, err
	}
	warnPlainHTTP(sc.Logger, sc.Issuer)
	return src, s.Timing.Options(time.Hour, 10*time.Second), nil
}

// UnmarshalCaddyfile sets up the source from Caddyfile tokens. Syntax:
//
//	jwks discovery {
//	    refresh  <duration>
//	    cooldown <duration>
//	    timeout  <duration>
//	}
func (s *DiscoverySource) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	return unmarshalTimingBlock(d, &s.Timing, "discovery")
}

// FileSource reads the JWKS document from a file (a mounted secret, a file
// kept current by another process, development keys), re-read when it
// changes: the file is checked every refresh interval (default 5s, one
// stat when unchanged) and at once on an unknown key id (cooldown 1s).
type FileSource struct {
	// Path of the JWKS document.
	Path string `json:"path,omitempty"`
	Timing
}

// CaddyModule returns the Caddy module information.
func (FileSource) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.cognito_auth.jwks.file", New: func() caddy.Module { return new(FileSource) }}
}

// NewKeySource implements KeySource.
func (s *FileSource) NewKeySource(SourceContext) (jwks.Source, jwks.Options, error) {
	if s.Path == "" {
		return nil, jwks.Options{}, fmt.Errorf("jwks file: path is required")
	}
	if err := s.Timing.Validate(); err != nil {
		return nil, jwks.Options{}, fmt.Errorf("jwks file: %w", err)
	}
	return &jwks.FileSource{Path: s.Path}, s.Timing.Options(5*time.Second, time.Second), nil
}

// UnmarshalCaddyfile sets up the source from Caddyfile tokens. Syntax:
//
//	jwks file <path> {
//	    refresh  <duration>
//	    cooldown <duration>
//	}
func (s *FileSource) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.NextArg() {
		return d.Errf("jwks file: path is required")
	}
	s.Path = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return unmarshalTimingBlock(d, &s.Timing, "file")
}

func warnPlainHTTP(log *zap.Logger, u string) {
	if log != nil && len(u) > 7 && u[:7] == "http://" && !jwks.IsLoopbackURL(u) {
		log.Warn("fetching keys over plain http: anyone on the path can substitute them; use https outside a trusted network",
			zap.String("url", u))
	}
}

// Interface guards
var (
	_ KeySource             = (*URLSource)(nil)
	_ KeySource             = (*DiscoverySource)(nil)
	_ KeySource             = (*FileSource)(nil)
	_ caddyfile.Unmarshaler = (*URLSource)(nil)
	_ caddyfile.Unmarshaler = (*DiscoverySource)(nil)
	_ caddyfile.Unmarshaler = (*FileSource)(nil)
)
