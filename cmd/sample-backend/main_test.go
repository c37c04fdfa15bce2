package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEchoesCognitoHeaders(t *testing.T) {
	srv := httptest.NewServer(NewHandler())
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/order?x=1", strings.NewReader(`{"a":1}`))
	req.Header.Set("Authorization", "Bearer secret-token")
	req.Header.Set("X-Cognito-Sub", "abc")
	req.Header.Add("X-Cognito-Groups", "admins,ops")
	req.Header["X_Cognito_Sub"] = []string{"spoofed"} // not canonicalised on purpose
	req.Header.Set("X-Other", "ignored")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw.String(), "secret-token") {
		t.Errorf("Authorization value leaked into the echo: %s", raw.String())
	}
	var e Echo
	if err := json.Unmarshal(raw.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if e.Method != "POST" || e.Path != "/api/v1/order" || e.Query != "x=1" || !e.Authorization {
		t.Errorf("echo = %+v", e)
	}
	want := map[string]string{"X-Cognito-Sub": "abc", "X-Cognito-Groups": "admins,ops", "X_Cognito_Sub": "spoofed"}
	for k, v := range want {
		// The server may canonicalise names (X_Cognito_Sub arrives as X_cognito_sub).
		var got []string
		for name, vals := range e.Cognito {
			if strings.EqualFold(name, k) {
				got = vals
			}
		}
		if len(got) != 1 || got[0] != v {
			t.Errorf("Cognito[%q] = %v, want [%q] (all: %v)", k, got, v, e.Cognito)
		}
	}
	if len(e.Cognito) != len(want) {
		t.Errorf("Cognito = %v, want exactly %v", e.Cognito, want)
	}
}

func TestNoAuthorization(t *testing.T) {
	rec := httptest.NewRecorder()
	NewHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	var e Echo
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if e.Authorization || len(e.Cognito) != 0 || e.Cognito == nil {
		t.Errorf("echo = %+v (Cognito must be an empty object, not null)", e)
	}
}

func TestHealthz(t *testing.T) {
	rec := httptest.NewRecorder()
	NewHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{
  "ok": true
}` {
		t.Errorf("healthz: %d %q", rec.Code, rec.Body.String())
	}
}

func TestIsCognitoHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Cognito-Sub": true, "x-cognito-anything": true, "X_Cognito_Sub": true, "X-COGNITO-GROUPS": true,
		"X-Cognito": false, "X-Cognitos-Sub": false, "Authorization": false, "Cognito-Sub": false,
	} {
		if got := IsCognitoHeader(name); got != want {
			t.Errorf("IsCognitoHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestListenAddr(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got := listenAddr("", env(nil)); got != defaultListen {
		t.Errorf("default: %q", got)
	}
	if got := listenAddr("", env(map[string]string{"LISTEN": ":9000"})); got != ":9000" {
		t.Errorf("env: %q", got)
	}
	if got := listenAddr("127.0.0.1:1", env(map[string]string{"LISTEN": ":9000"})); got != "127.0.0.1:1" {
		t.Errorf("flag wins: %q", got)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunServesAndShutsDown runs the real main loop on a random port, probes
// it with the -healthcheck mode and stops it through its context.
func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0"}, &stderr) }()

	re := regexp.MustCompile(`listening on http://(\S+)`)
	var addr string
	deadline := time.Now().Add(5 * time.Second)
	for addr == "" {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listen line; stderr: %s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := run(context.Background(), []string{"-healthcheck", "-listen", addr}, &stderr); err != nil {
		t.Errorf("healthcheck against live server: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	// Now nothing listens there: the health check must fail.
	if err := run(context.Background(), []string{"-healthcheck", "-listen", addr}, &stderr); err == nil {
		t.Error("healthcheck succeeded against a stopped server")
	}
}

func TestHealthcheckWildcardHost(t *testing.T) {
	srv := httptest.NewServer(NewHandler())
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	if err := healthcheck(":" + port); err != nil {
		t.Errorf("healthcheck(:%s): %v", port, err)
	}
	if err := healthcheck("0.0.0.0:" + port); err != nil {
		t.Errorf("healthcheck(0.0.0.0:%s): %v", port, err)
	}
}

func TestBadFlag(t *testing.T) {
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"-nope"}, &stderr); err == nil {
		t.Error("want error for unknown flag")
	}
}
