// Command sample-backend is a tiny HTTP backend for demos and end-to-end
// tests of the cognito_auth handler. It answers every request with a JSON
// echo of the method, the path and every identity header it received, so a
// test (or a person with curl) can see exactly what the authorizer forwarded.
//
// GET /healthz answers 200 {"ok":true} without echoing anything.
//
// Usage:
//
//	sample-backend [-listen 127.0.0.1:8081]   (env LISTEN overrides the default)
//	sample-backend -healthcheck               (GET /healthz on -listen; exit 0 if 200)
//
// It uses the standard library only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const defaultListen = "127.0.0.1:8081"

// Echo is the JSON body the backend answers with.
type Echo struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query,omitempty"`
	// Authorization tells whether an Authorization header reached the backend
	// (its value is never echoed).
	Authorization bool `json:"authorization"`
	// Cognito holds every header whose name, with '_' read as '-', starts with
	// "x-cognito-" (case-insensitive), keyed by the name as received (Go's
	// canonical form). Spoofed variants such as X_Cognito_Sub show up here
	// under their own name, so a test can prove they were stripped.
	Cognito map[string][]string `json:"cognito"`
}

// IsCognitoHeader reports whether a header name belongs to the X-Cognito-*
// family, treating '_' like '-' because some proxies normalise one to the other.
func IsCognitoHeader(name string) bool {
	n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	return strings.HasPrefix(n, "x-cognito-")
}

// NewHandler returns the backend's HTTP handler.
func NewHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Drain a bounded amount of any body so keep-alive connections stay usable.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		e := Echo{
			Method:        r.Method,
			Path:          r.URL.Path,
			Query:         r.URL.RawQuery,
			Authorization: r.Header.Get("Authorization") != "",
			Cognito:       map[string][]string{},
		}
		for name, vals := range r.Header {
			if IsCognitoHeader(name) {
				e.Cognito[name] = append([]string(nil), vals...)
			}
		}
		writeJSON(w, http.StatusOK, e)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// listenAddr resolves the listen address: flag, else env LISTEN, else default.
func listenAddr(flagVal string, getenv func(string) string) string {
	if flagVal != "" {
		return flagVal
	}
	if v := getenv("LISTEN"); v != "" {
		return v
	}
	return defaultListen
}

// healthcheck probes GET /healthz on addr; used as a container health check
// in images that have no shell or curl.
func healthcheck(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: status %d", resp.StatusCode)
	}
	return nil
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sample-backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "", "address to listen on (default $LISTEN or "+defaultListen+")")
	check := fs.Bool("healthcheck", false, "probe GET /healthz on the listen address and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr := listenAddr(*listen, os.Getenv)
	if *check {
		return healthcheck(addr)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           NewHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(stderr, "sample-backend: ", 0),
	}
	fmt.Fprintf(stderr, "sample-backend listening on http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sample-backend:", err)
		os.Exit(1)
	}
}
