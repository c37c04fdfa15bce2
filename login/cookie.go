package login

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Cookie chunking, after the ALB: a sealed session larger than one cookie
// is split into <name>-0, <name>-1, … so that every Set-Cookie line stays
// below 4096 bytes, the limit browsers are required to support per cookie
// (RFC 6265 §6.1).
const (
	// setCookieBudget bounds name=value of one chunk; the attributes
	// (Path, Max-Age, HttpOnly, Secure, SameSite) add under 96 bytes.
	setCookieBudget = 4000
	// MaxChunks bounds a session at 8 cookies (about 31 KiB). Cookie
	// headers beyond 32 KiB are refused by many servers; a session that
	// large is a token problem to fix at the identity provider.
	MaxChunks = 8
)

var errTooLarge = errors.New("login: session too large for the cookie chunks; request fewer scopes or claims")

// chunkName is the name of chunk i.
func chunkName(name string, i int) string { return name + "-" + strconv.Itoa(i) }

// readChunks joins <name>-0, <name>-1, … from the request, stopping at the
// first missing index. A chunk sent twice makes the whole session invalid
// (two cookies of one name are how cookie tossing from a sibling domain
// looks). ok is false when there is no chunk 0.
func readChunks(r *http.Request, name string) (value string, present int, ok bool, err error) {
	var parts [MaxChunks]string
	var seen [MaxChunks]bool
	prefix := name + "-"
	for _, c := range r.Cookies() {
		rest, found := strings.CutPrefix(c.Name, prefix)
		if !found || len(rest) != 1 || rest[0] < '0' || rest[0] >= '0'+MaxChunks {
			continue
		}
		i := int(rest[0] - '0')
		if seen[i] {
			return "", 0, true, errors.New("login: session cookie chunk sent twice")
		}
		seen[i], parts[i] = true, c.Value
	}
	n := 0
	for n < MaxChunks && seen[n] {
		n++
	}
	present = n
	for i := n; i < MaxChunks; i++ {
		if seen[i] {
			present = i + 1
		}
	}
	if n == 0 {
		return "", present, present > 0, nil
	}
	var b strings.Builder
	for i := range n {
		b.WriteString(parts[i])
	}
	return b.String(), present, true, nil
}

// cookieAttrs are the attributes of every cookie we set: the session must
// not be readable by scripts (HttpOnly), sent over plain HTTP (Secure) or
// sent on cross-site subrequests (SameSite=Lax; Lax rather than Strict so
// the top-level navigation back from the identity provider carries it).
func newCookie(name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	}
}

// writeChunks sets the sealed value as chunks and expires any chunk of an
// older, larger session the request still carried.
func writeChunks(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) error {
	per := setCookieBudget - len(name) - len("-0=")
	n := (len(value) + per - 1) / per
	if n > MaxChunks {
		return errTooLarge
	}
	age := int(maxAge / time.Second)
	if age < 1 {
		age = 1
	}
	for i := range n {
		end := min((i+1)*per, len(value))
		http.SetCookie(w, newCookie(chunkName(name, i), value[i*per:end], "/", age))
	}
	_, present, _, _ := readChunks(r, name)
	for i := n; i < present; i++ {
		http.SetCookie(w, newCookie(chunkName(name, i), "", "/", -1))
	}
	return nil
}

// clearChunks expires every chunk the request carried (at least chunk 0,
// so a logout clears a session whose cookies the request did not show).
func clearChunks(w http.ResponseWriter, r *http.Request, name string) {
	_, present, _, _ := readChunks(r, name)
	present = max(present, 1)
	for i := range present {
		http.SetCookie(w, newCookie(chunkName(name, i), "", "/", -1))
	}
}

// removeCookies deletes from the request every cookie for which drop is
// true, keeping the others in their order: the backend must never see the
// session or the sign-in state.
func removeCookies(r *http.Request, drop func(name string) bool) {
	lines := r.Header.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	var kept []string
	changed := false
	for _, line := range lines {
		for _, part := range strings.Split(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" {
				continue
			}
			name, _, _ := strings.Cut(p, "=")
			if drop(strings.TrimSpace(name)) {
				changed = true
				continue
			}
			kept = append(kept, p)
		}
	}
	if !changed {
		return
	}
	r.Header.Del("Cookie")
	if len(kept) > 0 {
		r.Header.Set("Cookie", strings.Join(kept, "; "))
	}
}
