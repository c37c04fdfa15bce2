// Command benchenv is the load benchmark's helper (see bench/run.sh and
// README.md, Performance). It has three jobs:
//
//	benchenv tokens -key K -n N -out FILE [-iss ISS -aud AUD -kid KID -ttl D]
//	    makes (or reuses) an RSA-2048 key and writes N distinct, validly
//	    signed Cognito-like access tokens, one per line;
//	benchenv serve -key K -jwks 127.0.0.1:P1 -backend 127.0.0.1:P2
//	    serves the key's JWKS on P1 and a tiny backend (200 "ok") on P2
//	    until interrupted;
//	benchenv rate -addr 127.0.0.1:P -tokens FILE -rate R -d D
//	    sends R requests per second for D at a constant rate and prints the
//	    latency percentiles (see rate.go).
//
// It listens on loopback addresses only.
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "tokens":
		err = tokens(os.Args[2:])
	case "serve":
		err = serve(os.Args[2:])
	case "rate":
		err = rate(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchenv:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchenv tokens -key K -n N -out FILE | benchenv serve -key K -jwks ADDR -backend ADDR | benchenv rate -addr ADDR -tokens FILE -rate R -d D")
	os.Exit(2)
}

// loadKey reads the PEM key at path, or makes one and writes it there.
func loadKey(path string) (*rsa.PrivateKey, error) {
	if b, err := os.ReadFile(path); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: not PEM", path)
		}
		return x509.ParsePKCS1PrivateKey(blk.Bytes)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return k, os.WriteFile(path, pemBytes, 0o600)
}

var b64 = base64.RawURLEncoding

func tokens(args []string) error {
	fs := flag.NewFlagSet("tokens", flag.ExitOnError)
	keyPath := fs.String("key", "", "RSA key file (made if missing)")
	n := fs.Int("n", 1000, "number of distinct tokens")
	out := fs.String("out", "", "output file, one token per line")
	iss := fs.String("iss", "http://127.0.0.1:9301/us-west-2_BENCHPOOL", "issuer")
	aud := fs.String("aud", "6vo4qadm0jp3e8kkk0c2d2l8im", "client id")
	kid := fs.String("kid", "bench-key-1", "key id")
	ttl := fs.Duration("ttl", 24*time.Hour, "token lifetime")
	seed := fs.Int("seed", 0, "first user number (keeps token sets distinct)")
	_ = fs.Parse(args)
	if *keyPath == "" || *out == "" || *n <= 0 {
		return errors.New("tokens: -key, -out and -n > 0 are required")
	}
	key, err := loadKey(*keyPath)
	if err != nil {
		return err
	}
	head := b64.EncodeToString(must(json.Marshal(map[string]string{"alg": "RS256", "kid": *kid, "typ": "JWT"})))
	now := time.Now().Unix()
	toks := make([]string, *n)
	groups := [][]string{{"admin"}, {"users"}, {"admin", "users"}, {"ops", "users", "billing"}}
	var wg sync.WaitGroup
	errs := make(chan error, runtime.GOMAXPROCS(0))
	for w := range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < *n; i += runtime.GOMAXPROCS(0) {
				u := *seed + i
				claims := map[string]any{
					"sub":            fmt.Sprintf("%08x-bbbb-4ccc-8ddd-%012x", u, u),
					"cognito:groups": groups[u%len(groups)],
					"iss":            *iss,
					"version":        2,
					"client_id":      *aud,
					"origin_jti":     fmt.Sprintf("%08x-1111-4222-8333-%012x", u, u),
					"event_id":       fmt.Sprintf("%08x-4444-4555-8666-%012x", u, u),
					"token_use":      "access",
					"scope":          "order/get.order order/post.order",
					"auth_time":      now - 60,
					"exp":            now + int64(ttl.Seconds()),
					"iat":            now - 60,
					"jti":            fmt.Sprintf("%08x-7777-4888-8999-%012x", u, u),
					"username":       fmt.Sprintf("user-%08d", u),
				}
				in := head + "." + b64.EncodeToString(must(json.Marshal(claims)))
				d := sha256.Sum256([]byte(in))
				sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
				if err != nil {
					errs <- err
					return
				}
				toks[i] = in + "." + b64.EncodeToString(sig)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(toks, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func loopbackListen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%s: only loopback addresses are allowed", addr)
	}
	return net.Listen("tcp", addr)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	keyPath := fs.String("key", "", "RSA key file")
	kid := fs.String("kid", "bench-key-1", "key id")
	jwksAddr := fs.String("jwks", "127.0.0.1:9301", "JWKS listen address (loopback)")
	backendAddr := fs.String("backend", "127.0.0.1:9302", "backend listen address (loopback)")
	_ = fs.Parse(args)
	key, err := loadKey(*keyPath)
	if err != nil {
		return err
	}
	doc := must(json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": *kid,
		"n": b64.EncodeToString(key.N.Bytes()),
		"e": b64.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}}))
	jl, err := loopbackListen(*jwksAddr)
	if err != nil {
		return err
	}
	bl, err := loopbackListen(*backendAddr)
	if err != nil {
		return err
	}
	jwksSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}), ReadHeaderTimeout: 5 * time.Second}
	ok := []byte("ok\n")
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		_, _ = w.Write(ok)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = jwksSrv.Serve(jl) }()
	go func() { _ = backend.Serve(bl) }()
	fmt.Printf("benchenv: JWKS on http://%s, backend on http://%s\n", jl.Addr(), bl.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	_ = jwksSrv.Close()
	_ = backend.Close()
	return nil
}
