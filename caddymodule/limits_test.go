package caddymodule_test

// Limits under hostile load and failing dependencies, through a real
// Caddy: one bounded start-up wait per config load whatever the number of
// key sources, requests with unknown kids never held for a hanging fetch,
// a denial log that stays within one budget, and cache_size changes that a
// reload applies.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// hangingKeyServer accepts TCP connections and never answers: a key
// endpoint behind a network that silently drops, or a server stuck.
type hangingKeyServer struct {
	ln       net.Listener
	mu       sync.Mutex
	conns    []net.Conn
	accepted atomic.Int64
}

func newHangingKeyServer(t *testing.T) *hangingKeyServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &hangingKeyServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	return s
}

func (s *hangingKeyServer) url(path string) string { return "http://" + s.ln.Addr().String() + path }

// hangingRoutes is n routes, each with its own key source on the hanging
// server (distinct URLs: distinct keyrings).
func hangingRoutes(e *env, s *hangingKeyServer, prefix string, n int, wait time.Duration) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `	route /%s%d/* {
		cognito_auth {
			issuer %s
			audience %s
			jwks url %s {
				timeout 30s
			}
			startup_wait %s
		}
		respond "ok"
	}
`, prefix, i, e.issuer, testClient, s.url(fmt.Sprintf("/%s/%d/jwks.json", prefix, i)), wait)
	}
	return b.String()
}

