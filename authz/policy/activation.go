package policy

import (
	"errors"
	"fmt"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/caddy-cognito/caddy-cognito/authz"
)

// state is the activation of one Check: the claims and the request, and
// what has been derived from them so far. States are pooled per Policy, so
// a Check allocates only what its expressions actually read.
type state struct {
	p *Policy
	c *authz.Claims
	r Request // a copy: the caller's Request does not escape
	// now is read from the clock on first use, once per Check, so every
	// expression sees the same instant.
	now time.Time

	// claims: the payload, decoded on first use. It and the strings read
	// from it alias buf, which the next Check reuses: nothing made from
	// them may outlive this one (Check formats its denial before release).
	payload  authz.Payload
	buf      []byte
	started  bool
	claimMap ref.Val // the whole map, built only for iteration and the like
	// memo holds the claims converted so far: an expression that reads a
	// list claim inside a loop converts it once, not once per iteration.
	memo []memoClaim

	// path_segments, split on first use.
	segs     []string
	segsDone bool
	segsErr  error
	segList  ref.Val // the whole list, built only for what Get/Size do not cover

	headers, query ref.Val
}

func (s *state) reset(c *authz.Claims, r *Request) {
	s.c, s.r = c, *r
}

// release drops every reference to the request, keeping the buffers.
func (s *state) release() {
	clear(s.segs)
	clear(s.memo)
	buf := s.buf
	if cap(buf) > maxPooledBuffer {
		buf = nil // a rare huge token: let it go
	}
	*s = state{p: s.p, segs: s.segs[:0], memo: s.memo[:0], buf: buf}
}

// eval runs prg: true, or false with the evaluation error if there was one.
func (s *state) eval(prg *program) (bool, error) {
	out, _, err := prg.prg.Eval(s)
	if err != nil {
		return false, err
	}
	if out != types.True {
		if out.Type() != types.BoolType {
			return false, errors.New("result is not a bool")
		}
		return false, nil
	}
	return true, nil
}

// ResolveName implements interpreter.Activation. Values are made on
// demand; the containers are views over the state, not copies.
func (s *state) ResolveName(name string) (any, bool) {
	switch name {
	case varClaims:
		return claimsMap{s}, true
	case varScopes:
		return types.NewStringList(types.DefaultTypeAdapter, s.c.Scopes), true
	case varGroups:
		return types.NewStringList(types.DefaultTypeAdapter, s.c.Groups), true
	case varTokenUse:
		return types.String(s.c.TokenUse), true
	case varIssuer:
		return types.String(s.c.Issuer), true
	case varNow:
		if s.now.IsZero() {
			s.now = s.p.now()
		}
		return types.Timestamp{Time: s.now}, true
	case varMethod:
		return requestString(name, s.r.Method), true
	case varHost:
		return requestString(name, hostName(s.r.Host)), true
	case varPath:
		return requestString(name, s.r.Path), true
	case varPathSegments:
		if s.segments(); s.segsErr != nil {
			return types.WrapErr(s.segsErr), true
		}
		return segmentList{s}, true
	case varQuery:
		if s.query == nil {
			s.query = requestMap(name, s.p.hide.queryMap(s.r.RawQuery))
		}
		return s.query, true
	case varHeaders:
		if s.headers == nil {
			s.headers = requestMap(name, s.p.hide.headerMap(s.r.Header))
		}
		return s.headers, true
	case varRemoteIP:
		return requestString(name, s.r.RemoteIP), true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (s *state) Parent() interpreter.Activation { return nil }

// claims returns the verified payload, set up on first use.
func (s *state) claims() *authz.Payload {
	if !s.started {
		s.started = true
		s.c.Payload(&s.payload, s.buf)
		s.buf = s.payload.Buffer()
	}
	return &s.payload
}

func (s *state) segments() {
	if !s.segsDone {
		s.segsDone = true
		if len(s.r.EscapedPath) > maxRequestString {
			s.segsErr = tooLarge(varPathSegments)
			return
		}
		s.segs, s.segsErr = appendSegments(s.segs[:0], s.r.EscapedPath)
		if s.segsErr == nil && len(s.segs) > maxRequestItems {
			s.segsErr = tooLarge(varPathSegments)
		}
	}
}

// requestString is a request fact as a CEL string, or an error if it is
// larger than the compile-time worst case assumed.
func requestString(name, v string) ref.Val {
	if len(v) > maxRequestString {
		return types.WrapErr(tooLarge(name))
	}
	return types.String(v)
}

// requestMap is a request map as a CEL map, or an error if it is larger
// than the compile-time worst case assumed.
func requestMap(name string, m map[string]string) ref.Val {
	if len(m) > maxRequestItems {
		return types.WrapErr(tooLarge(name))
	}
	for k, v := range m {
		if len(k) > maxRequestString || len(v) > maxRequestString {
			return types.WrapErr(tooLarge(name))
		}
	}
	return types.NewStringStringMap(types.DefaultTypeAdapter, m)
}

func tooLarge(name string) error {
	return fmt.Errorf("%s is larger than a policy may read (%d entries, %d bytes each)", name, maxRequestItems, maxRequestString)
}

type memoClaim struct {
	name string
	val  ref.Val
}

// maxMemo bounds the memo: expressions read a handful of claims.
const maxMemo = 16

// claim returns the named claim as a CEL value, converting it on first
// use.
func (s *state) claim(name string) (ref.Val, bool) {
	for _, m := range s.memo {
		if m.name == name {
			return m.val, true
		}
	}
	raw, found := s.claims().Claim(name)
	if !found {
		return nil, false
	}
	v := jsonValue(raw)
	if len(s.memo) < maxMemo {
		s.memo = append(s.memo, memoClaim{name, v})
	}
	return v, true
}

// maxPooledBuffer: payload buffers up to this size are kept with the
// pooled state (Cognito tokens are 1-4 KiB).
const maxPooledBuffer = 16 << 10

var _ interpreter.Activation = (*state)(nil)
