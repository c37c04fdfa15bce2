package config

import "strings"

// This file is the one place that decides what an identity header is —
// a request header through which the backend learns who is calling — and
// what value one may carry. Stripping inbound headers, Connection-header
// hygiene, request trailers and placeholders all ask it, so a name added
// here is covered by every one of them at once.

// identityHeaderPrefixes are name prefixes (in NormalizeHeaderName form)
// under which every header is an identity header, configured or not: the
// defaults and anything added to them later (X-Cognito-Issuer, …) are
// covered without being listed.
var identityHeaderPrefixes = []string{
	"x-cognito-",
}

// identityHeaderNames are identity headers outside the prefixes that are
// always stripped, whatever the configuration (NormalizeHeaderName form).
// Headers a backend may trust for identity join here with one line each,
// e.g. the ALB's x-amzn-oidc-accesstoken, -identity and -data.
var identityHeaderNames = []string{"x-amzn-oidc-accesstoken", "x-amzn-oidc-identity", "x-amzn-oidc-data"}

// IdentityHeaders decides whether a header name is an identity header: one
// under an identity prefix (X-Cognito-*), one of the fixed identity names,
// or one of the configured claim headers — in every spelling a backend may
// fold together (NormalizeHeaderName: any case, '_' or '.' for '-').
// The zero value knows the prefixes and fixed names only. It is immutable
// after construction and safe for concurrent use.
type IdentityHeaders struct {
	names map[string]bool // normalized
}

// NewIdentityHeaders returns the identity headers: the fixed ones plus the
// given header names (typically the claim headers of HeaderRules).
func NewIdentityHeaders(headers ...string) *IdentityHeaders {
	s := &IdentityHeaders{names: map[string]bool{}}
	for _, n := range identityHeaderNames {
		s.names[NormalizeHeaderName(n)] = true
	}
	for _, h := range headers {
		s.names[NormalizeHeaderName(h)] = true
	}
	return s
}

// Is reports whether name is an identity header.
//
// It is on every request's path, so it does not allocate for ASCII names
// of up to 128 bytes: it folds byte by byte with a table made from
// NormalizeHeaderName itself, and leaves any other name to it.
func (s *IdentityHeaders) Is(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 0x80 || headerFold[c] == 0 {
			return s.isNormal(NormalizeHeaderName(name))
		}
	}
	for _, p := range identityHeaderPrefixes {
		if hasFoldedPrefix(name, p) {
			return true
		}
	}
	if s == nil || len(s.names) == 0 {
		return false
	}
	var buf [128]byte
	if len(name) > len(buf) {
		return s.names[NormalizeHeaderName(name)]
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		b[i] = headerFold[name[i]]
	}
	return s.names[string(b)]
}

// isNormal is Is for a name already in NormalizeHeaderName form.
func (s *IdentityHeaders) isNormal(n string) bool {
	for _, p := range identityHeaderPrefixes {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return s != nil && s.names[n]
}

// hasFoldedPrefix reports whether the ASCII name, folded with headerFold,
// starts with the normalized prefix p.
func hasFoldedPrefix(name, p string) bool {
	if len(name) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if headerFold[name[i]] != p[i] {
			return false
		}
	}
	return true
}

// headerFold[c] is NormalizeHeaderName of the ASCII byte c, or 0 if that
// is not a single byte (or c is NUL): such names take the slow path.
var headerFold = func() (t [128]byte) {
	for c := 1; c < 128; c++ {
		if n := NormalizeHeaderName(string(rune(c))); len(n) == 1 {
			t[c] = n[0]
		}
	}
	return t
}()

// ForwardableValue reports whether v may be forwarded as the value of an
// identity header or placeholder. Control characters (other than tab)
// could split or smuggle headers; a leading or trailing space or tab
// would be trimmed by the backend's HTTP parser (RFC 9110 §5.5), so that
// " admin\t" would arrive as "admin" and a user able to edit a claim could
// pose as another. Such values are dropped, as an absent claim is.
func ForwardableValue(v string) bool {
	if v != "" {
		if c := v[0]; c == ' ' || c == '\t' {
			return false
		}
		if c := v[len(v)-1]; c == ' ' || c == '\t' {
			return false
		}
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
