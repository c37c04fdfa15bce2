package authz

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// Pools of the trust tests: A in us-east-1 (replica us-west-2), B in
// eu-west-1, and a non-Cognito issuer.
const (
	poolA       = "us-east-1_AAA"
	poolB       = "eu-west-1_BBB"
	issA        = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AAA"
	issAUpdated = "https://issuer-cognito-idp.us-east-1.amazonaws.com/us-east-1_AAA"
	issAReplica = "https://cognito-idp.us-west-2.amazonaws.com/us-east-1_AAA"
	issB        = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_BBB"
	issPartner  = "https://login.partner.example"
	clientA     = "client-a"
	clientB     = "client-b"
	clientP     = "api://orders"
)

// countingKeys counts the lookups a token causes in one issuer's keys.
type countingKeys struct {
	Keys
	n atomic.Int64
}

func (c *countingKeys) Key(ctx context.Context, kid string) (*jwks.Key, error) {
	c.n.Add(1)
	return c.Keys.Key(ctx, kid)
}

func tokenFor(t testing.TB, k *jwttest.Key, iss, client string, kv ...any) string {
	t.Helper()
	c := with(accessClaims(), append([]any{"iss", iss, "client_id", client}, kv...)...)
	return k.Sign(t, jwttest.Token{Claims: c})
}

func threeTrusts() config.Authorizer {
	return config.Authorizer{Trusts: []config.Trust{
		{Pool: poolA, Audience: []string{clientA}, ReplicaRegions: []string{"us-west-2"}},
		{Pool: poolB, Audience: []string{clientB}, TokenUse: "id"},
		{Issuer: issPartner, Audience: []string{clientP}},
	}}
}

// newTrustAuthorizer builds an Authorizer whose every issuer has its own
// counting keys, from keysOf(iss).
func newTrustAuthorizer(t testing.TB, cfg config.Authorizer, keysOf func(iss string) Keys, opts ...Option) (*Authorizer, map[string]*countingKeys) {
	t.Helper()
	counts := map[string]*countingKeys{}
	a, err := New(cfg, nil, append([]Option{
		WithClock(func() time.Time { return testNow }),
		WithKeysFor(func(_ int, iss string) Keys {
			ck := &countingKeys{Keys: keysOf(iss)}
			counts[iss] = ck
			return ck
		}),
	}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a, counts
}

func TestTrustSelection(t *testing.T) {
	testKeys(t)
	setA, setB := newSetKeys(t, jwttest.JWKS(keyA)), newSetKeys(t, jwttest.JWKS(keyB))
	a, counts := newTrustAuthorizer(t, threeTrusts(), func(iss string) Keys {
		if iss == issB {
			return setB
		}
		return setA
	})
	ctx := context.Background()
	for _, tc := range []struct {
		name, tok, reason, iss string
	}{
		{"pool A original", tokenFor(t, keyA, issA, clientA), "", issA},
		{"pool A updated", tokenFor(t, keyA, issAUpdated, clientA), "", issAUpdated},
		{"pool A replica listed", tokenFor(t, keyA, issAReplica, clientA), "", issAReplica},
		{"pool A replica not listed", tokenFor(t, keyA, "https://cognito-idp.eu-west-1.amazonaws.com/us-east-1_AAA", clientA), "issuer", ""},
		{"pool A token, pool B audience", tokenFor(t, keyA, issA, clientB), "audience", issA},
		{"pool B id token", keyB.Sign(t, jwttest.Token{Claims: with(idClaims(), "iss", issB, "aud", clientB)}), "", issB},
		{"pool B access token: B requires id", tokenFor(t, keyB, issB, clientB), "token_use", issB},
		{"pool A access token: A accepts any token_use", tokenFor(t, keyA, issA, clientA, "token_use", "access"), "", issA},
		{"partner", tokenFor(t, keyA, issPartner, clientP), "", issPartner},
		{"partner with trailing slash", tokenFor(t, keyA, issPartner+"/", clientP), "issuer", ""},
		{"unknown issuer", tokenFor(t, keyA, "https://evil.example", clientA), "issuer", ""},
		{"no issuer", tokenFor(t, keyA, "", clientA, "iss", nil), "issuer", ""},
		{"issuer of wrong type", tokenFor(t, keyA, "", clientA, "iss", 42), "malformed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]int64{}
			for iss, c := range counts {
				before[iss] = c.n.Load()
			}
			c, err := a.Authorize(ctx, tc.tok)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				if c.Issuer != tc.iss || a.TrustLabel(c.Issuer) == "" {
					t.Fatalf("issuer %q (label %q), want %q", c.Issuer, a.TrustLabel(c.Issuer), tc.iss)
				}
			} else if e := AsError(err); err == nil || e.Reason != tc.reason {
				t.Fatalf("got %v, want reason %s", err, tc.reason)
			}
			// Only the keys of the issuer the token names were asked.
			for iss, c := range counts {
				want := before[iss]
				if iss == tc.iss {
					want++
				}
				if got := c.n.Load(); got != want {
					t.Errorf("keys of %s asked %d times, want %d", iss, got-before[iss], want-before[iss])
				}
			}
		})
	}
}

