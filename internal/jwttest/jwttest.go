// Package jwttest mints test tokens and serves test key sets: RSA keys
// generated at test time, JWKS documents, signed (and deliberately
// mis-signed) compact JWTs, and a JWKS HTTP server whose keys, failures and
// request count the test controls.
package jwttest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// Key is a test RSA key pair with a kid.
type Key struct {
	ID      string
	Private *rsa.PrivateKey
	// Alg, if set, is published as the JWK "alg".
	Alg string
}

// NewKey generates a 2048-bit RSA key.
func NewKey(t testing.TB, kid string) *Key {
	t.Helper()
	return NewKeyBits(t, kid, 2048)
}

// NewKeyBits generates an RSA key of the given size.
func NewKeyBits(t testing.TB, kid string, bits int) *Key {
	t.Helper()
	pk, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatalf("generating RSA key: %v", err)
	}
	return &Key{ID: kid, Private: pk, Alg: "RS256"}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWK returns the public JWK as a map (add or change members freely).
func (k *Key) JWK() map[string]any {
	m := map[string]any{
		"kty": "RSA",
		"kid": k.ID,
		"use": "sig",
		"n":   b64(k.Private.N.Bytes()),
		"e":   b64(big.NewInt(int64(k.Private.E)).Bytes()),
	}
	if k.Alg != "" {
		m["alg"] = k.Alg
	}
	return m
}

// JWKS returns a JWKS document of the keys' public halves.
func JWKS(keys ...*Key) []byte {
	var list []map[string]any
	for _, k := range keys {
		list = append(list, k.JWK())
	}
	return JWKSOf(list...)
}

// JWKSOf returns a JWKS document of raw JWK maps.
func JWKSOf(jwks ...map[string]any) []byte {
	if jwks == nil {
		jwks = []map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"keys": jwks})
	return b
}

// Token builds a compact JWS. Header defaults to {"alg":"RS256","kid":k.ID}
// and is merged with extra members (a nil value deletes one).
type Token struct {
	Header  map[string]any
	Claims  map[string]any
	Payload []byte // raw payload JSON; overrides Claims when set
	RawHead []byte // raw header JSON; overrides Header when set
}

// Sign signs the token with k using alg (RS*, PS*).
func (k *Key) Sign(t testing.TB, tok Token) string {
	t.Helper()
	alg := "RS256"
	if a, ok := tok.Header["alg"].(string); ok {
		alg = a
	}
	input := k.SigningInput(tok)
	return input + "." + b64(k.SignBytes(t, alg, []byte(input)))
}

// SigningInput returns base64url(header) "." base64url(payload).
func (k *Key) SigningInput(tok Token) string {
	head := tok.RawHead
	if head == nil {
		h := map[string]any{"alg": "RS256", "kid": k.ID, "typ": "JWT"}
		for name, v := range tok.Header {
			if v == nil {
				delete(h, name)
			} else {
				h[name] = v
			}
		}
		head, _ = json.Marshal(h)
	}
	payload := tok.Payload
	if payload == nil {
		payload, _ = json.Marshal(tok.Claims)
	}
	return b64(head) + "." + b64(payload)
}

// SignBytes signs data with the given RSA algorithm.
func (k *Key) SignBytes(t testing.TB, alg string, data []byte) []byte {
	t.Helper()
	var h hash.Hash
	var ch crypto.Hash
	switch alg[2:] {
	case "256":
		h, ch = sha256.New(), crypto.SHA256
	case "384":
		h, ch = sha512.New384(), crypto.SHA384
	case "512":
		h, ch = sha512.New(), crypto.SHA512
	default:
		t.Fatalf("unsupported alg %s", alg)
	}
	h.Write(data)
	digest := h.Sum(nil)
	var sig []byte
	var err error
	if alg[:2] == "PS" {
		sig, err = rsa.SignPSS(rand.Reader, k.Private, ch, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.Private, ch, digest)
	}
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return sig
}

// Server is a JWKS HTTP server for tests.
type Server struct {
	*httptest.Server
	mu     sync.Mutex
	doc    []byte
	status int
	header http.Header
	hits   atomic.Int64
}

// NewServer serves doc at every path until changed.
func NewServer(t testing.TB, doc []byte) *Server {
	s := &Server{doc: doc, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	doc, status, hdr := s.doc, s.status, s.header
	s.mu.Unlock()
	for k, v := range hdr {
		w.Header()[k] = v
	}
	if status != http.StatusOK {
		w.WriteHeader(status)
		fmt.Fprint(w, "error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}

// Set replaces the document and answers 200 again.
func (s *Server) Set(doc []byte) {
	s.mu.Lock()
	s.doc, s.status, s.header = doc, http.StatusOK, nil
	s.mu.Unlock()
}

// Fail makes the server answer status (with optional headers).
func (s *Server) Fail(status int, hdr http.Header) {
	s.mu.Lock()
	s.status, s.header = status, hdr
	s.mu.Unlock()
}

// Hits returns the number of requests served.
func (s *Server) Hits() int64 { return s.hits.Load() }

// JWKSURL is the URL of the key set.
func (s *Server) JWKSURL() string { return s.URL + "/.well-known/jwks.json" }
