package authz

// Tests of the lean verify path and the compact cache entries (see
// bench_test.go for the benchmarks): the fast paths answer exactly as the
// payload does, the byte budget holds, refreshes that re-parse the same key
// keep entries, and a cache hit allocates at most the per-request Claims.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// renderFromPayload is Get without fast paths: the claim as the verified
// payload renders it.
func renderFromPayload(t *testing.T, tok, name string) (string, bool) {
	t.Helper()
	c := &Claims{token: tok}
	payload, ok := c.payload()
	if !ok {
		t.Fatalf("payload of %q", tok)
	}
	members, err := scanObject(payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.key == name {
			return render(m)
		}
	}
	return "", false
}

func TestClaimsFastPathsMatchPayload(t *testing.T) {
	testKeys(t)
	cache := NewCache(1000, func() time.Time { return testNow })
	a := newTestAuthorizer(t, config.Authorizer{}, WithCache(cache))
	cases := map[string]map[string]any{
		"access":             accessClaims(),
		"id":                 idClaims(),
		"both usernames":     with(accessClaims(), "cognito:username", "bob"),
		"empty username":     with(accessClaims(), "username", ""),
		"empty username+cog": with(accessClaims(), "username", "", "cognito:username", "bob"),
		"username = sub":     with(accessClaims(), "username", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
		"aud array":          with(idClaims(), "aud", []string{"x", testClient}),
		"groups with commas": with(accessClaims(), "cognito:groups", []string{"a,b", "c"}),
		"empty groups":       with(accessClaims(), "cognito:groups", []string{}),
		"scp then scope":     with(accessClaims(), "scp", []string{"x", "y"}),
		"escaped values":     with(accessClaims(), "username", "al\u00e9\"ce", "sub", "s\u2028b"),
	}
	names := []string{"iss", "sub", "username", "cognito:username", "client_id", "aud", "token_use", "scope", "cognito:groups", "version", "email", "absent"}
	for name, claims := range cases {
		tok := keyA.Sign(t, jwttest.Token{Claims: claims})
		for pass := range 2 { // miss, then hit
			c, err := a.Authorize(context.Background(), tok)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, n := range names {
				got, gotOK := c.Get(n)
				want, wantOK := renderFromPayload(t, tok, n)
				switch n {
				case "iss", "sub", "token_use", "client_id", "scope":
					// These always came from the decoded fields: present
					// means non-empty.
					wantOK = wantOK && want != ""
				}
				if got != want || gotOK != wantOK {
					t.Errorf("%s (pass %d): Get(%q) = %q, %v; payload renders %q, %v", name, pass, n, got, gotOK, want, wantOK)
				}
			}
			wantUser, _ := renderFromPayload(t, tok, "username")
			if wantUser == "" {
				wantUser, _ = renderFromPayload(t, tok, "cognito:username")
			}
			if c.Username != wantUser {
				t.Errorf("%s: Username %q, want %q", name, c.Username, wantUser)
			}
			id, user, cid, use := c.PlaceholderValues()
			wantCID := c.ClientID
			if wantCID == "" {
				wantCID, _ = c.Get("aud")
			}
			if id != any(c.Subject) || user != any(c.Username) || cid != any(wantCID) || use != any(c.TokenUse) {
				t.Errorf("%s: PlaceholderValues = %v %v %v %v", name, id, user, cid, use)
			}
		}
	}
}

func TestScopesKeepDocumentOrder(t *testing.T) {
	testKeys(t)
	a := newTestAuthorizer(t, config.Authorizer{})
	for _, tc := range []struct {
		payload string
		want    string
	}{
		{`{"scope":"a b","scp":["c"]}`, "a b c"},
		{`{"scp":"c d","scope":"a"}`, "c d a"},
	} {
		p := strings.TrimSuffix(tc.payload, "}") + `,"iss":"` + testIssuer + `","client_id":"` + testClient + `","sub":"s","exp":1900000000}`
		c, err := a.Authorize(context.Background(), keyA.Sign(t, jwttest.Token{Payload: []byte(p)}))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(c.Scopes, " "); got != tc.want {
			t.Errorf("%s: Scopes %q, want %q", tc.payload, got, tc.want)
		}
	}
}

func TestEscapedDuplicateMemberRejected(t *testing.T) {
	testKeys(t)
	a := newTestAuthorizer(t, config.Authorizer{})
	p := `{"iss":"https://evil","\u0069ss":"` + testIssuer + `","client_id":"` + testClient + `","sub":"s","exp":1900000000}`
	_, err := a.Authorize(context.Background(), keyA.Sign(t, jwttest.Token{Payload: []byte(p)}))
	if e := AsError(err); e.Reason != "malformed" {
		t.Fatalf("escaped duplicate iss: %v", err)
	}
}

func TestCacheByteBudget(t *testing.T) {
	testKeys(t)
	cache := NewCache(cacheShards*8, func() time.Time { return testNow }) // 8 entries, 5120 bytes per shard
	a := newTestAuthorizer(t, config.Authorizer{}, WithCache(cache))
	big := strings.Repeat("g", 600)
	for i := range 300 {
		// Claims of ~3 KB, too large to be shared: at most one per shard
		// fits the budget.
		tok := keyA.Sign(t, jwttest.Token{Claims: with(accessClaims(), "jti", i, "cognito:groups", []string{fmt.Sprint(big, i), fmt.Sprint(big, -i)})})
		if _, err := a.Authorize(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	for i := range cache.shards {
		s := &cache.shards[i]
		if s.bytes > s.perBytes || len(s.m) > s.per {
			t.Fatalf("shard %d holds %d entries, %d bytes; budget %d entries, %d bytes", i, len(s.m), s.bytes, s.per, s.perBytes)
		}
		var sum int64
		for _, sl := range s.slots {
			if sl.e != nil {
				sum += int64(sl.e.size)
			}
		}
		if sum != s.bytes {
			t.Fatalf("shard %d accounts %d bytes, entries sum to %d", i, s.bytes, sum)
		}
	}
	if n := cache.Len(); n == 0 || n > cacheShards*2 {
		t.Fatalf("cache holds %d fat entries", n)
	}
}

func TestCacheKeepsEntriesAcrossSameKeyRefresh(t *testing.T) {
	testKeys(t)
	keys := &swapKeys{}
	keys.set(newSetKeys(t, jwttest.JWKS(keyA)))
	cache := NewCache(100, func() time.Time { return testNow })
	a, err := New(config.Authorizer{UserPool: testPool, Audience: []string{testClient}}, keys, WithClock(func() time.Time { return testNow }), WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	// Cached as if verified, with a signature that would not verify: a
	// re-verification would deny it.
	tok := keyA.SigningInput(jwttest.Token{Claims: accessClaims()}) + "." + fakeSig
	head, payloadSeg, _, _ := splitToken(tok)
	h, _ := parseHeader(head, a.algs)
	key, _ := keys.Key(context.Background(), h.kid)
	e, perr := decodeVerifiedClaims(payloadSeg, h, key, a.interner())
	if perr != nil {
		t.Fatal(perr)
	}
	sum := tokenKey(tok)
	cache.put(&sum, e)

	keys.set(newSetKeys(t, jwttest.JWKS(keyA, keyB))) // re-parsed: new *Key, same key
	if _, err := a.Authorize(context.Background(), tok); err != nil {
		t.Fatalf("entry lost on a refresh that kept its key: %v", err)
	}
	keys.set(newSetKeys(t, jwttest.JWKS(keyForeign))) // same kid, another key
	if _, err := a.Authorize(context.Background(), tok); AsError(err).Reason != "bad_signature" {
		t.Fatalf("entry survived a key change under its kid: %v", err)
	}
	if cache.Len() != 0 {
		t.Fatalf("entry of a replaced key still cached")
	}
}

func TestInternerBounded(t *testing.T) {
	testKeys(t)
	a := newTestAuthorizer(t, config.Authorizer{})
	keyOf := func(i int) string {
		return keyA.SigningInput(jwttest.Token{Claims: with(accessClaims(), "scope", fmt.Sprintf("s/%d", i))}) + "." + fakeSig
	}
	in := newInterner()
	var keep []*entry // keep the sets alive, so none can be swept
	for i := range maxInterned + 100 {
		head, payloadSeg, _, _ := splitToken(keyOf(i))
		h, _ := parseHeader(head, a.algs)
		key, _ := a.issuers[0].keys.Key(context.Background(), h.kid)
		e, err := decodeVerifiedClaims(payloadSeg, h, key, in)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("s/%d", i); e.sh.scope != want {
			t.Fatalf("scope %q, want %q", e.sh.scope, want)
		}
		keep = append(keep, e)
	}
	in.mu.RLock()
	n, bytes := len(in.m), in.bytes
	in.mu.RUnlock()
	if n > maxInterned || bytes > maxInternBytes {
		t.Fatalf("interner holds %d sets, %d bytes; bounds %d, %d", n, bytes, maxInterned, maxInternBytes)
	}
	if keep[0].sh == keep[len(keep)-1].sh {
		t.Fatal("distinct claim sets shared")
	}
}

func TestCacheHitAllocations(t *testing.T) {
	testKeys(t)
	a := newTestAuthorizer(t, config.Authorizer{Scopes: []string{"order/get.order"}}, WithCache(NewCache(100, func() time.Time { return testNow })))
	tok := keyA.Sign(t, jwttest.Token{Claims: accessClaims()})
	ctx := context.Background()
	if _, err := a.Authorize(ctx, tok); err != nil {
		t.Fatal(err)
	}
	var err error
	if n := testing.AllocsPerRun(100, func() { _, err = a.Authorize(ctx, tok) }); n > 2 || err != nil {
		t.Fatalf("cache hit: %.0f allocations (want <= 2), err %v", n, err)
	}
	c, _ := a.Authorize(ctx, tok)
	if n := testing.AllocsPerRun(100, func() {
		for _, name := range []string{"sub", "username", "client_id", "token_use", "scope", "cognito:groups"} {
			c.Get(name)
		}
	}); n != 0 {
		t.Fatalf("default header claims: %.0f allocations, want 0", n)
	}
}

// rawSign returns em^d mod N: a "signature" of an arbitrary encoded
// message, to present malformed encodings that only a private key can make.
func rawSign(k *rsa.PrivateKey, em []byte) []byte {
	m := new(big.Int).SetBytes(em)
	return new(big.Int).Exp(m, k.D, k.N).FillBytes(make([]byte, k.Size()))
}

// pkcs1Encode is EM for digest under prefix, with optional damage.
func pkcs1Encode(k int, prefix, digest []byte) []byte {
	em := make([]byte, k)
	em[1] = 1
	t := len(prefix) + len(digest)
	for i := 2; i < k-t-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-t:], prefix)
	copy(em[k-len(digest):], digest)
	return em
}

func TestVerifyPKCS1v15MatchesCryptoRSA(t *testing.T) {
	testKeys(t)
	keys := []*rsa.PrivateKey{keyA.Private, jwttest.NewKeyBits(t, "k3072", 3072).Private}
	hashes := []struct {
		h      crypto.Hash
		prefix []byte
	}{{crypto.SHA256, prefixSHA256}, {crypto.SHA384, prefixSHA384}, {crypto.SHA512, prefixSHA512}}
	for _, k := range keys {
		pub := &k.PublicKey
		for _, hh := range hashes {
			h := hh.h.New()
			h.Write([]byte("header.payload"))
			digest := h.Sum(nil)
			good, err := rsa.SignPKCS1v15(nil, k, hh.h, digest)
			if err != nil {
				t.Fatal(err)
			}
			other := append([]byte(nil), digest...)
			other[0] ^= 1
			size := k.Size()
			nBytes := k.N.FillBytes(make([]byte, size))
			nMinus1 := new(big.Int).Sub(k.N, big.NewInt(1)).FillBytes(make([]byte, size))
			nPlus1 := new(big.Int).Add(k.N, big.NewInt(1)).FillBytes(make([]byte, size))
			em := pkcs1Encode(size, hh.prefix, digest)
			noZero := append([]byte(nil), em...)
			noZero[size-len(hh.prefix)-len(digest)-1] = 0xff
			shortPS := append([]byte{0, 1, 0xff, 0}, em[4:]...)
			trailing := pkcs1Encode(size, hh.prefix, append(append([]byte(nil), digest...)[:len(digest)-1], 0))
			wrongPrefix := pkcs1Encode(size, prefixSHA256, digest)
			if hh.h == crypto.SHA256 {
				wrongPrefix = pkcs1Encode(size, prefixSHA512[:len(prefixSHA256)], digest)
			}
			blockType2 := append([]byte(nil), em...)
			blockType2[1] = 2
			cases := map[string][]byte{
				"valid":          good,
				"zero":           make([]byte, size),
				"one":            append(make([]byte, size-1), 1),
				"N":              nBytes,
				"N-1":            nMinus1,
				"N+1":            nPlus1,
				"all ff":         bytes.Repeat([]byte{0xff}, size),
				"short":          good[1:],
				"long":           append([]byte{0}, good...),
				"raw valid EM":   rawSign(k, em),
				"no 00 after PS": rawSign(k, noZero),
				"PS too short":   rawSign(k, shortPS),
				"other digest":   rawSign(k, trailing),
				"other prefix":   rawSign(k, wrongPrefix),
				"block type 2":   rawSign(k, blockType2),
			}
			for i := range 48 {
				flipped := append([]byte(nil), good...)
				flipped[(i*37)%size] ^= 1 << (i % 8)
				cases[fmt.Sprintf("bit flip %d", i)] = flipped
			}
			for name, sig := range cases {
				for _, d := range [][]byte{digest, other} {
					want := rsa.VerifyPKCS1v15(pub, hh.h, d, sig) == nil
					got := verifyPKCS1v15(pub, hh.prefix, d, sig) == nil
					if got != want {
						t.Errorf("%d-bit key, %v, %s, digest %x…: ours %v, crypto/rsa %v", k.N.BitLen(), hh.h, name, d[:2], got, want)
					}
				}
			}
			if verifyPKCS1v15(pub, hh.prefix, digest, cases["raw valid EM"]) != nil {
				t.Errorf("%v: the valid encoding, made by hand, is refused", hh.h)
			}
		}
	}
	// Keys crypto/rsa refuses are refused.
	even := &rsa.PublicKey{N: new(big.Int).Lsh(keyA.Private.N, 1), E: 65537}
	evenE := &rsa.PublicKey{N: keyA.Private.N, E: 65536}
	for name, pub := range map[string]*rsa.PublicKey{"even modulus": even, "even exponent": evenE, "no modulus": {E: 3}} {
		if err := verifyPKCS1v15(pub, prefixSHA256, make([]byte, 32), make([]byte, 256)); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// FuzzVerifyPKCS1v15: for any signature bytes and digest, the prepared
// verification agrees with crypto/rsa.
func FuzzVerifyPKCS1v15(f *testing.F) {
	testKeys(f)
	d := sha256.Sum256([]byte("x"))
	good, _ := rsa.SignPKCS1v15(nil, keyA.Private, crypto.SHA256, d[:])
	f.Add(good, d[:])
	f.Add(make([]byte, 256), d[:])
	f.Add(keyA.Private.N.Bytes(), d[:])
	f.Fuzz(func(t *testing.T, sig, digest []byte) {
		if len(digest) != 32 {
			return
		}
		pub := &keyA.Private.PublicKey
		want := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig) == nil
		if got := verifyPKCS1v15(pub, prefixSHA256, digest, sig) == nil; got != want {
			t.Fatalf("ours %v, crypto/rsa %v", got, want)
		}
	})
}

// splitTokenReference is the straightforward scan splitToken replaced.
func splitTokenReference(tok string) (head, payload, sig string, err *Error) {
	first, second := -1, -1
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			switch {
			case first < 0:
				first = i
			case second < 0:
				second = i
			default:
				return "", "", "", errSegments
			}
		default:
			return "", "", "", malformed("token is malformed: not base64url", fmt.Errorf("byte 0x%02x at offset %d", c, i))
		}
	}
	if second < 0 {
		return "", "", "", errSegments
	}
	head, payload, sig = tok[:first], tok[first+1:second], tok[second+1:]
	if head == "" || payload == "" {
		return "", "", "", malformed("token is malformed: empty segment", nil)
	}
	if sig == "" {
		return "", "", "", invalid("unsigned", "token is unsigned", nil)
	}
	return head, payload, sig, nil
}

func sameSplit(t *testing.T, tok string) {
	t.Helper()
	h1, p1, s1, e1 := splitToken(tok)
	h2, p2, s2, e2 := splitTokenReference(tok)
	if h1 != h2 || p1 != p2 || s1 != s2 || (e1 == nil) != (e2 == nil) ||
		(e1 != nil && (e1.Reason != e2.Reason || e1.Description != e2.Description || e1.Error() != e2.Error())) {
		t.Fatalf("splitToken(%q) = %q %q %q %v; reference %q %q %q %v", tok, h1, p1, s1, e1, h2, p2, s2, e2)
	}
}

func TestSplitTokenMatchesReference(t *testing.T) {
	testKeys(t)
	valid := keyA.Sign(t, jwttest.Token{Claims: accessClaims()})
	sameSplit(t, valid)
	r := mrandNew()
	alphabet := "AZaz09-_..  =+/\x00\xff\t"
	for n := range 3000 {
		b := []byte(valid)
		if n%3 == 0 {
			b = make([]byte, r.IntN(40))
			for i := range b {
				b[i] = "Ab9-_"[r.IntN(5)]
			}
		}
		for range r.IntN(4) {
			if len(b) > 0 {
				b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
			}
		}
		sameSplit(t, string(b))
	}
	for _, tok := range []string{"", ".", "..", "...", "a.b.c", "a..c", ".b.c", "a.b.", "abcdefgh.abcdefgh.abcdefgh", "abcdefg.abcdefgh.abcdefghi", "abcdefgh.ijklmnop.qrstuvw.x"} {
		sameSplit(t, tok)
	}
}

// TestCacheInvariants drives a small cache with puts, hits, expiries and
// key removals, checking after each step that the shard bounds hold, the
// byte accounting is exact and every cached key has a CLOCK slot.
func TestCacheInvariants(t *testing.T) {
	testKeys(t)
	clock := testNow
	cache := NewCache(cacheShards*3, func() time.Time { return clock })
	keys := &swapKeys{}
	keys.set(newSetKeys(t, jwttest.JWKS(keyA, keyB)))
	a, err := New(config.Authorizer{UserPool: testPool, Audience: []string{testClient}}, keys, WithClock(func() time.Time { return clock }), WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	r := mrandNew()
	var toks []string
	for i := range 2000 {
		var tok string
		switch {
		case len(toks) > 0 && r.IntN(3) == 0:
			tok = toks[r.IntN(len(toks))] // a hit, or a re-put after eviction
		default:
			in := keyA.SigningInput(jwttest.Token{Claims: with(accessClaims(), "jti", i, "exp", testNow.Unix()+int64(r.IntN(600)))})
			tok = in + "." + fakeSig
			toks = append(toks, tok)
			head, payloadSeg, _, _ := splitToken(tok)
			h, _ := parseHeader(head, a.algs)
			if key, _ := keys.Key(context.Background(), h.kid); key != nil {
				e, perr := decodeVerifiedClaims(payloadSeg, h, key, a.interner())
				if perr != nil {
					t.Fatal(perr)
				}
				sum := tokenKey(tok)
				cache.put(&sum, e)
			}
		}
		_, _ = a.Authorize(context.Background(), tok)
		if r.IntN(200) == 0 {
			clock = clock.Add(time.Minute)
		}
		if i == 1500 {
			keys.set(newSetKeys(t, jwttest.JWKS(keyB))) // keyA leaves
		}
		checkShards(t, cache, fmt.Sprintf("step %d", i))
	}
}

func mrandNew() *mrand.Rand { return mrand.New(mrand.NewPCG(1, 2)) }

// checkShards checks every shard's invariants: within its budget in
// entries (slots, dead ones included) and bytes, the byte accounting equal
// to the entries its slots hold, every cached key in a slot holding its
// entry, and the stale table within its bound.
func checkShards(t *testing.T, cache *Cache, at string) {
	t.Helper()
	for j := range cache.shards {
		s := &cache.shards[j]
		s.mu.RLock()
		if len(s.m) > s.per || len(s.slots) > s.per || s.bytes > s.perBytes || len(s.stale) > staleSlots {
			t.Fatalf("%s shard %d: %d entries, %d slots, %d bytes, %d stale; budget %d entries, %d bytes", at, j, len(s.m), len(s.slots), s.bytes, len(s.stale), s.per, s.perBytes)
		}
		var sum int64
		inRing := map[[32]byte]*entry{}
		for _, sl := range s.slots {
			if sl.e != nil {
				sum += int64(sl.e.size)
				if s.m[sl.sum] == sl.e {
					inRing[sl.sum] = sl.e
				}
			}
		}
		for k, e := range s.m {
			if inRing[k] != e {
				t.Fatalf("%s shard %d: a cached key has no CLOCK slot", at, j)
			}
		}
		if sum != s.bytes {
			t.Fatalf("%s shard %d: accounts %d bytes, slots hold %d", at, j, s.bytes, sum)
		}
		s.mu.RUnlock()
	}
}
