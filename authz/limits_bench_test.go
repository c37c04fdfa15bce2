package authz

// Benchmarks of the engine at its limits (issue 15). Run:
//
//	go test -run '^$' -bench 'ClaimSetsFull|CacheOverflow|StaleReplay|ForgedToken|Interner' -benchmem ./authz/
//
// They use only what the engine had before the issue-15 changes too, so the
// same file run against an older checkout gives the "before" figures.

import (
	"context"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// fillClaimSets fills a's interner with n distinct claim sets kept alive
// by cached entries (per-tenant groups), as a deployment with many
// tenants does.
func fillClaimSets(b *testing.B, a *Authorizer, n int) {
	b.Helper()
	for i := range n {
		in := keyA.SigningInput(jwttest.Token{Claims: with(benchClaims(i), "cognito:groups", []string{fmt.Sprintf("tenant-%d", i)})})
		cacheAsVerified(b, a, in+"."+fakeSig)
	}
}

// BenchmarkNewTokenClaimSetsFull: new tokens (real RS256 verification)
// while more than 1024 distinct claim sets are alive, so the claim-set
// table is full and no new set can be interned.
func BenchmarkNewTokenClaimSetsFull(b *testing.B) {
	toks := signedBenchTokens(b, 1024)
	bl := &baseline{in: newRSAInput(b, toks[0])}
	ctx := context.Background()
	clock := func() time.Time { return testNow }
	a := newBenchAuthorizer(b, NewCache(0, clock))
	fillClaimSets(b, a, 1100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%len(toks) == 0 && i > 0 {
			b.StopTimer()
			a.cache = NewCache(0, clock)
			fillClaimSets(b, a, 1100)
			b.StartTimer()
		}
		if _, err := a.Authorize(ctx, toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
		bl.maybeSample(b, i)
	}
	bl.report(b)
}

// BenchmarkCacheOverflow: more users than the cache holds (users = 1.5 ×
// size), each request one user's token. It reports the hit rate and the
// engine's cost per request on one core (µs/req, req/s): a hit is a
// lookup and the rule check; a miss is what a new token costs — a full
// verification of a signed token (on a cache-less authorizer) and the
// insertion of the user's entry. "rotation": every user
// in turn, as a load generator cycling through a token file does — no
// replacement policy can hit there, only a cache as large as the users;
// "mixed": half the requests from a steady set of active users (a third of
// the cache), the other half cycling through all the others (batch jobs,
// a crawler, users who come once); "zipf": a few users much more active
// than most. Sizes: 20 000 (the old default) and 100 000 (the new one);
// 30 000 users is the case.
func BenchmarkCacheOverflow(b *testing.B) {
	testKeys(b)
	for _, sc := range []struct{ size, users int }{{20_000, 30_000}, {100_000, 30_000}, {100_000, 150_000}} {
		size, users := sc.size, sc.users
		toks := make([]string, users)
		for i := range toks {
			toks[i] = fakeSignedToken(i)
		}
		for _, pattern := range []string{"rotation", "mixed", "zipf"} {
			if users < size && pattern != "rotation" {
				continue // everyone fits: nothing to compare
			}
			b.Run(fmt.Sprintf("size=%d/users=%d/%s", size, users, pattern), func(b *testing.B) {
				signed := signedBenchTokens(b, 1024)
				verifier := newBenchAuthorizer(b, nil)
				ctx := context.Background()
				cache := NewCache(size, func() time.Time { return testNow })
				a := newBenchAuthorizer(b, cache)
				z := mrand.NewZipf(mrand.New(mrand.NewPCG(1, 2)), 1.1, 1, uint64(users-1))
				active := size / 3
				next := func(i int) int {
					switch pattern {
					case "rotation":
						return i % users
					case "mixed":
						if i%2 == 0 {
							return (i / 2) % active
						}
						return active + (i/2)%(users-active)
					}
					return int(z.Uint64())
				}
				// Warm up: two passes' worth of requests; the timed loop
				// carries on from there (a steady state, whatever b.N).
				warm := 2 * users
				for i := range warm {
					tok := toks[next(i)]
					sum := tokenKey(tok)
					if e := cache.get(&sum); e == nil || !cache.stillVerifies(ctx, &sum, e, a.issuers[0].keys) {
						cacheAsVerified(b, a, tok)
					}
				}
				hits := 0
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					tok := toks[next(warm+i)]
					sum := tokenKey(tok)
					if e := cache.get(&sum); e != nil && cache.stillVerifies(ctx, &sum, e, a.issuers[0].keys) {
						hits++
						if err := a.check(e, a.issuers[0].trust); err != nil && err.Reason != "scope" {
							b.Fatal(err)
						}
						continue
					}
					if _, err := verifier.Authorize(ctx, signed[i%len(signed)]); err != nil {
						b.Fatal(err)
					}
					cacheAsVerified(b, a, tok) // what the verified miss leaves
				}
				b.StopTimer()
				hit := float64(hits) / float64(b.N)
				perReq := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(100*hit, "hit-%")
				b.ReportMetric(perReq/1000, "µs/req")
				b.ReportMetric(math.Round(1e9/perReq), "req/s")
			})
		}
	}
}

// BenchmarkStaleReplay: a client replays a validly signed token that has
// expired (past exp + the 5 min maximum leeway), as clients retrying with
// a stale token do. Each replay is answered 401 expired.
func BenchmarkStaleReplay(b *testing.B) {
	testKeys(b)
	tok := keyA.Sign(b, jwttest.Token{Claims: with(benchClaims(1), "exp", testNow.Unix()-400)})
	bl := &baseline{in: newRSAInput(b, signedBenchTokens(b, 1)[0])}
	ctx := context.Background()
	a := newBenchAuthorizer(b, NewCache(0, func() time.Time { return testNow }))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Authorize(ctx, tok); AsError(err).Reason != "expired" {
			b.Fatal(err)
		}
		bl.maybeSample(b, i)
	}
	bl.report(b)
}

