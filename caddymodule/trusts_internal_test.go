package caddymodule

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// A pool without jwks gets one keyring per accepted issuer form: the
// ORIGINAL form's is started at provisioning; the UPDATED form's and each
// replica Region's are fetched on the first token naming them, once for a
// flood, and a 403 there fails that form only. Keyrings are shared by
// handlers with the same trusts and released with the last of them.
func TestDefaultKeysPerIssuerForm(t *testing.T) {
	const (
		pool     = "us-east-1_FORMS"
		original = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_FORMS"
		updated  = "https://issuer-cognito-idp.us-east-1.amazonaws.com/us-east-1_FORMS"
		replica  = "https://cognito-idp.us-west-2.amazonaws.com/us-east-1_FORMS"
	)
	key := jwttest.NewKey(t, "k1")
	servers := map[string]*jwttest.Server{}
	for _, iss := range []string{original, updated, replica} {
		servers[iss] = jwttest.NewServer(t, jwttest.JWKS(key))
	}
	servers[updated].Fail(http.StatusForbidden, nil) // the pool is still on ORIGINAL

	newHandler := func() *Handler {
		h := &Handler{Config: Config{Trusts: []config.Trust{{Pool: pool, Audience: []string{"c"}, ReplicaRegions: []string{"us-west-2"}}}}}
		h.issuerJWKSURL = func(iss string) string { return servers[iss].JWKSURL() }
		h.logger, h.CacheSize = zap.NewNop(), 100
		h.rule = config.Authorizer(h.Config)
		h.rule.SetDefaults()
		return h
	}
	pctx := caddy.Context{Context: context.Background()}
	h1 := newHandler()
	hk1, err := h1.acquireTrustKeys(pctx)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	t.Cleanup(func() {
		if !released {
			_ = hk1.release()
		}
	})
	if len(hk1.startup) != 1 || len(hk1.uses) != 3 {
		t.Fatalf("%d keyrings started at provisioning, %d acquired; want 1 and 3", len(hk1.startup), len(hk1.uses))
	}
	if err := hk1.startup[0].WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	if servers[updated].Hits() != 0 || servers[replica].Hits() != 0 {
		t.Fatalf("UPDATED (%d) or replica (%d) key set fetched at provisioning", servers[updated].Hits(), servers[replica].Hits())
	}

	// A second handler with the same trust shares the keyrings.
	h2 := newHandler()
	hk2, err := h2.acquireTrustKeys(pctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range hk1.uses {
		if hk1.uses[i].shared != hk2.uses[i].shared {
			t.Fatalf("keyring %d not shared between handlers", i)
		}
	}
	if err := hk2.release(); err != nil {
		t.Fatal(err)
	}

	a, err := authz.New(h1.rule, nil, authz.WithKeysFor(hk1.keysFor), authz.WithCache(hk1.cache))
	if err != nil {
		t.Fatal(err)
	}
	tok := func(iss string) string {
		return key.Sign(t, jwttest.Token{Claims: map[string]any{"iss": iss, "client_id": "c", "token_use": "access", "sub": "s", "exp": time.Now().Unix() + 600}})
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Authorize(ctx, tok(updated)); authz.AsError(err).Kind != authz.KindUnavailable {
				t.Errorf("UPDATED token while its key set answers 403: %v, want 503", err)
			}
		}()
	}
	wg.Wait()
	if n := servers[updated].Hits(); n != 1 {
		t.Fatalf("UPDATED key set fetched %d times for 20 tokens, want 1", n)
	}
	for _, iss := range []string{original, replica, replica} {
		if _, err := a.Authorize(ctx, tok(iss)); err != nil {
			t.Fatalf("%s: %v", iss, err)
		}
	}
	if n := servers[replica].Hits(); n != 1 {
		t.Fatalf("replica key set fetched %d times, want 1", n)
	}
	if n := servers[original].Hits(); n != 1 {
		t.Fatalf("ORIGINAL key set fetched %d times, want 1", n)
	}
	var poolKeys []string
	for _, u := range hk1.uses {
		poolKeys = append(poolKeys, u.poolKey)
	}
	if err := hk1.release(); err != nil {
		t.Fatal(err)
	}
	released = true
	for _, k := range poolKeys {
		if _, ok := keyrings.References(k); ok {
			t.Fatalf("keyring %s still pooled after the last handler released it", k)
		}
	}
}
