package caddymodule_test

// Config reloads under load: Caddy's admin API loads a changed config (what
// `caddy reload` does) while clients keep sending valid tokens.

import (
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// settledGoroutines waits for the goroutine count to stop falling and
// returns it.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for stable := 0; stable < 5; {
		time.Sleep(40 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			stable++
		} else {
			stable = 0
		}
		n = m
	}
	return n
}

// goroutinesBackTo waits up to wait for the goroutine count to come back to
// at most limit, and returns the last count and, if it did not, a summary
// of where the goroutines are.
func goroutinesBackTo(limit int, wait time.Duration) (int, string) {
	deadline := time.Now().Add(wait)
	for {
		n := runtime.NumGoroutine()
		if n <= limit {
			return n, ""
		}
		if time.Now().After(deadline) {
			return n, goroutineSummary()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goroutineSummary counts goroutines by the function that created them.
func goroutineSummary() string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	count := map[string]int{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(strings.TrimSpace(g), "\n")
		origin := "?"
		for i, l := range lines {
			if strings.HasPrefix(l, "created by ") && i+1 < len(lines) {
				origin = strings.TrimPrefix(l, "created by ")
				origin, _, _ = strings.Cut(origin, " in goroutine ")
				break
			}
		}
		count[origin]++
	}
	var out []string
	for origin, n := range count {
		if n >= 3 {
			out = append(out, fmt.Sprintf("%4d %s", n, origin))
		}
	}
	return strings.Join(out, "\n")
}

// loadGenerator sends GETs with valid tokens from n goroutines until
// stopped, and counts what it gets.
//
// A request that got no response at all (EOF or reset on a connection the
// server never answered on) is sent again, up to 4 times, as any HTTP client
// or load balancer does for an idempotent request; such drops are counted
// apart (and bounded by the test). They come from Caddy's reload itself, below any handler: on Linux
// each config listens on its own SO_REUSEPORT socket, and connections still
// queued on the old socket when it closes are reset by the kernel, while
// net/http closes, unanswered, a new connection whose first request it reads
// after Shutdown began. No handler sees those requests.
type loadGenerator struct {
	stop          chan struct{}
	stopOnce      sync.Once
	wg            sync.WaitGroup
	ok, failed    atomic.Int64
	dropped       atomic.Int64 // unanswered attempts, resent
	mu            sync.Mutex
	firstFailures []string
	bodies        map[string]int
	client        *http.Client
}

func startLoad(t *testing.T, workers int, path string, tokens ...string) *loadGenerator {
	g := &loadGenerator{stop: make(chan struct{}), bodies: map[string]int{}, client: newLoadClient(t)}
	// A test that stops early (t.Fatal in a reload) must not leave its
	// clients running into the next test's config.
	t.Cleanup(g.finish)
	for w := range workers {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-g.stop:
					return
				default:
				}
				var st int
				var body, challenge string
				var err error
				for attempt := 0; attempt < 5; attempt++ {
					if attempt > 0 {
						time.Sleep(20 * time.Millisecond)
					}
					st, body, challenge, err = siteGet(g.client, path, tokens[(w+i)%len(tokens)])
					if err == nil {
						break
					}
					g.dropped.Add(1)
				}
				if err != nil || st != 200 {
					g.failed.Add(1)
					g.mu.Lock()
					if len(g.firstFailures) < 5 {
						g.firstFailures = append(g.firstFailures, fmt.Sprintf("%d %q %q %v", st, body, challenge, err))
					}
					g.mu.Unlock()
					continue
				}
				g.ok.Add(1)
				g.mu.Lock()
				g.bodies[body]++
				g.mu.Unlock()
			}
		}()
	}
	return g
}

func (g *loadGenerator) served(body string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bodies[body]
}

// finish stops the clients and waits for them; it may be called again.
func (g *loadGenerator) finish() {
	g.stopOnce.Do(func() { close(g.stop) })
	g.wg.Wait()
	g.client.CloseIdleConnections()
}

