package policy

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

const (
	testPool   = "us-east-1_AAA"
	testIssuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AAA"
	testClient = "c1"
)

var testNow = time.Unix(1_800_000_000, 0).UTC()

var (
	keyOnce sync.Once
	testKey *jwttest.Key
)

type setKeys struct{ set *jwks.Set }

func (s setKeys) Key(_ context.Context, kid string) (*jwks.Key, error) {
	if k := s.set.Lookup(kid); k != nil {
		return k, nil
	}
	return nil, jwks.ErrUnknownKID
}

// newAuthorizer is a real authorizer with a cache over the test key.
func newAuthorizer(t testing.TB) *authz.Authorizer {
	t.Helper()
	keyOnce.Do(func() { testKey = jwttest.NewKey(t, "kid1") })
	set, _, err := jwks.ParseSet(jwttest.JWKS(testKey))
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return testNow }
	a, err := authz.New(config.Authorizer{UserPool: testPool, Audience: []string{testClient}}, setKeys{set},
		authz.WithClock(clock), authz.WithCache(authz.NewCache(0, clock)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// baseClaims are an access token's claims; a nil value in extra removes
// a claim.
func baseClaims(extra map[string]any) map[string]any {
	c := map[string]any{
		"iss":            testIssuer,
		"sub":            "user-1",
		"client_id":      testClient,
		"token_use":      "access",
		"scope":          "orders/read orders/write",
		"cognito:groups": []string{"admins", "users"},
		"exp":            testNow.Unix() + 3600,
		"iat":            testNow.Unix() - 100,
		"auth_time":      testNow.Unix() - 100,
		"username":       "alice",
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// signedClaims signs claims and returns the token and its verified Claims.
func signedClaims(t testing.TB, claims map[string]any) (string, *authz.Claims) {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return signedPayload(t, payload)
}

// signedPayload signs raw payload JSON (for number spellings json.Marshal
// would not produce).
func signedPayload(t testing.TB, payload []byte) (string, *authz.Claims) {
	t.Helper()
	a := newAuthorizer(t)
	tok := testKey.Sign(t, jwttest.Token{Payload: payload})
	c, err := a.Authorize(context.Background(), tok)
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	return tok, c
}

// testRequest is GET https://api.example.com/t/acme/orders?x=1 from
// 203.0.113.7.
func testRequest(mod func(*Request)) *Request {
	r := &Request{
		Method:      http.MethodGet,
		Host:        "api.example.com",
		Path:        "/t/acme/orders",
		EscapedPath: "/t/acme/orders",
		RawQuery:    "x=1&x=2&y=",
		Header: http.Header{
			"Accept":        {"application/json", "text/plain"},
			"X-Tenant":      {"acme"},
			"Authorization": {"Bearer secret"},
			"Cookie":        {"session=s"},
		},
		RemoteIP: "203.0.113.7",
	}
	if mod != nil {
		mod(r)
	}
	return r
}

func mustCompile(t testing.TB, exprs []string, opts ...Option) *Policy {
	t.Helper()
	p, err := Compile(exprs, append([]Option{WithClock(func() time.Time { return testNow })}, opts...)...)
	if err != nil {
		t.Fatalf("Compile(%q): %v", exprs, err)
	}
	return p
}