func TestIssuerFormatNarrowing(t *testing.T) {
	testKeys(t)
	keys := newSetKeys(t, jwttest.JWKS(keyA))
	for _, tc := range []struct {
		format            string
		original, updated bool
	}{{"", true, true}, {"any", true, true}, {"original", true, false}, {"updated", false, true}} {
		cfg := config.Authorizer{Trusts: []config.Trust{{Pool: poolA, Audience: []string{clientA}, IssuerFormat: tc.format}}}
		a, err := New(cfg, keys, WithClock(func() time.Time { return testNow }))
		if err != nil {
			t.Fatal(err)
		}
		for iss, want := range map[string]bool{issA: tc.original, issAUpdated: tc.updated} {
			_, err := a.Authorize(context.Background(), tokenFor(t, keyA, iss, clientA))
			if (err == nil) != want || (err != nil && AsError(err).Reason != "issuer") {
				t.Errorf("issuer_format %q, iss %s: %v, want accepted=%v", tc.format, iss, err, want)
			}
		}
	}
}

// The shorthand user_pool is one trust of format any: a pool switched to
// the UPDATED issuer keeps working.
func TestShorthandAcceptsBothFormats(t *testing.T) {
	testKeys(t)
	a := newTestAuthorizer(t, config.Authorizer{UserPool: poolA, Audience: []string{clientA}})
	for _, iss := range []string{issA, issAUpdated} {
		if _, err := a.Authorize(context.Background(), tokenFor(t, keyA, iss, clientA)); err != nil {
			t.Errorf("%s: %v", iss, err)
		}
	}
	if a.Issuer() != issA {
		t.Errorf("Issuer() = %s, want the ORIGINAL form %s", a.Issuer(), issA)
	}
}

