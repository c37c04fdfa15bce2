package authz

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/config"
)

func TestExtractToken(t *testing.T) {
	hdr := config.TokenSource{From: config.SourceHeader, Name: "Authorization"}
	tests := []struct {
		name   string
		src    config.TokenSource
		build  func(r *http.Request)
		want   string
		reason string
	}{
		{"bearer", hdr, func(r *http.Request) { r.Header.Set("Authorization", "Bearer a.b.c") }, "a.b.c", ""},
		{"bearer lower case", hdr, func(r *http.Request) { r.Header.Set("Authorization", "bearer a.b.c") }, "a.b.c", ""},
		{"BEARER", hdr, func(r *http.Request) { r.Header.Set("Authorization", "BEARER a.b.c") }, "a.b.c", ""},
		{"bare token", hdr, func(r *http.Request) { r.Header.Set("Authorization", "a.b.c") }, "a.b.c", ""},
		{"absent", hdr, func(r *http.Request) {}, "", "missing"},
		{"empty", hdr, func(r *http.Request) { r.Header.Set("Authorization", "") }, "", "missing"},
		{"scheme only", hdr, func(r *http.Request) { r.Header.Set("Authorization", "Bearer") }, "", "missing"},
		{"scheme and space", hdr, func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, "", "missing"},
		{"tab", hdr, func(r *http.Request) { r.Header.Set("Authorization", "Bearer\ta.b.c") }, "", "malformed"},
		{"double space", hdr, func(r *http.Request) { r.Header.Set("Authorization", "Bearer  a.b.c") }, "", "malformed"},
		{"trailing junk", hdr, func(r *http.Request) { r.Header.Set("Authorization", "Bearer a.b.c d.e.f") }, "", "malformed"},
		{"two credentials", hdr, func(r *http.Request) { r.Header.Set("Authorization", "Bearer a.b.c, Bearer d.e.f") }, "", "malformed"},
		{"basic scheme", hdr, func(r *http.Request) { r.Header.Set("Authorization", "Basic dXNlcjpwYXNz") }, "", "malformed"},
		{"two headers", hdr, func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer a.b.c")
			r.Header.Add("Authorization", "Bearer d.e.f")
		}, "", "multiple_tokens"},
		{"custom header", config.TokenSource{From: "header", Name: "X-Token"}, func(r *http.Request) { r.Header.Set("X-Token", "a.b.c") }, "a.b.c", ""},
		{"cookie", config.TokenSource{From: "cookie", Name: "tok"}, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "tok", Value: "a.b.c"}) }, "a.b.c", ""},
		{"two cookies", config.TokenSource{From: "cookie", Name: "tok"}, func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "tok", Value: "a.b.c"})
			r.AddCookie(&http.Cookie{Name: "tok", Value: "d.e.f"})
		}, "", "multiple_tokens"},
		{"no cookie", config.TokenSource{From: "cookie", Name: "tok"}, func(r *http.Request) {}, "", "missing"},
		{"query", config.TokenSource{From: "query", Name: "access_token"}, func(r *http.Request) { r.URL.RawQuery = "access_token=a.b.c" }, "a.b.c", ""},
		{"two query params", config.TokenSource{From: "query", Name: "access_token"}, func(r *http.Request) { r.URL.RawQuery = "access_token=a.b.c&access_token=d" }, "", "multiple_tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			tc.build(r)
			got, err := ExtractToken(r, tc.src)
			if tc.reason == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil || err.Reason != tc.reason {
				t.Fatalf("got %q, %v; want reason %s", got, err, tc.reason)
			}
		})
	}
}

// cookieVariants are Cookie header lines in the spellings net/http
// accepts and refuses: space or tab around names and values, quotes, empty
// pairs, invalid names and values.
var cookieVariants = []string{
	"tok=a.b.c", "a=1; tok=a.b.c; b=2", "a=1; tok =a.b.c; b=2", "a=1; tok\t=a.b.c; b=2", "a=1;\t tok \t=a.b.c;b=2",
	`tok="a.b.c"`, `tok="a.b.c`, "tok= a.b.c", "tok=a.b.c ", " tok=a.b.c ", ";; a=1 ;; tok =a.b.c;; b=2 ;",
	"tok", "tok=", "=a.b.c", "t ok=a.b.c", "tok=a\\b", "tok=a\"b", "tok=a,b", "TOK=a.b.c", "tok=a.b.c; tok =d.e.f",
	"tok\x00=a", "a=1;tok=x;tok=y", "tok=é",
}

