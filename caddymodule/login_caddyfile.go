package caddymodule

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-cognito/caddy-cognito/config"
)

// unmarshalLogin parses the login block of cognito_auth:
//
//	login {
//	    domain          <url>
//	    client_id       <id>
//	    client_secret   <secret>
//	    client_auth     client_secret_basic|client_secret_post|none|private_key_jwt
//	    private_key     <file>
//	    private_key_id  <kid>
//	    client_assertion_audience <url>
//	    scopes          <scope...>
//	    auth_param      <name> <value>
//	    callback        <path>
//	    logout          <path>
//	    logout_redirect <url|path>
//	    cookie_name     <name>
//	    cookie_secret   <base64-key...>
//	    session_timeout <duration>
//	    on_unauthenticated authenticate|deny|allow
//	    alb_headers
//	    alb_key         <file>
//	    alb_key_path    <path>
//	    alb_signer      <string>
//	}
//
// The cursor is on "login"; the whole block is checked by checkLogin once
// the directive is parsed (client_id defaults to the audience).
func unmarshalLogin(d *caddyfile.Dispenser) (*config.Login, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	l := &config.Login{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if opt != "auth_param" {
			if seen[opt] {
				return nil, d.Errf("login: %s already specified", opt)
			}
			seen[opt] = true
		}
		one := func(dst *string) error {
			if err := oneArg(d, dst); err != nil {
				return err
			}
			return nil
		}
		var err error
		switch opt {
		case "domain":
			err = one(&l.Domain)
		case "client_id":
			err = one(&l.ClientID)
		case "client_secret":
			err = one(&l.ClientSecret)
		case "client_auth":
			if err = one(&l.ClientAuth); err == nil {
				switch l.ClientAuth {
				case config.ClientAuthBasic, config.ClientAuthPost, config.ClientAuthNone, config.ClientAuthPrivateKeyJWT:
				default:
					return nil, d.Errf("login client_auth %q: must be client_secret_basic, client_secret_post, none or private_key_jwt", l.ClientAuth)
				}
			}
		case "private_key":
			err = one(&l.PrivateKey)
		case "private_key_id":
			err = one(&l.PrivateKeyID)
		case "client_assertion_audience":
			err = one(&l.ClientAssertionAudience)
		case "scopes":
			if l.Scopes = d.RemainingArgs(); len(l.Scopes) == 0 {
				return nil, d.ArgErr()
			}
		case "auth_param":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("login auth_param: want <name> <value>")
			}
			if l.AuthParams == nil {
				l.AuthParams = map[string]string{}
			}
			l.AuthParams[args[0]] = args[1]
		case "callback":
			err = one(&l.Callback)
		case "logout":
			err = one(&l.Logout)
		case "logout_redirect":
			err = one(&l.LogoutRedirect)
		case "cookie_name":
			err = one(&l.CookieName)
		case "cookie_secret":
			keys := d.RemainingArgs()
			if len(keys) == 0 {
				return nil, d.ArgErr()
			}
			l.CookieSecret = strings.Join(keys, " ")
			if !config.HasPlaceholder(l.CookieSecret) {
				if _, kerr := config.ParseCookieKeys(l.CookieSecret); kerr != nil {
					return nil, d.Err(kerr.Error())
				}
			}
		case "session_timeout":
			var v string
			if err = one(&v); err == nil {
				dur, perr := caddy.ParseDuration(v)
				if perr != nil || dur < time.Second {
					return nil, d.Errf("login session_timeout %q: want a duration of at least 1s, e.g. 8h or 7d", v)
				}
				l.SessionTimeout = config.Duration(dur)
			}
		case "on_unauthenticated":
			err = one(&l.OnUnauthenticated)
		case "alb_headers":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			l.ALBHeaders = true
		case "alb_key":
			err = one(&l.ALBKey)
		case "alb_key_path":
			err = one(&l.ALBKeyPath)
		case "alb_signer":
			err = one(&l.ALBSigner)
		default:
			return nil, d.Errf("login: unrecognized option %q", opt)
		}
		if err != nil {
			return nil, err
		}
		// Single-value checks here, with this line; the combinations
		// (secrets per client_auth, client_id's default) in checkLogin.
		if verr := config.CheckLoginOption(l, opt); verr != nil {
			return nil, d.Err(verr.Error())
		}
	}
	return l, nil
}

// checkLogin validates the whole login block; line is the line of the
// "login" token.
func checkLogin(d *caddyfile.Dispenser, l *config.Login, audience []string, line int) error {
	probe := *l
	probe.SetDefaults(audience)
	if err := probe.Validate(); err != nil {
		return fmt.Errorf("cognito_auth: %w, at %s:%d", err, d.File(), line)
	}
	return nil
}
