package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// Two pools on one route, each with its own local JWKS server (the same
// kid in both, with different keys), both issuer formats of each; an
// issuer no trust accepts is refused without a fetch; a reload keeps both
// keyrings; a third trust whose keys are down answers 503 for its own
// tokens only.
func TestIntegrationSeveralTrusts(t *testing.T) {
	e := newEnv(t)
	keyA := jwttest.NewKey(t, "shared-kid")
	keyB := jwttest.NewKey(t, "shared-kid") // same kid, other key
	srvA := jwttest.NewServer(t, jwttest.JWKS(keyA))
	srvB := jwttest.NewServer(t, jwttest.JWKS(keyB))
	srvC := jwttest.NewServer(t, jwttest.JWKS(keyA))
	srvC.Fail(http.StatusInternalServerError, nil)
	// Pool ids unique to this test, so no keyring of another test is shared.
	const (
		poolA = "us-east-1_TrustsA"
		poolB = "eu-west-1_TrustsB"
		origA = "https://cognito-idp.us-east-1.amazonaws.com/" + poolA
		updA  = "https://issuer-cognito-idp.us-east-1.amazonaws.com/" + poolA
		origB = "https://cognito-idp.eu-west-1.amazonaws.com/" + poolB
		updB  = "https://issuer-cognito-idp.eu-west-1.amazonaws.com/" + poolB
	)
	issC := srvC.URL + "/partner"
	site := func(extra string) string {
		return fmt.Sprintf(`
	route {
		cognito_auth {
			pool %s {
				audience client-a
				jwks url %s
			}
			pool %s {
				audience client-b
				token_use access
				jwks url %s
			}
			%s
			startup_wait 2s
		}
		handle /iss {
			respond "{http.auth.user.issuer}"
		}
		reverse_proxy %s
	}`, poolA, srvA.JWKSURL(), poolB, srvB.JWKSURL(), extra, e.backend.URL)
	}
	e.load(site(""))
	tok := func(k *jwttest.Key, iss, client string) string {
		c := e.claims("iss", iss, "client_id", client)
		return k.Sign(t, jwttest.Token{Claims: c})
	}
	hits := func() (int64, int64) { return srvA.Hits(), srvB.Hits() }
	a0, b0 := hits()
	if a0 == 0 || b0 == 0 {
		t.Fatalf("primary key sets not loaded at start-up: A %d, B %d fetches", a0, b0)
	}

	for _, c := range []struct {
		k          *jwttest.Key
		iss, aud   string
		status     int
		errPattern string
	}{
		{keyA, origA, "client-a", 200, ""},
		{keyA, updA, "client-a", 200, ""},
		{keyB, origB, "client-b", 200, ""},
		{keyB, updB, "client-b", 200, ""},
		{keyB, origA, "client-a", 401, "token signature is invalid"}, // pool B's key for a pool A token
		{keyA, origB, "client-b", 401, "token signature is invalid"},
		{keyA, origA, "client-b", 401, "the token does not have a valid audience"}, // B's audience is not A's
		{keyA, "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other", "client-a", 401, "issuer does not match"},
	} {
		r := e.do("GET", "/orders", "Authorization", "Bearer "+tok(c.k, c.iss, c.aud))
		if r.status != c.status || !strings.Contains(r.header.Get("WWW-Authenticate"), c.errPattern) {
			t.Errorf("%s (%s): %d %q, want %d %q", c.iss, c.aud, r.status, r.header.Get("WWW-Authenticate"), c.status, c.errPattern)
			continue
		}
		if c.status == 200 {
			h, _ := e.backend.lastHeaders()
			if got := h.Get("X-Cognito-Issuer"); got != c.iss {
				t.Errorf("X-Cognito-Issuer %q, want %q", got, c.iss)
			}
		}
	}
	if r := e.do("GET", "/iss", "Authorization", "Bearer "+tok(keyB, updB, "client-b")); r.body != updB {
		t.Errorf("{http.auth.user.issuer} = %q, want %q", r.body, updB)
	}
	// A spoofed X-Cognito-Issuer never reaches the backend.
	e.do("GET", "/orders", "Authorization", "Bearer "+tok(keyA, origA, "client-a"), "X-Cognito-Issuer", "https://evil", "x_cognito_issuer", "https://evil")
	if h, _ := e.backend.lastHeaders(); len(h.Values("X-Cognito-Issuer")) != 1 || h.Get("X-Cognito-Issuer") != origA || h.Get("X_Cognito_Issuer") != "" {
		t.Errorf("spoofed issuer header: %v", h)
	}
	if a, b := hits(); a != a0 || b != b0 {
		t.Fatalf("requests caused fetches: A %d→%d, B %d→%d (unknown issuers and known kids must not fetch)", a0, a, b0, b)
	}

	// Reload with a third trust whose keys are down: pools A and B keep
	// their keyrings (no fetch) and serve; the third answers 503.
	e.reload("grace_period 1ns", site(fmt.Sprintf("issuer %s {\n\t\t\t\taudience client-c\n\t\t\t\tjwks url %s\n\t\t\t}", issC, srvC.JWKSURL())))
	if a, b := hits(); a != a0 || b != b0 {
		t.Fatalf("reload refetched: A %d→%d, B %d→%d", a0, a, b0, b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for srvC.Hits() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling: the new keyring's first fetch
	}
	r := e.do("GET", "/orders", "Authorization", "Bearer "+tok(keyA, issC, "client-c"))
	if r.status != 503 {
		t.Fatalf("token of the trust whose keys are down: %d, want 503", r.status)
	}
	for _, tk := range []string{tok(keyA, updA, "client-a"), tok(keyB, origB, "client-b")} {
		if r := e.do("GET", "/orders", "Authorization", "Bearer "+tk); r.status != 200 {
			t.Fatalf("other trusts during the third's outage: %d %q", r.status, r.header.Get("WWW-Authenticate"))
		}
	}
	// Keys come back: the third trust serves too.
	srvC.Set(jwttest.JWKS(keyA))
	deadline = time.Now().Add(30 * time.Second)
	for {
		r := e.do("GET", "/orders", "Authorization", "Bearer "+tok(keyA, issC, "client-c"))
		if r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("third trust after its keys came back: %d", r.status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two handlers share one key source (so one keyring and one verified-token
// cache) but trust different pools: a token verified and cached by one is
// refused by the other, on every request.
func TestIntegrationCacheSharedAcrossHandlersRechecksTrusts(t *testing.T) {
	e := newEnv(t)
	issA, issB := e.issuer+"/pool-a", e.issuer+"/pool-b"
	trust := func(iss string) string {
		return fmt.Sprintf("cognito_auth {\n\t\t\tissuer %s {\n\t\t\t\taudience %s\n\t\t\t\tjwks url %s\n\t\t\t}\n\t\t}", iss, testClient, e.jwks.JWKSURL())
	}
	e.load(fmt.Sprintf(`
	route /a/* {
		%s
		reverse_proxy %s
	}
	route /b/* {
		%s
		reverse_proxy %s
	}`, trust(issA), e.backend.URL, trust(issB), e.backend.URL))
	tokA, tokB := e.token("iss", issA), e.token("iss", issB)
	for range 2 { // verified, then from the cache
		e.expect(e.do("GET", "/a/x", "Authorization", "Bearer "+tokA), 200, "", "")
		e.expect(e.do("GET", "/b/x", "Authorization", "Bearer "+tokB), 200, "", "")
		e.expect(e.do("GET", "/b/x", "Authorization", "Bearer "+tokA), 401, `Bearer error="invalid_token", error_description="issuer does not match"`, "")
		e.expect(e.do("GET", "/a/x", "Authorization", "Bearer "+tokB), 401, `Bearer error="invalid_token", error_description="issuer does not match"`, "")
	}
	if n := e.jwks.Hits(); n != 1 {
		t.Errorf("the shared key source was fetched %d times, want 1 (one keyring for both handlers)", n)
	}
}