// TestCookieParsingMatchesNetHTTP: the one cookie parser (extraction and
// stripping) reads every variant as net/http's Request.Cookies does.
func TestCookieParsingMatchesNetHTTP(t *testing.T) {
	for _, line := range append(cookieVariants, strings.Repeat("a=1;", 3000)+"tok=x") {
		for _, lines := range [][]string{{line}, {"x=9", line}} {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["Cookie"] = lines
			var want, got []string
			for _, c := range r.Cookies() {
				want = append(want, c.Name+"="+c.Value)
			}
			eachCookie(lines, func(_, name, value string, valid bool) {
				if valid {
					got = append(got, name+"="+value)
				}
			})
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("Cookie %.60q: eachCookie read %q, net/http %q", lines, got, want)
			}
		}
	}
}

func TestStripToken(t *testing.T) {
	cookie := config.TokenSource{From: config.SourceCookie, Name: "tok"}
	query := config.TokenSource{From: config.SourceQuery, Name: "access_token"}
	for _, tc := range []struct {
		name       string
		src        config.TokenSource
		cookie     []string
		query      string
		wantCookie string
		wantQuery  string
	}{
		{"cookie plain", cookie, []string{"a=1; tok=a.b.c; b=2"}, "", "a=1; b=2", ""},
		{"cookie space before =", cookie, []string{"a=1; tok =a.b.c; b=2"}, "", "a=1; b=2", ""},
		{"cookie tab before =", cookie, []string{"a=1; tok\t=a.b.c; b=2"}, "", "a=1; b=2", ""},
		{"cookie spaces and tabs around the name", cookie, []string{"a=1;\t tok \t=a.b.c;b=2"}, "", "a=1; b=2", ""},
		{"cookie quoted", cookie, []string{`a=1; tok="a.b.c"`}, "", "a=1", ""},
		{"cookie invalid value still stripped", cookie, []string{"a=1; tok=a\\b.c"}, "", "a=1", ""},
		{"cookie without =", cookie, []string{"tok; a=1"}, "", "a=1", ""},
		{"cookie on several lines", cookie, []string{"a=1", " tok =a.b.c", "b=2"}, "", "a=1; b=2", ""},
		{"cookie only the credential", cookie, []string{"tok=a.b.c"}, "", "", ""},
		{"cookie other names kept as sent", cookie, []string{`TOK=x; tokx=y; q="z"`}, "", `TOK=x; tokx=y; q="z"`, ""},
		{"query plain", query, nil, "page=2&access_token=a.b.c", "", "page=2"},
		{"query unparseable kept", query, nil, "b=2;c=3&access_token=a.b.c&d=%zz&e=5", "", "b=2;c=3&d=%zz&e=5"},
		{"query order and encoding kept", query, nil, "z=1&a=%41+b&access_token=x&m", "", "z=1&a=%41+b&m"},
		{"query escaped name", query, nil, "access%5Ftoken=x&a=1", "", "a=1"},
		{"query name inside a ; segment", query, nil, "a=1;access_token=x&b=2", "", "b=2"},
		{"query name with a bad escape elsewhere", query, nil, "access_token=x%zz&b=2", "", "b=2"},
		{"query only the credential", query, nil, "access_token=x", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer x")
			if tc.cookie != nil {
				r.Header["Cookie"] = tc.cookie
			}
			r.URL.RawQuery = tc.query
			StripToken(r, tc.src)
			if got := strings.Join(r.Header.Values("Cookie"), "|"); got != tc.wantCookie {
				t.Errorf("Cookie %q, want %q", got, tc.wantCookie)
			}
			if r.URL.RawQuery != tc.wantQuery {
				t.Errorf("query %q, want %q", r.URL.RawQuery, tc.wantQuery)
			}
			if r.Header.Get("Authorization") != "" {
				t.Error("Authorization kept")
			}
		})
	}
}
