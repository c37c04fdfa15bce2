package caddymodule

// Benchmarks of the handler's allow path without a server around it. Run:
//
//	go test -run '^$' -bench ServeHTTP -benchmem ./caddymodule/
//
// "baseline" is the same loop without the handler (a fresh Caddy replacer
// and request context per request, as Caddy makes them); the handler's own
// cost is the difference.

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

type benchKeys struct{ set *jwks.Set }

func (k benchKeys) Key(_ context.Context, kid string) (*jwks.Key, error) {
	if key := k.set.Lookup(kid); key != nil {
		return key, nil
	}
	return nil, jwks.ErrUnknownKID
}

const benchIssuer = "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_NMATFlcVJ"

func newBenchHandler(b *testing.B, cfg config.Authorizer) (*Handler, *jwttest.Key) {
	b.Helper()
	key := jwttest.NewKey(b, "bench-key")
	set, _, err := jwks.ParseSet(jwttest.JWKS(key))
	if err != nil {
		b.Fatal(err)
	}
	h := &Handler{Config: Config(cfg)}
	h.rule = cfg
	h.rule.SetDefaults()
	if h.authz, err = authz.New(h.rule, benchKeys{set}, authz.WithCache(authz.NewCache(0, nil))); err != nil {
		b.Fatal(err)
	}
	h.rules = h.rule.HeaderRules()
	h.ids = identityHeaders(h.rules)
	if h.metrics, err = newMetrics(nil); err != nil {
		b.Fatal(err)
	}
	h.allowed = map[string]prometheus.Counter{h.authz.Issuer(): h.metrics.decisions.WithLabelValues(h.authz.Issuer(), "allow", "")}
	h.logger = zap.NewNop()
	return h, key
}

func benchToken(b *testing.B, key *jwttest.Key) string {
	now := time.Now().Unix()
	return key.Sign(b, jwttest.Token{Claims: map[string]any{
		"sub":            "0b1c2d3e-bbbb-4ccc-8ddd-eeeeeeeeeeee",
		"cognito:groups": []string{"admin", "users"},
		"iss":            benchIssuer,
		"version":        2,
		"client_id":      "6vo4qadm0jp3e8kkk0c2d2l8im",
		"origin_jti":     "0b1c2d3e-1111-4222-8333-444444444444",
		"event_id":       "0b1c2d3e-4444-4555-8666-777777777777",
		"token_use":      "access",
		"scope":          "order/get.order order/post.order",
		"auth_time":      now - 100,
		"exp":            now + 3600,
		"iat":            now - 100,
		"jti":            "0b1c2d3e-7777-4888-8999-000000000000",
		"username":       "alice@example.com",
	}})
}

func BenchmarkServeHTTP(b *testing.B) {
	h, key := newBenchHandler(b, config.Authorizer{
		UserPool: "us-west-2_NMATFlcVJ",
		Audience: []string{"6vo4qadm0jp3e8kkk0c2d2l8im"},
		TokenUse: "access",
		Scopes:   []string{"order/get.order"},
	})
	tok := benchToken(b, key)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	w := httptest.NewRecorder()
	base := httptest.NewRequest(http.MethodGet, "/api/v1/order", nil)
	base.Header.Set("Authorization", "Bearer "+tok)
	base.Header.Set("User-Agent", "bench/1.0")
	base.Header.Set("Accept", "application/json")
	base.Header.Set("Accept-Encoding", "gzip")
	// One request per iteration, as Caddy would hand it over.
	request := func() *http.Request {
		repl := caddy.NewReplacer()
		ctx := context.WithValue(base.Context(), caddy.ReplacerCtxKey, repl)
		r := base.WithContext(ctx)
		r.Header = base.Header.Clone()
		return r
	}
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := next.ServeHTTP(w, request()); err != nil {
				b.Fatal(err)
			}
		}
	})
	// An ordinary client's Connection header and a body with a
	// Content-Length: the identity checks of issue 9 cost nothing here.
	b.Run("cached, Connection and a body", func(b *testing.B) {
		body := io.NopCloser(strings.NewReader(`{"amount":1}`)) // made once: only the handler's allocations count
		conn := []string{"keep-alive, Upgrade"}
		b.ReportAllocs()
		for b.Loop() {
			r := request()
			r.Header["Connection"] = conn
			r.Body, r.ContentLength, r.Method = body, 12, http.MethodPost
			if err := h.ServeHTTP(w, r, next); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		if err := h.ServeHTTP(w, request(), next); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			r := request()
			if err := h.ServeHTTP(w, r, next); err != nil {
				b.Fatal(err)
			}
			if r.Header.Get("X-Cognito-Sub") == "" {
				b.Fatal("no X-Cognito-Sub")
			}
		}
	})
}
