package jwks_test

// Fault injection at the keyring level: the cases that are awkward to stage
// through a real Caddy (a TLS key server whose CA is not trusted, once keys
// are already loaded), exact memory accounting for an oversized body, a
// flood of invented key ids, and the keyring's resources after Stop.

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// switchSource is a Source whose transport can be swapped under a running
// keyring: keys are loaded from one, then the next fetches go to another.
type switchSource struct {
	mu  sync.Mutex
	cur jwks.Source
}

func (s *switchSource) String() string { return "switch" }

func (s *switchSource) Fetch(ctx context.Context, prev string) ([]byte, string, error) {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	return cur.Fetch(ctx, prev)
}

func (s *switchSource) set(src jwks.Source) {
	s.mu.Lock()
	s.cur = src
	s.mu.Unlock()
}

// TestKeyringTLSUnknownCA: keys are loaded, then the key server presents a
// certificate from a CA the default client does not trust. The fetch fails
// as a certificate error before any HTTP exchange; the loaded keys stay in
// service and the failure is counted and kept for the logs and metrics.
func TestKeyringTLSUnknownCA(t *testing.T) {
	keys(t)
	var served atomic.Int64
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = w.Write(jwttest.JWKS(k2))
	}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)

	// DefaultHTTPClient (system roots only), with room for the handshake:
	// on a busy machine under -race the 5 s handshake timeout can expire
	// before the server presents its certificate, and the test would see
	// a timeout instead of the refusal it is about. Trust is unchanged.
	client := jwks.DefaultHTTPClient()
	client.Timeout = 2 * time.Minute
	client.Transport.(*http.Transport).TLSHandshakeTimeout = 2 * time.Minute
	https, err := jwks.NewHTTPSource(tlsSrv.URL+"/jwks.json", client)
	if err != nil {
		t.Fatal(err)
	}
	src := &switchSource{cur: &fakeSource{doc: jwttest.JWKS(k1)}}
	r := startRing(t, src, jwks.Options{Cooldown: time.Nanosecond})
	if _, err := r.Key(context.Background(), "k1"); err != nil {
		t.Fatalf("preloaded key: %v", err)
	}

	src.set(https)
	before := r.Stats().FetchError
	for range 3 {
		err := r.Refresh(context.Background())
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Fatalf("refresh against an untrusted CA: %v, want x509.UnknownAuthorityError", err)
		}
	}
	// An unknown kid triggers a refetch, which fails the same way: the miss
	// is answered, not hung, and nothing is trusted from that server.
	if _, err := r.Key(context.Background(), "k2"); !errors.Is(err, jwks.ErrUnknownKID) {
		t.Fatalf("kid served only by the untrusted server: %v, want ErrUnknownKID", err)
	}
	if n := served.Load(); n != 0 {
		t.Fatalf("the untrusted server answered %d HTTP requests, want 0", n)
	}
	if _, err := r.Key(context.Background(), "k1"); err != nil {
		t.Fatalf("last good key lost after TLS failures: %v", err)
	}
	st := r.Stats()
	if st.FetchError-before != 4 || st.Keys != 1 || !strings.Contains(st.LastError, "certificate") {
		t.Fatalf("stats after 4 TLS failures: %+v", st)
	}
}

