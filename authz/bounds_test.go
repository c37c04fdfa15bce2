package authz

// Time and space bounds of the engine: the leeway edges of exp, nbf and iat
// on a controlled clock (no sleeping), through the verifier and through the
// verified-token cache; the cache's size cap under thousands of distinct
// valid tokens; and no state at all for what an attacker can invent (key
// ids, tokens, issuers).

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// manualClock is a clock the test moves.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// TestLeewayEdges: exp, nbf and iat at and around their limits, for leeway
// 0, 30s and the 5m maximum. The rule (RFC 7519 §4.1.4-6): valid while
// now < exp + leeway, and once nbf - leeway <= now and iat - leeway <= now.
// Each token is checked twice, so the second answer comes from the cache,
// which must draw exactly the same lines.
func TestLeewayEdges(t *testing.T) {
	testKeys(t)
	T := testNow.Unix()
	type tc struct {
		name   string
		leeway time.Duration
		claims []any         // overrides of accessClaims
		now    time.Duration // clock offset from testNow
		reason string        // "" = accepted
	}
	var cases []tc
	for _, lw := range []time.Duration{0, 30 * time.Second, 5 * time.Minute} {
		L := int64(lw / time.Second)
		cases = append(cases,
			// exp
			tc{"exp = now - leeway", lw, []any{"exp", T - L}, 0, "expired"},
			tc{"exp = now - leeway + 1", lw, []any{"exp", T - L + 1}, 0, ""},
			tc{"exp = now - leeway + 1, 999ms later", lw, []any{"exp", T - L + 1}, 999 * time.Millisecond, ""},
			tc{"exp = now - leeway + 1, 1s later", lw, []any{"exp", T - L + 1}, time.Second, "expired"},
			tc{"exp far past", lw, []any{"exp", T - L - 3600}, 0, "expired"},
			// nbf
			tc{"nbf = now + leeway", lw, []any{"nbf", T + L}, 0, ""},
			tc{"nbf = now + leeway + 1", lw, []any{"nbf", T + L + 1}, 0, "not_yet_valid"},
			tc{"nbf = now + leeway + 1, 999ms later", lw, []any{"nbf", T + L + 1}, 999 * time.Millisecond, "not_yet_valid"},
			tc{"nbf = now + leeway + 1, 1s later", lw, []any{"nbf", T + L + 1}, time.Second, ""},
			// iat
			tc{"iat = now + leeway", lw, []any{"iat", T + L}, 0, ""},
			tc{"iat = now + leeway + 1", lw, []any{"iat", T + L + 1}, 0, "issued_in_future"},
			tc{"iat = now + leeway + 1, 1s later", lw, []any{"iat", T + L + 1}, time.Second, ""},
		)
	}
	// Leeway is whole seconds: 1.9s of leeway is 1s, never more.
	cases = append(cases,
		tc{"leeway 1.9s, exp = now - 1", 1900 * time.Millisecond, []any{"exp", T - 1}, 0, "expired"},
		tc{"leeway 1.9s, exp = now", 1900 * time.Millisecond, []any{"exp", T}, 0, ""},
		tc{"leeway 1.9s, nbf = now + 2", 1900 * time.Millisecond, []any{"nbf", T + 2}, 0, "not_yet_valid"},
	)
	for _, c := range cases {
		t.Run(fmt.Sprintf("leeway %s/%s", c.leeway, c.name), func(t *testing.T) {
			clk := &manualClock{t: testNow.Add(c.now)}
			cache := NewCache(64, clk.Now)
			a, err := New(config.Authorizer{UserPool: testPool, Audience: []string{testClient}, Leeway: config.Duration(c.leeway)},
				newSetKeys(t, jwttest.JWKS(keyA)), WithClock(clk.Now), WithCache(cache))
			if err != nil {
				t.Fatal(err)
			}
			tok := keyA.Sign(t, jwttest.Token{Claims: with(accessClaims(), c.claims...)})
			for _, pass := range []string{"verified", "cached"} {
				_, err := a.Authorize(context.Background(), tok)
				got := ""
				if err != nil {
					got = AsError(err).Reason
				}
				if got != c.reason {
					t.Fatalf("%s: reason %q, want %q (err %v)", pass, got, c.reason, err)
				}
			}
		})
	}
}

