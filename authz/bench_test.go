package authz

// Benchmarks of the authorization hot path, side by side with the raw RSA
// verification they are measured against (issue 5). Run:
//
//	go test -run '^$' -bench . -benchmem ./authz/
//
// Ratios are printed with b.ReportMetric (x-rsa = ns/op of the decision ÷
// ns/op of a bare rsa.VerifyPKCS1v15 measured in the same benchmark), so a
// busy or slow machine still gives a meaningful figure. Tests never time
// anything; only these benchmarks do.

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// benchClaims are the claims of a real-looking Cognito access token (about
// 1.1 KB once signed), unique per user i.
func benchClaims(i int) map[string]any {
	groups := [][]string{{"admin"}, {"users"}, {"admin", "users"}, {"ops", "users", "billing"}}
	scopes := []string{"order/get.order order/post.order", "order/get.order", "aws.cognito.signin.user.admin openid"}
	return map[string]any{
		"sub":            fmt.Sprintf("%08x-bbbb-4ccc-8ddd-%012x", i, i),
		"cognito:groups": groups[i%len(groups)],
		"iss":            testIssuer,
		"version":        2,
		"client_id":      testClient,
		"origin_jti":     fmt.Sprintf("%08x-1111-4222-8333-%012x", i, i),
		"event_id":       fmt.Sprintf("%08x-4444-4555-8666-%012x", i, i),
		"token_use":      "access",
		"scope":          scopes[i%len(scopes)],
		"auth_time":      testNow.Unix() - 100,
		"exp":            testNow.Unix() + 3600,
		"iat":            testNow.Unix() - 100,
		"jti":            fmt.Sprintf("%08x-7777-4888-8999-%012x", i, i),
		"username":       fmt.Sprintf("user-%08d@example.com", i),
	}
}

var (
	benchTokOnce sync.Once
	benchToks    []string // validly signed by keyA, distinct
)

// signedBenchTokens returns n distinct tokens signed by keyA (signing is
// slow, ~1 ms each: they are made once per process).
func signedBenchTokens(b *testing.B, n int) []string {
	b.Helper()
	testKeys(b)
	benchTokOnce.Do(func() {
		benchToks = make([]string, 1024)
		var wg sync.WaitGroup
		for w := range runtime.GOMAXPROCS(0) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(benchToks); i += runtime.GOMAXPROCS(0) {
					benchToks[i] = keyA.Sign(b, jwttest.Token{Claims: benchClaims(i)})
				}
			}()
		}
		wg.Wait()
	})
	if n > len(benchToks) {
		b.Fatalf("at most %d signed tokens", len(benchToks))
	}
	return benchToks[:n]
}

// fakeSignedToken is a token of user i with a random signature: it is
// never verified, only put into the cache as if it had been, so the cache
// can be filled with 100 000 entries without 100 000 RSA signatures.
func fakeSignedToken(i int) string {
	return keyA.SigningInput(jwttest.Token{Claims: benchClaims(i)}) + "." + fakeSig
}

// cacheAsVerified puts tok into a's cache as verify would after a good
// signature (everything but the RSA check).
func cacheAsVerified(b *testing.B, a *Authorizer, tok string) {
	b.Helper()
	head, payloadSeg, _, err := splitToken(tok)
	if err != nil {
		b.Fatal(err)
	}
	h, err := parseHeader(head, a.algs)
	if err != nil {
		b.Fatal(err)
	}
	key, kerr := a.issuers[0].keys.Key(context.Background(), h.kid)
	if kerr != nil {
		b.Fatal(kerr)
	}
	c, perr := decodeVerifiedClaims(payloadSeg, h, key, a.interner())
	if perr != nil {
		b.Fatal(perr)
	}
	sum := tokenKey(tok)
	a.cache.put(&sum, c)
}

func newBenchAuthorizer(b testing.TB, cache *Cache) *Authorizer {
	b.Helper()
	opts := []Option{}
	if cache != nil {
		opts = append(opts, WithCache(cache))
	}
	return newTestAuthorizer(b, config.Authorizer{Scopes: []string{"order/get.order", "openid", "aws.cognito.signin.user.admin"}}, opts...)
}