// BenchmarkForgedToken: tokens with a known kid and a forged signature
// (a real signature of another token, so the RSA check runs to its end),
// of 1 KB and 16 KB (the default max_token_bytes): each costs hashing and
// an RSA verification, never a cache entry.
func BenchmarkForgedToken(b *testing.B) {
	testKeys(b)
	for _, size := range []int{1 << 10, 16 << 10} {
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			other := signedBenchTokens(b, 1)[0]
			sig := other[strings.LastIndexByte(other, '.')+1:]
			in := keyA.SigningInput(jwttest.Token{Claims: with(benchClaims(1), "pad", strings.Repeat("x", max(0, size*3/4-900)))})
			tok := in + "." + sig
			if len(tok) > 16<<10 {
				tok = in[:len(in)-(len(tok)-16<<10)] + "." + sig
			}
			bl := &baseline{in: newRSAInput(b, signedBenchTokens(b, 1)[0])}
			ctx := context.Background()
			a := newBenchAuthorizer(b, NewCache(0, func() time.Time { return testNow }))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := a.Authorize(ctx, tok); err == nil {
					b.Fatal("forged token accepted")
				}
				bl.maybeSample(b, i)
			}
			bl.report(b)
			b.ReportMetric(float64(len(tok)), "token-bytes")
		})
	}
}

// BenchmarkInterner: does sharing claim sets pay at the default cache
// size? "on" is the engine as it is; "off" the same without the interner
// (every entry decodes and holds its own claim set). new-token: the cost
// of a new token; memory: the heap of 100 000 typical cached tokens.
func BenchmarkInterner(b *testing.B) {
	toks := signedBenchTokens(b, 1024)
	clock := func() time.Time { return testNow }
	for _, on := range []bool{true, false} {
		name := map[bool]string{true: "on", false: "off"}[on]
		mk := func() *Cache {
			c := NewCache(0, clock)
			if !on {
				c.interned = nil
			}
			return c
		}
		b.Run(name+"/new-token", func(b *testing.B) {
			bl := &baseline{in: newRSAInput(b, toks[0])}
			ctx := context.Background()
			a := newBenchAuthorizer(b, mk())
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%len(toks) == 0 && i > 0 {
					b.StopTimer()
					a.cache = mk()
					b.StartTimer()
				}
				if _, err := a.Authorize(ctx, toks[i%len(toks)]); err != nil {
					b.Fatal(err)
				}
				bl.maybeSample(b, i)
			}
			bl.report(b)
		})
		b.Run(name+"/memory100k", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				cache := mk()
				a := newBenchAuthorizer(b, cache)
				b.StartTimer()
				for i := range 100_000 {
					cacheAsVerified(b, a, fakeSignedToken(i))
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				held := float64(after.HeapAlloc) - float64(before.HeapAlloc)
				b.ReportMetric(held/(1<<20), "MiB")
				b.ReportMetric(held/float64(cache.Len()), "B/entry")
				runtime.KeepAlive(cache)
				runtime.KeepAlive(a)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkRejection: what one request of a flood costs the engine, per
// rejection class. "missing", "oversized" (over max_token_bytes),
// "malformed" and "unknown-kid" are refused before any RSA work;
// "bad-signature" (a known kid, a real signature of another token) costs
// one RSA verification each time: nothing about it may be cached; "stale"
// (validly signed, expired) is answered from the table of expired tokens
// after the first; "scope" (a valid token without the route's scope) is a
// cache hit.
func BenchmarkRejection(b *testing.B) {
	testKeys(b)
	good := signedBenchTokens(b, 1)[0]
	sig := good[strings.LastIndexByte(good, '.')+1:]
	ctx := context.Background()
	stale := keyA.Sign(b, jwttest.Token{Claims: with(benchClaims(1), "exp", testNow.Unix()-400)})
	noScope := keyA.Sign(b, jwttest.Token{Claims: with(benchClaims(2), "scope", "other/read")})
	for _, c := range []struct{ name, tok, reason string }{
		{"missing", "", "missing"},
		{"oversized", strings.Repeat("a", 17<<10), "too_large"},
		{"malformed", "not-a-jwt-at-all", "malformed"},
		{"unknown-kid", keyA.SigningInput(jwttest.Token{Header: map[string]any{"kid": "forged"}, Claims: benchClaims(3)}) + "." + sig, "unknown_kid"},
		{"bad-signature", keyA.SigningInput(jwttest.Token{Claims: benchClaims(4)}) + "." + sig, "bad_signature"},
		{"stale", stale, "expired"},
		{"scope", noScope, "scope"},
	} {
		b.Run(c.name, func(b *testing.B) {
			// The key set knows no "forged" kid and refuses it at once, as a
			// keyring does during its refetch cooldown, i.e. in a flood.
			a := newBenchAuthorizer(b, NewCache(0, func() time.Time { return testNow }))
			bl := &baseline{in: newRSAInput(b, good)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := a.Authorize(ctx, c.tok); AsError(err).Reason != c.reason {
					b.Fatalf("%v, want %s", err, c.reason)
				}
				if i%1024 == 1023 || c.name == "bad-signature" {
					bl.maybeSample(b, i)
				}
			}
			bl.report(b)
		})
	}
}
