package caddymodule

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/config"
)

func TestConnectionWithoutIdentity(t *testing.T) {
	h := &Handler{ids: config.NewIdentityHeaders("X-User-Email", "X-Tenant")}
	for _, tc := range []struct {
		in      []string
		want    []string
		changed bool
	}{
		{[]string{"keep-alive"}, []string{"keep-alive"}, false},
		{[]string{"close"}, []string{"close"}, false},
		{[]string{"keep-alive, Upgrade"}, []string{"keep-alive, Upgrade"}, false},
		{[]string{"X-Cognito-Sub"}, nil, true},
		{[]string{"keep-alive, X-Cognito-Sub, X-Tenant"}, []string{"keep-alive"}, true},
		{[]string{" \tx_cognito_groups\t, x.tenant ,, Upgrade"}, []string{"Upgrade"}, true},
		{[]string{"keep-alive", "X-User-Email", "close, X-COGNITO-ANYTHING"}, []string{"keep-alive", "close"}, true},
		{[]string{"X-Cognİto-Sub"}, nil, true}, // non-ASCII fold, as NormalizeHeaderName
		{[]string{"X-Cognito"}, []string{"X-Cognito"}, false},
	} {
		got, changed := h.connectionWithoutIdentity(tc.in)
		if changed != tc.changed || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Connection %q → %q (changed %v), want %q (%v)", tc.in, got, changed, tc.want, tc.changed)
		}
	}
	// The ordinary request costs nothing.
	in := []string{"keep-alive, Upgrade"}
	if n := testing.AllocsPerRun(100, func() { h.connectionWithoutIdentity(in) }); n != 0 {
		t.Errorf("%.0f allocations for a Connection header without identity tokens", n)
	}
}

// Only a body that can end in trailers is wrapped; identity trailers are
// gone from r.Trailer once the body has been read, declared or not.
func TestGuardTrailers(t *testing.T) {
	h := &Handler{ids: config.NewIdentityHeaders("X-Tenant")}
	get := httptest.NewRequest(http.MethodGet, "/", nil)
	h.stripIdentity(get)
	if get.Body != http.NoBody {
		t.Errorf("a request without a body got its body wrapped: %T", get.Body)
	}
	withLength := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
	h.stripIdentity(withLength)
	if _, ok := withLength.Body.(*trailerGuard); ok {
		t.Error("an HTTP/1 body with a Content-Length got wrapped")
	}

	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.ContentLength = -1
	r.Trailer = http.Header{"X-Cognito-Sub": nil, "X-Other": nil}
	body := &trailingBody{r: strings.NewReader("hello"), trailer: r.Trailer}
	r.Body = body
	h.stripIdentity(r)
	if _, ok := r.Trailer["X-Cognito-Sub"]; ok {
		t.Error("declared identity trailer kept at handler time")
	}
	if b, err := io.ReadAll(r.Body); err != nil || string(b) != "hello" {
		t.Fatalf("body %q, %v", b, err)
	}
	if len(r.Trailer) != 1 || r.Trailer.Get("X-Other") != "kept" {
		t.Errorf("trailers after EOF: %v, want only X-Other", r.Trailer)
	}
}

// trailingBody merges its trailers into the request's map at EOF, as
// net/http's server body does.
type trailingBody struct {
	r       io.Reader
	trailer http.Header
}

func (b *trailingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.trailer["X-Cognito-Sub"] = []string{"admin"}
		b.trailer["X_Tenant"] = []string{"evil"}
		b.trailer["X-Other"] = []string{"kept"}
	}
	return n, err
}

func (b *trailingBody) Close() error { return nil }
