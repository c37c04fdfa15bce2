package authz

// Cache behaviour at its limits: second-chance eviction, resizing, the
// table of verified-but-expired tokens, the interner when full, and the
// one-hash cache key.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// cacheAsVerifiedT puts tok in the authorizer's cache as if its signature
// had verified. The tests use a junk signature: a token answered from the
// cache is accepted, a re-verified one is refused with bad_signature, so
// the answer tells which path it took.
func cacheAsVerifiedT(t *testing.T, a *Authorizer, tok string) {
	t.Helper()
	head, payloadSeg, _, perr := splitToken(tok)
	if perr != nil {
		t.Fatal(perr)
	}
	h, perr := parseHeader(head, a.algs)
	if perr != nil {
		t.Fatal(perr)
	}
	key, err := a.issuers[0].keys.Key(context.Background(), h.kid)
	if err != nil {
		t.Fatal(err)
	}
	e, perr := decodeVerifiedClaims(payloadSeg, h, key, a.interner())
	if perr != nil {
		t.Fatal(perr)
	}
	sum := tokenKey(tok)
	a.cache.put(&sum, e)
}

func junkToken(claims map[string]any) string {
	return keyA.SigningInput(jwttest.Token{Claims: claims}) + "." + fakeSig
}

// TestCacheSecondChance: 32 tokens in use, each used after every 16
// one-off tokens, while 20 480 one-off tokens (40× the cache's 512
// entries) pass through. With second chance the tokens in use are never
// evicted; oldest first evicted each of them after about 8 one-offs had
// landed in its shard (hundreds of evictions).
func TestCacheSecondChance(t *testing.T) {
	testKeys(t)
	cache := NewCache(512, func() time.Time { return testNow })
	a := newTestAuthorizer(t, config.Authorizer{}, WithCache(cache))
	var hot []string
	for i := range 32 {
		tok := junkToken(with(accessClaims(), "jti", fmt.Sprint("hot-", i)))
		cacheAsVerifiedT(t, a, tok)
		hot = append(hot, tok)
	}
	lost := 0
	for round := range 1280 {
		for i, tok := range hot {
			if _, err := a.Authorize(context.Background(), tok); err != nil {
				lost++
				cacheAsVerifiedT(t, a, tok) // back in, to keep counting
				if lost == 1 {
					t.Logf("round %d: token in use %d evicted: %v", round, i, err)
				}
			}
		}
		for j := range 16 {
			cacheAsVerifiedT(t, a, junkToken(with(accessClaims(), "jti", fmt.Sprint("once-", round, "-", j))))
		}
		if round%64 == 0 {
			checkShards(t, cache, fmt.Sprintf("round %d", round))
		}
	}
	if lost != 0 {
		t.Fatalf("tokens in use were evicted %d times by one-off tokens", lost)
	}
}

// TestCacheResize: shrinking keeps what fits (tokens in use first) within
// the new bounds; growing lets more in; the invariants hold throughout.
func TestCacheResize(t *testing.T) {
	testKeys(t)
	cache := NewCache(64*8, func() time.Time { return testNow })
	a := newTestAuthorizer(t, config.Authorizer{}, WithCache(cache))
	var toks []string
	for i := range 64 * 8 {
		tok := junkToken(with(accessClaims(), "jti", i))
		cacheAsVerifiedT(t, a, tok)
		toks = append(toks, tok)
	}
	full := cache.Len()
	if full < 64*4 {
		t.Fatalf("only %d of %d tokens cached", full, 64*8)
	}
	used := map[string]bool{}
	for _, tok := range toks[:64] {
		if _, err := a.Authorize(context.Background(), tok); err == nil {
			used[tok] = true
		}
	}
	cache.Resize(64 * 2)
	checkShards(t, cache, "after shrinking")
	if cache.Cap() != 128 || cache.Len() > 128 || cache.Len() == 0 {
		t.Fatalf("after Resize(128): cap %d, len %d", cache.Cap(), cache.Len())
	}
	kept := 0
	for tok := range used {
		if _, err := a.Authorize(context.Background(), tok); err == nil {
			kept++
		}
	}
	// A shard keeps 2 entries; the used tokens are ~1 per shard.
	if kept < len(used)*3/4 {
		t.Errorf("shrinking kept %d of the %d tokens in use", kept, len(used))
	}
	cache.Resize(64 * 16)
	for i := range 64 * 16 {
		cacheAsVerifiedT(t, a, junkToken(with(accessClaims(), "jti", fmt.Sprint("g", i))))
	}
	checkShards(t, cache, "after growing")
	if cache.Cap() != 1024 || cache.Len() <= 64*8 {
		t.Fatalf("after Resize(1024) and 1024 tokens: cap %d, len %d", cache.Cap(), cache.Len())
	}
}