// TestIntegrationStartupWaitBoundedAcrossSources: a key endpoint accepts
// connections and never answers (fetch timeout 30s). A config with 10
// routes, each with its own source and startup_wait 2s, loads in at most
// startup_wait + 1s (one wait for all, not 2s per handler: 20s); a reload
// adding 10 more sources too, and Caddy's admin API, asked during that
// reload, answers within the same bound. Requests meanwhile get 503 with a
// Retry-After, and the key server saw a fetch from every source.
func TestIntegrationStartupWaitBoundedAcrossSources(t *testing.T) {
	e := newEnv(t)
	const wait = 2 * time.Second
	const bound = wait + time.Second
	hang := newHangingKeyServer(t)
	e.load(`	respond "before"`)

	first := hangingRoutes(e, hang, "a", 10, wait)
	t0 := time.Now()
	e.reload("grace_period 1ns", first)
	if d := time.Since(t0); d > bound {
		t.Errorf("a config with 10 hanging key sources took %s to load, want at most startup_wait + 1s = %s", d.Round(time.Millisecond), bound)
	} else {
		t.Logf("10 hanging sources: loaded in %s (startup_wait %s)", d.Round(time.Millisecond), wait)
	}
	r := e.do("GET", "/a3/x", "Authorization", "Bearer "+e.token())
	e.expect(r, 503, "Bearer", `{"message":"Service Unavailable"}`)
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("503 with Retry-After %q", r.header.Get("Retry-After"))
	}

	// A reload adding 10 more hanging sources, and the admin API during it.
	adminDone := make(chan time.Duration, 1)
	go func() {
		time.Sleep(300 * time.Millisecond) // the reload is under way
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for range 20 { // the admin listener may be in its hand-over
			t1 := time.Now()
			resp, err := c.Get("http://localhost:2999/config/")
			if err == nil {
				resp.Body.Close()
				adminDone <- time.Since(t1)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		adminDone <- -1
	}()
	t0 = time.Now()
	e.reload("grace_period 1ns", first+hangingRoutes(e, hang, "b", 10, wait))
	if d := time.Since(t0); d > bound {
		t.Errorf("a reload adding 10 hanging key sources took %s, want at most %s", d.Round(time.Millisecond), bound)
	} else {
		t.Logf("reload adding 10 hanging sources: %s", d.Round(time.Millisecond))
	}
	select {
	case d := <-adminDone:
		if d < 0 || d > bound {
			t.Errorf("the admin API answered in %s during the reload, want at most %s", d, bound)
		} else {
			t.Logf("admin API answered in %s during the reload", d.Round(time.Millisecond))
		}
	case <-time.After(30 * time.Second):
		t.Error("the admin API did not answer during the reload")
	}
	deadline := time.Now().Add(10 * time.Second)
	for hang.accepted.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := hang.accepted.Load(); n < 20 {
		t.Errorf("the hanging key server saw %d connections, want one per source (20)", n)
	}
	e.load(`	respond "after"`) // release the hanging keyrings
}

// TestIntegrationUnknownKIDDuringHangingFetch: keys are loaded, then the
// key server hangs (it holds each request for 30s; the fetch gives up after
// about 10s, the HTTP client's response header timeout). 1000 requests at
// once, each with an unknown kid, start or join one on-demand fetch: every
// one is answered 401, the time Caddy spent on each (its access log's
// duration, which leaves out the client's own queueing on a busy machine)
// is within the on-demand cap (1s) plus a generous margin, not the fetch's
// 10s; the key server saw one fetch; then the goroutine count is back to
// its level before the flood.
func TestIntegrationUnknownKIDDuringHangingFetch(t *testing.T) {
	e := newEnv(t)
	ks := newFaultServer(t, jwttest.JWKS(sharedKey))
	url := ks.URL + "/jwks.json"
	accessLog := filepath.Join(t.TempDir(), "access.log")
	e.load(fmt.Sprintf(`
	log {
		output file %s
		format json
	}
	route {
		cognito_auth {
			issuer %s
			audience %s
			jwks url %s {
				cooldown 1h
				timeout 20s
			}
		}
		respond "ok"
	}`, accessLog, e.issuer, testClient, url))
	tok := e.token()
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+tok), 200, "", "ok")
	client := newLoadClient(t)
	// Open the connections before counting, so the baseline includes
	// Caddy's per-connection goroutines.
	const n = 1000
	base := settledGoroutines()

	ks.setMode(modeSlowHeaders)
	var wg sync.WaitGroup
	var slowest atomic.Int64
	var wrong atomic.Int64
	var firstWrong atomic.Value
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			forged := floodToken(e, fmt.Sprintf("forged-%d", i), "c2ln")
			<-start
			t0 := time.Now()
			st, _, challenge, err := siteGet(client, "/", forged)
			d := time.Since(t0)
			for {
				old := slowest.Load()
				if int64(d) <= old || slowest.CompareAndSwap(old, int64(d)) {
					break
				}
			}
			if err != nil || st != 401 || !strings.Contains(challenge, "token signing key is not known") {
				wrong.Add(1)
				firstWrong.CompareAndSwap(nil, fmt.Sprintf("%d %q %v", st, challenge, err))
			}
		}()
	}
	close(start)
	wg.Wait()
	hits, held := ks.stats()
	if w := wrong.Load(); w != 0 {
		t.Errorf("%d of %d unknown-kid requests not answered 401 unknown key; first: %v", w, n, firstWrong.Load())
	}
	if len(hits) != 1 {
		t.Errorf("the key server saw %d fetches, want the one on-demand fetch", len(hits))
	}
	const capWait = time.Second
	var longest float64
	answered := 0
	for _, l := range logLines(t, accessLog) {
		if d, ok := l["duration"].(float64); ok && l["status"] == float64(401) {
			answered++
			longest = max(longest, d)
		}
	}
	slow := time.Duration(slowest.Load())
	t.Logf("%d unknown kids during a hanging fetch (it ended after %v): %d in the access log, longest %.2fs in Caddy; slowest at the client %s",
		n, held, answered, longest, slow.Round(time.Millisecond))
	if answered < n {
		t.Errorf("%d of %d denials in the access log", answered, n)
	}
	if longest > (capWait + 4*time.Second).Seconds() {
		t.Errorf("Caddy held an unknown-kid request %.2fs, want about the on-demand cap %s (the fetch hung for 10s)", longest, capWait)
	}
	client.CloseIdleConnections()
	if got, where := goroutinesBackTo(base+30, 15*time.Second); where != "" {
		t.Errorf("goroutines: %d, %d before the flood; still running:\n%s", got, base, where)
	}
	// Known keys are served throughout.
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+tok), 200, "", "ok")
}

