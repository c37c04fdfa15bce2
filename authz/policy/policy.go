// Package policy evaluates a route's `require` rules: boolean CEL
// expressions (the language of Caddy's `expression` matcher) over the
// verified claims of a token and facts about the request. Every expression
// must be true; anything else, an evaluation error included, denies with
// 403 and the reason "policy".
//
// Expressions are parsed, type-checked and planned once, by Compile; the
// per-request work is the evaluation alone. Variables are resolved lazily
// from a pooled activation: a claim is read from the verified payload only
// if an expression asks for it, and the request facts are plain strings
// until an expression reads them, so a typical rule costs well under a
// microsecond and a few small allocations.
//
// Like package authz, it does not import Caddy: the handler hands it a
// Request value.
package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/config"
)

// Reason is the metrics and log reason of a policy denial.
const Reason = "policy"

// Description is the public error_description of a policy denial.
const Description = "the token does not satisfy the route policy"

// CostLimit bounds the cost of every evaluation of one expression, in CEL
// cost units (about one per value visited or compared; a string comparison
// costs a tenth of its length). It is enforced when the expression is
// compiled: its worst case, over the largest token the handler accepts and
// the largest request facts the policy lets it read (see maxRequestItems,
// maxRequestString), must be within the limit, or the configuration is
// refused. Typical rules cost a few to a few thousand units at worst; a loop
// over the claims of a 16 KiB token about 70 000; a nested loop over the
// request's headers is refused.
const CostLimit = 100_000

// maxExpressions and maxExpressionBytes keep a configuration from planning
// unbounded programs.
const (
	maxExpressions     = 64
	maxExpressionBytes = 4096
)

// Policy is a compiled list of require expressions. It is safe for
// concurrent use.
type Policy struct {
	progs []*program
	now   func() time.Time
	hide  hidden
	pool  sync.Pool // *state
}

// Option configures a Policy.
type Option func(*options)

type options struct {
	now           func() time.Time
	tokenSource   config.TokenSource
	maxTokenBytes int
}

// WithClock sets the clock behind `now` (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithTokenSource names where the token is carried (default the
// Authorization header), so that the credential is never visible to an
// expression: that header, cookie or query parameter is hidden from
// request.headers and request.query.
func WithTokenSource(ts config.TokenSource) Option {
	return func(o *options) { o.tokenSource = ts }
}

// WithMaxTokenBytes is the largest token the authorizer accepts (default
// config.DefaultMaxTokenBytes): it bounds the size of every claim, and so
// the compile-time worst case of expressions over claims.
func WithMaxTokenBytes(n int) Option { return func(o *options) { o.maxTokenBytes = n } }

// Compile parses, type-checks and plans exprs. An error names the
// expression (by index and text) and carries CEL's message, with the
// position in the expression. No expressions compile to a nil Policy,
// whose Check allows.
func Compile(exprs []string, opts ...Option) (*Policy, error) {
	if len(exprs) == 0 {
		return nil, nil
	}
	if len(exprs) > maxExpressions {
		return nil, fmt.Errorf("require: at most %d expressions, got %d", maxExpressions, len(exprs))
	}
	o := options{
		now:           time.Now,
		tokenSource:   config.TokenSource{From: config.SourceHeader, Name: "Authorization"},
		maxTokenBytes: config.DefaultMaxTokenBytes,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxTokenBytes <= 0 {
		o.maxTokenBytes = config.DefaultMaxTokenBytes
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("require: setting up CEL: %w", err)
	}
	p := &Policy{now: o.now, hide: newHidden(o.tokenSource)}
	est := sizeEstimator{tokenBytes: uint64(o.maxTokenBytes)}
	for i, src := range exprs {
		prg, err := compile(env, est, src)
		if err != nil {
			return nil, &CompileError{Index: i, Expr: src, Err: err}
		}
		prg.index = i
		p.progs = append(p.progs, prg)
	}
	p.pool.New = func() any { return &state{p: p} }
	return p, nil
}

// CompileError is the error of one expression that does not compile: a
// syntax or type error (CEL's message, with the position), a result that
// is not a bool, or a worst-case cost over CostLimit.
type CompileError struct {
	Index int    // in the list given to Compile
	Expr  string // the expression
	Err   error
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("require[%d] %s: %v", e.Index, quoteExpr(e.Expr), e.Err)
}

func (e *CompileError) Unwrap() error { return e.Err }

// CheckExpression compiles one expression and reports its error, for
// configuration front ends that report problems where they are written.
func CheckExpression(src string, opts ...Option) error {
	o := options{maxTokenBytes: config.DefaultMaxTokenBytes}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxTokenBytes <= 0 {
		o.maxTokenBytes = config.DefaultMaxTokenBytes
	}
	env, err := newEnv()
	if err != nil {
		return err
	}
	_, err = compile(env, sizeEstimator{tokenBytes: uint64(o.maxTokenBytes)}, src)
	return err
}

// Len is the number of expressions.
func (p *Policy) Len() int {
	if p == nil {
		return 0
	}
	return len(p.progs)
}

// Check evaluates every expression against the verified claims c and the
// request r (which it does not keep), in order, and returns nil if all are true. Otherwise it
// returns a 403 *authz.Error with reason "policy" whose Err names the
// expression that failed and why (false, or the evaluation error); it
// never holds the token. A nil Policy allows.
func (p *Policy) Check(c *authz.Claims, r *Request) *authz.Error {
	if p == nil {
		return nil
	}
	s := p.pool.Get().(*state)
	s.reset(c, r)
	var failed *program
	var evalErr error
	for _, prg := range p.progs {
		ok, err := s.eval(prg)
		if !ok {
			failed, evalErr = prg, err
			break
		}
	}
	var denial *authz.Error
	if failed != nil {
		// The detail is formatted before the state (whose buffers an
		// error's text may point into) goes back to the pool.
		denial = deny(failed, evalErr)
	}
	s.release()
	p.pool.Put(s)
	return denial
}

// deny builds the denial for prg.
func deny(prg *program, err error) *authz.Error {
	var detail error
	if err != nil {
		detail = fmt.Errorf("require[%d] %s: %w", prg.index, prg.quoted, errors.New(err.Error()))
	} else {
		detail = fmt.Errorf("require[%d] %s is false", prg.index, prg.quoted)
	}
	return &authz.Error{Kind: authz.KindInsufficientScope, Reason: Reason, Description: Description, Err: detail}
}

// quoteExpr renders an expression for error messages and logs: in
// backquotes, as it is written in a Caddyfile, on one line.
func quoteExpr(src string) string {
	src = strings.Join(strings.Fields(src), " ")
	if len(src) > 200 {
		src = src[:200] + "…"
	}
	return "`" + src + "`"
}