// TestLeewayEdgeCrossedWhileCached: a token accepted (and cached) one
// second before its limit is refused the second the clock reaches it, from
// the cache as from the verifier.
func TestLeewayEdgeCrossedWhileCached(t *testing.T) {
	testKeys(t)
	for _, lw := range []time.Duration{0, 5 * time.Minute} {
		t.Run(lw.String(), func(t *testing.T) {
			clk := &manualClock{t: testNow}
			cache := NewCache(64, clk.Now)
			keys := newSetKeys(t, jwttest.JWKS(keyA))
			a, err := New(config.Authorizer{UserPool: testPool, Audience: []string{testClient}, Leeway: config.Duration(lw)},
				keys, WithClock(clk.Now), WithCache(cache))
			if err != nil {
				t.Fatal(err)
			}
			exp := testNow.Unix() + 1 - int64(lw/time.Second) // last valid second: now
			tok := keyA.Sign(t, jwttest.Token{Claims: with(accessClaims(), "exp", exp)})
			if _, err := a.Authorize(context.Background(), tok); err != nil {
				t.Fatalf("at the last valid second: %v", err)
			}
			if cache.Len() != 1 {
				t.Fatalf("cache holds %d tokens, want the verified one", cache.Len())
			}
			clk.Set(testNow.Add(time.Second))
			for _, pass := range []string{"first", "second"} {
				if _, err := a.Authorize(context.Background(), tok); AsError(err).Reason != "expired" {
					t.Fatalf("%s request one second later: %v, want expired", pass, err)
				}
			}
		})
	}
}

var (
	boundToksOnce sync.Once
	boundToks     []string // distinct tokens validly signed by keyA
)

// distinctValidTokens returns n distinct tokens signed by keyA, each with
// its own user and claims (signing costs about a millisecond: made once).
func distinctValidTokens(t *testing.T, n int) []string {
	t.Helper()
	testKeys(t)
	const made = 2000
	boundToksOnce.Do(func() {
		boundToks = make([]string, made)
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < made; i += workers {
					boundToks[i] = keyA.Sign(t, jwttest.Token{Claims: with(accessClaims(),
						"sub", fmt.Sprintf("%08x-bbbb-4ccc-8ddd-%012x", i, i),
						"username", fmt.Sprintf("user-%d", i),
						"jti", fmt.Sprintf("jti-%d", i),
						"scope", fmt.Sprintf("openid custom/scope.%d", i),
						"cognito:groups", []string{fmt.Sprintf("group-%d", i)},
					)})
				}
			}()
		}
		wg.Wait()
	})
	if n > made {
		t.Fatalf("at most %d tokens", made)
	}
	return boundToks[:n]
}

// TestCacheCapUnderDistinctTokens: 2000 distinct valid tokens, each used
// twice, against caches of several sizes: the cache never holds more than
// its cap, the cap is the configured size rounded up to the shards, and
// every token is still accepted (eviction costs a verification, never a
// refusal).
func TestCacheCapUnderDistinctTokens(t *testing.T) {
	toks := distinctValidTokens(t, 2000)
	for _, size := range []int{1, 100, 500} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			cache := NewCache(size, func() time.Time { return testNow })
			if c := cache.Cap(); c < size || c >= size+cacheShards {
				t.Fatalf("NewCache(%d).Cap() = %d, want %d rounded up to the %d shards", size, c, size, cacheShards)
			}
			a := newTestAuthorizer(t, config.Authorizer{}, WithCache(cache))
			maxLen := 0
			for round := range 2 {
				for i, tok := range toks {
					if _, err := a.Authorize(context.Background(), tok); err != nil {
						t.Fatalf("round %d, token %d: %v", round, i, err)
					}
					if i%50 == 0 {
						maxLen = max(maxLen, cache.Len())
					}
				}
			}
			maxLen = max(maxLen, cache.Len())
			if maxLen > cache.Cap() {
				t.Fatalf("cache held %d tokens, cap %d", maxLen, cache.Cap())
			}
			if maxLen == 0 && size >= 100 {
				t.Fatalf("nothing was cached")
			}
			t.Logf("size %d: cap %d, held at most %d of %d distinct tokens", size, cache.Cap(), maxLen, len(toks))
		})
	}
}