// rsaInput is a signature check as the bare library call sees it.
type rsaInput struct {
	pub    *rsa.PublicKey
	digest []byte
	sig    []byte
}

func newRSAInput(b *testing.B, tok string) rsaInput {
	b.Helper()
	testKeys(b)
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	d := sha256.Sum256([]byte(tok[:i]))
	return rsaInput{pub: &keyA.Private.PublicKey, digest: d[:], sig: sig}
}

// baseline times bare RSA verifications interleaved with a benchmark's
// loop (timer stopped), so that both see the same machine: on a shared or
// busy machine a baseline measured before or after would not compare.
type baseline struct {
	in    rsaInput
	total time.Duration
	n     int
}

// every is how often (in iterations) the baseline is sampled.
const every = 32

// maybeSample samples the baseline every `every` iterations.
func (bl *baseline) maybeSample(b *testing.B, i int) {
	if i%every != every-1 {
		return
	}
	b.StopTimer()
	start := time.Now()
	for range 4 {
		if err := rsa.VerifyPKCS1v15(bl.in.pub, crypto.SHA256, bl.in.digest, bl.in.sig); err != nil {
			b.Fatal(err)
		}
	}
	bl.total += time.Since(start)
	bl.n += 4
	b.StartTimer()
}

// report adds rsa-ns (the interleaved baseline) and x-rsa (ns/op of the
// benchmark ÷ rsa-ns).
func (bl *baseline) report(b *testing.B) {
	b.Helper()
	b.StopTimer()
	if bl.n < 32 {
		// Too short a run to have sampled enough: measure now.
		start := time.Now()
		for range 64 {
			_ = rsa.VerifyPKCS1v15(bl.in.pub, crypto.SHA256, bl.in.digest, bl.in.sig)
		}
		bl.total += time.Since(start)
		bl.n += 64
	}
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	base := float64(bl.total.Nanoseconds()) / float64(bl.n)
	b.ReportMetric(base, "rsa-ns")
	b.ReportMetric(per/base, "x-rsa")
}

