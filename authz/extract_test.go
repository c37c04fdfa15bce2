package authz

import (
	"net/http"
	"net/http/httptest"
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
