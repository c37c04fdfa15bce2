package policy

import (
	"errors"
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
	p   *Policy
	c   *authz.Claims
	r   Request // a copy: the caller's Request does not escape
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
	buf := s.buf
	if cap(buf) > maxPooledBuffer {
		buf = nil // a rare huge token: let it go
	}
	*s = state{p: s.p, segs: s.segs[:0], buf: buf}
}

// eval runs prg: true, or false with the evaluation error if there was one.
func (s *state) eval(prg *program) (bool, error) {
	run := prg.fast
	if run == nil || s.r.size(prg.usesHeaders) > s.p.maxRequestBytes {
		run = prg.tracked
	}
	out, _, err := run.Eval(s)
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
		return types.String(s.r.Method), true
	case varHost:
		return types.String(hostName(s.r.Host)), true
	case varPath:
		return types.String(s.r.Path), true
	case varPathSegments:
		if s.segments(); s.segsErr != nil {
			return types.WrapErr(s.segsErr), true
		}
		return segmentList{s}, true
	case varQuery:
		if s.query == nil {
			s.query = types.NewStringStringMap(types.DefaultTypeAdapter, s.p.hide.queryMap(s.r.RawQuery))
		}
		return s.query, true
	case varHeaders:
		if s.headers == nil {
			s.headers = types.NewStringStringMap(types.DefaultTypeAdapter, s.p.hide.headerMap(s.r.Header))
		}
		return s.headers, true
	case varRemoteIP:
		return types.String(s.r.RemoteIP), true
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
		s.segs, s.segsErr = appendSegments(s.segs[:0], s.r.EscapedPath)
	}
}

// maxPooledBuffer: payload buffers up to this size are kept with the
// pooled state (Cognito tokens are 1-4 KiB).
const maxPooledBuffer = 16 << 10

var _ interpreter.Activation = (*state)(nil)
