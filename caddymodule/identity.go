package caddymodule

import (
	"io"
	"net/http"
	"strings"

	"github.com/caddy-cognito/caddy-cognito/config"
)

// Everything a client could use to change what the backend believes about
// the caller, cleaned on every request before anything else happens. What
// counts as an identity header is decided in one place,
// config.IdentityHeaders; this file applies it to the request's headers,
// its Connection header and its trailers.

// stripIdentity removes every identity header from the request, every
// Connection token naming one, and every identity trailer, declared now or
// arriving at the end of the body.
func (h *Handler) stripIdentity(r *http.Request) {
	for name := range r.Header {
		if h.ids.Is(name) {
			delete(r.Header, name)
		}
	}
	if v, ok := r.Header["Connection"]; ok {
		if c, changed := h.connectionWithoutIdentity(v); changed {
			if len(c) == 0 {
				delete(r.Header, "Connection")
			} else {
				r.Header["Connection"] = c
			}
		}
	}
	h.guardTrailers(r)
}

// connectionWithoutIdentity returns the Connection field values without
// the tokens that name identity headers, and whether any did.
//
// A proxy removes every header a Connection token names (RFC 9110 §7.6.1;
// Caddy's reverse_proxy does, after this handler set the verified
// headers), so "Connection: X-Cognito-Groups" would make the backend see
// no groups, which a backend may read as "no restriction". Removing the
// token, rather than refusing the request, keeps ordinary clients working
// ("Connection: keep-alive" and the like are untouched) and cannot be
// bypassed: a proxy deletes the header its token names after ASCII case
// folding only, while the identity check also folds '_' and '.' and
// non-ASCII case, so it removes at least every token a proxy would act on.
// It does not allocate unless a token must go.
func (h *Handler) connectionWithoutIdentity(vals []string) ([]string, bool) {
	found := false
	for _, v := range vals {
		for rest := v; rest != "" && !found; {
			var tok string
			tok, rest = cutComma(rest)
			found = h.ids.Is(trimOWS(tok))
		}
	}
	if !found {
		return vals, false
	}
	var out []string
	for _, v := range vals {
		var kept []string
		for rest := v; rest != ""; {
			var tok string
			tok, rest = cutComma(rest)
			if tok = trimOWS(tok); tok != "" && !h.ids.Is(tok) {
				kept = append(kept, tok)
			}
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, ", "))
		}
	}
	return out, true
}

func cutComma(s string) (before, after string) {
	if i := strings.IndexByte(s, ','); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// trimOWS trims what textproto.TrimString does (space, tab, CR, LF): the
// proxy reads Connection tokens with it.
func trimOWS(s string) string {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// guardTrailers removes identity names from the request's trailers.
//
// net/http fills r.Trailer only when the body has been read to EOF —
// declared trailers (the Trailer header) and undeclared ones are merged
// then — and Caddy's reverse_proxy copies r.Trailer to the upstream request
// in that same Read. Deleting at handler time therefore covers only the
// declared names; the body is wrapped so that the Read that reaches the
// end removes every identity name before anyone can copy it. Bodies that
// cannot carry trailers (none, or HTTP/1 with a Content-Length) are left
// alone, so the common request costs nothing.
func (h *Handler) guardTrailers(r *http.Request) {
	stripTrailer(r.Trailer, h.ids)
	if r.Body == nil || r.Body == http.NoBody || r.ProtoMajor < 2 && r.ContentLength >= 0 {
		return
	}
	r.Body = &trailerGuard{ReadCloser: r.Body, r: r, ids: h.ids}
}

func stripTrailer(tr http.Header, ids *config.IdentityHeaders) {
	for name := range tr {
		if ids.Is(name) {
			delete(tr, name)
		}
	}
}

// trailerGuard removes identity trailers as the body ends.
type trailerGuard struct {
	io.ReadCloser
	r   *http.Request
	ids *config.IdentityHeaders
}

func (b *trailerGuard) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		// On EOF the trailers have just been merged into the map r.Trailer
		// shares with every shallow copy of the request.
		stripTrailer(b.r.Trailer, b.ids)
	}
	return n, err
}

// identityHeaders is the identity header set of a handler: the fixed
// names and prefixes plus its claim headers.
func identityHeaders(rules []config.HeaderRule) *config.IdentityHeaders {
	names := make([]string, len(rules))
	for i, r := range rules {
		names[i] = r.Header
	}
	return config.NewIdentityHeaders(names...)
}
