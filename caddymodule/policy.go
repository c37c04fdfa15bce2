package caddymodule

import (
	"errors"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/authz/policy"
	"github.com/caddy-cognito/caddy-cognito/config"
)

// compileRequire compiles the rule's require expressions with its token
// source and size (rule has the defaults applied). An error is a
// *config.FieldError naming the expression, so the Caddyfile adapter
// reports it at the line of that require.
func compileRequire(rule config.Authorizer) (*policy.Policy, error) {
	p, err := policy.Compile(rule.Require,
		policy.WithTokenSource(*rule.TokenSource),
		policy.WithMaxTokenBytes(rule.MaxTokenBytes))
	if err != nil {
		index := -1
		var ce *policy.CompileError
		if errors.As(err, &ce) {
			index = ce.Index
		}
		return nil, &config.FieldError{Trust: -1, Field: "require", Index: index, Err: err}
	}
	return p, nil
}

// validateRequire is the require part of Validate.
func validateRequire(rule config.Authorizer) error {
	_, err := compileRequire(rule)
	return err
}

// provisionPolicy compiles the route's require expressions.
func (h *Handler) provisionPolicy() error {
	p, err := compileRequire(h.rule)
	if err != nil {
		return err
	}
	h.policy = p
	return nil
}

// checkPolicy applies the require expressions to a request whose token
// passed every other check. The facts are plain strings and the header
// map: the policy reads what its expressions need, when they need it.
func (h *Handler) checkPolicy(r *http.Request, c *authz.Claims) error {
	if h.policy == nil {
		return nil
	}
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	req := policy.Request{
		Method:      r.Method,
		Host:        r.Host,
		Path:        r.URL.Path,
		EscapedPath: r.URL.EscapedPath(),
		RawQuery:    r.URL.RawQuery,
		Header:      r.Header,
		RemoteIP:    ip,
	}
	if err := h.policy.Check(c, &req); err != nil {
		return err
	}
	return nil
}

// parseRequire reads `require <expression>`. The expression is best one
// backquoted token, as Caddy's docs write its expression matcher; several
// arguments are joined with spaces, a quoted one keeping its quotes (the
// Caddyfile lexer strips them from a token that starts with one, so
// `"admins" in groups` would otherwise lose them). Validate compiles it,
// and a mistake is reported at this line.
func (h *Handler) parseRequire(d *caddyfile.Dispenser) error {
	var expr string
	switch d.CountRemainingArgs() {
	case 0:
		return d.Errf("require: want an expression, e.g. require `\"admins\" in groups`")
	case 1:
		d.NextArg()
		expr = d.Val()
	default:
		expr = strings.Join(d.RemainingArgsRaw(), " ")
	}
	h.Require = append(h.Require, expr)
	return nil
}
