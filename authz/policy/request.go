package policy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-cognito/caddy-cognito/config"
)

// Request holds the facts about a request that expressions can read. The
// handler fills it from the *http.Request; it is read only.
type Request struct {
	// Method, e.g. "GET".
	Method string
	// Host is the Host header (or :authority); the policy drops the port
	// and lower-cases it for request.host.
	Host string
	// Path is the decoded path (URL.Path), request.path.
	Path string
	// EscapedPath is the path as sent (URL.EscapedPath()): path_segments
	// are split from it before each is decoded, so an encoded "/" stays
	// inside its segment.
	EscapedPath string
	// RawQuery is the query string without '?'.
	RawQuery string
	// Header is the request's header map; names are canonical.
	Header http.Header
	// RemoteIP is the client's IP as the server determined it (behind
	// trusted proxies, the forwarded one).
	RemoteIP string
}

// errDotSegment: a "." or ".." segment means different paths to a backend
// that resolves them and to one that does not, so a rule on path segments
// cannot know which resource the request is for. Clients normalize such
// paths before sending; one that did not is refused.
var errDotSegment = errors.New("request path has a dot segment (. or ..); path_segments are not evaluated")

// appendSegments appends the decoded, non-empty segments of the escaped
// path p to dst. A segment without escapes is a substring of p.
func appendSegments(dst []string, p string) ([]string, error) {
	for p != "" {
		var seg string
		seg, p, _ = strings.Cut(p, "/")
		if seg == "" {
			continue
		}
		if strings.IndexByte(seg, '%') >= 0 {
			d, err := url.PathUnescape(seg)
			if err != nil {
				return dst, errors.New("request path has an invalid escape")
			}
			seg = d
		}
		if seg == "." || seg == ".." {
			return dst, errDotSegment
		}
		dst = append(dst, seg)
	}
	return dst, nil
}

// hostName is host without its port, lower case.
func hostName(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		host = host[:i]
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// hidden names the credential carriers expressions must not see.
type hidden struct {
	header string // canonical header name, besides Authorization
	cookie bool   // the token is in a cookie: hide Cookie
	query  string // query parameter
}

func newHidden(ts config.TokenSource) hidden {
	var h hidden
	switch ts.From {
	case config.SourceHeader:
		h.header = http.CanonicalHeaderKey(ts.Name)
	case config.SourceCookie:
		h.cookie = true
	case config.SourceQuery:
		h.query = ts.Name
	}
	return h
}

// hideHeader reports whether a header (canonical name) carries a
// credential: Authorization, Proxy-Authorization, the token source header,
// and Cookie when the token is a cookie.
func (h hidden) hideHeader(name string) bool {
	switch name {
	case "Authorization", "Proxy-Authorization":
		return true
	case "Cookie":
		return h.cookie
	}
	return name == h.header
}

// headerMap is request.headers: lower-case names, first values.
func (h hidden) headerMap(hdr http.Header) map[string]string {
	m := make(map[string]string, len(hdr))
	for name, vs := range hdr {
		if len(vs) == 0 || h.hideHeader(http.CanonicalHeaderKey(name)) {
			continue
		}
		key := strings.ToLower(name)
		if _, dup := m[key]; !dup {
			m[key] = vs[0]
		}
	}
	return m
}

// queryMap is request.query: first values. Malformed pairs are skipped, as
// URL.Query does.
func (h hidden) queryMap(raw string) map[string]string {
	vals, _ := url.ParseQuery(raw)
	m := make(map[string]string, len(vals))
	for k, vs := range vals {
		if k == h.query && h.query != "" || len(vs) == 0 {
			continue
		}
		m[k] = vs[0]
	}
	return m
}
