package caddymodule_test

// Integration tests of issue 9's fixes that need their own Caddy
// configuration (the attack corpus runs one): error routes that proxy in
// the other shapes Caddy offers, and the query token source's log filter
// and query rewriting.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Denials are never handed to error routes that can proxy, whatever the
// shape: php_fastcgi, a named route they invoke, a status-matched route
// next to a harmless one. The handler answers itself, says why once in
// the log, and the backend (or FastCGI server) is never contacted.
// Error routes that cannot proxy still restyle denials
// (TestIntegrationHandleErrorsRestyles).
func TestIntegrationHandleErrorsThatProxyNeverSeeDenials(t *testing.T) {
	for _, tc := range []struct{ name, errors, named string }{
		{"reverse_proxy", `handle_errors {
		reverse_proxy BACKEND
	}`, ""},
		{"php_fastcgi", `handle_errors {
		php_fastcgi 127.0.0.1:1
	}`, ""},
		{"forward_auth", `handle_errors {
		forward_auth BACKEND {
			uri /auth
		}
		respond "denied"
	}`, ""},
		{"invoked named route", `handle_errors {
		invoke errpage
	}`, `&(errpage) {
	reverse_proxy BACKEND
}
`},
		{"proxy only for 404, respond for the rest", `handle_errors 404 {
		reverse_proxy BACKEND
	}
	handle_errors {
		respond "denied {http.error.status_code}"
	}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			logPath := filepath.Join(t.TempDir(), "caddy.log")
			cfg := caddyConfig(fmt.Sprintf("grace_period 1ns\n\tlog {\n\t\toutput file %s\n\t\tformat json\n\t\tlevel WARN\n\t}", logPath),
				fmt.Sprintf(`
	route {
		%s
		reverse_proxy %s
	}
	`, e.authBlock(), e.backend.URL)+strings.ReplaceAll(tc.errors, "BACKEND", e.backend.URL))
			if tc.named != "" {
				cfg += strings.ReplaceAll(tc.named, "BACKEND", e.backend.URL)
			}
			e.loadConfig(cfg)
			for range 3 {
				r := e.do(http.MethodPost, "/orders")
				e.expect(r, 401, "Bearer", `{"message":"Unauthorized"}`)
				r = e.do(http.MethodDelete, "/orders/1", "Authorization", "Bearer "+e.token("client_id", "other"))
				e.expect(r, 401, `Bearer error="invalid_token", error_description="the token does not have a valid audience"`, `{"message":"Unauthorized"}`)
			}
			if _, n := e.backend.lastHeaders(); n != 0 {
				t.Fatalf("DENIED REQUESTS REACHED THE BACKEND (%d)", n)
			}
			e.expect(e.do(http.MethodGet, "/orders", "Authorization", "Bearer "+e.token()), 200, "", "")
			warnings := 0
			for _, l := range logLines(t, logPath) {
				if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "handle_errors of this server can proxy the request") {
					warnings++
				}
			}
			if warnings != 1 {
				t.Errorf("%d warnings about the proxying error routes, want exactly 1", warnings)
			}
		})
	}
}

// token_source query: the README's log filter keeps the token out of the
// access log, and strip_authorization removes the parameter from the
// query while keeping every other segment as sent, parseable or not.
func TestIntegrationQueryTokenLogFilterAndRewrite(t *testing.T) {
	e := newEnv(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	e.load(fmt.Sprintf(`
	log {
		output file %s
		format filter {
			wrap json
			request>uri query {
				delete access_token
			}
		}
	}
	route {
		%s
		reverse_proxy %s
	}`, logPath, e.authBlock("token_source query access_token", "strip_authorization"), e.backend.URL))

	tok := e.token()
	for _, q := range []string{
		"access_token=" + tok + "&page=2",
		"b=2;c=3&access_token=" + tok + "&d=%zz&e=%41+x",
	} {
		e.expect(e.do(http.MethodGet, "/orders?"+q), 200, "", "")
	}
	if got, _, _ := e.backend.lastRequest(); got != "b=2;c=3&d=%zz&e=%41+x" {
		t.Errorf("backend query %q, want the other segments as sent: b=2;c=3&d=%%zz&e=%%41+x", got)
	}
	e.expect(e.do(http.MethodGet, "/orders?access_token=x.y.z"), 401, "", "")

	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := logLines(t, logPath)
	uris := 0
	for _, l := range lines {
		if req, ok := l["request"].(map[string]any); ok {
			if _, ok := req["uri"].(string); ok {
				uris++
			}
		}
	}
	if uris < 3 {
		t.Fatalf("%d access log entries with a uri, want 3 (log %q)", uris, raw)
	}
	p := parts(tok)
	for _, secret := range []string{p[1], p[2], "x.y.z"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the access log holds the token: %.40q…", secret)
		}
	}
}

// Over HTTP/2 (h2c here), a request body may end in trailers whatever its
// Content-Length: identity names among them never reach the backend.
func TestIntegrationH2CTrailers(t *testing.T) {
	e := newEnv(t)
	e.loadWithGlobals("grace_period 1ns\n\tservers {\n\t\tprotocols h1 h2c\n\t}", fmt.Sprintf(`
	route {
		%s
		reverse_proxy %s
	}`, e.authBlock("header email X-User-Email"), e.backend.URL))

	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, length := range []int64{-1, 11} {
		body := strings.NewReader("hello world")
		req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/x", sitePort), io.NopCloser(body))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length
		req.Header.Set("Authorization", "Bearer "+e.token())
		req.Trailer = http.Header{"X-Cognito-Sub": {"admin-1"}, "X-User-Email": {"ceo@example.com"}, "X-Other": {"kept"}}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("Content-Length %d: %s over %s", length, resp.Status, resp.Proto)
		}
		h, _ := e.backend.lastHeaders()
		_, got, trailer := e.backend.lastRequest()
		if got != "hello world" {
			t.Errorf("Content-Length %d: body %q", length, got)
		}
		if trailer.Get("X-Other") != "kept" {
			t.Errorf("Content-Length %d: the innocent trailer did not arrive (%v): the test proves nothing", length, trailer)
		}
		if v := trailer.Values("X-Cognito-Sub"); len(v) != 0 {
			t.Errorf("Content-Length %d: identity trailer X-Cognito-Sub %q reached the backend", length, v)
		}
		if v := trailer.Values("X-User-Email"); len(v) != 0 {
			t.Errorf("Content-Length %d: identity trailer X-User-Email %q reached the backend", length, v)
		}
		if h.Get("X-Cognito-Sub") != "11111111-2222-3333-4444-555555555555" || h.Get("X-User-Email") != "alice@example.com" {
			t.Errorf("Content-Length %d: verified headers %v", length, h)
		}
	}
}
