package caddymodule

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-cognito/caddy-cognito/config"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("cognito_auth", parseCaddyfile)
	// Authentication comes before anything that serves or proxies, right
	// after Caddy's own basic_auth, so no `order` option is needed.
	httpcaddyfile.RegisterDirectiveOrder("cognito_auth", httpcaddyfile.After, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	cognito_auth [<matcher>] {
//	    user_pool    <pool-id>
//	    issuer       <url>
//	    audience     <client-id...>
//	    token_use    access|id
//	    scopes       <scope...>
//	    groups       <group...>
//	    jwks         url [<url>] | discovery | file <path> | <source> ... [{ ... }]
//	    leeway       <duration>
//	    header       <claim> <Header>
//	    token_source header <Name> | cookie <name> | query <name>
//	    algorithms   <alg...>
//	    max_token_size <bytes>
//	    startup_wait <duration>
//	    cache_size   <entries>
//	    allow_preflight
//	    strip_authorization
//	}
//
// Exactly one of user_pool and issuer, and audience, are required.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		opt := d.Val()
		if opt != "header" {
			if seen[opt] {
				return d.Errf("%s already specified", opt)
			}
			seen[opt] = true
		}
		switch opt {
		case "user_pool":
			if err := oneArg(d, &h.UserPool); err != nil {
				return err
			}
			if _, err := config.PoolRegion(h.UserPool); err != nil {
				return d.Err(err.Error())
			}
		case "issuer":
			if err := oneArg(d, &h.Issuer); err != nil {
				return err
			}
			if err := config.CheckIssuer(h.Issuer); err != nil {
				return d.Err(err.Error())
			}
		case "audience":
			if h.Audience = d.RemainingArgs(); len(h.Audience) == 0 {
				return d.Errf("audience: at least one app client id is required")
			}
		case "token_use":
			if err := oneArg(d, &h.TokenUse); err != nil {
				return err
			}
			if h.TokenUse != config.TokenUseAccess && h.TokenUse != config.TokenUseID {
				return d.Errf("token_use %q: must be access or id", h.TokenUse)
			}
		case "scopes":
			if h.Scopes = d.RemainingArgs(); len(h.Scopes) == 0 {
				return d.ArgErr()
			}
		case "groups":
			if h.Groups = d.RemainingArgs(); len(h.Groups) == 0 {
				return d.ArgErr()
			}
		case "algorithms":
			if h.Algorithms = d.RemainingArgs(); len(h.Algorithms) == 0 {
				return d.ArgErr()
			}
			for _, a := range h.Algorithms {
				if !config.IsRSAAlgorithm(a) {
					return d.Errf("algorithms: %q is not allowed; only RS256, RS384, RS512, PS256, PS384, PS512", a)
				}
			}
		case "leeway", "startup_wait":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("%s %q: %v", opt, v, err)
			}
			if dur < 0 {
				return d.Errf("%s %q: must not be negative", opt, v)
			}
			if opt == "leeway" {
				if dur > 5*time.Minute {
					return d.Errf("leeway %q: at most 5m", v)
				}
				h.Leeway = config.Duration(dur)
			} else {
				h.StartupWait = caddy.Duration(dur)
			}
		case "max_token_size", "cache_size":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return d.Errf("%s %q: must be a positive integer", opt, v)
			}
			if opt == "max_token_size" {
				if n > 1<<20 {
					return d.Errf("max_token_size %q: at most 1048576", v)
				}
				h.MaxTokenBytes = n
			} else {
				h.CacheSize = n
			}
		case "header":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("header: want <claim> <Header>, got %d arguments", len(args))
			}
			h.Headers = append(h.Headers, config.ClaimHeader{Claim: args[0], Header: args[1]})
		case "token_source":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("token_source: want header|cookie|query <name>")
			}
			switch args[0] {
			case config.SourceHeader, config.SourceCookie, config.SourceQuery:
			default:
				return d.Errf("token_source %q: must be header, cookie or query", args[0])
			}
			h.TokenSource = &config.TokenSource{From: args[0], Name: args[1]}
		case "jwks":
			if !d.NextArg() {
				return d.Errf("jwks: want url [<url>], discovery, file <path> or another key source")
			}
			name := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "http.handlers.cognito_auth.jwks."+name)
			if err != nil {
				return err
			}
			if _, ok := unm.(KeySource); !ok {
				return d.Errf("jwks %s: module is not a key source", name)
			}
			h.JWKSRaw = caddyconfig.JSONModuleObject(unm, "source", name, nil)
		case "allow_preflight":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.AllowPreflight = true
		case "strip_authorization":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.StripAuthorization = true
		default:
			return d.Errf("unrecognized subdirective %q", opt)
		}
	}
	// The same checks as JSON configs get at provision time, but reported
	// here with the line of the directive.
	probe := h.Authorizer
	probe.SetDefaults()
	if err := probe.Validate(); err != nil {
		return d.Errf("cognito_auth: %v", err)
	}
	return nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
