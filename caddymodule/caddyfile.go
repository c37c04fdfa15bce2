package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

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
//	    # one trust (shorthand):
//	    user_pool    <pool-id>
//	    issuer       <url>
//	    audience     <client-id...>
//	    token_use    access|id
//	    jwks         url [<url>] | discovery | file <path> | <source> ... [{ ... }]
//
//	    # or several trusts:
//	    pool <pool-id> {
//	        audience        <client-id...>
//	        token_use       access|id
//	        issuer_format   any|original|updated
//	        replica_regions <region...>
//	        jwks            <source> ...
//	    }
//	    issuer <url> {
//	        audience  <client-id...>
//	        token_use access|id
//	        jwks      <source> ...
//	    }
//
//	    # route rules, whichever trust verified the token:
//	    scopes       <scope...>
//	    groups       <group...>
//	    require      <expression>       # CEL, repeatable: all must be true
//	    leeway       <duration>
//	    header       <claim> <Header>
//	    token_source header <Name> | cookie <name> | query <name>
//	    algorithms   <alg...>
//	    max_token_bytes <bytes>     (alias: max_token_size)
//	    startup_wait <duration>
//	    cache_size   <entries>
//	    allow_preflight
//	    strip_authorization
//	    forward_auth
//	    login { … }   (see unmarshalLogin)
//	}
//
// The Caddyfile only parses: every rule is checked by Validate, the same
// check a JSON config gets, and its error names the line of the setting.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	at := settingLines{}
	seen := map[string]bool{}
	loginLine := 0
	for d.NextBlock(0) {
		opt := d.Val()
		if opt == "max_token_size" {
			opt = "max_token_bytes" // the JSON name; max_token_size is its older alias
		}
		tok := d.Token()
		if opt == "pool" || (opt == "issuer" && hasBlock(d)) {
			i := len(h.Trusts)
			at.set(i, opt, -1, tok)
			t, err := unmarshalTrust(d, opt, i, at)
			if err != nil {
				return err
			}
			h.Trusts = append(h.Trusts, t)
			continue
		}
		if opt != "header" && opt != "require" {
			if seen[opt] {
				return d.Errf("%s already specified", d.Val())
			}
			seen[opt] = true
		}
		field := opt
		index := -1
		switch opt {
		case "user_pool":
			if err := oneArg(d, &h.UserPool); err != nil {
				return err
			}
		case "issuer":
			if err := oneArg(d, &h.Issuer); err != nil {
				return err
			}
		case "audience":
			h.Audience = d.RemainingArgs()
		case "token_use":
			if err := oneArg(d, &h.TokenUse); err != nil {
				return err
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
		case "leeway", "startup_wait":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.WrapErr(fmt.Errorf("%s %q: %w", opt, v, err))
			}
			if opt == "leeway" {
				h.Leeway = config.Duration(dur)
			} else {
				h.StartupWait = caddy.Duration(dur)
			}
		case "max_token_bytes", "cache_size":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return d.Errf("%s %q: must be a positive integer", tok.Text, v)
			}
			if opt == "max_token_bytes" {
				h.MaxTokenBytes = n
			} else {
				h.CacheSize = n
			}
		case "header":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("header: want <claim> <Header>, got %d arguments", len(args))
			}
			field, index = "headers", len(h.Headers)
			h.Headers = append(h.Headers, config.ClaimHeader{Claim: args[0], Header: args[1]})
		case "require":
			field, index = "require", len(h.Require)
			if err := h.parseRequire(d); err != nil {
				return err
			}
		case "token_source":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("token_source: want header|cookie|query <name>")
			}
			h.TokenSource = &config.TokenSource{From: args[0], Name: args[1]}
		case "jwks":
			raw, err := unmarshalJWKS(d)
			if err != nil {
				return err
			}
			h.JWKSRaw = raw
		case "login":
			loginLine = d.Line()
			l, err := unmarshalLogin(d)
			if err != nil {
				return err
			}
			h.Login = l
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
		case "forward_auth":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.ForwardAuth = true
		default:
			return d.Errf("unrecognized subdirective %q", opt)
		}
		at.set(-1, field, index, tok)
	}
	// The same check as a JSON config gets, reported at the line of the
	// setting at fault.
	if err := h.Validate(); err != nil {
		return at.wrap(d, err)
	}
	if h.Login != nil {
		var audience []string
		rule := config.Authorizer(h.Config)
		if tl := rule.TrustList(); len(tl) > 0 {
			audience = tl[0].Audience
		}
		return checkLogin(d, h.Login, audience, loginLine)
	}
	return nil
}

