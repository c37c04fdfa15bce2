package authz

import (
	"errors"
	"net/http"
	"strings"
)

// Kind classifies a denial. Each kind has one HTTP answer.
type Kind uint8

const (
	// KindMissing: the request carries no token. 401, bare challenge.
	KindMissing Kind = iota + 1
	// KindInvalid: the token failed a check. 401, error="invalid_token".
	KindInvalid
	// KindInsufficientScope: a valid token without a required scope or
	// group. 403, error="insufficient_scope".
	KindInsufficientScope
	// KindUnavailable: no keys could be loaded yet, so nothing can be
	// verified. 503 with Retry-After; never a 401 the client would act on.
	KindUnavailable
)

func (k Kind) String() string {
	switch k {
	case KindMissing:
		return "missing"
	case KindInvalid:
		return "invalid_token"
	case KindInsufficientScope:
		return "insufficient_scope"
	case KindUnavailable:
		return "unavailable"
	}
	return "unknown"
}

// Status is the HTTP status of the kind.
func (k Kind) Status() int {
	switch k {
	case KindInsufficientScope:
		return http.StatusForbidden
	case KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

// Error is a denial: a kind, a short public description fit for
// error_description (lower case, never echoing the token), and the detail
// for the log.
type Error struct {
	Kind Kind
	// Description is public: it goes to the client.
	Description string
	// Reason is a stable, low-cardinality name for metrics and logs, e.g.
	// "expired", "bad_signature", "unknown_kid".
	Reason string
	// Err is the detail, for logs only.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Description + ": " + e.Err.Error()
	}
	return e.Description
}

func (e *Error) Unwrap() error { return e.Err }

// AsError returns err as an *Error; any other error becomes an invalid
// token, so no unexpected failure can be mistaken for success.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindInvalid, Description: "token is invalid", Reason: "internal", Err: err}
}

func invalid(reason, desc string, err error) *Error {
	return &Error{Kind: KindInvalid, Reason: reason, Description: desc, Err: err}
}

// Denials with fixed wording. Descriptions reuse API Gateway's words where
// they are known ("token contains an invalid number of segments", "the token
// does not have a valid audience", "issuer does not match") and otherwise
// the golang-jwt wording API Gateway's logs suggest.
var (
	errMissing          = &Error{Kind: KindMissing, Reason: "missing", Description: "token not provided"}
	errSegments         = invalid("malformed", "token contains an invalid number of segments", nil)
	errTooLarge         = invalid("too_large", "token is too large", nil)
	errUnavailable      = &Error{Kind: KindUnavailable, Reason: "keys_unavailable", Description: "signing keys are not available yet"}
	errUnknownKID       = invalid("unknown_kid", "token signing key is not known", nil)
	errBadSignature     = invalid("bad_signature", "token signature is invalid", nil)
	errIssuer           = invalid("issuer", "issuer does not match", nil)
	errAudience         = invalid("audience", "the token does not have a valid audience", nil)
	errExpired          = invalid("expired", "token is expired", nil)
	errNotYetValid      = invalid("not_yet_valid", "token is not valid yet", nil)
	errIssuedInFuture   = invalid("issued_in_future", "token used before issued", nil)
	errTokenUse         = invalid("token_use", "token_use is not allowed", nil)
	errMultipleTokens   = invalid("multiple_tokens", "request carries more than one token", nil)
	errMalformedBearer  = invalid("malformed", "authorization header is malformed", nil)
	errInsufficientScop = &Error{Kind: KindInsufficientScope, Reason: "scope", Description: "the token does not have a required scope"}
	errInsufficientGrp  = &Error{Kind: KindInsufficientScope, Reason: "group", Description: "the token does not have a required group"}
)

func malformed(desc string, err error) *Error { return invalid("malformed", desc, err) }

// Challenge returns the WWW-Authenticate value for the denial (RFC 6750
// §3). requiredScopes fill the scope attribute of an insufficient_scope
// answer.
func (e *Error) Challenge(requiredScopes []string) string {
	switch e.Kind {
	case KindMissing, KindUnavailable:
		return "Bearer"
	case KindInsufficientScope:
		var b strings.Builder
		b.WriteString(`Bearer error="insufficient_scope", error_description="`)
		b.WriteString(e.Description)
		b.WriteString(`"`)
		if len(requiredScopes) > 0 {
			b.WriteString(`, scope="`)
			b.WriteString(strings.Join(requiredScopes, " "))
			b.WriteString(`"`)
		}
		return b.String()
	}
	return `Bearer error="invalid_token", error_description="` + e.Description + `"`
}

// Body is the JSON body API Gateway answers with.
func (e *Error) Body() string {
	switch e.Kind {
	case KindInsufficientScope:
		return `{"message":"Forbidden"}`
	case KindUnavailable:
		return `{"message":"Service Unavailable"}`
	}
	return `{"message":"Unauthorized"}`
}
