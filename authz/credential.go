package authz

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-cognito/caddy-cognito/config"
)

// The credential is read from a cookie or a query parameter by the parsers
// in this file, and StripToken removes it with the very same parsers: a
// spelling that extraction accepts can never be missed by stripping (a
// cookie "token =<jwt>" is read by net/http as "token", so it must be
// stripped as "token" too).

// maxCookies is net/http's default limit on the cookies of a request
// (defaultCookieMaxNum): over it, Request.Cookies returns none.
const maxCookies = 3000

// eachCookie calls fn with every cookie-pair of the Cookie header lines,
// split and trimmed exactly as net/http's Request.Cookies does (Go 1.26
// readCookies): lines and pairs split on ';', space and tab trimmed
// around the pair and around the name. raw is the pair as sent (trimmed),
// name its name; valid says whether net/http would return it as a cookie
// (a token name, a valid possibly-quoted value, within the cookie limit),
// and value is then its value.
func eachCookie(lines []string, fn func(raw, name, value string, valid bool)) {
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	withinLimit := n <= maxCookies
	for _, line := range lines {
		line = trimOWS(line)
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			if part = trimOWS(part); part == "" {
				continue
			}
			name, val, _ := strings.Cut(part, "=")
			name = trimOWS(name)
			val, ok := cookieValue(val)
			fn(part, name, val, ok && withinLimit && config.IsToken(name))
		}
	}
}

// cookieValue is net/http's parseCookieValue with double quotes allowed.
func cookieValue(raw string) (string, bool) {
	if len(raw) > 1 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	for i := 0; i < len(raw); i++ {
		if b := raw[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return "", false
		}
	}
	return raw, true
}

// eachQueryParam calls fn with every '&'-separated segment of a raw
// query, in order. valid says whether url.ParseQuery keeps it (no ';',
// both halves unescape), and key and value are then its unescaped key and
// value. For any other segment, names lists every key a more lenient
// parser could read in it — the raw key, its unescaped form if it has one,
// and the keys of its ';'-separated parts — so that stripping can drop it
// if any of them is the credential's name.
func eachQueryParam(raw string, fn func(seg, key, value string, valid bool, names []string)) {
	for raw != "" {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		if seg == "" {
			continue
		}
		if !strings.Contains(seg, ";") {
			k, v, _ := strings.Cut(seg, "=")
			key, kerr := url.QueryUnescape(k)
			value, verr := url.QueryUnescape(v)
			if kerr == nil && verr == nil {
				fn(seg, key, value, true, nil)
				continue
			}
		}
		var names []string
		for _, part := range strings.Split(seg, ";") {
			k, _, _ := strings.Cut(part, "=")
			names = append(names, k)
			if u, err := url.QueryUnescape(k); err == nil {
				names = append(names, u)
			}
		}
		fn(seg, "", "", false, names)
	}
}

// StripToken removes the credential from the request, from wherever src
// says it is carried: the header; every cookie-pair of that name (valid
// or not, in any spelling net/http reads as that name), keeping the other
// cookies as they were sent; every query segment that names the parameter
// in any reading, keeping the other segments byte for byte, in order,
// parseable or not. With a cookie or query source an Authorization header
// goes too.
func StripToken(r *http.Request, src config.TokenSource) {
	switch src.From {
	case config.SourceHeader:
		r.Header.Del(src.Name)
		return
	case config.SourceCookie:
		var kept []string
		eachCookie(r.Header.Values("Cookie"), func(raw, name, _ string, _ bool) {
			if name != src.Name {
				kept = append(kept, raw)
			}
		})
		r.Header.Del("Cookie")
		if len(kept) > 0 {
			r.Header.Set("Cookie", strings.Join(kept, "; "))
		}
	case config.SourceQuery:
		var kept []string
		eachQueryParam(r.URL.RawQuery, func(seg, key, _ string, valid bool, names []string) {
			if valid && key == src.Name {
				return
			}
			for _, n := range names {
				if n == src.Name {
					return
				}
			}
			kept = append(kept, seg)
		})
		r.URL.RawQuery = strings.Join(kept, "&")
	}
	r.Header.Del("Authorization")
}

// trimOWS trims what textproto.TrimString does: space, tab, CR and LF.
func trimOWS(s string) string {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