// BenchmarkRSAVerifyBaseline is the floor: rsa.VerifyPKCS1v15 of an
// RS256 signature with the digest already computed.
func BenchmarkRSAVerifyBaseline(b *testing.B) {
	in := newRSAInput(b, signedBenchTokens(b, 1)[0])
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(in.pub, crypto.SHA256, in.digest, in.sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorizeNewToken: every decision sees a token it has never
// seen: split, header, key lookup, RSA, claims, rules, and the cache miss
// and insertion (the cache is emptied whenever the token pool wraps).
func BenchmarkAuthorizeNewToken(b *testing.B) {
	toks := signedBenchTokens(b, 1024)
	bl := &baseline{in: newRSAInput(b, toks[0])}
	ctx := context.Background()
	clock := func() time.Time { return testNow }
	a := newBenchAuthorizer(b, NewCache(0, clock))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%len(toks) == 0 && i > 0 {
			b.StopTimer()
			a.cache = NewCache(0, clock)
			b.StartTimer()
		}
		if _, err := a.Authorize(ctx, toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
		bl.maybeSample(b, i)
	}
	bl.report(b)
}

// BenchmarkAuthorizeNoCache is the verify path alone (no cache at all).
func BenchmarkAuthorizeNoCache(b *testing.B) {
	toks := signedBenchTokens(b, 1024)
	bl := &baseline{in: newRSAInput(b, toks[0])}
	ctx := context.Background()
	a := newBenchAuthorizer(b, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Authorize(ctx, toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
		bl.maybeSample(b, i)
	}
	bl.report(b)
}

// BenchmarkAuthorizeCached: the token was seen before (clients keep a
// token for about an hour). Every rule is still applied.
func BenchmarkAuthorizeCached(b *testing.B) {
	toks := signedBenchTokens(b, 1024)
	bl := &baseline{in: newRSAInput(b, toks[0])}
	ctx := context.Background()
	a := newBenchAuthorizer(b, NewCache(0, func() time.Time { return testNow }))
	for _, t := range toks {
		if _, err := a.Authorize(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Authorize(ctx, toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			bl.maybeSample(b, every-1)
		}
	}
	bl.report(b)
}

// BenchmarkAuthorizeCachedThreeTrusts is BenchmarkAuthorizeCached with
// three trusts (issue 10): two other pools (one with its UPDATED form and
// a replica Region) are listed before the tokens' pool, so selection
// compares the token's issuer with five others first. Each trust has its
// own keys.
func BenchmarkAuthorizeCachedThreeTrusts(b *testing.B) {
	toks := signedBenchTokens(b, 1024)
	bl := &baseline{in: newRSAInput(b, toks[0])}
	ctx := context.Background()
	a := newThreeTrustAuthorizer(b, NewCache(0, func() time.Time { return testNow }))
	for _, t := range toks {
		if _, err := a.Authorize(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Authorize(ctx, toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			bl.maybeSample(b, every-1)
		}
	}
	bl.report(b)
}

// BenchmarkAuthorizeNoCacheThreeTrusts is BenchmarkAuthorizeNoCache with
// the three trusts of BenchmarkAuthorizeCachedThreeTrusts.
func BenchmarkAuthorizeNoCacheThreeTrusts(b *testing.B) {
	toks := signedBenchTokens(b, 1024)
	bl := &baseline{in: newRSAInput(b, toks[0])}
	ctx := context.Background()
	a := newThreeTrustAuthorizer(b, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Authorize(ctx, toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
		bl.maybeSample(b, i)
	}
	bl.report(b)
}

func newThreeTrustAuthorizer(b testing.TB, cache *Cache) *Authorizer {
	b.Helper()
	testKeys(b)
	opts := []Option{WithClock(func() time.Time { return testNow })}
	if cache != nil {
		opts = append(opts, WithCache(cache))
	}
	keysOf := map[string]Keys{}
	opts = append(opts, WithKeysFor(func(_ int, iss string) Keys {
		if iss == testIssuer {
			return newSetKeys(b, jwttest.JWKS(keyA, keyB))
		}
		if keysOf[iss] == nil {
			keysOf[iss] = newSetKeys(b, jwttest.JWKS(keyForeign))
		}
		return keysOf[iss]
	}))
	a, err := New(config.Authorizer{
		Scopes: []string{"order/get.order", "openid", "aws.cognito.signin.user.admin"},
		Trusts: []config.Trust{
			{Pool: "us-west-2_AAAAAAAAA", Audience: []string{"other-client"}, ReplicaRegions: []string{"us-east-1"}},
			{Pool: "us-west-2_BBBBBBBBB", Audience: []string{"another-client"}, IssuerFormat: "original"},
			{Pool: testPool, Audience: []string{testClient}},
		},
	}, nil, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// BenchmarkAuthorizeCached100k: hits spread at random over a cache holding
// 100 000 tokens, so the entries are mostly out of the CPU caches. The
// request's token itself is in cache, as it is in a server that has just
// read it from the socket: tokens are copied in batches, timer stopped.
func BenchmarkAuthorizeCached100k(b *testing.B) {
	testKeys(b)
	const n = 100_000
	cache := NewCache(n, func() time.Time { return testNow })
	a := newBenchAuthorizer(b, cache)
	toks := make([]string, n)
	for i := range toks {
		toks[i] = fakeSignedToken(i)
		cacheAsVerified(b, a, toks[i])
	}
	if got := cache.Len(); got < n*98/100 { // shards fill unevenly
		b.Fatalf("cache holds %d of %d", got, n)
	}
	order := mrand.Perm(n)
	bl := &baseline{in: newRSAInput(b, signedBenchTokens(b, 1)[0])}
	ctx := context.Background()
	batch := make([]string, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(batch)
		if j == 0 {
			b.StopTimer()
			for k := range batch {
				batch[k] = strings.Clone(toks[order[(i+k)%n]])
			}
			bl.maybeSample(b, every-1)
			b.StartTimer()
		}
		if _, err := a.Authorize(ctx, batch[j]); err != nil {
			// The few entries evicted while filling are re-verified and
			// fail (fake signature): skip them.
			if AsError(err).Reason != "bad_signature" {
				b.Fatal(err)
			}
		}
	}
	bl.report(b)
}

// BenchmarkAuthorizeParallel: all cores deciding at once, on cached tokens
// and on new ones.
func BenchmarkAuthorizeParallel(b *testing.B) {
	toks := signedBenchTokens(b, 1024)
	ctx := context.Background()
	clock := func() time.Time { return testNow }
	b.Run("cached", func(b *testing.B) {
		a := newBenchAuthorizer(b, NewCache(0, clock))
		for _, t := range toks {
			if _, err := a.Authorize(ctx, t); err != nil {
				b.Fatal(err)
			}
		}
		var next atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(97))
			for pb.Next() {
				i++
				if _, err := a.Authorize(ctx, toks[i%len(toks)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("new", func(b *testing.B) {
		a := newBenchAuthorizer(b, nil) // no cache: every decision verifies
		var next atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(97))
			for pb.Next() {
				i++
				if _, err := a.Authorize(ctx, toks[i%len(toks)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkCacheMemory100k reports the heap held by a cache of capacity
// 100 000 after 100 000 verified tokens went in (MiB, B/entry, entries).
// The tokens themselves are not kept. "typical": Cognito access tokens of
// distinct users with a few group and scope combinations; "unshared":
// every token has its own groups and scopes (nothing to share), where the
// byte budget (BytesPerEntry) bounds the cache.
func BenchmarkCacheMemory100k(b *testing.B) {
	testKeys(b)
	const n = 100_000
	for _, bc := range []struct {
		name   string
		claims func(i int) map[string]any
	}{
		{"typical", benchClaims},
		{"unshared", func(i int) map[string]any {
			return with(benchClaims(i),
				"cognito:groups", []string{fmt.Sprintf("tenant-%d-admins", i), fmt.Sprintf("tenant-%d-users", i), "everyone"},
				"scope", fmt.Sprintf("tenant-%d/read tenant-%d/write openid", i, i))
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				cache := NewCache(n, func() time.Time { return testNow })
				a := newBenchAuthorizer(b, cache)
				b.StartTimer()
				for i := range n {
					in := keyA.SigningInput(jwttest.Token{Claims: bc.claims(i)})
					cacheAsVerified(b, a, in+"."+fakeSig)
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				held := float64(after.HeapAlloc) - float64(before.HeapAlloc)
				b.ReportMetric(held/(1<<20), "MiB")
				b.ReportMetric(held/float64(cache.Len()), "B/entry")
				b.ReportMetric(float64(cache.Len()), "entries")
				runtime.KeepAlive(cache)
				runtime.KeepAlive(a)
				b.StartTimer()
			}
		})
	}
}

// fakeSig is a random signature segment (never verified).
var fakeSig = func() string {
	sig := make([]byte, 256)
	_, _ = rand.Read(sig)
	return base64.RawURLEncoding.EncodeToString(sig)
}()

// Peers, for the side-by-side table: the same token checked with jwx.

func jwxKeySet(b *testing.B) jwk.Set {
	b.Helper()
	testKeys(b)
	set, err := jwk.Parse(jwttest.JWKS(keyA))
	if err != nil {
		b.Fatal(err)
	}
	return set
}

// BenchmarkPeerJWXJWSVerify: jws.Verify with a key set (signature only, no
// claim checks).
func BenchmarkPeerJWXJWSVerify(b *testing.B) {
	tok := []byte(signedBenchTokens(b, 1)[0])
	set := jwxKeySet(b)
	bl := &baseline{in: newRSAInput(b, string(tok))}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := jws.Verify(tok, jws.WithKeySet(set)); err != nil {
			b.Fatal(err)
		}
		bl.maybeSample(b, i)
	}
	bl.report(b)
}

// BenchmarkPeerJWXJWTParse: jwt.Parse with a key set and validation of
// iss, exp, nbf, iat (no audience/scope rules: those would be extra code).
func BenchmarkPeerJWXJWTParse(b *testing.B) {
	tok := []byte(signedBenchTokens(b, 1)[0])
	set := jwxKeySet(b)
	bl := &baseline{in: newRSAInput(b, string(tok))}
	clock := jwt.ClockFunc(func() time.Time { return testNow })
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := jwt.Parse(tok, jwt.WithKeySet(set, jws.WithRequireKid(true)), jwt.WithValidate(true),
			jwt.WithIssuer(testIssuer), jwt.WithClock(clock)); err != nil {
			b.Fatal(err)
		}
		bl.maybeSample(b, i)
	}
	bl.report(b)
}
