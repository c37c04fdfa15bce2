package login

import (
	"net/url"
	"strings"
)

// maxRedirectBytes bounds the remembered URL (it travels in the state
// cookie).
const maxRedirectBytes = 2048

// SafeRedirect returns target if it is a path on this site, else "/". It
// is applied to the URL remembered at sign-in, which comes from the
// request line, so an attacker chooses it: `GET //evil.example/` must not
// end in `Location: //evil.example/`.
//
// Refused (the history of open redirects in sign-in proxies, e.g.
// CVE-2020-5233 and GHSA-j7px-6hwj-hpjg in oauth2-proxy): anything not
// starting with one '/', "//host", "/\host" (browsers read '\' as '/'),
// absolute URLs, any backslash, whitespace or control character (browsers
// drop tabs and newlines, turning "/\t/evil" into "//evil"), non-ASCII,
// and all of these percent-encoded, once or several times.
func SafeRedirect(target string) string {
	if safeRedirect(target) {
		return target
	}
	return "/"
}

func safeRedirect(s string) bool {
	if s == "" || len(s) > maxRedirectBytes || s[0] != '/' {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil || u.Fragment != "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	// The path, decoded as often as it still changes: "/%2F%2Fevil" and
	// "/%5Cevil" are refused like their decoded forms. The query only has
	// to be free of raw specials (checked above): it cannot move the host.
	d, _, _ := strings.Cut(s, "?")
	for range 4 {
		if len(d) > 1 && (d[1] == '/' || d[1] == '\\') {
			return false
		}
		for i := 0; i < len(d); i++ {
			if c := d[i]; c <= ' ' || c >= 0x7f || c == '\\' {
				return false
			}
		}
		next, err := url.PathUnescape(d)
		if err != nil {
			return false
		}
		if next == d {
			return true
		}
		d = next
	}
	// Still changing after four decodings: nobody links like that.
	return false
}