// The same kid in two pools, with different keys: a key of one pool never
// verifies a token of the other.
func TestCrossPoolKIDCollision(t *testing.T) {
	testKeys(t)
	// keyA and keyForeign share the kid "kidA".
	setA, setB := newSetKeys(t, jwttest.JWKS(keyA)), newSetKeys(t, jwttest.JWKS(keyForeign, keyB))
	a, counts := newTrustAuthorizer(t, threeTrusts(), func(iss string) Keys {
		if iss == issB {
			return setB
		}
		return setA
	})
	ctx := context.Background()
	// A token claiming pool A, signed with pool B's key of the same kid.
	if _, err := a.Authorize(ctx, tokenFor(t, keyForeign, issA, clientA)); AsError(err).Reason != "bad_signature" {
		t.Fatalf("pool A token signed with pool B's key: %v", err)
	}
	// And the other way round.
	if _, err := a.Authorize(ctx, keyA.Sign(t, jwttest.Token{Claims: with(idClaims(), "iss", issB, "aud", clientB)})); AsError(err).Reason != "bad_signature" {
		t.Fatalf("pool B token signed with pool A's key: %v", err)
	}
	// A kid only pool B has is unknown for a token of pool A, and only
	// pool A's keys are asked.
	bBefore := counts[issB].n.Load()
	if _, err := a.Authorize(ctx, tokenFor(t, keyB, issA, clientA)); AsError(err).Reason != "unknown_kid" {
		t.Fatalf("pool A token with a kid only pool B has: %v", err)
	}
	if counts[issB].n.Load() != bBefore {
		t.Fatal("pool B's keys were consulted for a pool A token")
	}
	// The genuine tokens pass.
	if _, err := a.Authorize(ctx, tokenFor(t, keyA, issA, clientA)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authorize(ctx, keyForeign.Sign(t, jwttest.Token{Claims: with(idClaims(), "iss", issB, "aud", clientB)})); err != nil {
		t.Fatal(err)
	}
}

// keyServer serves one issuer's key set over HTTP through the real HTTP
// source and keyring, counting fetches.
func keyServer(t *testing.T, doc []byte, lazy bool) (*jwttest.Server, *jwks.Keyring) {
	t.Helper()
	srv := jwttest.NewServer(t, doc)
	src, err := jwks.NewHTTPSource(srv.JWKSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ring := jwks.NewKeyring(src, jwks.Options{Cooldown: time.Hour})
	if lazy {
		ring.StartLazily()
	} else {
		ring.Start()
	}
	t.Cleanup(ring.Stop)
	return srv, ring
}

// The UPDATED form and the replica Regions are fetched on the first token
// naming them, once for a flood; a 403 there fails that form only; an
// issuer no trust accepts causes no fetch at all.
func TestLazyIssuerForms(t *testing.T) {
	testKeys(t)
	doc := jwttest.JWKS(keyA)
	primary, primaryRing := keyServer(t, doc, false)
	updated, updatedRing := keyServer(t, doc, true)
	replica, replicaRing := keyServer(t, doc, true)
	bSrv, bRing := keyServer(t, jwttest.JWKS(keyB), false)
	updated.Fail(http.StatusForbidden, nil) // the pool has not switched to UPDATED
	rings := map[string]*jwks.Keyring{issA: primaryRing, issAUpdated: updatedRing, issAReplica: replicaRing, issB: bRing}
	a, err := New(config.Authorizer{Trusts: []config.Trust{
		{Pool: poolA, Audience: []string{clientA}, ReplicaRegions: []string{"us-west-2"}},
		{Pool: poolB, Audience: []string{clientB}, IssuerFormat: "original"},
	}}, nil, WithClock(func() time.Time { return testNow }), WithKeysFor(func(_ int, iss string) Keys { return rings[iss] }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := primaryRing.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bRing.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if updated.Hits() != 0 || replica.Hits() != 0 {
		t.Fatalf("lazy forms fetched before any token: updated %d, replica %d", updated.Hits(), replica.Hits())
	}
	// Issuers no trust accepts: no fetch anywhere.
	before := primary.Hits() + bSrv.Hits()
	for _, iss := range []string{"https://evil.example", "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_BBB"} {
		if _, err := a.Authorize(ctx, tokenFor(t, keyForeign, iss, clientA)); AsError(err).Reason != "issuer" {
			t.Fatalf("%s: %v", iss, err)
		}
	}
	if after := primary.Hits() + bSrv.Hits() + updated.Hits() + replica.Hits(); after != before {
		t.Fatalf("unknown issuers caused %d fetches", after-before)
	}

	// A flood naming the UPDATED form: one fetch, 403, so 503 for those
	// tokens only.
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Authorize(ctx, tokenFor(t, keyA, issAUpdated, clientA)); AsError(err).Kind != KindUnavailable {
				t.Errorf("UPDATED token while its key set answers 403: %v", err)
			}
		}()
	}
	wg.Wait()
	if updated.Hits() != 1 {
		t.Fatalf("UPDATED key set fetched %d times for a flood, want 1", updated.Hits())
	}
	if _, err := a.Authorize(ctx, tokenFor(t, keyA, issA, clientA)); err != nil {
		t.Fatalf("ORIGINAL token while the UPDATED form fails: %v", err)
	}
	if _, err := a.Authorize(ctx, tokenFor(t, keyB, issB, clientB)); err != nil {
		t.Fatalf("pool B while pool A's UPDATED form fails: %v", err)
	}
	if replica.Hits() != 0 {
		t.Fatal("replica key set fetched without a token naming it")
	}
	// The replica form: fetched on its first token, once.
	for range 3 {
		if _, err := a.Authorize(ctx, tokenFor(t, keyA, issAReplica, clientA)); err != nil {
			t.Fatalf("replica token: %v", err)
		}
	}
	if replica.Hits() != 1 {
		t.Fatalf("replica key set fetched %d times, want 1", replica.Hits())
	}
}

// One trust's key outage leaves the others serving.
func TestTrustOutageIsolated(t *testing.T) {
	testKeys(t)
	a, _ := newTrustAuthorizer(t, threeTrusts(), func(iss string) Keys {
		if iss == issB {
			return setKeys{} // never loaded
		}
		return newSetKeys(t, jwttest.JWKS(keyA))
	})
	ctx := context.Background()
	if _, err := a.Authorize(ctx, keyA.Sign(t, jwttest.Token{Claims: with(idClaims(), "iss", issB, "aud", clientB)})); AsError(err).Kind != KindUnavailable {
		t.Fatalf("pool B without keys: %v, want 503", err)
	}
	for _, tok := range []string{tokenFor(t, keyA, issA, clientA), tokenFor(t, keyA, issPartner, clientP)} {
		if _, err := a.Authorize(ctx, tok); err != nil {
			t.Fatalf("other trusts during pool B's outage: %v", err)
		}
	}
}

// Two rules sharing a key source and a cache but trusting different pools:
// a token cached by one is never served to the other.
func TestCacheRechecksTrusts(t *testing.T) {
	testKeys(t)
	shared := newSetKeys(t, jwttest.JWKS(keyA, keyB)) // one source holding both pools' keys
	cache := NewCache(100, func() time.Time { return testNow })
	now := WithClock(func() time.Time { return testNow })
	onlyA, err := New(config.Authorizer{Trusts: []config.Trust{{Pool: poolA, Audience: []string{clientA, clientB}}}}, shared, now, WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	onlyB, err := New(config.Authorizer{Trusts: []config.Trust{{Pool: poolB, Audience: []string{clientA, clientB}}}}, shared, now, WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tokA, tokB := tokenFor(t, keyA, issA, clientA), tokenFor(t, keyB, issB, clientB)
	for i := range 2 { // miss, then hit
		if _, err := onlyA.Authorize(ctx, tokA); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if _, err := onlyB.Authorize(ctx, tokB); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if cache.Len() != 2 {
		t.Fatalf("cache holds %d tokens, want 2", cache.Len())
	}
	if _, err := onlyB.Authorize(ctx, tokA); AsError(err).Reason != "issuer" {
		t.Fatalf("pool A token (cached) through the pool B rule: %v", err)
	}
	if _, err := onlyA.Authorize(ctx, tokB); AsError(err).Reason != "issuer" {
		t.Fatalf("pool B token (cached) through the pool A rule: %v", err)
	}
	// The entry stays for the rule that trusts it.
	if _, err := onlyA.Authorize(ctx, tokA); err != nil || cache.Len() != 2 {
		t.Fatalf("pool A token after the refusal: %v (cache %d)", err, cache.Len())
	}
}

// A cache hit is re-checked against the keys of the rule's own trust: a
// rule whose trust has other keys for the same kid re-verifies, and fails.
func TestCacheRechecksTrustKeys(t *testing.T) {
	testKeys(t)
	cache := NewCache(100, func() time.Time { return testNow })
	now := WithClock(func() time.Time { return testNow })
	cfg := config.Authorizer{Trusts: []config.Trust{{Pool: poolA, Audience: []string{clientA}}}}
	genuine, err := New(cfg, newSetKeys(t, jwttest.JWKS(keyA)), now, WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(cfg, newSetKeys(t, jwttest.JWKS(keyForeign)), now, WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	tok := tokenFor(t, keyA, issA, clientA)
	if _, err := genuine.Authorize(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Authorize(context.Background(), tok); AsError(err).Reason != "bad_signature" {
		t.Fatalf("cached token through a rule with another key for its kid: %v", err)
	}
}
