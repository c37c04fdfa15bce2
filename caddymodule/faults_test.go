package caddymodule_test

// Fault injection through a real Caddy: key servers that fail in every way
// a network and a broken publisher can, a flood of invented key ids, and key
// rotation with overlap. The rule in every case: requests bearing tokens of
// known keys keep being served, nothing crashes, memory stays bounded, and
// the failure shows in the logs and the metrics.

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// ---- helpers shared with reload_test.go ----

// newLoadClient returns a client for load generators: safe to use from many
// goroutines (unlike e.do, which fails the test from the calling goroutine)
// and keeping enough idle connections not to churn ports.
func newLoadClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// siteGet sends GET path to the site with a bearer token and returns the
// status, the body and the WWW-Authenticate header.
func siteGet(c *http.Client, path, token string) (int, string, string, error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://localhost:%d%s", sitePort, path), nil)
	if err != nil {
		return 0, "", "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header.Get("WWW-Authenticate"), err
}

// metricValue reads one sample from a Prometheus text exposition. labels
// are written as they are exposed, sorted by name: `result="error",source="…"`.
func metricValue(body, name, labels string) (float64, bool) {
	prefix := name + "{" + labels + "} "
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// caddyConfig is the Caddyfile e.load builds, with extra global options
// (e.g. a log file, a grace period).
func caddyConfig(globals, siteBody string) string {
	if !strings.Contains(globals, "log {") {
		globals += "\n\t" + quietLog
	}
	return fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	auto_https off
	%s
}
:%d {
%s
}
`, adminPort, sitePort, globals, sitePort, siteBody)
}

// quietLog keeps the test Caddy's default log to errors. Denials are logged
// at info, and tests send thousands of denied requests: on a failure, go test
// prints the package's whole stderr, and the failure message would drown.
const quietLog = `log {
		output stderr
		level ERROR
	}`

// loadWithGlobals is e.load with extra global options.
func (e *env) loadWithGlobals(globals, siteBody string) {
	e.t.Helper()
	e.loadConfig(caddyConfig(globals, siteBody))
}

// loadConfig loads a whole Caddyfile with caddytest, waits for the old
// config's sockets to close (waitHandover) and drops the test client's
// connections to the old servers.
func (e *env) loadConfig(caddyfile string) {
	e.t.Helper()
	e.tester.InitServer(caddyfile, "caddyfile")
	if e.t.Failed() {
		e.t.FailNow()
	}
	waitHandover(e.t)
	e.tester.Client.CloseIdleConnections()
	loads.Add(1)
}

// reload does what `caddy reload` does: POST the changed Caddyfile to the
// admin API's /load, which answers once the new config runs, then waits
// for the old config's sockets to close (waitHandover) and drops the
// test client's connections to the old servers. Each load restarts the
// admin endpoint, so every reload uses a new connection.
func (e *env) reload(globals, siteBody string) {
	e.t.Helper()
	admin := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := admin.Post(fmt.Sprintf("http://localhost:%d/load", adminPort), "text/caddyfile",
		strings.NewReader(caddyConfig(globals, siteBody)))
	if err != nil {
		e.t.Fatalf("reload: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("reload: %d %s", resp.StatusCode, body)
	}
	waitHandover(e.t)
	e.tester.Client.CloseIdleConnections()
}

// logLines returns the JSON log entries written to path.
func logLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("reading the log: %v", err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// hasLog reports whether an entry has the message and every given field
// (string values: substring match).
func hasLog(lines []map[string]any, msg string, fields ...string) bool {
next:
	for _, l := range lines {
		if l["msg"] != msg {
			continue
		}
		for i := 0; i+1 < len(fields); i += 2 {
			v, _ := l[fields[i]].(string)
			if !strings.Contains(v, fields[i+1]) {
				continue next
			}
		}
		return true
	}
	return false
}

// ---- a key server that fails on command ----

type faultMode string

const (
	modeOK          faultMode = "ok"
	modeRefused     faultMode = "refused"      // the listener is gone
	mode500         faultMode = "500"          // every answer is 500
	mode429         faultMode = "429"          // 429 with Retry-After
	modeSlowHeaders faultMode = "slow-headers" // no answer within the timeout
	modeSlowBody    faultMode = "slow-body"    // headers at once, then a byte now and then
	modeHuge        faultMode = "huge"         // a 50 MB body
	modeInvalidJSON faultMode = "invalid-json" // an HTML error page with status 200
	modeEmpty       faultMode = "empty"        // {"keys":[]}
	modePrivateOnly faultMode = "private-only" // the only key has its private half published
	modeHMACOnly    faultMode = "hmac-only"    // the only key is a symmetric secret
)

const (
	fetchFailed     = "jwks fetch failed; keeping the last good keys" // the keyring's log message
	hugeBody        = 50 << 20
	retryAfterSecs  = 2
	faultFetchLimit = 500 * time.Millisecond // the `timeout` of every fault route
)

type faultServer struct {
	*httptest.Server
	doc  []byte
	stop chan struct{}

	mu        sync.Mutex
	mode      faultMode
	faultHits []time.Time     // arrival of each request answered in a fault mode
	held      []time.Duration // how long the slow modes held a request before the client hung up

	hugeCompleted atomic.Int64
}

func newFaultServer(t *testing.T, doc []byte) *faultServer {
	s := &faultServer{doc: doc, mode: modeOK, stop: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(s.stop) }) // runs first: releases held requests
	return s
}

func (s *faultServer) setMode(m faultMode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
	if m == modeRefused {
		s.Close() // listener and connections gone: the next dial is refused
	}
}

func (s *faultServer) stats() (hits []time.Time, held []time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.faultHits...), append([]time.Duration(nil), s.held...)
}

func (s *faultServer) serve(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	s.mu.Lock()
	mode := s.mode
	if mode != modeOK {
		s.faultHits = append(s.faultHits, arrived)
	}
	s.mu.Unlock()
	hold := func() {
		select {
		case <-r.Context().Done():
		case <-s.stop:
		case <-time.After(30 * time.Second):
		}
		s.mu.Lock()
		s.held = append(s.held, time.Since(arrived))
		s.mu.Unlock()
	}
	switch mode {
	case modeOK:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.doc)
	case mode500:
		http.Error(w, "internal error", http.StatusInternalServerError)
	case mode429:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSecs))
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case modeSlowHeaders:
		hold()
	case modeSlowBody:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"keys":[`)
		w.(http.Flusher).Flush()
		done := make(chan struct{})
		go func() {
			defer close(done)
			hold()
		}()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				_, _ = io.WriteString(w, " ")
				w.(http.Flusher).Flush()
			}
		}
	case modeHuge:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"keys":[],"pad":"`)
		chunk := []byte(strings.Repeat("a", 64<<10))
		for n := 0; n < hugeBody; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client hung up
			}
		}
		_, _ = io.WriteString(w, `"}`)
		s.hugeCompleted.Add(1)
	case modeInvalidJSON:
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>Service temporarily unavailable</body></html>")
	case modeEmpty:
		_, _ = io.WriteString(w, `{"keys":[]}`)
	case modePrivateOnly:
		jwk := sharedKey.JWK()
		jwk["d"] = base64.RawURLEncoding.EncodeToString(sharedKey.Private.D.Bytes())
		_, _ = w.Write(jwttest.JWKSOf(jwk))
	case modeHMACOnly:
		_, _ = w.Write(jwttest.JWKSOf(map[string]any{"kty": "oct", "kid": "key-1", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}))
	}
}

