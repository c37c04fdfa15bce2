package authz

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

const (
	testPool   = "us-west-2_NMATFlcVJ"
	testIssuer = "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_NMATFlcVJ"
	testClient = "6vo4qadm0jp3e8kkk0c2d2l8im"
)

var testNow = time.Unix(1_800_000_000, 0)

// setKeys serves a fixed key set, through the real hygiene rules.
type setKeys struct{ set *jwks.Set }

func (s setKeys) Key(_ context.Context, kid string) (*jwks.Key, error) {
	if s.set == nil {
		return nil, jwks.ErrUnavailable
	}
	if k := s.set.Lookup(kid); k != nil {
		return k, nil
	}
	return nil, jwks.ErrUnknownKID
}

func newSetKeys(t testing.TB, doc []byte) setKeys {
	t.Helper()
	set, _, err := jwks.ParseSet(doc)
	if err != nil {
		t.Fatalf("ParseSet: %v", err)
	}
	return setKeys{set}
}

var (
	keysOnce           sync.Once
	keyA, keyB, keyPS  *jwttest.Key
	keyForeign, keyAlg *jwttest.Key
)

func testKeys(t testing.TB) {
	keysOnce.Do(func() {
		keyA = jwttest.NewKey(t, "kidA")
		keyB = jwttest.NewKey(t, "kidB")
		keyB.Alg = "" // a JWK without alg
		keyPS = jwttest.NewKey(t, "kidPS")
		keyPS.Alg = "PS256"
		keyForeign = jwttest.NewKey(t, "kidA") // same kid as keyA, other key
		keyAlg = jwttest.NewKey(t, "kidAlg")
		keyAlg.Alg = "RS512"
	})
}

// accessClaims are the claims of a Cognito access token.
func accessClaims() map[string]any {
	return map[string]any{
		"sub":            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		"cognito:groups": []string{"admin", "users"},
		"iss":            testIssuer,
		"version":        2,
		"client_id":      testClient,
		"origin_jti":     "1111",
		"token_use":      "access",
		"scope":          "order/get.order openid",
		"auth_time":      testNow.Unix() - 100,
		"exp":            testNow.Unix() + 3600,
		"iat":            testNow.Unix() - 100,
		"jti":            "2222",
		"username":       "alice",
	}
}