// TestStaleTokenAnsweredWithoutVerification: a token that verified but
// had expired for every route (past exp + the 5 min maximum leeway) is
// answered "expired" again from the stale table, without a verification
// (its junk signature would say bad_signature); the table stays within
// its bound under 10 000 distinct stale tokens, and a token of a key that
// left the key set is not answered from it.
func TestStaleTokenAnsweredWithoutVerification(t *testing.T) {
	testKeys(t)
	cache := NewCache(1000, func() time.Time { return testNow })
	a := newTestAuthorizer(t, config.Authorizer{}, WithCache(cache))
	stale := junkToken(with(accessClaims(), "exp", testNow.Unix()-301))
	cacheAsVerifiedT(t, a, stale)
	for range 3 {
		if _, err := a.Authorize(context.Background(), stale); AsError(err).Reason != "expired" {
			t.Fatalf("stale token replayed: %v, want expired without a verification", err)
		}
	}
	if cache.Len() != 0 {
		t.Fatalf("a stale token took a place in the cache (%d entries)", cache.Len())
	}
	// Within the maximum leeway a route may still accept it: the main
	// cache, not the stale table.
	recent := junkToken(with(accessClaims(), "exp", testNow.Unix()-10))
	cacheAsVerifiedT(t, a, recent)
	if cache.Len() != 1 {
		t.Fatalf("a token within the maximum leeway is not cached")
	}
	for i := range 10_000 {
		cacheAsVerifiedT(t, a, junkToken(with(accessClaims(), "jti", i, "exp", testNow.Unix()-400)))
	}
	checkShards(t, cache, "after 10 000 stale tokens")
	n := 0
	for i := range cache.shards {
		n += len(cache.shards[i].stale)
	}
	if n == 0 || n > cacheShards*staleSlots {
		t.Fatalf("stale table holds %d tokens, bound %d", n, cacheShards*staleSlots)
	}
	// Key removed: re-verified (unknown kid), not answered from the table.
	cacheAsVerifiedT(t, a, stale)
	b, err := New(config.Authorizer{UserPool: testPool, Audience: []string{testClient}}, newSetKeys(t, jwttest.JWKS(keyB)),
		WithClock(func() time.Time { return testNow }), WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authorize(context.Background(), stale); AsError(err).Reason != "unknown_kid" {
		t.Fatalf("stale token of a removed key: %v, want unknown_kid", err)
	}
}

// TestInternerFullDoesNotSweepEachInsert: with the table full of live
// claim sets, 20 000 new sets cause at most one sweep per 512 refusals,
// not one per insertion; a set freed later is swept and its slot reused.
func TestInternerFullDoesNotSweepEachInsert(t *testing.T) {
	in := newInterner()
	var keep []*claimSet
	for i := range maxInterned {
		cs := &claimSet{size: 64}
		keep = append(keep, cs)
		if !in.put(fmt.Appendf(nil, "k%d", i), cs) {
			t.Fatalf("set %d refused before the table was full", i)
		}
	}
	for i := range 20_000 {
		if in.put(fmt.Appendf(nil, "new%d", i), &claimSet{size: 64}) {
			t.Fatalf("a set was interned into a table full of live sets")
		}
	}
	if max := 20_000/(maxInterned/2) + 1; in.sweeps > max {
		t.Fatalf("%d sweeps for 20 000 refused insertions, want at most %d", in.sweeps, max)
	}
	t.Logf("%d sweeps for 20 000 refused insertions", in.sweeps)
	keep = keep[:0]
	_ = keep
	// Once sets die, a later sweep frees their slots.
	ok := false
	for i := 0; i < 10*maxInterned && !ok; i++ {
		if i%maxInterned == 0 {
			runGC()
		}
		ok = in.put(fmt.Appendf(nil, "late%d", i), &claimSet{size: 64})
	}
	if !ok {
		t.Fatal("dead sets were never swept")
	}
}

// TestTokenKey: the cache key is the SHA-256 of the whole token, and the
// digest handed to the verification, from the same pass, is the signing
// input's.
func TestTokenKey(t *testing.T) {
	testKeys(t)
	small := keyA.Sign(t, jwttest.Token{Claims: accessClaims()})
	if k, _, n := tokenDigests(small); n != -1 || k != sha256.Sum256([]byte(small)) {
		t.Fatalf("a %d-byte token: input length %d, want only its key (-1)", len(small), n)
	}
	claims := accessClaims()
	claims["pad"] = strings.Repeat("x", digestSnapshotMinBytes)
	tok := keyA.Sign(t, jwttest.Token{Claims: claims})
	key, input, n := tokenDigests(tok)
	i := lastDot(tok)
	if n != i || input != sha256.Sum256([]byte(tok[:i])) {
		t.Fatalf("input digest of %d bytes, want the signing input's (%d)", n, i)
	}
	if key != sha256.Sum256([]byte(tok)) || key != tokenKey(tok) {
		t.Fatal("the cache key is not the token's SHA-256")
	}
	if k, _, n := tokenDigests("no-dots-at-all"); n != -1 || k != sha256.Sum256([]byte("no-dots-at-all")) {
		t.Fatal("a token without a '.' is keyed by its own digest")
	}
	if a := testing.AllocsPerRun(100, func() { tokenDigests(tok) }); a != 0 {
		t.Fatalf("tokenDigests allocates %v times", a)
	}
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// runGC collects twice: weak pointers are cleared by the first.
func runGC() {
	runtime.GC()
	runtime.GC()
}