// TestIntegrationJWKSFaults: Caddy runs one route per fault, each with its
// own key server, keys loaded at start and a 1s refresh. Then every server
// turns bad at once, and the test drives refresh cycles until each source
// has failed at least twice. Throughout, valid tokens get 200 on every
// route; afterwards each failure is counted in
// caddy_cognito_jwks_fetches_total{result="error"} and logged, the keys
// stay in service, the slow servers were dropped at the fetch timeout, the
// 50 MB body was never read to its end, Retry-After was honoured and the
// heap did not grow.
func TestIntegrationJWKSFaults(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		mode    faultMode
		refresh string
		// a log entry naming the cause
		logMsg, logField, logValue string
	}{
		{modeRefused, "1s", fetchFailed, "error", "connection refused"},
		{mode500, "1s", fetchFailed, "error", "HTTP 500"},
		// Retry-After (2s) is longer than the first backoff (1s): honoured,
		// it spaces the retries; the refresh period caps it, so 2s here.
		{mode429, "2s", fetchFailed, "error", "HTTP 429"},
		{modeSlowHeaders, "1s", fetchFailed, "error", "deadline exceeded"},
		{modeSlowBody, "1s", fetchFailed, "error", "deadline exceeded"},
		{modeHuge, "1s", fetchFailed, "error", "exceeds"},
		{modeInvalidJSON, "1s", fetchFailed, "error", "not a JSON object"},
		{modeEmpty, "1s", fetchFailed, "error", "no usable key"},
		{modePrivateOnly, "1s", "jwks key ignored", "reason", "private key material"},
		{modeHMACOnly, "1s", "jwks key ignored", "reason", "not RSA"},
	}
	servers := map[faultMode]*faultServer{}
	urls := map[faultMode]string{}
	var site strings.Builder
	site.WriteString("\troute /metrics {\n\t\tmetrics\n\t}\n")
	for _, c := range cases {
		s := newFaultServer(t, jwttest.JWKS(sharedKey))
		servers[c.mode] = s
		urls[c.mode] = s.URL + "/" + string(c.mode) + "/jwks.json"
		fmt.Fprintf(&site, `	route /%s/* {
		cognito_auth {
			issuer %s
			audience %s
			jwks url %s {
				refresh %s
				timeout %s
			}
		}
		respond "ok"
	}
`, c.mode, e.issuer, testClient, urls[c.mode], c.refresh, faultFetchLimit)
	}
	logPath := filepath.Join(t.TempDir(), "caddy.log")
	e.loadWithGlobals(fmt.Sprintf("grace_period 1ns\n\tlog {\n\t\toutput file %s\n\t\tformat json\n\t}", logPath), site.String())

	tok := e.token()
	for _, c := range cases {
		e.expect(e.do("GET", "/"+string(c.mode)+"/x", "Authorization", "Bearer "+tok), 200, "", "ok")
	}
	var m0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	heapPeak := m0.HeapAlloc

	start := time.Now()
	for _, c := range cases {
		servers[c.mode].setMode(c.mode)
	}
	errorsOf := func(metrics string, m faultMode) float64 {
		v, _ := metricValue(metrics, "caddy_cognito_jwks_fetches_total", `result="error",source="`+urls[m]+`"`)
		return v
	}
	var metrics string
	served, refused := 0, 0
	for {
		for _, c := range cases {
			r := e.do("GET", "/"+string(c.mode)+"/x", "Authorization", "Bearer "+tok)
			served++
			if r.status != 200 {
				refused++
				t.Errorf("%s: valid token got %d while the key server fails", c.mode, r.status)
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heapPeak = max(heapPeak, ms.HeapAlloc)
		metrics = e.do("GET", "/metrics").body
		done := true
		for _, c := range cases {
			if errorsOf(metrics, c.mode) < 2 {
				done = false
			}
		}
		if done {
			break
		}
		if time.Since(start) > 30*time.Second {
			for _, c := range cases {
				t.Logf("%s: %v errors", c.mode, errorsOf(metrics, c.mode))
			}
			t.Fatal("the key sources did not fail twice each within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(start)
	t.Logf("%d valid requests over %s of faults, %d refused", served, elapsed.Round(time.Millisecond), refused)

	// An unknown kid during a slow fetch is answered within the fetch
	// timeout, not held for as long as the server stalls.
	unknown := sharedKey.Sign(t, jwttest.Token{Header: map[string]any{"kid": "not-published"}, Claims: e.claims()})
	for _, m := range []faultMode{modeSlowHeaders, modeSlowBody} {
		t0 := time.Now()
		r := e.do("GET", "/"+string(m)+"/x", "Authorization", "Bearer "+unknown)
		if d := time.Since(t0); d > faultFetchLimit+3*time.Second {
			t.Errorf("%s: an unknown kid took %s to answer, the fetch timeout is %s", m, d, faultFetchLimit)
		}
		e.expect(r, 401, `Bearer error="invalid_token", error_description="token signing key is not known"`, "")
	}

	for _, c := range cases {
		if v, ok := metricValue(metrics, "caddy_cognito_jwks_keys", `source="`+urls[c.mode]+`"`); !ok || v != 1 {
			t.Errorf("%s: caddy_cognito_jwks_keys = %v (present %v), want the 1 loaded key kept", c.mode, v, ok)
		}
		if v, _ := metricValue(metrics, "caddy_cognito_jwks_fetches_total", `result="ok",source="`+urls[c.mode]+`"`); v != 1 {
			t.Errorf("%s: %v successful fetches, want only the first", c.mode, v)
		}
	}

	// Slow servers: every request was dropped at the timeout (the server
	// saw the client hang up), not after the 30s the server would stall.
	for _, m := range []faultMode{modeSlowHeaders, modeSlowBody} {
		_, held := servers[m].stats()
		if len(held) == 0 {
			t.Errorf("%s: no request was dropped by the client", m)
		}
		t.Logf("%s: requests held %v", m, held)
		for _, d := range held {
			if d > faultFetchLimit+2*time.Second {
				t.Errorf("%s: the client waited %s for a response, the fetch timeout is %s", m, d, faultFetchLimit)
			}
		}
	}
	// 429: consecutive attempts are at least Retry-After apart (the first
	// backoff alone would retry after about 1s).
	hits, _ := servers[mode429].stats()
	if len(hits) < 2 {
		t.Errorf("429: %d attempts, want at least 2 to see the spacing", len(hits))
	}
	for i := 1; i < len(hits); i++ {
		gap := hits[i].Sub(hits[i-1])
		t.Logf("429: retry %d after %s", i, gap.Round(time.Millisecond))
		if gap < retryAfterSecs*time.Second-200*time.Millisecond {
			t.Errorf("429: retried after %s, Retry-After said %ds", gap.Round(time.Millisecond), retryAfterSecs)
		}
	}
	// 50 MB: the client stops at the 1 MiB cap and hangs up; the heap does
	// not follow the body.
	if n := servers[modeHuge].hugeCompleted.Load(); n != 0 {
		t.Errorf("huge: %d 50 MB bodies were read to the end", n)
	}
	var m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m1)
	hugeHits, _ := servers[modeHuge].stats()
	allocated := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("heap: %d MB at the start, peak %d MB, %d MB after; %d MB allocated in all, over %d 50 MB answers",
		m0.HeapAlloc>>20, heapPeak>>20, m1.HeapAlloc>>20, allocated>>20, len(hugeHits))
	// Reading one 50 MB body would alone allocate more than 50 MB; all the
	// requests, scrapes and fetches of the test together stay well below
	// 50 MB per 50 MB answer.
	if len(hugeHits) > 0 && allocated > uint64(len(hugeHits))*hugeBody {
		t.Errorf("%d MB allocated while the key server sent %d 50 MB answers", allocated>>20, len(hugeHits))
	}
	if grew := int64(m1.HeapAlloc) - int64(m0.HeapAlloc); grew > 16<<20 {
		t.Errorf("live heap grew by %d MB over the faults", grew>>20)
	}

	// Every failure is in the log, with its source and its cause.
	lines := logLines(t, logPath)
	for _, c := range cases {
		if !hasLog(lines, fetchFailed, "jwks_source", urls[c.mode]) {
			t.Errorf("%s: no fetch failure logged for %s", c.mode, urls[c.mode])
		}
		if !hasLog(lines, c.logMsg, "jwks_source", urls[c.mode], c.logField, c.logValue) {
			t.Errorf("%s: no %q entry with %s ~ %q", c.mode, c.logMsg, c.logField, c.logValue)
		}
	}
	// Caddy is alive and still serving.
	e.expect(e.do("GET", "/"+string(mode500)+"/x", "Authorization", "Bearer "+tok), 200, "", "ok")
}

// floodToken returns a token whose header names kid. Its signature is junk:
// a token with an unknown kid is refused before its signature is looked at.
func floodToken(e *env, kid string, sig string) string {
	return e.key.SigningInput(jwttest.Token{Header: map[string]any{"kid": kid}, Claims: e.claims()}) + "." + sig
}

// TestIntegrationUnknownKIDFlood: 10 000 requests with random kids from 64
// goroutines. The key server sees at most 1 + duration/cooldown fetches,
// every invented kid is refused with 401, and valid tokens sent in between
// all succeed.
func TestIntegrationUnknownKIDFlood(t *testing.T) {
	e := newEnv(t)
	const cooldown = time.Second
	e.load(fmt.Sprintf(`
	route /metrics {
		metrics
	}
	route {
		cognito_auth {
			issuer %s
			audience %s
			jwks url %s {
				cooldown %s
			}
		}
		respond "ok"
	}`, e.issuer, testClient, e.jwks.JWKSURL(), cooldown))
	valid := []string{e.token(), e.token("sub", "bob"), e.token("scope", "openid")}
	for _, v := range valid {
		e.expect(e.do("GET", "/", "Authorization", "Bearer "+v), 200, "", "ok")
	}

	const flood, workers, validEvery = 10_000, 64, 10
	sigRaw := make([]byte, 256)
	_, _ = rand.Read(sigRaw)
	sig := base64.RawURLEncoding.EncodeToString(sigRaw)
	tokens := make([]string, flood)
	for i := range tokens {
		kid := make([]byte, 16)
		_, _ = rand.Read(kid)
		tokens[i] = floodToken(e, hex.EncodeToString(kid), sig)
	}
	client := newLoadClient(t)
	base := e.jwks.Hits()

	var next, floodWrong, validWrong, validSent atomic.Int64
	var firstErr sync.Once
	var errMsg atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= flood {
					return
				}
				if i%validEvery == 0 {
					validSent.Add(1)
					st, body, _, err := siteGet(client, "/", valid[int(i)%len(valid)])
					if err != nil || st != 200 || body != "ok" {
						validWrong.Add(1)
						firstErr.Do(func() { errMsg.Store(fmt.Sprintf("worker %d: valid token: %d %q %v", w, st, body, err)) })
					}
				}
				st, _, challenge, err := siteGet(client, "/", tokens[i])
				if err != nil || st != 401 || !strings.Contains(challenge, "token signing key is not known") {
					floodWrong.Add(1)
					firstErr.Do(func() { errMsg.Store(fmt.Sprintf("worker %d: random kid: %d %q %v", w, st, challenge, err)) })
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	fetches := e.jwks.Hits() - base
	bound := 1 + int64(d/cooldown)
	t.Logf("%d random kids + %d valid tokens in %s: %d key-server fetches (bound %d)", flood, validSent.Load(), d.Round(time.Millisecond), fetches, bound)

	if msg, _ := errMsg.Load().(string); msg != "" {
		t.Errorf("first wrong answer: %s", msg)
	}
	if n := validWrong.Load(); n != 0 {
		t.Errorf("%d of %d valid requests failed during the flood", n, validSent.Load())
	}
	if n := floodWrong.Load(); n != 0 {
		t.Errorf("%d of %d random-kid requests were not refused as unknown keys", n, flood)
	}
	if fetches > bound {
		t.Errorf("the key server saw %d fetches in %s, want at most 1 + %s/%s = %d", fetches, d, d, cooldown, bound)
	}
	if fetches < 1 {
		t.Errorf("no refetch at all: the flood never reached the unknown-kid path")
	}
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+valid[0]), 200, "", "ok")
	// 10 000 invented kids made no metric series of their own: decisions
	// are labelled by the configured issuer and a fixed set of reasons.
	var series []string
	for _, line := range strings.Split(e.do("GET", "/metrics").body, "\n") {
		if strings.HasPrefix(line, "caddy_cognito_decisions_total{") {
			series = append(series, line)
		}
	}
	if len(series) != 2 {
		t.Errorf("decision series after the flood, want allow and deny/unknown_kid only:\n%s", strings.Join(series, "\n"))
	}
}

// TestIntegrationRotationWithOverlap: the pool publishes a second key; a
// token it signed is accepted on its first request, while tokens of the old
// key keep working (overlap). Then the old key is withdrawn: once the next
// periodic refresh has run, its tokens are refused, even one already in the
// verified-token cache.
func TestIntegrationRotationWithOverlap(t *testing.T) {
	e := newEnv(t)
	e.load(fmt.Sprintf(`
	route /metrics {
		metrics
	}
	route {
		cognito_auth {
			issuer %s
			audience %s
			jwks url %s {
				refresh 1s
				cooldown 1h
			}
		}
		respond "ok"
	}`, e.issuer, testClient, e.jwks.JWKSURL()))
	keysMetric := func() float64 {
		v, _ := metricValue(e.do("GET", "/metrics").body, "caddy_cognito_jwks_keys", `source="`+e.jwks.JWKSURL()+`"`)
		return v
	}

	old := e.token() // signed by key-1, now cached after its first use
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+old), 200, "", "ok")

	// Overlap: key-2 is published next to key-1.
	e.jwks.Set(jwttest.JWKS(sharedKey, rotatedKey))
	rotated := rotatedKey.Sign(t, jwttest.Token{Claims: e.claims()})
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+rotated), 200, "", "ok") // first sight
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+old), 200, "", "ok")
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+e.token("sub", "fresh-old-key-token")), 200, "", "ok")

	// key-1 is withdrawn. No unknown kid is sent, and the cooldown is an
	// hour, so only the periodic refresh can notice.
	e.jwks.Set(jwttest.JWKS(rotatedKey))
	deadline := time.Now().Add(15 * time.Second)
	for keysMetric() != 1 {
		// Until the refresh, key-1 is still in service.
		if time.Now().After(deadline) {
			t.Fatal("the withdrawal of key-1 was not picked up by the refresh within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	unknownKey := `Bearer error="invalid_token", error_description="token signing key is not known"`
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+old), 401, unknownKey, "")
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+e.token("sub", "another")), 401, unknownKey, "")
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+rotated), 200, "", "ok")
}