func idClaims() map[string]any {
	return map[string]any{
		"sub":              "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		"aud":              testClient,
		"email_verified":   true,
		"token_use":        "id",
		"auth_time":        testNow.Unix() - 100,
		"iss":              testIssuer,
		"cognito:username": "alice",
		"exp":              testNow.Unix() + 3600,
		"iat":              testNow.Unix() - 100,
		"email":            "alice@example.com",
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func newTestAuthorizer(t testing.TB, cfg config.Authorizer, opts ...Option) *Authorizer {
	t.Helper()
	testKeys(t)
	if cfg.UserPool == "" && cfg.Issuer == "" {
		cfg.UserPool = testPool
	}
	if cfg.Audience == nil {
		cfg.Audience = []string{testClient}
	}
	keys := newSetKeys(t, jwttest.JWKS(keyA, keyB, keyPS, keyAlg))
	a, err := New(cfg, keys, append([]Option{WithClock(func() time.Time { return testNow })}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

func hs256(t *testing.T, secret []byte, head, claims map[string]any) string {
	t.Helper()
	k := &jwttest.Key{}
	in := k.SigningInput(jwttest.Token{RawHead: mustJSON(head), Claims: claims})
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func mustJSON(v any) []byte {
	b, err := jsonMarshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestAuthorize(t *testing.T) {
	testKeys(t)
	sign := func(k *jwttest.Key, claims map[string]any, head ...any) string {
		h := map[string]any{}
		for i := 0; i < len(head); i += 2 {
			h[head[i].(string)] = head[i+1]
		}
		if _, ok := h["alg"]; !ok && k.Alg != "" {
			h["alg"] = k.Alg
		}
		return k.Sign(t, jwttest.Token{Header: h, Claims: claims})
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&keyA.Private.PublicKey))})
	valid := sign(keyA, accessClaims())
	parts := strings.Split(valid, ".")

	tests := []struct {
		name   string
		cfg    config.Authorizer
		token  string
		kind   Kind   // 0: allowed
		reason string // expected Reason when denied
		desc   string // expected Description when set
	}{
		{name: "access token", token: valid},
		{name: "id token (aud)", token: sign(keyA, idClaims())},
		{name: "key without alg", token: sign(keyB, accessClaims())},
		{name: "PS256 when allowed", cfg: config.Authorizer{Algorithms: []string{"RS256", "PS256"}}, token: sign(keyPS, accessClaims())},
		{name: "empty", token: "", kind: KindMissing, reason: "missing"},

		// 1. form
		{name: "one segment", token: "not-a-token", kind: KindInvalid, reason: "malformed", desc: "token contains an invalid number of segments"},
		{name: "two segments", token: parts[0] + "." + parts[1], kind: KindInvalid, desc: "token contains an invalid number of segments"},
		{name: "four segments", token: valid + ".x", kind: KindInvalid, desc: "token contains an invalid number of segments"},
		{name: "JWE five segments", token: "a.b.c.d.e", kind: KindInvalid, desc: "token contains an invalid number of segments"},
		{name: "signature stripped", token: parts[0] + "." + parts[1] + ".", kind: KindInvalid, reason: "unsigned"},
		{name: "padding", token: valid + "=", kind: KindInvalid, reason: "malformed"},
		{name: "standard alphabet", token: strings.ReplaceAll(valid, "-", "+"), kind: KindInvalid},
		{name: "whitespace", token: parts[0] + ".\n" + parts[1] + "." + parts[2], kind: KindInvalid, reason: "malformed"},
		{name: "too large", token: valid + strings.Repeat("A", config.DefaultMaxTokenBytes), kind: KindInvalid, reason: "too_large"},
		{name: "10000 dots", token: strings.Repeat(".", 10000), kind: KindInvalid},

		// 2. header
		{name: "alg none unsigned", token: b64s(`{"alg":"none","kid":"kidA"}`) + "." + parts[1] + ".", kind: KindInvalid},
		{name: "alg none with signature", token: b64s(`{"alg":"none","kid":"kidA"}`) + "." + parts[1] + "." + parts[2], kind: KindInvalid, reason: "alg"},
		{name: "HS256 with PEM public key", token: hs256(t, pubPEM, map[string]any{"alg": "HS256", "kid": "kidA"}, accessClaims()), kind: KindInvalid, reason: "alg"},
		{name: "HS256 with JWK bytes", token: hs256(t, mustJSON(keyA.JWK()), map[string]any{"alg": "HS256", "kid": "kidA"}, accessClaims()), kind: KindInvalid, reason: "alg"},
		{name: "PS256 when only RS256", token: sign(keyPS, accessClaims()), kind: KindInvalid, reason: "alg"},
		{name: "ES256 header", token: b64s(`{"alg":"ES256","kid":"kidA"}`) + "." + parts[1] + "." + parts[2], kind: KindInvalid, reason: "alg"},
		{name: "alg not a string", token: b64s(`{"alg":["RS256"],"kid":"kidA"}`) + "." + parts[1] + "." + parts[2], kind: KindInvalid, reason: "malformed"},
		{name: "no kid", token: sign(keyA, accessClaims(), "kid", ""), kind: KindInvalid, reason: "no_kid"},
		{name: "kid missing", token: keyA.Sign(t, jwttest.Token{Header: map[string]any{"kid": nil}, Claims: accessClaims()}), kind: KindInvalid, reason: "no_kid"},
		{name: "unknown kid", token: sign(keyA, accessClaims(), "kid", "nope"), kind: KindInvalid, reason: "unknown_kid"},
		{name: "path kid", token: sign(keyA, accessClaims(), "kid", "../../etc/passwd"), kind: KindInvalid, reason: "unknown_kid"},
		{name: "huge kid", token: sign(keyA, accessClaims(), "kid", strings.Repeat("k", 4000)), kind: KindInvalid},
		{name: "crit", token: sign(keyA, accessClaims(), "crit", []string{"exp"}), kind: KindInvalid, reason: "crit"},
		{name: "embedded jwk of attacker", token: keyForeign.Sign(t, jwttest.Token{Header: map[string]any{"jwk": keyForeign.JWK(), "kid": "kidA"}, Claims: accessClaims()}), kind: KindInvalid, reason: "bad_signature"},
		{name: "jku to attacker", token: keyForeign.Sign(t, jwttest.Token{Header: map[string]any{"jku": "https://evil.example/jwks", "kid": "kidA"}, Claims: accessClaims()}), kind: KindInvalid, reason: "bad_signature"},
		{name: "duplicate alg in header", token: keyA.Sign(t, jwttest.Token{RawHead: []byte(`{"alg":"none","alg":"RS256","kid":"kidA"}`), Claims: accessClaims()}), kind: KindInvalid, reason: "malformed"},
		{name: "header not JSON", token: b64s(`{"alg":"RS256"`) + "." + parts[1] + "." + parts[2], kind: KindInvalid, reason: "malformed"},
		{name: "header not UTF-8", token: b64s("{\"alg\":\"RS256\",\"kid\":\"\xff\"}") + "." + parts[1] + "." + parts[2], kind: KindInvalid, reason: "malformed"},

		// 3. key and signature
		{name: "foreign key, existing kid", token: sign(keyForeign, accessClaims()), kind: KindInvalid, reason: "bad_signature", desc: "token signature is invalid"},
		{name: "payload swapped", token: parts[0] + "." + b64s(string(mustJSON(with(accessClaims(), "sub", "mallory")))) + "." + parts[2], kind: KindInvalid, reason: "bad_signature"},
		{name: "JWK alg differs from header", cfg: config.Authorizer{Algorithms: []string{"RS256", "RS512"}}, token: sign(keyAlg, accessClaims(), "alg", "RS256"), kind: KindInvalid, reason: "alg"},
		{name: "JWK alg RS512 honoured", cfg: config.Authorizer{Algorithms: []string{"RS512"}}, token: sign(keyAlg, accessClaims())},

		// 4. claims
		{name: "payload not JSON", token: keyA.Sign(t, jwttest.Token{Payload: []byte(`{"iss":`)}), kind: KindInvalid, reason: "malformed"},
		{name: "payload not UTF-8", token: keyA.Sign(t, jwttest.Token{Payload: []byte("{\"iss\":\"\xfe\"}")}), kind: KindInvalid, reason: "malformed"},
		{name: "duplicate iss", token: keyA.Sign(t, jwttest.Token{Payload: []byte(`{"iss":"https://evil","iss":"` + testIssuer + `","client_id":"` + testClient + `","exp":1900000000}`)}), kind: KindInvalid, reason: "malformed"},
		{name: "wrong issuer", token: sign(keyA, with(accessClaims(), "iss", "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_Other")), kind: KindInvalid, reason: "issuer", desc: "issuer does not match"},
		{name: "issuer trailing slash", token: sign(keyA, with(accessClaims(), "iss", testIssuer+"/")), kind: KindInvalid, reason: "issuer"},
		{name: "issuer other case", token: sign(keyA, with(accessClaims(), "iss", strings.ToUpper(testIssuer))), kind: KindInvalid, reason: "issuer"},
		{name: "no issuer", token: sign(keyA, with(accessClaims(), "iss", nil)), kind: KindInvalid, reason: "issuer"},
		{name: "issuer not a string", token: sign(keyA, with(accessClaims(), "iss", []string{testIssuer})), kind: KindInvalid, reason: "malformed"},
		{name: "wrong client_id", token: sign(keyA, with(accessClaims(), "client_id", "other")), kind: KindInvalid, reason: "audience", desc: "the token does not have a valid audience"},
		{name: "no client_id nor aud", token: sign(keyA, with(accessClaims(), "client_id", nil)), kind: KindInvalid, reason: "audience"},
		{name: "aud wrong, client_id right", token: sign(keyA, with(accessClaims(), "aud", "other")), kind: KindInvalid, reason: "audience"},
		{name: "aud array containing client", token: sign(keyA, with(idClaims(), "aud", []string{"x", testClient}))},
		{name: "aud empty array", token: sign(keyA, with(idClaims(), "aud", []string{})), kind: KindInvalid, reason: "audience"},
		{name: "aud object", token: sign(keyA, with(idClaims(), "aud", map[string]any{"a": testClient})), kind: KindInvalid, reason: "malformed"},
		{name: "aud number", token: sign(keyA, with(idClaims(), "aud", 5)), kind: KindInvalid, reason: "malformed"},
		{name: "aud array of numbers", token: sign(keyA, with(idClaims(), "aud", []int{5})), kind: KindInvalid, reason: "malformed"},
		{name: "client_id number", token: sign(keyA, with(accessClaims(), "client_id", 5)), kind: KindInvalid, reason: "malformed"},
		{name: "expired", token: sign(keyA, with(accessClaims(), "exp", testNow.Unix())), kind: KindInvalid, reason: "expired", desc: "token is expired"},
		{name: "expires in 1s", token: sign(keyA, with(accessClaims(), "exp", testNow.Unix()+1))},
		{name: "expired within leeway", cfg: config.Authorizer{Leeway: config.Duration(30 * time.Second)}, token: sign(keyA, with(accessClaims(), "exp", testNow.Unix()-29))},
		{name: "expired beyond leeway", cfg: config.Authorizer{Leeway: config.Duration(30 * time.Second)}, token: sign(keyA, with(accessClaims(), "exp", testNow.Unix()-30)), kind: KindInvalid, reason: "expired"},
		{name: "no exp", token: sign(keyA, with(accessClaims(), "exp", nil)), kind: KindInvalid, reason: "no_exp"},
		{name: "exp string", token: sign(keyA, with(accessClaims(), "exp", "1900000000")), kind: KindInvalid, reason: "malformed"},
		{name: "exp float", token: sign(keyA, with(accessClaims(), "exp", 1900000000.5)), kind: KindInvalid, reason: "malformed"},
		{name: "exp exponent", token: keyA.Sign(t, jwttest.Token{Payload: []byte(`{"iss":"` + testIssuer + `","client_id":"` + testClient + `","exp":1.9e9}`)}), kind: KindInvalid, reason: "malformed"},
		{name: "exp huge", token: keyA.Sign(t, jwttest.Token{Payload: []byte(`{"iss":"` + testIssuer + `","client_id":"` + testClient + `","exp":99999999999999999999999}`)}), kind: KindInvalid, reason: "malformed"},
		{name: "exp negative", token: sign(keyA, with(accessClaims(), "exp", -1)), kind: KindInvalid, reason: "malformed"},
		{name: "exp null", token: keyA.Sign(t, jwttest.Token{Payload: []byte(`{"iss":"` + testIssuer + `","client_id":"` + testClient + `","exp":null}`)}), kind: KindInvalid, reason: "malformed"},
		{name: "nbf in future", token: sign(keyA, with(accessClaims(), "nbf", testNow.Unix()+60)), kind: KindInvalid, reason: "not_yet_valid", desc: "token is not valid yet"},
		{name: "nbf now", token: sign(keyA, with(accessClaims(), "nbf", testNow.Unix()))},
		{name: "nbf within leeway", cfg: config.Authorizer{Leeway: config.Duration(time.Minute)}, token: sign(keyA, with(accessClaims(), "nbf", testNow.Unix()+60))},
		{name: "nbf beyond leeway", cfg: config.Authorizer{Leeway: config.Duration(time.Minute)}, token: sign(keyA, with(accessClaims(), "nbf", testNow.Unix()+61)), kind: KindInvalid, reason: "not_yet_valid"},
		{name: "iat in future", token: sign(keyA, with(accessClaims(), "iat", testNow.Unix()+60)), kind: KindInvalid, reason: "issued_in_future", desc: "token used before issued"},
		{name: "iat string", token: sign(keyA, with(accessClaims(), "iat", "x")), kind: KindInvalid, reason: "malformed"},
		{name: "token_use access required, id token", cfg: config.Authorizer{TokenUse: "access"}, token: sign(keyA, idClaims()), kind: KindInvalid, reason: "token_use"},
		{name: "token_use Access", cfg: config.Authorizer{TokenUse: "access"}, token: sign(keyA, with(accessClaims(), "token_use", "Access")), kind: KindInvalid, reason: "token_use"},
		{name: "token_use id required, id token", cfg: config.Authorizer{TokenUse: "id"}, token: sign(keyA, idClaims())},
		{name: "token_use number", token: sign(keyA, with(accessClaims(), "token_use", 1)), kind: KindInvalid, reason: "malformed"},

		// scopes and groups: 403
		{name: "scope held", cfg: config.Authorizer{Scopes: []string{"order/post.order", "order/get.order"}}, token: valid},
		{name: "scope not held", cfg: config.Authorizer{Scopes: []string{"order/post.order"}}, token: valid, kind: KindInsufficientScope, reason: "scope"},
		{name: "scope prefix is not a scope", cfg: config.Authorizer{Scopes: []string{"order/get"}}, token: valid, kind: KindInsufficientScope},
		{name: "no scope claim", cfg: config.Authorizer{Scopes: []string{"openid"}}, token: sign(keyA, with(accessClaims(), "scope", nil)), kind: KindInsufficientScope},
		{name: "scp string", cfg: config.Authorizer{Scopes: []string{"b"}}, token: sign(keyA, with(accessClaims(), "scope", nil, "scp", "a b"))},
		{name: "scp array", cfg: config.Authorizer{Scopes: []string{"b"}}, token: sign(keyA, with(accessClaims(), "scope", nil, "scp", []string{"a", "b"}))},
		{name: "scope as array", cfg: config.Authorizer{Scopes: []string{"openid"}}, token: sign(keyA, with(accessClaims(), "scope", []string{"openid"})), kind: KindInvalid, reason: "malformed"},
		{name: "scope as array, unscoped route", token: sign(keyA, with(accessClaims(), "scope", []string{"openid"})), kind: KindInvalid, reason: "malformed"},
		{name: "group held", cfg: config.Authorizer{Groups: []string{"admin"}}, token: valid},
		{name: "group not held", cfg: config.Authorizer{Groups: []string{"ops"}}, token: valid, kind: KindInsufficientScope, reason: "group"},
		{name: "no groups claim", cfg: config.Authorizer{Groups: []string{"admin"}}, token: sign(keyA, with(accessClaims(), "cognito:groups", nil)), kind: KindInsufficientScope, reason: "group"},
		{name: "groups as string", token: sign(keyA, with(accessClaims(), "cognito:groups", "admin")), kind: KindInvalid, reason: "malformed"},
		{name: "scope checked before group", cfg: config.Authorizer{Scopes: []string{"x"}, Groups: []string{"ops"}}, token: valid, kind: KindInsufficientScope, reason: "scope"},
		{name: "expired beats scope", cfg: config.Authorizer{Scopes: []string{"x"}}, token: sign(keyA, with(accessClaims(), "exp", testNow.Unix()-5)), kind: KindInvalid, reason: "expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAuthorizer(t, tc.cfg)
			c, err := a.Authorize(context.Background(), tc.token)
			if tc.kind == 0 {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				if c.Subject == "" {
					t.Fatalf("no subject in claims")
				}
				return
			}
			if err == nil {
				t.Fatalf("allowed, want %s", tc.kind)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if e.Kind != tc.kind {
				t.Errorf("kind %s, want %s (%v)", e.Kind, tc.kind, err)
			}
			if tc.reason != "" && e.Reason != tc.reason {
				t.Errorf("reason %q, want %q (%v)", e.Reason, tc.reason, err)
			}
			if tc.desc != "" && e.Description != tc.desc {
				t.Errorf("description %q, want %q", e.Description, tc.desc)
			}
			if strings.Contains(e.Description, tc.token) && tc.token != "" {
				t.Errorf("description echoes the token")
			}
		})
	}
}

func b64s(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAuthorizeUnavailable(t *testing.T) {
	testKeys(t)
	a, err := New(config.Authorizer{UserPool: testPool, Audience: []string{testClient}}, setKeys{}, WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authorize(context.Background(), keyA.Sign(t, jwttest.Token{Claims: accessClaims()}))
	if e := AsError(err); e.Kind != KindUnavailable || e.Kind.Status() != 503 {
		t.Fatalf("got %v, want unavailable/503", err)
	}
}

func TestCacheReappliesRules(t *testing.T) {
	testKeys(t)
	clock := testNow
	now := func() time.Time { return clock }
	cache := NewCache(100, now)
	keys := newSetKeys(t, jwttest.JWKS(keyA))
	open, err := New(config.Authorizer{UserPool: testPool, Audience: []string{testClient}}, keys, WithClock(now), WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	scoped, err := New(config.Authorizer{UserPool: testPool, Audience: []string{testClient}, Scopes: []string{"order/post.order"}}, keys, WithClock(now), WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	otherAud, err := New(config.Authorizer{UserPool: testPool, Audience: []string{"someone-else"}}, keys, WithClock(now), WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	tok := keyA.Sign(t, jwttest.Token{Claims: with(accessClaims(), "exp", testNow.Unix()+10)})
	if _, err := open.Authorize(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if cache.Len() != 1 {
		t.Fatalf("cache has %d entries, want 1", cache.Len())
	}
	if _, err := scoped.Authorize(context.Background(), tok); AsError(err).Kind != KindInsufficientScope {
		t.Fatalf("cached token passed another route's scope rule: %v", err)
	}
	if _, err := otherAud.Authorize(context.Background(), tok); AsError(err).Reason != "audience" {
		t.Fatalf("cached token passed another audience: %v", err)
	}
	clock = testNow.Add(10 * time.Second)
	if _, err := open.Authorize(context.Background(), tok); AsError(err).Reason != "expired" {
		t.Fatalf("cached token outlived exp: %v", err)
	}
	// A different token with the same signature must not hit the entry.
	parts := strings.Split(tok, ".")
	swapped := parts[0] + "." + b64s(string(mustJSON(with(accessClaims(), "sub", "mallory")))) + "." + parts[2]
	if _, err := open.Authorize(context.Background(), swapped); AsError(err).Reason != "bad_signature" {
		t.Fatalf("swapped payload: %v", err)
	}
}

func TestCacheDropsRemovedKey(t *testing.T) {
	testKeys(t)
	keys := &swapKeys{}
	keys.set(newSetKeys(t, jwttest.JWKS(keyA)))
	cache := NewCache(100, func() time.Time { return testNow })
	a, err := New(config.Authorizer{UserPool: testPool, Audience: []string{testClient}}, keys, WithClock(func() time.Time { return testNow }), WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	tok := keyA.Sign(t, jwttest.Token{Claims: accessClaims()})
	if _, err := a.Authorize(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	keys.set(newSetKeys(t, jwttest.JWKS(keyB))) // keyA rotated out
	if _, err := a.Authorize(context.Background(), tok); AsError(err).Reason != "unknown_kid" {
		t.Fatalf("token of a removed key: %v", err)
	}
	if cache.Len() != 0 {
		t.Fatalf("entry of a removed key still cached")
	}
}

func TestCacheBounded(t *testing.T) {
	testKeys(t)
	cache := NewCache(64, func() time.Time { return testNow })
	a := newTestAuthorizer(t, config.Authorizer{}, WithCache(cache))
	for i := range 300 {
		tok := keyA.Sign(t, jwttest.Token{Claims: with(accessClaims(), "jti", i)})
		if _, err := a.Authorize(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := cache.Len(); n > cache.Cap() || cache.Cap() > 128 {
		t.Fatalf("cache holds %d (cap %d), want at most 64-ish", n, cache.Cap())
	}
}

type swapKeys struct {
	mu sync.Mutex
	k  setKeys
}

func (s *swapKeys) set(k setKeys) { s.mu.Lock(); s.k = k; s.mu.Unlock() }
func (s *swapKeys) Key(ctx context.Context, kid string) (*jwks.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.k.Key(ctx, kid)
}

func TestClaimsRendering(t *testing.T) {
	a := newTestAuthorizer(t, config.Authorizer{})
	tok := keyA.Sign(t, jwttest.Token{Claims: with(accessClaims(), "custom:n", 42, "flag", false, "nested", map[string]any{"a": 1}, "nul", nil)})
	c, err := a.Authorize(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"sub":            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		"cognito:groups": "admin,users",
		"scope":          "order/get.order openid",
		"custom:n":       "42",
		"flag":           "false",
		"nested":         `{"a":1}`,
		"version":        "2",
		"client_id":      testClient,
	} {
		if got, ok := c.Get(name); !ok || got != want {
			t.Errorf("Get(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := c.Get("absent"); ok {
		t.Errorf("absent claim reported present")
	}
	if c.Username != "alice" {
		t.Errorf("username %q", c.Username)
	}
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		err    *Error
		scopes []string
		want   string
		body   string
	}{
		{errMissing, nil, `Bearer`, `{"message":"Unauthorized"}`},
		{errSegments, nil, `Bearer error="invalid_token", error_description="token contains an invalid number of segments"`, `{"message":"Unauthorized"}`},
		{errInsufficientScop, []string{"a/b", "c"}, `Bearer error="insufficient_scope", error_description="the token does not have a required scope", scope="a/b c"`, `{"message":"Forbidden"}`},
		{errUnavailable, nil, `Bearer`, `{"message":"Service Unavailable"}`},
	}
	for _, tc := range tests {
		if got := tc.err.Challenge(tc.scopes); got != tc.want {
			t.Errorf("Challenge = %s, want %s", got, tc.want)
		}
		if got := tc.err.Body(); got != tc.body {
			t.Errorf("Body = %s, want %s", got, tc.body)
		}
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
