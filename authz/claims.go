package authz

import (
	"strings"
)

// Claims are the verified claims of a token, as one request sees them.
// Their slices and strings may be shared with other requests (see Cache):
// treat them as read-only. The registered and Cognito claims the checks
// need are decoded, strictly typed, once per token; any other claim is
// read on demand from the verified token's payload by Get and Each.
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

	token string // the verified token: other claims are read from its payload
	e     *entry // the decoded claims (possibly cached and shared)
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
		if c.e != nil {
			return c.e.sh.groupsHeader, len(c.Groups) > 0
		}
		return strings.Join(c.Groups, ","), len(c.Groups) > 0
	case "aud":
		if c.e != nil {
			return c.e.sh.audHeader, len(c.Audience) > 0
		}
		return strings.Join(c.Audience, ","), len(c.Audience) > 0
	case "username":
		// Exactly one of the two username claims present: Username is it.
		if c.e != nil && c.e.bits&(hasUsername|hasCognitoUsername) == hasUsername {
			return c.Username, true
		}
	case "cognito:username":
		if c.e != nil && c.e.bits&(hasUsername|hasCognitoUsername) == hasCognitoUsername {
			return c.Username, true
		}
	}
	payload, ok := c.payload()
	if !ok {
		return "", false
	}
	var buf [32]member
	members, err := scanObject(payload, buf[:0])
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
	payload, ok := c.payload()
	if !ok {
		return
	}
	var buf [32]member
	members, err := scanObject(payload, buf[:0])
	if err != nil {
		return
	}
	for _, m := range members {
		if v, ok := render(m); ok {
			fn(m.key, v)
		}
	}
}

// payload decodes the verified payload (into a new buffer: the member
// names scanned from it alias it).
func (c *Claims) payload() ([]byte, bool) {
	seg := c.token
	i := strings.IndexByte(seg, '.')
	if i < 0 {
		return nil, false
	}
	seg = seg[i+1:]
	if i = strings.IndexByte(seg, '.'); i < 0 {
		return nil, false
	}
	seg = seg[:i]
	out, err := decodeSegment(seg, make([]byte, b64.DecodedLen(len(seg))))
	return out, err == nil
}

// PlaceholderValues returns "sub", the username ("username", else
// "cognito:username"), the client id ("client_id", else "aud") and
// "token_use" as interface values, for an interface-typed API (Caddy's
// replacer). The client id and token_use values are made once per set of
// tokens that share them, so they cost no allocation per request.
func (c *Claims) PlaceholderValues() (id, username, clientID, tokenUse any) {
	if c.e != nil {
		return c.Subject, c.Username, c.e.sh.clientIDAny, c.e.sh.tokenUseAny
	}
	cid, _ := c.Get("client_id")
	if cid == "" {
		cid, _ = c.Get("aud")
	}
	return c.Subject, c.Username, cid, c.TokenUse
}

// IssuerValue returns "iss" as an interface value for Caddy's replacer,
// made once per set of tokens that share it (no allocation per request).
func (c *Claims) IssuerValue() any {
	if c.e != nil {
		return c.e.sh.issuerAny
	}
	return c.Issuer
}

func render(m member) (string, bool) {
	switch m.kind {
	case kindString:
		s, err := decodeString(m.raw)
		return s, err == nil
	case kindNumber, kindBool, kindObject:
		return string(m.raw), true
	case kindArray:
		var pbuf [8]string
		parts, err := appendArrayStrings(pbuf[:0], m.raw)
		if err != nil {
			return string(m.raw), true
		}
		return strings.Join(parts, ","), len(parts) > 0
	}
	return "", false
}