// TestHTTPSourceHugeBodyBoundedMemory: a key server answering 50 MB costs
// the fetcher about MaxDocumentBytes, not 50 MB: it stops reading at the
// cap and hangs up, so the server never gets to finish its body.
func TestHTTPSourceHugeBodyBoundedMemory(t *testing.T) {
	const huge = 50 << 20
	var completed, started atomic.Int64
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = ' '
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"keys":[`)
		for n := 0; n < huge; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client hung up
			}
		}
		_, _ = io.WriteString(w, `]}`)
		completed.Add(1)
	}))
	t.Cleanup(srv.Close)
	src, err := jwks.NewHTTPSource(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}

	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	const fetches = 3
	for range fetches {
		_, _, err := src.Fetch(context.Background(), "")
		if err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Fatalf("50 MB body: %v, want a size error", err)
		}
	}
	runtime.ReadMemStats(&m1)
	// io.ReadAll up to MaxDocumentBytes+1 allocates about twice that (buffer
	// growth); reading the whole body would allocate over 50 MB per fetch.
	perFetch := (m1.TotalAlloc - m0.TotalAlloc) / fetches
	if perFetch > 8*jwks.MaxDocumentBytes {
		t.Errorf("a 50 MB answer cost %d bytes of allocation per fetch, want at most %d", perFetch, 8*jwks.MaxDocumentBytes)
	}
	srv.CloseClientConnections()
	deadline := time.Now().Add(5 * time.Second)
	for started.Load() < fetches && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := completed.Load(); n != 0 {
		t.Errorf("the server finished sending %d of its 50 MB bodies: the client read them to the end", n)
	}
}

// TestKeyringKIDFloodNoGrowth: 100 000 invented key ids (as long as the
// hygiene rules allow a real one to be) cost one fetch and leave nothing
// behind: the keyring keeps no per-kid state.
func TestKeyringKIDFloodNoGrowth(t *testing.T) {
	keys(t)
	src := &fakeSource{doc: jwttest.JWKS(k1)}
	clk := &clock{t: time.Unix(1000, 0)} // the cooldown never ends
	r := startRing(t, src, jwks.Options{Cooldown: time.Second, Now: clk.Now})
	base := src.fetches.Load()

	const workers, perWorker = 8, 12_500
	var wrong atomic.Int64
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw := make([]byte, 128)
			for range perWorker {
				_, _ = rand.Read(raw)
				kid := hex.EncodeToString(raw) // 256 bytes, distinct
				if _, err := r.Key(context.Background(), kid); !errors.Is(err, jwks.ErrUnknownKID) {
					wrong.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	runtime.GC()
	runtime.ReadMemStats(&m1)

	if n := wrong.Load(); n != 0 {
		t.Fatalf("%d invented kids were not answered ErrUnknownKID", n)
	}
	if got := src.fetches.Load() - base; got > 1 {
		t.Fatalf("%d fetches for 100000 invented kids within one cooldown, want at most 1", got)
	}
	if _, err := r.Key(context.Background(), "k1"); err != nil {
		t.Fatalf("known key after the flood: %v", err)
	}
	// 100 000 kids of 256 bytes are 25 MB; any per-kid memory would show.
	// The slack covers the runtime's own noise.
	if grew := int64(m1.HeapAlloc) - int64(m0.HeapAlloc); grew > 2<<20 {
		t.Fatalf("live heap grew by %d bytes over a flood of 100000 invented kids", grew)
	}
	if st := r.Stats(); st.Keys != 1 {
		t.Fatalf("stats after the flood: %+v", st)
	}
}

// TestKeyringStopReleasesConnections: a stopped keyring leaves no goroutine
// behind, including its HTTP client's kept-alive connection to the key
// server. Keyrings are stopped whenever a reload changes a key source (URL
// or timing), so anything they leave accumulates with reloads.
func TestKeyringStopReleasesConnections(t *testing.T) {
	keys(t)
	srv := jwttest.NewServer(t, jwttest.JWKS(k1))
	settle := func() int {
		var n int
		for range 50 {
			runtime.GC()
			n = runtime.NumGoroutine()
			time.Sleep(10 * time.Millisecond)
		}
		return n
	}
	// Warm up what the process keeps anyway (the test server's own
	// goroutines, the resolver, ...).
	warm, err := jwks.NewHTTPSource(srv.JWKSURL(), &http.Client{Transport: &http.Transport{DisableKeepAlives: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := warm.Fetch(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	base := settle()

	const rings = 5
	for range rings {
		src, err := jwks.NewHTTPSource(srv.JWKSURL(), nil) // the default client, as Caddy uses it
		if err != nil {
			t.Fatal(err)
		}
		r := jwks.NewKeyring(src, jwks.Options{})
		r.Start()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = r.WaitReady(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		r.Stop()
	}
	deadline := time.Now().Add(3 * time.Second)
	n := runtime.NumGoroutine()
	for n > base+1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > base+1 {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines after starting and stopping %d keyrings, %d before: Stop leaves the HTTP client's "+
			"idle connections (and their goroutines) open until IdleConnTimeout\n%s", n, rings, base, excerpt(string(buf), "net/http.(*persistConn)"))
	}
}

// excerpt returns the goroutine dumps that mention marker (at most a few).
func excerpt(dump, marker string) string {
	var out []string
	for _, g := range strings.Split(dump, "\n\n") {
		if strings.Contains(g, marker) {
			out = append(out, g)
			if len(out) == 4 {
				break
			}
		}
	}
	return strings.Join(out, "\n\n")
}
