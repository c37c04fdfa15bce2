package jwks_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

var (
	once       sync.Once
	k1, k2, k3 *jwttest.Key
	small      *jwttest.Key
)

func keys(t testing.TB) {
	once.Do(func() {
		k1 = jwttest.NewKey(t, "k1")
		k2 = jwttest.NewKey(t, "k2")
		k3 = jwttest.NewKey(t, "k3")
		small = jwttest.NewKeyBits(t, "small", 1024)
	})
}

func withJWK(k *jwttest.Key, kv ...any) map[string]any {
	m := k.JWK()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
		} else {
			m[kv[i].(string)] = kv[i+1]
		}
	}
	return m
}

func TestParseSetHygiene(t *testing.T) {
	keys(t)
	tests := []struct {
		name    string
		doc     []byte
		kids    string // kept kids, comma-joined; "" means an error is expected
		warning string // substring of a warning
	}{
		{"cognito shape", jwttest.JWKS(k1, k2), "k1,k2", ""},
		{"use enc dropped", jwttest.JWKSOf(withJWK(k1, "use", "enc"), k2.JWK()), "k2", "use \"enc\""},
		{"no use kept", jwttest.JWKSOf(withJWK(k1, "use", nil)), "k1", ""},
		{"private key dropped", jwttest.JWKSOf(withJWK(k1, "d", "AQAB"), k2.JWK()), "k2", "private key material"},
		{"small modulus dropped", jwttest.JWKSOf(small.JWK(), k2.JWK()), "k2", "1024 bits"},
		{"HMAC key dropped", jwttest.JWKSOf(map[string]any{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}, k2.JWK()), "k2", "not RSA"},
		{"EC key dropped", jwttest.JWKSOf(map[string]any{"kty": "EC", "kid": "e", "crv": "P-256", "x": "x", "y": "y"}, k2.JWK()), "k2", "not RSA"},
		{"no kid dropped", jwttest.JWKSOf(withJWK(k1, "kid", nil), k2.JWK()), "k2", "no kid"},
		{"HS256 alg dropped", jwttest.JWKSOf(withJWK(k1, "alg", "HS256"), k2.JWK()), "k2", "not an RSA"},
		{"duplicate kid dropped", jwttest.JWKSOf(k1.JWK(), withJWK(k2, "kid", "k1"), k3.JWK()), "k3", "more than once"},
		{"malformed modulus dropped", jwttest.JWKSOf(withJWK(k1, "n", "!!"), k2.JWK()), "k2", ""},
		{"only private keys", jwttest.JWKSOf(withJWK(k1, "d", "AQAB")), "", ""},
		{"only HMAC keys", jwttest.JWKSOf(map[string]any{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}), "", ""},
		{"empty set", []byte(`{"keys":[]}`), "", ""},
		{"no keys member", []byte(`{}`), "", ""},
		{"not JSON", []byte(`<html>`), "", ""},
		{"trailing garbage", append(jwttest.JWKS(k1), []byte(`{}`)...), "", ""},
		{"not UTF-8", []byte("{\"keys\":[],\"x\":\"\xff\"}"), "", ""},
		{"too large", []byte(`{"keys":[],"pad":"` + strings.Repeat("a", jwks.MaxDocumentBytes) + `"}`), "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, warnings, err := jwks.ParseSet(tc.doc)
			if tc.kids == "" {
				if err == nil {
					t.Fatalf("accepted, kids %v", set.KeyIDs())
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSet: %v", err)
			}
			if got := strings.Join(set.KeyIDs(), ","); got != tc.kids {
				t.Errorf("kids %s, want %s", got, tc.kids)
			}
			if tc.warning != "" && !strings.Contains(strings.Join(warnings, "\n"), tc.warning) {
				t.Errorf("warnings %q lack %q", warnings, tc.warning)
			}
		})
	}
}

// fakeSource counts fetches and serves what the test says.
type fakeSource struct {
	mu      sync.Mutex
	doc     []byte
	err     error
	delay   time.Duration
	fetches atomic.Int64
}