// unmarshalTrust parses a `pool <id> { … }` or `issuer <url> { … }` block.
func unmarshalTrust(d *caddyfile.Dispenser, kind string, i int, at settingLines) (config.Trust, error) {
	var t config.Trust
	var id string
	if err := oneArg(d, &id); err != nil {
		return t, err
	}
	if kind == "pool" {
		t.Pool = id
	} else {
		t.Issuer = id
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return t, d.Errf("%s %s: %s already specified", kind, id, opt)
		}
		seen[opt] = true
		tok := d.Token()
		switch opt {
		case "audience":
			t.Audience = d.RemainingArgs()
		case "replica_regions":
			t.ReplicaRegions = d.RemainingArgs()
		case "token_use":
			if err := oneArg(d, &t.TokenUse); err != nil {
				return t, err
			}
		case "issuer_format":
			if err := oneArg(d, &t.IssuerFormat); err != nil {
				return t, err
			}
		case "jwks":
			raw, err := unmarshalJWKS(d)
			if err != nil {
				return t, err
			}
			t.JWKS = raw
		default:
			return t, d.Errf("%s %s: unrecognized option %q (want audience, token_use, jwks, issuer_format or replica_regions)", kind, id, opt)
		}
		at.set(i, opt, -1, tok)
	}
	return t, nil
}

// unmarshalJWKS parses `jwks <source> …` into the source module's JSON.
func unmarshalJWKS(d *caddyfile.Dispenser) (json.RawMessage, error) {
	if !d.NextArg() {
		return nil, d.Errf("jwks: want url [<url>], discovery, file <path> or another key source")
	}
	name := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, "http.handlers.cognito_auth.jwks."+name)
	if err != nil {
		return nil, err
	}
	if _, ok := unm.(KeySource); !ok {
		return nil, d.Errf("jwks %s: module is not a key source", name)
	}
	return caddyconfig.JSONModuleObject(unm, "source", name, nil), nil
}

// hasBlock reports whether the rest of the current line is one argument
// followed by a block ("issuer <url> {"), without consuming anything.
func hasBlock(d *caddyfile.Dispenser) bool {
	line := d.Line()
	n, open := 0, false
	for n < 2 && d.Next() {
		n++
		if d.Line() != line {
			break
		}
		open = n == 2 && d.Val() == "{"
	}
	for ; n > 0; n-- {
		d.Prev()
	}
	return open
}

// settingLines remembers where each setting was written, so a validation
// error (a *config.FieldError) is reported at its line.
type settingLines map[settingKey]caddyfile.Token

type settingKey struct {
	trust int
	field string
	index int
}

func (s settingLines) set(trust int, field string, index int, tok caddyfile.Token) {
	s[settingKey{trust, field, index}] = tok
}

// wrap adds the file and line of the setting err names (else of the
// current token) to err, as Dispenser.WrapErr does.
func (s settingLines) wrap(d *caddyfile.Dispenser, err error) error {
	var fe *config.FieldError
	if errors.As(err, &fe) {
		for _, k := range []settingKey{
			{fe.Trust, fe.Field, fe.Index}, {fe.Trust, fe.Field, -1},
			{fe.Trust, "pool", -1}, {fe.Trust, "issuer", -1}, {fe.Trust, "user_pool", -1},
		} {
			if tok, ok := s[k]; ok {
				at := caddyfile.NewDispenser([]caddyfile.Token{tok})
				at.Next()
				return at.WrapErr(err)
			}
		}
	}
	return d.WrapErr(err)
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