// TestIntegrationReloadUnderLoad: 100 config reloads (POST /load with a
// changed Caddyfile, as `caddy reload` does: a different response body each
// time) while 8 clients send valid tokens without pause. Not one request is
// refused or fails; the keyring is handed from config to config, so the key
// server sees no fetch at all; and once the load stops, the goroutine count
// is back where it was before the reloads.
func TestIntegrationReloadUnderLoad(t *testing.T) {
	e := newEnv(t)
	const globals = "grace_period 5s"
	site := func(i int) string {
		return fmt.Sprintf(`
	route {
		%s
		respond "config %d"
	}`, e.authBlock(), i)
	}
	e.loadWithGlobals(globals, site(0))
	tokens := []string{e.token(), e.token("sub", "bob"), e.token("username", "carol")}
	for _, tok := range tokens {
		e.expect(e.do("GET", "/", "Authorization", "Bearer "+tok), 200, "", "config 0")
	}
	// Warm-up: a few reloads under load, so that what the process keeps
	// anyway (pools, buffers, the resolver) is in the baseline.
	warm := startLoad(t, 8, "/", tokens...)
	for i := 1; i <= 3; i++ {
		e.reload(globals, site(i))
	}
	warm.finish()
	e.tester.Client.CloseIdleConnections()
	base := settledGoroutines()
	hits := e.jwks.Hits()

	const reloads = 100
	g := startLoad(t, 8, "/", tokens...)
	start := time.Now()
	for i := 1; i <= reloads; i++ {
		e.reload(globals, site(100+i))
		if i%10 == 0 {
			// Keep reloads from outrunning the load: each tenth config
			// must have answered before the next reload.
			deadline := time.Now().Add(5 * time.Second)
			for g.served(fmt.Sprintf("config %d", 100+i)) == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	g.finish()
	d := time.Since(start)
	t.Logf("%d reloads in %s under load: %d requests ok, %d failed, %d unanswered attempts resent, %d distinct configs answered",
		reloads, d.Round(time.Millisecond), g.ok.Load(), g.failed.Load(), g.dropped.Load(), len(g.bodies))

	if n := g.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during the reloads, e.g. %q", n, g.firstFailures)
	}
	// Drops happen only around a reload's listener hand-over; a handler
	// that crashed or hung up would drop far more.
	if n := g.dropped.Load(); n > 2*reloads {
		t.Errorf("%d requests got no response over %d reloads", n, reloads)
	}
	if g.served(fmt.Sprintf("config %d", 100+reloads)) == 0 {
		t.Errorf("the last config never answered")
	}
	if len(g.bodies) < reloads/4 {
		t.Errorf("answers came from only %d configs of %d: the reloads did not happen under load", len(g.bodies), reloads)
	}
	if got := e.jwks.Hits() - hits; got != 0 {
		t.Errorf("the key server saw %d fetches over %d reloads, want 0 (the keyring is shared across configs)", got, reloads)
	}
	e.tester.Client.CloseIdleConnections()
	if n, where := goroutinesBackTo(base+10, 10*time.Second); where != "" {
		t.Errorf("%d goroutines after %d reloads, %d before; by creator:\n%s", n, reloads, base, where)
	}
}

// TestIntegrationReloadChangedSourceNoLeak: reloads that change a key
// source's timing replace its keyring (the new config takes a new one, the
// old one is stopped when the old config goes). 100 such reloads must
// leave no goroutine behind.
func TestIntegrationReloadChangedSourceNoLeak(t *testing.T) {
	e := newEnv(t)
	site := func(i int) string {
		// refresh 1h / 2h alternate: a different pool key, a new keyring.
		return fmt.Sprintf(`
	route {
		cognito_auth {
			issuer %s
			audience %s
			jwks url %s {
				refresh %dh
			}
		}
		respond "config %d"
	}`, e.issuer, testClient, e.jwks.JWKSURL(), 1+i%2, i)
	}
	e.load(site(0))
	tok := e.token()
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+tok), 200, "", "config 0")
	for i := 1; i <= 2; i++ {
		e.load(site(i))
	}
	e.tester.Client.CloseIdleConnections()
	base := settledGoroutines()
	hits := e.jwks.Hits()

	const reloads = 100
	for i := 3; i < 3+reloads; i++ {
		e.reload("grace_period 1ns", site(i))
		e.expect(e.do("GET", "/", "Authorization", "Bearer "+tok), 200, "", fmt.Sprintf("config %d", i))
	}
	if got := e.jwks.Hits() - hits; got != reloads {
		t.Errorf("%d fetches over %d reloads that each replace the keyring, want %d", got, reloads, reloads)
	}
	e.tester.Client.CloseIdleConnections()
	if n, where := goroutinesBackTo(base+10, 5*time.Second); where != "" {
		t.Errorf("%d goroutines after %d reloads that replaced the keyring, %d before: stopped keyrings leave "+
			"their HTTP client's kept-alive connection to the key server open (see jwks.TestKeyringStopReleasesConnections); by creator:\n%s",
			n, reloads, base, where)
	}
}

// TestIntegrationReloadKeyringLogsFollowConfig: a keyring outlives the
// config that created it. After a reload that moves Caddy's log elsewhere,
// the shared keyring's fetch failures must be logged where the running
// config says, not where the config that created the keyring did.
func TestIntegrationReloadKeyringLogsFollowConfig(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	logA, logB := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	site := fmt.Sprintf(`
	route {
		cognito_auth {
			issuer %s
			audience %s
			jwks url %s {
				refresh 1s
			}
		}
		respond "ok"
	}`, e.issuer, testClient, e.jwks.JWKSURL())
	logTo := func(path string) string { return fmt.Sprintf("log {\n\t\toutput file %s\n\t\tformat json\n\t}", path) }
	e.loadWithGlobals(logTo(logA), site)
	tok := e.token()
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+tok), 200, "", "ok")

	e.loadWithGlobals(logTo(logB), site) // same source and timing: the keyring is kept
	e.jwks.Fail(http.StatusInternalServerError, nil)
	// Wait for the next refresh's failure to be logged, wherever it goes.
	var inA, inB bool
	deadline := time.Now().Add(10 * time.Second)
	for !inA && !inB {
		if time.Now().After(deadline) {
			t.Fatal("no fetch failure logged within 10s of the key server failing (refresh is 1s)")
		}
		time.Sleep(50 * time.Millisecond)
		inA = hasLog(logLines(t, logA), fetchFailed, "jwks_source", e.jwks.JWKSURL())
		inB = hasLog(logLines(t, logB), fetchFailed, "jwks_source", e.jwks.JWKSURL())
	}
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+tok), 200, "", "ok")
	if !inB || inA {
		t.Errorf("the key server failed after the reload: logged in the running config's log %s: %v, in the previous config's log %s: %v; "+
			"the shared keyring logs through the logger of the config that created it", logB, inB, logA, inA)
	}
}
