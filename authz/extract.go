package authz

import (
	"net/http"
	"strings"

	"github.com/caddy-cognito/caddy-cognito/config"
)

// ExtractToken reads the token from where src says. From a header, both
// "Bearer <jwt>" (scheme case-insensitive, one space) and a bare "<jwt>"
// are accepted, as API Gateway does. More than one token (two headers, two
// cookies or two query parameters of the name) is refused rather than
// guessed at: a proxy and the backend could pick different ones.
func ExtractToken(r *http.Request, src config.TokenSource) (string, *Error) {
	switch src.From {
	case config.SourceCookie:
		// eachCookie reads cookies as r.Cookies() does, and StripToken
		// strips with it too (credential.go).
		var tok string
		n := 0
		eachCookie(r.Header["Cookie"], func(_, name, value string, valid bool) {
			if valid && name == src.Name {
				tok = value
				n++
			}
		})
		if n > 1 {
			return "", errMultipleTokens
		}
		if tok == "" {
			return "", errMissing
		}
		return tok, nil
	case config.SourceQuery:
		vals := r.URL.Query()[src.Name]
		if len(vals) > 1 {
			return "", errMultipleTokens
		}
		if len(vals) == 0 || vals[0] == "" {
			return "", errMissing
		}
		return vals[0], nil
	}
	vals := r.Header.Values(src.Name)
	switch len(vals) {
	case 0:
		return "", errMissing
	case 1:
	default:
		return "", errMultipleTokens
	}
	return parseAuthorization(vals[0])
}

// parseAuthorization accepts "Bearer <token>" and "<token>". Anything with
// other whitespace (tabs, several spaces, a second credential) is
// malformed: being lenient here only makes room for parser differentials.
func parseAuthorization(v string) (string, *Error) {
	if v == "" {
		return "", errMissing
	}
	tok := v
	if len(v) >= 6 && strings.EqualFold(v[:6], "bearer") {
		switch {
		case len(v) == 6:
			return "", errMissing
		case v[6] == ' ':
			tok = v[7:]
			if tok == "" {
				return "", errMissing
			}
		case v[6] == '\t':
			return "", errMalformedBearer
		}
	}
	for i := 0; i < len(tok); i++ {
		switch tok[i] {
		case ' ', '\t', '\r', '\n', ',':
			return "", errMalformedBearer
		}
	}
	return tok, nil
}