// TestCacheConcurrentFillBounded: the cap holds when many goroutines fill
// the cache at once.
func TestCacheConcurrentFillBounded(t *testing.T) {
	toks := distinctValidTokens(t, 2000)
	cache := NewCache(128, func() time.Time { return testNow })
	a := newTestAuthorizer(t, config.Authorizer{}, WithCache(cache))
	var wg sync.WaitGroup
	var failed, over atomic.Int64
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(toks); i += 16 {
				if _, err := a.Authorize(context.Background(), toks[i]); err != nil {
					failed.Add(1)
				}
				if cache.Len() > cache.Cap() {
					over.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 || over.Load() != 0 || cache.Len() > cache.Cap() {
		t.Fatalf("%d valid tokens refused, cap %d exceeded %d times (now %d)", failed.Load(), cache.Cap(), over.Load(), cache.Len())
	}
}

// floodSource serves a fixed key set and counts fetches.
type floodSource struct {
	doc     []byte
	fetches atomic.Int64
}

func (s *floodSource) String() string { return "flood" }
func (s *floodSource) Fetch(context.Context, string) ([]byte, string, error) {
	s.fetches.Add(1)
	return s.doc, "v1", nil
}

// TestAttackerInputLeavesNoState: 40 000 requests with what an attacker
// can vary freely — random key ids, random signatures on a known kid,
// random issuers and audiences on tokens signed by a key that is not
// published — go through the real keyring and a shared cache. All are
// refused; nothing is cached; the keyring fetched at most once (its clock
// is frozen inside one cooldown); and the live heap does not grow with the
// number of distinct inputs.
func TestAttackerInputLeavesNoState(t *testing.T) {
	testKeys(t)
	src := &floodSource{doc: jwttest.JWKS(keyA)}
	frozen := func() time.Time { return testNow }
	ring := jwks.NewKeyring(src, jwks.Options{Now: frozen, Cooldown: time.Minute})
	ring.Start()
	t.Cleanup(ring.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ring.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	cache := NewCache(1000, frozen)
	a, err := New(config.Authorizer{UserPool: testPool, Audience: []string{testClient}}, ring, WithClock(frozen), WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	// A few hundred tokens signed by an unpublished key under the known
	// kid, with random issuers and audiences (the RSA signing is the slow
	// part: they are reused with random trailing signatures below).
	forged := make([]string, 200)
	for i := range forged {
		forged[i] = keyForeign.Sign(t, jwttest.Token{Claims: with(accessClaims(),
			"iss", "https://attacker.example/"+randHex(16), "client_id", randHex(13), "jti", randHex(8))})
	}
	sigRaw := make([]byte, 256)
	_, _ = rand.Read(sigRaw)
	junkSig := base64.RawURLEncoding.EncodeToString(sigRaw)
	payload := keyA.SigningInput(jwttest.Token{Claims: accessClaims()})

	const total = 40_000
	attempt := func(i int) string {
		switch i % 4 {
		case 0: // random kid
			return keyA.SigningInput(jwttest.Token{Header: map[string]any{"kid": randHex(32)}, Claims: accessClaims()}) + "." + junkSig
		case 1: // known kid, random signature
			sig := make([]byte, 256)
			_, _ = rand.Read(sig)
			return payload + "." + base64.RawURLEncoding.EncodeToString(sig)
		case 2: // a forged token, as signed
			return forged[i%len(forged)]
		default: // random issuer in an unsigned payload
			return keyA.SigningInput(jwttest.Token{Claims: with(accessClaims(), "iss", "https://"+randHex(20)+".example")}) + "." + junkSig
		}
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	base := src.fetches.Load()
	var wg sync.WaitGroup
	var accepted atomic.Int64
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += workers {
				if _, err := a.Authorize(context.Background(), attempt(i)); err == nil {
					accepted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	runtime.GC()
	runtime.ReadMemStats(&m1)

	if n := accepted.Load(); n != 0 {
		t.Fatalf("%d attacker tokens accepted", n)
	}
	if n := cache.Len(); n != 0 {
		t.Fatalf("%d unverified tokens cached", n)
	}
	if n := src.fetches.Load() - base; n > 1 {
		t.Fatalf("%d key fetches for %d invented kids inside one cooldown, want at most 1", n, total/4)
	}
	// 40 000 distinct tokens of about 1 KB are 40 MB: any per-input
	// state would show. The slack is the runtime's own noise.
	if grew := int64(m1.HeapAlloc) - int64(m0.HeapAlloc); grew > 4<<20 {
		t.Fatalf("live heap grew by %d bytes over %d attacker requests", grew, total)
	}
	// And the service still works.
	if _, err := a.Authorize(context.Background(), keyA.Sign(t, jwttest.Token{Claims: accessClaims()})); err != nil {
		t.Fatalf("valid token after the flood: %v", err)
	}
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