func (f *fakeSource) String() string { return "fake" }
func (f *fakeSource) Fetch(ctx context.Context, prev string) ([]byte, string, error) {
	f.fetches.Add(1)
	f.mu.Lock()
	doc, err, delay := f.doc, f.err, f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
	if err != nil {
		return nil, "", err
	}
	return doc, fmt.Sprintf("v%x", sha256.Sum256(doc)), nil
}
func (f *fakeSource) set(doc []byte, err error) {
	f.mu.Lock()
	f.doc, f.err = doc, err
	f.mu.Unlock()
}

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func startRing(t *testing.T, src jwks.Source, o jwks.Options) *jwks.Keyring {
	t.Helper()
	r := jwks.NewKeyring(src, o)
	r.Start()
	t.Cleanup(r.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	select {
	case <-r.Attempted():
	case <-ctx.Done():
		t.Fatal("first fetch did not end")
	}
	return r
}

func TestKeyringUnknownKIDCooldown(t *testing.T) {
	keys(t)
	src := &fakeSource{doc: jwttest.JWKS(k1)}
	clk := &clock{t: time.Unix(1000, 0)}
	r := startRing(t, src, jwks.Options{Cooldown: 10 * time.Second, Now: clk.Now})
	ctx := context.Background()
	if _, err := r.Key(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	base := src.fetches.Load()

	// k2 is published: the first miss refetches and finds it.
	src.set(jwttest.JWKS(k1, k2), nil)
	if _, err := r.Key(ctx, "k2"); err != nil {
		t.Fatalf("new kid not picked up on first sight: %v", err)
	}
	if got := src.fetches.Load() - base; got != 1 {
		t.Fatalf("%d fetches for a new kid, want 1", got)
	}
	// A flood of unknown kids within the cooldown: no fetch at all.
	for i := range 1000 {
		if _, err := r.Key(ctx, fmt.Sprintf("rnd%d", i)); !errors.Is(err, jwks.ErrUnknownKID) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if got := src.fetches.Load() - base; got != 1 {
		t.Fatalf("%d fetches after a flood within the cooldown, want 1", got)
	}
	// The cooldown is never shortened by the jitter.
	clk.Add(9999 * time.Millisecond)
	_, _ = r.Key(ctx, "rnd-at-cooldown-edge")
	if got := src.fetches.Load() - base; got != 1 {
		t.Fatalf("%d fetches before the cooldown ended, want 1", got)
	}
	clk.Add(-9999 * time.Millisecond)
	// Known kids are unaffected.
	if _, err := r.Key(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	// After the cooldown (stretched by at most the 10% jitter), one more
	// fetch is allowed.
	clk.Add(11 * time.Second)
	_, _ = r.Key(ctx, "still-unknown")
	_, _ = r.Key(ctx, "still-unknown-2")
	if got := src.fetches.Load() - base; got != 2 {
		t.Fatalf("%d fetches after the cooldown, want 2", got)
	}
}

func TestKeyringSingleflight(t *testing.T) {
	keys(t)
	src := &fakeSource{doc: jwttest.JWKS(k1)}
	r := startRing(t, src, jwks.Options{Cooldown: time.Nanosecond})
	base := src.fetches.Load()
	src.mu.Lock()
	src.doc, src.delay = jwttest.JWKS(k1, k2), 100*time.Millisecond
	src.mu.Unlock()
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Key(context.Background(), "k2"); err == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := src.fetches.Load() - base; got != 1 {
		t.Fatalf("%d fetches for 200 concurrent misses, want 1", got)
	}
	if ok.Load() != 200 {
		t.Fatalf("%d of 200 waiters got the key", ok.Load())
	}
}

func TestKeyringKeepsLastGoodKeys(t *testing.T) {
	keys(t)
	src := &fakeSource{doc: jwttest.JWKS(k1)}
	clk := &clock{t: time.Unix(1000, 0)}
	r := startRing(t, src, jwks.Options{Now: clk.Now})
	for _, fault := range []struct {
		name string
		doc  []byte
		err  error
	}{
		{"fetch error", nil, errors.New("connection refused")},
		{"garbage", []byte("<html>"), nil},
		{"empty set", []byte(`{"keys":[]}`), nil},
		{"only private keys", jwttest.JWKSOf(withJWK(k2, "d", "AQAB")), nil},
	} {
		src.set(fault.doc, fault.err)
		if err := r.Refresh(context.Background()); err == nil {
			t.Errorf("%s: refresh succeeded", fault.name)
		}
		if _, err := r.Key(context.Background(), "k1"); err != nil {
			t.Errorf("%s: last good key lost: %v", fault.name, err)
		}
		if st := r.Stats(); st.Keys != 1 || st.LastError == "" {
			t.Errorf("%s: stats %+v", fault.name, st)
		}
	}
	// Rotation: k1 removed → gone after the next successful refresh.
	src.set(jwttest.JWKS(k2), nil)
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if _, err := r.Key(context.Background(), "k1"); !errors.Is(err, jwks.ErrUnknownKID) {
		t.Fatalf("removed key still served: %v", err)
	}
}

func TestKeyringUnavailableThenRecovers(t *testing.T) {
	keys(t)
	src := &fakeSource{err: errors.New("down")}
	clk := &clock{t: time.Unix(1000, 0)}
	r := startRing(t, src, jwks.Options{Now: clk.Now, MaxBackoff: 50 * time.Millisecond})
	if _, err := r.Key(context.Background(), "k1"); !errors.Is(err, jwks.ErrUnavailable) {
		t.Fatalf("before any keys: %v, want ErrUnavailable", err)
	}
	src.set(jwttest.JWKS(k1), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.WaitReady(ctx); err != nil {
		t.Fatalf("background retry did not recover: %v", err)
	}
	if _, err := r.Key(context.Background(), "k1"); err != nil {
		t.Fatal(err)
	}
}

func TestKeyringRequestCancelDoesNotCancelFetch(t *testing.T) {
	keys(t)
	src := &fakeSource{doc: jwttest.JWKS(k1)}
	r := startRing(t, src, jwks.Options{Cooldown: time.Nanosecond})
	src.mu.Lock()
	src.doc, src.delay = jwttest.JWKS(k1, k2), 200*time.Millisecond
	src.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.Key(ctx, "k2"); err == nil {
		t.Fatal("expected the impatient caller to give up")
	}
	if _, err := r.Key(context.Background(), "k2"); err != nil {
		t.Fatalf("shared fetch was cancelled by one caller: %v", err)
	}
}

func TestHTTPSource(t *testing.T) {
	keys(t)
	srv := jwttest.NewServer(t, jwttest.JWKS(k1))
	src, err := jwks.NewHTTPSource(srv.JWKSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	doc, v, err := src.Fetch(ctx, "")
	if err != nil || !strings.HasPrefix(v, "sha256:") || len(doc) == 0 {
		t.Fatalf("fetch: %v %q", err, v)
	}
	srv.Fail(http.StatusInternalServerError, nil)
	if _, _, err := src.Fetch(ctx, v); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("500: %v", err)
	}
	srv.Fail(http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}})
	_, _, err = src.Fetch(ctx, v)
	var ra *jwks.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 30*time.Second {
		t.Fatalf("429: %v", err)
	}
	srv.Set([]byte(`{"keys":[],"pad":"` + strings.Repeat("a", jwks.MaxDocumentBytes) + `"}`))
	if _, _, err := src.Fetch(ctx, v); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized body: %v", err)
	}
	if _, err := jwks.NewHTTPSource("ftp://x/jwks", nil); err == nil {
		t.Fatal("ftp URL accepted")
	}
}

func TestHTTPSourceETag(t *testing.T) {
	keys(t)
	var hits atomic.Int64
	doc := jwttest.JWKS(k1)
	srv := jwttest.NewServer(t, nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		_, _ = w.Write(doc)
	})
	src, _ := jwks.NewHTTPSource(srv.URL, nil)
	_, v, err := src.Fetch(context.Background(), "")
	if err != nil || v != `etag:"v1"` {
		t.Fatalf("%v %q", err, v)
	}
	if _, _, err := src.Fetch(context.Background(), v); !errors.Is(err, jwks.ErrNotModified) {
		t.Fatalf("conditional fetch: %v", err)
	}
}

func TestDiscoverySource(t *testing.T) {
	keys(t)
	jw := jwttest.NewServer(t, jwttest.JWKS(k1))
	var issuer string
	disc := jwttest.NewServer(t, nil)
	disc.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/pool/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, issuer, jw.JWKSURL())
	})
	issuer = disc.URL + "/pool"
	src, err := jwks.NewDiscoverySource(issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, _, err := src.Fetch(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if set, _, err := jwks.ParseSet(doc); err != nil || set.Lookup("k1") == nil {
		t.Fatalf("discovered set: %v", err)
	}
	// A document naming another issuer is refused (OIDC Discovery §4.3).
	wrong, _ := jwks.NewDiscoverySource(disc.URL+"/pool", nil)
	issuer = "http://localhost:9229/pool"
	if _, _, err := wrong.Fetch(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "names issuer") {
		t.Fatalf("issuer mismatch: %v", err)
	}
}

func TestFileSource(t *testing.T) {
	keys(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwttest.JWKS(k1), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRing(t, &jwks.FileSource{Path: path}, jwks.Options{Refresh: 20 * time.Millisecond})
	if _, err := r.Key(context.Background(), "k1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, jwttest.JWKS(k2), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file changed: a refresh picks it up.
	deadline := time.Now().Add(5 * time.Second)
	for r.Snapshot().Lookup("k2") == nil {
		if time.Now().After(deadline) {
			t.Fatal("file change not picked up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.Snapshot().Lookup("k1") != nil {
		t.Fatal("old key still in set")
	}
	// Broken file: last good keys stay.
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(context.Background()); err == nil {
		t.Fatal("broken file accepted")
	}
	if r.Snapshot().Lookup("k2") == nil {
		t.Fatal("last good keys lost")
	}
}

// TestHTTPSource304WithoutIfNoneMatchIsError: a 304 answers a conditional
// request only. A server answering 304 to a request that sent no
// If-None-Match (the keyring had a version but no ETag) is failing: counted
// as a success, it would keep last_success fresh while the keys froze.
func TestHTTPSource304WithoutIfNoneMatchIsError(t *testing.T) {
	keys(t)
	var notModified atomic.Bool
	srv := jwttest.NewServer(t, nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if notModified.Load() {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(jwttest.JWKS(k1)) // no ETag: the version is a digest
	})
	src, _ := jwks.NewHTTPSource(srv.URL, nil)
	_, v, err := src.Fetch(context.Background(), "")
	if err != nil || !strings.HasPrefix(v, "sha256:") {
		t.Fatalf("first fetch: %q %v", v, err)
	}
	notModified.Store(true)
	for _, prev := range []string{"", v} {
		if _, _, err := src.Fetch(context.Background(), prev); err == nil || errors.Is(err, jwks.ErrNotModified) ||
			!strings.Contains(err.Error(), "without If-None-Match") {
			t.Errorf("304 to an unconditional request (prev %q): %v, want an error", prev, err)
		}
	}

	// Through a keyring: the fetch fails, last_success stays put.
	notModified.Store(false)
	clk := &clock{t: time.Unix(1000, 0)}
	r := startRing(t, src, jwks.Options{Now: clk.Now})
	first := r.Stats().LastSuccess
	notModified.Store(true)
	clk.Add(time.Minute)
	if err := r.Refresh(context.Background()); err == nil {
		t.Fatal("a 304 to an unconditional refresh succeeded")
	}
	if st := r.Stats(); st.FetchError != 1 || st.FetchNotModified != 0 || !st.LastSuccess.Equal(first) {
		t.Fatalf("stats after an unconditional 304: %+v, want one error and last_success %v", st, first)
	}
}

// hangingSource accepts a fetch and never answers until its context ends.
type hangingSource struct {
	inflight, started atomic.Int64
}

func (s *hangingSource) String() string { return "hanging" }
func (s *hangingSource) Fetch(ctx context.Context, _ string) ([]byte, string, error) {
	s.started.Add(1)
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	<-ctx.Done()
	return nil, "", ctx.Err()
}

// TestKeyringOnDemandWaitCapped: while the fetch an unknown kid started
// hangs (the fetch timeout is an hour here), 500 concurrent requests for
// unknown kids are each answered ErrUnknownKID after OnDemandWait, and all
// of them while the fetch is still hanging: no request is held for the
// fetch.
func TestKeyringOnDemandWaitCapped(t *testing.T) {
	keys(t)
	good := &fakeSource{doc: jwttest.JWKS(k1)}
	sw := &switchSource{cur: good}
	r := startRing(t, sw, jwks.Options{Cooldown: time.Nanosecond, FetchTimeout: time.Hour, OnDemandWait: 50 * time.Millisecond})
	hang := &hangingSource{}
	sw.set(hang)
	var wg sync.WaitGroup
	var unknown, other atomic.Int64
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Key(context.Background(), fmt.Sprintf("forged-%d", i))
			if errors.Is(err, jwks.ErrUnknownKID) {
				unknown.Add(1)
			} else {
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	if hang.started.Load() == 0 {
		t.Fatal("no on-demand fetch was started")
	}
	if hang.inflight.Load() == 0 {
		t.Fatal("the hanging fetch ended before the requests were answered: the test proves nothing")
	}
	if unknown.Load() != 500 {
		t.Fatalf("%d of 500 unknown kids answered ErrUnknownKID (%d otherwise)", unknown.Load(), other.Load())
	}
	if _, err := r.Key(context.Background(), "k1"); err != nil {
		t.Fatalf("a known kid during the hanging fetch: %v", err)
	}
}

// TestKeyringNextAttempt: after a failed fetch the keyring says when it
// will try again (its backoff), and a healthy one its next refresh.
func TestKeyringNextAttempt(t *testing.T) {
	keys(t)
	src := &fakeSource{err: errors.New("down")}
	r := startRing(t, src, jwks.Options{MaxBackoff: time.Hour, Refresh: 2 * time.Hour})
	deadline := time.Now().Add(5 * time.Second)
	for {
		next := time.Until(r.NextAttempt())
		if next > 0 {
			// First backoff: 1s less up to 10 % jitter.
			if next > time.Second {
				t.Fatalf("next attempt in %s, want within the first 1s backoff", next)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("NextAttempt never moved past the failed fetch")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
