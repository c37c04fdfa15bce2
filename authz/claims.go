package authz

import (
	"errors"
	"fmt"
	"strings"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
)

// Claims are the verified claims of a token. They may be shared between
// requests (see Cache): treat them as read-only. The registered and Cognito
// claims the checks need are decoded, strictly typed, once; any other claim
// is read on demand from the verified payload by Get.
type Claims struct {
	Issuer   string
	Subject  string
	TokenUse string
	ClientID string
	// Username is "username" (access tokens) or else "cognito:username"
	// (ID tokens).
	Username string
	// Audience is "aud" (string or array); HasAudience tells an absent
	// claim from an empty array.
	Audience    []string
	HasAudience bool
	// Scope is the "scope" claim verbatim; Scopes are its space-separated
	// items plus the items of "scp".
	Scope  string
	Scopes []string
	Groups []string

	Expires, NotBefore, IssuedAt          int64
	HasExpires, HasNotBefore, HasIssuedAt bool

	// KeyID and Algorithm of the verifying key, for logs.
	KeyID     string
	Algorithm string

	payload []byte    // the verified payload JSON
	key     *jwks.Key // the key that verified the signature
}

// maxNumericDate is 9999-12-31T23:59:59Z. Larger or negative values are
// type confusion, not dates.
const maxNumericDate = 253402300799

// parseClaims decodes a verified payload with strict types: a claim of the
// wrong JSON type is an error, never coerced.
func parseClaims(payload []byte) (*Claims, error) {
	var buf [32]member
	members, err := scanObject(payload, buf[:0])
	if err != nil {
		return nil, err
	}
	c := &Claims{payload: payload}
	var cognitoUsername string
	for _, m := range members {
		switch m.key {
		case "iss":
			c.Issuer, err = stringClaim(m)
		case "sub":
			c.Subject, err = stringClaim(m)
		case "token_use":
			c.TokenUse, err = stringClaim(m)
		case "client_id":
			c.ClientID, err = stringClaim(m)
		case "username":
			c.Username, err = stringClaim(m)
		case "cognito:username":
			cognitoUsername, err = stringClaim(m)
		case "aud":
			c.HasAudience = true
			switch m.kind {
			case kindString:
				var a string
				a, err = decodeString(m.raw)
				c.Audience = []string{a}
			case kindArray:
				err = forEachArrayString(m.raw, func(s string) { c.Audience = append(c.Audience, s) })
			default:
				err = errors.New("must be a string or an array of strings")
			}
		case "scope":
			c.Scope, err = stringClaim(m)
			c.Scopes = append(c.Scopes, strings.Fields(c.Scope)...)
		case "scp":
			// Some issuers put scopes in "scp", as a string or an array;
			// API Gateway reads either claim.
			switch m.kind {
			case kindString:
				var s string
				s, err = decodeString(m.raw)
				c.Scopes = append(c.Scopes, strings.Fields(s)...)
			case kindArray:
				err = forEachArrayString(m.raw, func(s string) { c.Scopes = append(c.Scopes, s) })
			default:
				err = errors.New("must be a string or an array of strings")
			}
		case "cognito:groups":
			if m.kind != kindArray {
				err = errors.New("must be an array of strings")
				break
			}
			err = forEachArrayString(m.raw, func(s string) { c.Groups = append(c.Groups, s) })
		case "exp":
			c.Expires, err = dateClaim(m)
			c.HasExpires = true
		case "nbf":
			c.NotBefore, err = dateClaim(m)
			c.HasNotBefore = true
		case "iat":
			c.IssuedAt, err = dateClaim(m)
			c.HasIssuedAt = true
		}
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", quoteForError(m.key), err)
		}
	}
	if c.Username == "" {
		c.Username = cognitoUsername
	}
	return c, nil
}

func stringClaim(m member) (string, error) {
	if m.kind != kindString {
		return "", errors.New("must be a string")
	}
	return decodeString(m.raw)
}

// dateClaim reads a NumericDate. Cognito writes integers; fractions,
// exponents, negative or absurd values are rejected rather than rounded.
func dateClaim(m member) (int64, error) {
	if m.kind != kindNumber {
		return 0, errors.New("must be a number")
	}
	if len(m.raw) > 12 {
		return 0, errors.New("out of range")
	}
	var v int64
	for _, c := range m.raw {
		if c < '0' || c > '9' {
			return 0, errors.New("must be a non-negative integer")
		}
		v = v*10 + int64(c-'0')
	}
	if v > maxNumericDate {
		return 0, errors.New("out of range")
	}
	return v, nil
}

// Get returns a claim rendered as a header value: strings verbatim, numbers
// in their JSON decimal form, booleans "true"/"false", arrays of strings
// comma-joined, objects as JSON text. An absent or null claim is absent.
func (c *Claims) Get(name string) (string, bool) {
	switch name {
	case "iss":
		return c.Issuer, c.Issuer != ""
	case "sub":
		return c.Subject, c.Subject != ""
	case "token_use":
		return c.TokenUse, c.TokenUse != ""
	case "client_id":
		return c.ClientID, c.ClientID != ""
	case "scope":
		return c.Scope, c.Scope != ""
	case "cognito:groups":
		return strings.Join(c.Groups, ","), len(c.Groups) > 0
	case "aud":
		return strings.Join(c.Audience, ","), len(c.Audience) > 0
	}
	var buf [32]member
	members, err := scanObject(c.payload, buf[:0])
	if err != nil {
		return "", false
	}
	for _, m := range members {
		if m.key == name {
			return render(m)
		}
	}
	return "", false
}

// Each calls fn for every claim, rendered as by Get.
func (c *Claims) Each(fn func(name, value string)) {
	var buf [32]member
	members, err := scanObject(c.payload, buf[:0])
	if err != nil {
		return
	}
	for _, m := range members {
		if v, ok := render(m); ok {
			fn(m.key, v)
		}
	}
}

func render(m member) (string, bool) {
	switch m.kind {
	case kindString:
		s, err := decodeString(m.raw)
		return s, err == nil
	case kindNumber, kindBool, kindObject:
		return string(m.raw), true
	case kindArray:
		var parts []string
		if err := forEachArrayString(m.raw, func(s string) { parts = append(parts, s) }); err != nil {
			return string(m.raw), true
		}
		return strings.Join(parts, ","), len(parts) > 0
	}
	return "", false
}