// TestIntegrationDenialLogBudget: 20 routes (20 handlers), 60 denied
// requests to each, with 15 KB paths. The log holds at most the
// process-wide budget of denial lines per second the flood lasted (a zap
// sampler per handler let through 10 per handler per second and 1 % of the
// rest), each with the client IP Caddy determined and its uri cut to about
// 256 bytes. Provisioning 100 handlers costs well under 100 KiB of heap
// each (the per-handler sampler alone was 452 KiB).
func TestIntegrationDenialLogBudget(t *testing.T) {
	e := newEnv(t)
	logPath := filepath.Join(t.TempDir(), "caddy.log")
	globals := fmt.Sprintf("grace_period 1ns\n\tlog {\n\t\toutput file %s\n\t\tformat json\n\t\tlevel INFO\n\t}", logPath)
	routes := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "\troute /r%d/* {\n\t\t%s\n\t\trespond \"ok\"\n\t}\n", i, e.authBlock())
		}
		return b.String()
	}
	e.loadWithGlobals(globals, routes(20))

	long := "/" + strings.Repeat("p", 15<<10)
	client := newLoadClient(t)
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 60 {
				path := fmt.Sprintf("/r%d%s%d", i, long, j)
				if st, _, _, err := siteGet(client, path, "not-a-jwt"); err != nil || st != 401 {
					t.Errorf("denied request: %d %v", st, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	secs := int(time.Since(t0)/time.Second) + 2 // windows touched, rounded up generously
	var denied []map[string]any
	for _, l := range logLines(t, logPath) {
		if l["msg"] == "request denied" {
			denied = append(denied, l)
		}
	}
	budget := 20 * secs
	t.Logf("1200 denials over %d s windows: %d log lines (budget %d)", secs, len(denied), budget)
	if len(denied) == 0 || len(denied) > budget {
		t.Errorf("%d denial lines for 1200 denials in %d s, want 1..%d (20 per second, process-wide)", len(denied), secs, budget)
	}
	for _, l := range denied {
		uri, _ := l["uri"].(string)
		if len(uri) > 260 {
			t.Fatalf("uri of %d bytes logged", len(uri))
		}
		if l["client_ip"] != "127.0.0.1" {
			t.Fatalf("client_ip %v, want 127.0.0.1 (Caddy's client IP)", l["client_ip"])
		}
	}

	// Heap per handler: 100 handlers sharing one source (loaded as
	// `caddy reload` does: its client waits longer than caddytest's on a
	// busy machine).
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	e.reload(globals, routes(100))
	runtime.GC()
	runtime.ReadMemStats(&m1)
	per := (int64(m1.HeapAlloc) - int64(m0.HeapAlloc)) / 100
	t.Logf("heap per provisioned handler: %d KiB", per>>10)
	if per > 100<<10 {
		t.Errorf("%d KiB of heap per handler, want well under 100 KiB", per>>10)
	}
	_ = os.Remove(logPath)
}

// TestIntegrationReloadAppliesCacheSize: the token cache outlives configs
// with its keyring; a reload that changes cache_size resizes it (it used
// to keep the first config's size silently), and a route without
// cache_size gets the default.
func TestIntegrationReloadAppliesCacheSize(t *testing.T) {
	e := newEnv(t)
	site := func(size string) string {
		return fmt.Sprintf("\troute /metrics {\n\t\tmetrics\n\t}\n\troute {\n\t\t%s\n\t\trespond \"ok\"\n\t}\n", e.authBlock(size))
	}
	capacity := func() float64 {
		v, ok := metricValue(e.do("GET", "/metrics").body, "caddy_cognito_token_cache_capacity", `source="`+e.jwks.JWKSURL()+`"`)
		if !ok {
			t.Fatal("no caddy_cognito_token_cache_capacity metric")
		}
		return v
	}
	e.load(site("cache_size 640"))
	tok := e.token()
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+tok), 200, "", "ok")
	if c := capacity(); c != 640 {
		t.Fatalf("capacity %v, want 640", c)
	}
	fetches := e.jwks.Hits()
	e.reload("grace_period 1ns", site("cache_size 6400"))
	if c := capacity(); c != 6400 {
		t.Fatalf("after a reload to cache_size 6400: capacity %v", c)
	}
	if v, _ := metricValue(e.do("GET", "/metrics").body, "caddy_cognito_token_cache_entries", `source="`+e.jwks.JWKSURL()+`"`); v != 1 {
		t.Errorf("cache entries after the resize: %v, want the 1 cached token kept", v)
	}
	e.reload("grace_period 1ns", site(""))
	if c := capacity(); c < 100_000 || c >= 100_000+64 { // rounded up to whole shards
		t.Fatalf("after a reload without cache_size: capacity %v, want the default 100000", c)
	}
	if h := e.jwks.Hits(); h != fetches {
		t.Errorf("the key server saw %d fetches across the reloads: the keyring was not kept", h-fetches)
	}
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+tok), 200, "", "ok")
}

// TestIntegrationRetryAfterFromKeyring: the key server answers 503 with
// Retry-After: 30, so the keyring will not try again for 30s; a request
// meanwhile gets 503 with Retry-After saying so (it was a constant 5).
func TestIntegrationRetryAfterFromKeyring(t *testing.T) {
	e := newEnv(t)
	e.jwks.Fail(http.StatusServiceUnavailable, http.Header{"Retry-After": {"30"}})
	e.load(fmt.Sprintf(`
	route {
		cognito_auth {
			issuer %s
			audience %s
			jwks url %s {
				cooldown 1h
			}
			startup_wait 2s
		}
		respond "ok"
	}`, e.issuer, testClient, e.jwks.JWKSURL()))
	r := e.do("GET", "/", "Authorization", "Bearer "+e.token())
	e.expect(r, 503, "Bearer", `{"message":"Service Unavailable"}`)
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 15 || ra > 30 {
		t.Errorf("Retry-After %q, want the keyring's next attempt, 15..30 s away", r.header.Get("Retry-After"))
	}
}
