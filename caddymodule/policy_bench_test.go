package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// BenchmarkServeHTTPPolicy is BenchmarkServeHTTP's cached allow path on a
// tenant route, without and with the tenant rule: the difference is what
// `require` costs the handler, request facts included.
//
//	go test -run '^$' -bench ServeHTTPPolicy -benchmem ./caddymodule/
func BenchmarkServeHTTPPolicy(b *testing.B) {
	for _, tc := range []struct {
		name    string
		require []string
	}{
		{"none", nil},
		{"tenant", []string{`claims["custom:tenant_id"] == request.path_segments[1]`}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h, key := newBenchHandler(b, config.Authorizer{
				UserPool: "us-west-2_NMATFlcVJ",
				Audience: []string{"6vo4qadm0jp3e8kkk0c2d2l8im"},
				TokenUse: "access",
				Scopes:   []string{"order/get.order"},
				Require:  tc.require,
			})
			if err := h.provisionPolicy(); err != nil {
				b.Fatal(err)
			}
			now := time.Now().Unix()
			tok := key.Sign(b, jwttest.Token{Claims: map[string]any{
				"sub": "0b1c2d3e-bbbb-4ccc-8ddd-eeeeeeeeeeee", "cognito:groups": []string{"admin", "users"},
				"iss": benchIssuer, "version": 2, "client_id": "6vo4qadm0jp3e8kkk0c2d2l8im",
				"origin_jti": "0b1c2d3e-1111-4222-8333-444444444444", "event_id": "0b1c2d3e-4444-4555-8666-777777777777",
				"token_use": "access", "scope": "order/get.order order/post.order", "auth_time": now - 100,
				"exp": now + 3600, "iat": now - 100, "jti": "0b1c2d3e-7777-4888-8999-000000000000",
				"username": "alice@example.com", "custom:tenant_id": "acme",
			}})
			next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
			w := httptest.NewRecorder()
			base := httptest.NewRequest(http.MethodGet, "/t/acme/orders/42", nil)
			base.Header.Set("Authorization", "Bearer "+tok)
			base.Header.Set("User-Agent", "bench/1.0")
			base.Header.Set("Accept", "application/json")
			request := func() *http.Request {
				repl := caddy.NewReplacer()
				ctx := context.WithValue(base.Context(), caddy.ReplacerCtxKey, repl)
				r := base.WithContext(ctx)
				r.Header = base.Header.Clone()
				return r
			}
			if err := h.ServeHTTP(w, request(), next); err != nil || w.Code != http.StatusOK {
				b.Fatal(err, w.Code)
			}
			b.ReportAllocs()
			for b.Loop() {
				r := request()
				if err := h.ServeHTTP(w, r, next); err != nil {
					b.Fatal(err)
				}
				if r.Header.Get("X-Cognito-Sub") == "" {
					b.Fatal("denied")
				}
			}
		})
	}
}
