package authz

// Fuzz targets of the engine, and the bounded-work proof for hostile token
// shapes. Run a target for longer with, e.g.
//
//	go test ./authz -run '^$' -fuzz '^FuzzAuthorize$' -fuzztime 10m
//
// (scripts/fuzz.sh runs every target of the module in turn).

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/config"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// How FuzzAuthorize builds the token from its inputs (mode % 8): as is, or
// b64(header).b64(payload) signed by one of these.
const (
	fuzzRaw         = iota // the first input is the Authorization header value, as is
	fuzzSignKnown          // RS256 by the published key kidA (JWK alg RS256)
	fuzzSignForeign        // RS256 by an attacker key that shares kid "kidA"
	fuzzSignPS             // PS256 by kidA's private key (RS/PS confusion)
	fuzzSignB              // RS256 by kidB (JWK without alg)
	fuzzSignBPS            // PS256 by kidB (allowed: the open rule allows PS256, the JWK pins no alg)
	fuzzSignKeyPS          // PS256 by kidPS (JWK alg PS256)
	fuzzSignKeyAlg         // RS512 by kidAlg (JWK alg RS512, never allowed here)
)

// fuzzSigner returns the key and alg of a mode, or nil for fuzzRaw.
func fuzzSigner(mode uint8) (*jwttest.Key, string) {
	switch mode % 8 {
	case fuzzSignKnown:
		return keyA, "RS256"
	case fuzzSignForeign:
		return keyForeign, "RS256"
	case fuzzSignPS:
		return keyA, "PS256"
	case fuzzSignB:
		return keyB, "RS256"
	case fuzzSignBPS:
		return keyB, "PS256"
	case fuzzSignKeyPS:
		return keyPS, "PS256"
	case fuzzSignKeyAlg:
		return keyAlg, "RS512"
	}
	return nil, ""
}

// fuzzHead and fuzzClaims are the header and payload of the seeds. Every
// time value is relative to testNow, so the seeds stay valid forever.
func fuzzHead(kv ...string) []byte {
	h := map[string]any{"alg": "RS256", "kid": "kidA"}
	for i := 0; i < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return mustJSON(h)
}

// authorizeSeeds are the seeds of FuzzAuthorize: valid tokens and the
// attack-corpus shapes (caddymodule/attack_test.go), all signed at run time,
// plus raw shapes no signer produces.
func authorizeSeeds() []struct {
	name          string
	raw           string
	head, payload []byte
	mode          uint8
} {
	acc := mustJSON(accessClaims())
	id := mustJSON(idClaims())
	strict := mustJSON(with(accessClaims(), "scope", "order/post.order", "cognito:groups", []string{"admin"}))
	type seed = struct {
		name          string
		raw           string
		head, payload []byte
		mode          uint8
	}
	raw := func(name, v string) seed { return seed{name: name, raw: v} }
	signed := func(name string, mode uint8, head, payload []byte) seed {
		return seed{name: name, head: head, payload: payload, mode: mode}
	}
	return []seed{
		signed("valid-access", fuzzSignKnown, fuzzHead(), acc),
		signed("valid-id", fuzzSignKnown, fuzzHead(), id),
		signed("valid-strict", fuzzSignKnown, fuzzHead(), strict),
		signed("valid-no-typ-spaces", fuzzSignKnown, []byte(` { "kid" : "kidA" , "alg" : "RS256" } `), acc),
		signed("kid-escaped", fuzzSignKnown, []byte(`{"alg":"RS256","kid":"kid\u0041"}`), acc),
		signed("valid-kidB", fuzzSignB, fuzzHead("kid", "kidB"), acc),
		signed("valid-kidB-PS256", fuzzSignBPS, fuzzHead("kid", "kidB", "alg", "PS256"), acc),
		signed("valid-kidPS", fuzzSignKeyPS, fuzzHead("kid", "kidPS", "alg", "PS256"), acc),
		signed("kidAlg-RS512-not-allowed", fuzzSignKeyAlg, fuzzHead("kid", "kidAlg", "alg", "RS512"), acc),
		signed("kidPS-as-RS256", fuzzSignKeyPS, fuzzHead("kid", "kidPS"), acc),
		signed("foreign-key", fuzzSignForeign, fuzzHead(), acc),
		signed("ps-sig-rs-header", fuzzSignPS, fuzzHead(), acc),
		signed("ps-sig-ps-header", fuzzSignPS, fuzzHead("alg", "PS256"), acc),
		signed("alg-none", fuzzSignKnown, fuzzHead("alg", "none"), acc),
		signed("alg-HS256", fuzzSignKnown, fuzzHead("alg", "HS256"), acc),
		signed("alg-rs256-lower", fuzzSignKnown, fuzzHead("alg", "rs256"), acc),
		signed("kid-missing", fuzzSignKnown, []byte(`{"alg":"RS256"}`), acc),
		signed("kid-empty", fuzzSignKnown, fuzzHead("kid", ""), acc),
		signed("kid-path", fuzzSignKnown, fuzzHead("kid", "../../etc/passwd"), acc),
		signed("kid-sql", fuzzSignKnown, fuzzHead("kid", "' OR '1'='1"), acc),
		signed("kid-nul", fuzzSignKnown, fuzzHead("kid", "kidA\x00"), acc),
		signed("kid-number", fuzzSignKnown, []byte(`{"alg":"RS256","kid":1}`), acc),
		signed("jku", fuzzSignForeign, fuzzHead("jku", "http://127.0.0.1:1/jwks.json"), acc),
		signed("crit", fuzzSignKnown, []byte(`{"alg":"RS256","kid":"kidA","crit":["exp"],"exp":1}`), acc),
		signed("crit-empty", fuzzSignKnown, []byte(`{"alg":"RS256","kid":"kidA","crit":[]}`), acc),
		signed("dup-alg", fuzzSignKnown, []byte(`{"alg":"none","alg":"RS256","kid":"kidA"}`), acc),
		signed("dup-kid-escaped", fuzzSignKnown, []byte(`{"alg":"RS256","kid":"x","\u006bid":"kidA"}`), acc),
		signed("head-not-utf8", fuzzSignKnown, []byte("{\"alg\":\"RS256\",\"kid\":\"kidA\",\"x\":\"\xff\"}"), acc),
		signed("head-not-object", fuzzSignKnown, []byte(`["RS256"]`), acc),
		signed("head-trailing", fuzzSignKnown, []byte(`{"alg":"RS256","kid":"kidA"}x`), acc),
		signed("payload-not-json", fuzzSignKnown, fuzzHead(), []byte(`{"iss":`)),
		// Several trusts: the other forms and pools of FuzzAuthorize's multi rule.
		signed("trust-updated-issuer", fuzzSignKnown, fuzzHead(), mustJSON(with(accessClaims(), "iss", testIssuerUpdated))),
		signed("trust-replica-issuer", fuzzSignKnown, fuzzHead(), mustJSON(with(accessClaims(), "iss", "https://cognito-idp.us-east-1.amazonaws.com/us-west-2_NMATFlcVJ"))),
		signed("trust-pool-b-id", fuzzSignKnown, fuzzHead(), mustJSON(with(idClaims(), "iss", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_BBB", "aud", "client-b"))),
		signed("trust-pool-b-updated", fuzzSignKnown, fuzzHead(), mustJSON(with(idClaims(), "iss", "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_BBB", "aud", "client-b"))),
		signed("trust-local", fuzzSignB, fuzzHead("kid", "kidB"), mustJSON(with(accessClaims(), "iss", "http://127.0.0.1:9229/local_pool", "client_id", "client-b"))),
		signed("trust-foreign-key-pool-b", fuzzSignForeign, fuzzHead(), mustJSON(with(idClaims(), "iss", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_BBB", "aud", "client-b"))),
		signed("trust-iss-null", fuzzSignForeign, fuzzHead(), mustJSON(with(accessClaims(), "iss", json.RawMessage("null")))),
		signed("payload-not-utf8", fuzzSignKnown, fuzzHead(), []byte("{\"iss\":\"\xfe\"}")),
		signed("dup-iss-friendly-last", fuzzSignKnown, fuzzHead(), []byte(`{"iss":"https://evil","iss":"`+testIssuer+`","client_id":"`+testClient+`","exp":1800003600}`)),
		signed("dup-iss-friendly-first", fuzzSignKnown, fuzzHead(), []byte(`{"iss":"`+testIssuer+`","client_id":"`+testClient+`","exp":1800003600,"iss":"https://evil"}`)),
		signed("dup-iss-escaped", fuzzSignKnown, fuzzHead(), []byte(`{"iss":"https://evil","\u0069ss":"`+testIssuer+`","client_id":"`+testClient+`","exp":1800003600}`)),
		signed("exp-string", fuzzSignKnown, fuzzHead(), mustJSON(with(accessClaims(), "exp", "1800003600"))),
		signed("exp-float", fuzzSignKnown, fuzzHead(), []byte(`{"iss":"`+testIssuer+`","client_id":"`+testClient+`","exp":1800003600.5}`)),
		signed("exp-exponent", fuzzSignKnown, fuzzHead(), []byte(`{"iss":"`+testIssuer+`","client_id":"`+testClient+`","exp":1.8e9}`)),
		signed("exp-huge", fuzzSignKnown, fuzzHead(), []byte(`{"iss":"`+testIssuer+`","client_id":"`+testClient+`","exp":99999999999999999999}`)),
		signed("exp-negative", fuzzSignKnown, fuzzHead(), []byte(`{"iss":"`+testIssuer+`","client_id":"`+testClient+`","exp":-1}`)),
		signed("aud-object", fuzzSignKnown, fuzzHead(), mustJSON(with(idClaims(), "aud", map[string]any{"x": testClient}))),
		signed("aud-number", fuzzSignKnown, fuzzHead(), mustJSON(with(idClaims(), "aud", 7))),
		signed("aud-array", fuzzSignKnown, fuzzHead(), mustJSON(with(idClaims(), "aud", []string{"x", testClient}))),
		signed("scope-array", fuzzSignKnown, fuzzHead(), mustJSON(with(accessClaims(), "scope", []string{"order/post.order"}))),
		signed("scp-array", fuzzSignKnown, fuzzHead(), mustJSON(with(accessClaims(), "scope", nil, "scp", []string{"order/post.order"}))),
		signed("groups-string", fuzzSignKnown, fuzzHead(), mustJSON(with(accessClaims(), "cognito:groups", "admin"))),
		signed("iss-slash", fuzzSignKnown, fuzzHead(), mustJSON(with(accessClaims(), "iss", testIssuer+"/"))),
		signed("token-use-Access", fuzzSignKnown, fuzzHead(), mustJSON(with(accessClaims(), "token_use", "Access"))),
		signed("deep-nesting", fuzzSignKnown, fuzzHead(), []byte(`{"x":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`)),
		raw("bearer-garbage", "Bearer a.b.c"),
		raw("two-segments", "eyJhbGciOiJSUzI1NiJ9.e30"),
		raw("four-segments", "a.b.c.d"),
		raw("jwe", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d"),
		raw("dots", strings.Repeat(".", 10000)),
		raw("padding", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln=="),
		raw("std-alphabet", "eyJh+GciOiJSUzI1NiJ9.e30.c2/n"),
		raw("tab", "Bearer\teyJ.e30.c2ln"),
		raw("double-space", "Bearer  eyJ.e30.c2ln"),
		raw("alg-none-unsigned", "eyJhbGciOiJub25lIiwia2lkIjoia2lkQSJ9.e30."),
		raw("non-ascii", "Bearer \xe2\x80\x8beyJ.e30.c2ln"),
	}
}

type fuzzAuthorizers struct {
	open, cached, strict, multi     *Authorizer
	openRule, strictRule, multiRule fuzzRule
	// asked records whose keys (by issuer) multi looked a kid up in.
	asked *askedKeys
}

// fuzzRule is the oracle's copy of a configuration.
type fuzzRule struct {
	algs     []string
	tokenUse string // of the default trust
	scopes   []string
	groups   []string
	trusts   []fuzzTrust // nil: the default trust, testPool
}

// fuzzTrust is the oracle's copy of a trust.
type fuzzTrust struct {
	issuers  []string
	audience []string
	tokenUse string
}

// testIssuerUpdated is testPool's UPDATED-format issuer, which the
// user_pool shorthand accepts too.
const testIssuerUpdated = "https://issuer-cognito-idp.us-west-2.amazonaws.com/us-west-2_NMATFlcVJ"

// trustFor returns the trust of rule that accepts iss, or nil.
func (r fuzzRule) trustFor(iss string) *fuzzTrust {
	trusts := r.trusts
	if trusts == nil {
		trusts = []fuzzTrust{{issuers: []string{testIssuer, testIssuerUpdated}, audience: []string{testClient}, tokenUse: r.tokenUse}}
	}
	for i := range trusts {
		if slices.Contains(trusts[i].issuers, iss) {
			return &trusts[i]
		}
	}
	return nil
}

// askedKeys records the issuers whose keys were asked for a kid.
type askedKeys struct{ issuers []string }

type recordingKeys struct {
	Keys
	iss   string
	asked *askedKeys
}

func (r recordingKeys) Key(ctx context.Context, kid string) (*jwks.Key, error) {
	r.asked.issuers = append(r.asked.issuers, r.iss)
	return r.Keys.Key(ctx, kid)
}

func newFuzzAuthorizers(t testing.TB) fuzzAuthorizers {
	var fa fuzzAuthorizers
	fa.openRule = fuzzRule{algs: []string{"RS256", "PS256"}}
	fa.strictRule = fuzzRule{algs: []string{"RS256"}, tokenUse: "access", scopes: []string{"order/post.order"}, groups: []string{"admin"}}
	fa.open = newTestAuthorizer(t, config.Authorizer{Algorithms: fa.openRule.algs})
	fa.cached = newTestAuthorizer(t, config.Authorizer{Algorithms: fa.openRule.algs}, WithCache(NewCache(64, func() time.Time { return testNow })))
	fa.strict = newTestAuthorizer(t, config.Authorizer{TokenUse: "access", Scopes: fa.strictRule.scopes, Groups: fa.strictRule.groups})

	// Several trusts (issue 10): every issuer has the published keys, but
	// behind its own recorder, so the oracle sees whose keys a token asked.
	fa.multiRule = fuzzRule{algs: []string{"RS256", "PS256"}, trusts: []fuzzTrust{
		{issuers: []string{testIssuer, testIssuerUpdated, "https://cognito-idp.us-east-1.amazonaws.com/us-west-2_NMATFlcVJ"}, audience: []string{testClient}},
		{issuers: []string{"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_BBB"}, audience: []string{"client-b"}, tokenUse: "id"},
		{issuers: []string{"http://127.0.0.1:9229/local_pool"}, audience: []string{testClient, "client-b"}, tokenUse: "access"},
	}}
	fa.asked = &askedKeys{}
	keys := newSetKeys(t, jwttest.JWKS(keyA, keyB, keyPS, keyAlg))
	multi, err := New(config.Authorizer{Algorithms: fa.multiRule.algs, Trusts: []config.Trust{
		{Pool: testPool, Audience: []string{testClient}, ReplicaRegions: []string{"us-east-1"}},
		{Pool: "eu-west-1_BBB", Audience: []string{"client-b"}, TokenUse: "id", IssuerFormat: "original"},
		{Issuer: "http://127.0.0.1:9229/local_pool", Audience: []string{testClient, "client-b"}, TokenUse: "access"},
	}}, nil, WithClock(func() time.Time { return testNow }), WithCache(NewCache(64, func() time.Time { return testNow })),
		WithKeysFor(func(_ int, iss string) Keys { return recordingKeys{Keys: keys, iss: iss, asked: fa.asked} }))
	if err != nil {
		t.Fatal(err)
	}
	fa.multi = multi
	return fa
}

// FuzzAuthorize drives extraction, parsing, verification and the claim
// rules. Oracle: nothing panics; an accepted token verifies with
// crypto/rsa against the published key its kid names, under an allowed
// alg, and its claims — decoded independently with encoding/json — satisfy
// the rule and agree with the Claims returned; a denial for a claim or
// route rule (issuer … group, 403) implies a verified signature; the
// verified-token cache never changes an answer.
func FuzzAuthorize(f *testing.F) {
	testKeys(f)
	for _, s := range authorizeSeeds() {
		f.Add(s.raw, s.head, s.payload, s.mode)
	}
	fa := newFuzzAuthorizers(f)
	f.Fuzz(func(t *testing.T, rawHeader string, head, payload []byte, mode uint8) {
		authz := rawHeader
		if k, alg := fuzzSigner(mode); k != nil {
			authz = "Bearer " + signRaw(t, k, alg, head, payload)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{authz}
		tok, xerr := ExtractToken(r, config.TokenSource{From: config.SourceHeader, Name: "Authorization"})
		if xerr != nil {
			checkDenial(t, "extract", tok, xerr, nil)
			return
		}
		ctx := context.Background()
		for _, c := range []struct {
			name string
			a    *Authorizer
			rule fuzzRule
		}{{"open", fa.open, fa.openRule}, {"strict", fa.strict, fa.strictRule}, {"multi", fa.multi, fa.multiRule}} {
			fa.asked.issuers = fa.asked.issuers[:0]
			claims, err := c.a.Authorize(ctx, tok)
			if c.name == "multi" {
				checkKeysAsked(t, tok, fa.asked.issuers, c.rule)
			}
			if err == nil {
				checkAccepted(t, c.name, tok, claims, c.rule)
			} else {
				checkDenial(t, c.name, tok, err, &c.rule)
			}
			if c.name == "open" {
				// Same rule through the cache, twice (miss, then hit):
				// the answer must not change.
				for i := range 2 {
					_, cerr := fa.cached.Authorize(ctx, tok)
					if (err == nil) != (cerr == nil) || (err != nil && AsError(err).Reason != AsError(cerr).Reason) {
						t.Fatalf("cached authorizer (call %d) answered %v, uncached %v", i, cerr, err)
					}
				}
			}
		}
	})
}

// signRaw builds b64(head).b64(payload).sig with k and alg.
func signRaw(t testing.TB, k *jwttest.Key, alg string, head, payload []byte) string {
	in := base64.RawURLEncoding.EncodeToString(head) + "." + base64.RawURLEncoding.EncodeToString(payload)
	return in + "." + base64.RawURLEncoding.EncodeToString(k.SignBytes(t, alg, []byte(in)))
}

// postSignature are the reasons given only after the signature verified.
// ("issuer" is given before: the issuer selects the trust whose keys
// verify, and an issuer no trust accepts is refused without a key lookup.)
var postSignature = map[string]bool{
	"audience": true, "no_exp": true, "expired": true, "not_yet_valid": true,
	"issued_in_future": true, "token_use": true, "scope": true, "group": true,
}

// checkDenial is the oracle for a denial; rule is nil for extraction.
func checkDenial(t *testing.T, who, tok string, err error, rule *fuzzRule) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %T is not an *Error: %v", who, err, err)
	}
	switch e.Kind {
	case KindMissing, KindInvalid, KindInsufficientScope:
	default:
		t.Fatalf("%s: kind %v for a fixed key set", who, e.Kind)
	}
	if e.Reason == "" || e.Description == "" {
		t.Fatalf("%s: denial without reason or description: %#v", who, e)
	}
	if len(tok) >= 8 && strings.Contains(e.Description+e.Challenge([]string{"s"}), tok) {
		t.Fatalf("%s: the public answer echoes the token", who)
	}
	if e.Reason == "issuer" && rule != nil {
		// Refused before the signature: the payload must be an object
		// whose "iss" (absent, or a string) no trust accepts.
		if m, known := payloadObject(tok); known {
			if m == nil {
				t.Fatalf("%s: issuer refusal of a payload that is not a JSON object", who)
			}
			iss, isStr := m["iss"].(string)
			if _, present := m["iss"]; present && !isStr {
				t.Fatalf("%s: issuer refusal of a non-string iss %v", who, m["iss"])
			}
			if rule.trustFor(iss) != nil {
				t.Fatalf("%s: refused issuer %q, which the rule trusts", who, iss)
			}
		}
	}
	malformedClaims := e.Description == "token claims are malformed" || e.Description == "token payload is malformed"
	if malformedClaims && rule != nil && verifyIndependently(tok) != "" {
		// Before the signature only the payload's form and its "iss" are
		// read: anything else malformed is found after it.
		if m, known := payloadObject(tok); known && m != nil {
			v, present := m["iss"]
			if _, isStr := v.(string); isStr || !present {
				t.Fatalf("%s: %q for a payload whose form and iss are fine, before its signature verified", who, e.Description)
			}
		}
		return
	}
	if postSignature[e.Reason] || malformedClaims {
		if why := verifyIndependently(tok); why != "" {
			t.Fatalf("%s: denial %q (%v) is only given after a verified signature, but: %s", who, e.Reason, e, why)
		}
		if rule != nil {
			if want, _, known := expectedOutcome(tok, *rule); known && want != e.Reason {
				t.Fatalf("%s: denied with %q (%v), the rule says %q", who, e.Reason, e, want)
			}
		}
	}
}

// fuzzKeys are the published keys of newTestAuthorizer, by kid.
func fuzzKeys() map[string]*jwttest.Key {
	return map[string]*jwttest.Key{keyA.ID: keyA, keyB.ID: keyB, keyPS.ID: keyPS, keyAlg.ID: keyAlg}
}

// verifyIndependently re-does the cryptography with the standard library
// only and returns why tok does not verify ("" if it does).
func verifyIndependently(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return fmt.Sprintf("%d segments", len(parts))
	}
	enc := base64.RawURLEncoding.Strict()
	rawHead, err := enc.DecodeString(parts[0])
	if err != nil {
		return "header encoding: " + err.Error()
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return "signature encoding: " + err.Error()
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(rawHead, &h); err != nil {
		return "header JSON: " + err.Error()
	}
	k := fuzzKeys()[h.Kid]
	if k == nil {
		return fmt.Sprintf("kid %q is not published", h.Kid)
	}
	if k.Alg != "" && k.Alg != h.Alg {
		return fmt.Sprintf("alg %q on a key pinned to %q", h.Alg, k.Alg)
	}
	var ch crypto.Hash
	switch strings.TrimLeft(h.Alg, "RSP") {
	case "256":
		ch = crypto.SHA256
	case "384":
		ch = crypto.SHA384
	case "512":
		ch = crypto.SHA512
	default:
		return fmt.Sprintf("alg %q", h.Alg)
	}
	hh := ch.New()
	hh.Write([]byte(parts[0] + "." + parts[1]))
	digest := hh.Sum(nil)
	pub := &k.Private.PublicKey
	switch h.Alg[:2] {
	case "RS":
		err = rsa.VerifyPKCS1v15(pub, ch, digest, sig)
	case "PS":
		err = rsa.VerifyPSS(pub, ch, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		return fmt.Sprintf("alg %q", h.Alg)
	}
	if err != nil {
		return "signature: " + err.Error()
	}
	return ""
}

// checkAccepted is the oracle for an allowed token: it verifies, under an
// allowed alg and without crit, the independent reading of its claims
// allows it too, and the Claims returned agree with that reading.
func checkAccepted(t *testing.T, who, tok string, c *Claims, rule fuzzRule) {
	t.Helper()
	if c == nil {
		t.Fatalf("%s: allowed without claims", who)
	}
	if why := verifyIndependently(tok); why != "" {
		t.Fatalf("%s: ACCEPTED a token that does not verify: %s", who, why)
	}
	parts := strings.Split(tok, ".")
	rawHead, _ := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	head, ok := decodeObject(rawHead)
	if !ok {
		t.Fatalf("%s: accepted a header that is not a clean JSON object: %q", who, rawHead)
	}
	if _, ok := head["crit"]; ok {
		t.Fatalf("%s: accepted a token with crit", who)
	}
	if alg, _ := head["alg"].(string); !slices.Contains(rule.algs, alg) || alg != c.Algorithm {
		t.Fatalf("%s: accepted alg %q (Claims %q), allowed %v", who, alg, c.Algorithm, rule.algs)
	}
	want, m, known := expectedOutcome(tok, rule)
	if !known {
		return
	}
	if want != "allow" {
		t.Fatalf("%s: ACCEPTED a token the rule denies (%s)", who, want)
	}
	str := func(name string) string { s, _ := m[name].(string); return s }
	for name, got := range map[string]string{"iss": c.Issuer, "sub": c.Subject, "token_use": c.TokenUse, "client_id": c.ClientID, "scope": c.Scope} {
		if want := str(name); want != got {
			t.Fatalf("%s: Claims %s = %q, encoding/json reads %q", who, name, got, want)
		}
	}
	if exp, _ := strconv.ParseInt(string(m["exp"].(json.Number)), 10, 64); exp != c.Expires {
		t.Fatalf("%s: Claims exp %d, encoding/json reads %d", who, c.Expires, exp)
	}
	wantUser := str("username")
	if wantUser == "" {
		wantUser = str("cognito:username")
	}
	if c.Username != wantUser {
		t.Fatalf("%s: Claims username %q, want %q", who, c.Username, wantUser)
	}
	if groups, _ := strArray(m["cognito:groups"]); !slices.Equal(groups, c.Groups) {
		t.Fatalf("%s: Claims groups %q, encoding/json reads %q", who, c.Groups, groups)
	}
	// Rendering every claim must not panic, and must agree on presence.
	c.Each(func(name, _ string) {
		if _, ok := m[name]; !ok {
			t.Fatalf("%s: Each renders %q, which encoding/json does not see", who, name)
		}
	})
	for name := range m {
		c.Get(name)
	}
}

// expectedOutcome re-applies the rule to a token whose signature verifies,
// with encoding/json and the rules as documented: "allow", the reason of
// the first failing check, or "malformed" for claims of the wrong type,
// duplicate members, invalid UTF-8 or JSON. known is false for the
// engine's documented limits the oracle does not model (nesting, member
// count).
func expectedOutcome(tok string, rule fuzzRule) (want string, m map[string]any, known bool) {
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return "malformed", nil, true
	}
	if jsonDepth(payload) >= 16 {
		return "", nil, false
	}
	m, ok := decodeObject(payload)
	if !ok {
		return "malformed", nil, true
	}
	if len(m) > 200 {
		return "", nil, false
	}
	for _, name := range []string{"iss", "sub", "token_use", "client_id", "username", "cognito:username", "scope"} {
		if v, ok := m[name]; ok {
			if _, isStr := v.(string); !isStr {
				return "malformed", m, true
			}
		}
	}
	for _, name := range []string{"aud", "scp"} {
		if v, ok := m[name]; ok {
			if _, isStr := v.(string); !isStr {
				if _, ok := strArray(v); !ok {
					return "malformed", m, true
				}
			}
		}
	}
	if v, ok := m["cognito:groups"]; ok {
		if _, ok := strArray(v); !ok {
			return "malformed", m, true
		}
	}
	dates := map[string]int64{}
	for _, name := range []string{"exp", "nbf", "iat"} {
		v, ok := m[name]
		if !ok {
			continue
		}
		n, isNum := v.(json.Number)
		if !isNum {
			return "malformed", m, true
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || i < 0 || i > 253402300799 || strings.HasPrefix(string(n), "-") {
			return "malformed", m, true
		}
		dates[name] = i
	}
	now := testNow.Unix()
	iss, _ := m["iss"].(string)
	trust := rule.trustFor(iss)
	if trust == nil {
		return "issuer", m, true
	}
	if v, ok := m["aud"]; ok {
		auds, isArr := strArray(v)
		if !isArr {
			auds = []string{v.(string)}
		}
		if !slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(trust.audience, a) }) {
			return "audience", m, true
		}
	} else if cid, _ := m["client_id"].(string); !slices.Contains(trust.audience, cid) {
		return "audience", m, true
	}
	exp, ok := dates["exp"]
	switch {
	case !ok:
		return "no_exp", m, true
	case now >= exp:
		return "expired", m, true
	}
	if nbf, ok := dates["nbf"]; ok && nbf > now {
		return "not_yet_valid", m, true
	}
	if iat, ok := dates["iat"]; ok && iat > now {
		return "issued_in_future", m, true
	}
	if tu, _ := m["token_use"].(string); trust.tokenUse != "" && tu != trust.tokenUse {
		return "token_use", m, true
	}
	var scopes []string
	if s, ok := m["scope"].(string); ok {
		scopes = append(scopes, strings.Fields(s)...)
	}
	if s, ok := m["scp"].(string); ok {
		scopes = append(scopes, strings.Fields(s)...)
	} else if l, ok := strArray(m["scp"]); ok {
		scopes = append(scopes, l...)
	}
	if len(rule.scopes) > 0 && !slices.ContainsFunc(rule.scopes, func(s string) bool { return slices.Contains(scopes, s) }) {
		return "scope", m, true
	}
	groups, _ := strArray(m["cognito:groups"])
	if len(rule.groups) > 0 && !slices.ContainsFunc(rule.groups, func(g string) bool { return slices.Contains(groups, g) }) {
		return "group", m, true
	}
	return "allow", m, true
}

// payloadObject decodes tok's payload with encoding/json: m is nil if it
// is not a clean JSON object; known is false where the engine's own
// limits (depth, members) decide instead.
func payloadObject(tok string) (m map[string]any, known bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return nil, true
	}
	if jsonDepth(payload) >= 16 {
		return nil, false
	}
	m, ok := decodeObject(payload)
	if !ok {
		return nil, true
	}
	if len(m) > 200 {
		return nil, false
	}
	return m, true
}

// checkKeysAsked: a token asks the keys of the issuer it names, and of no
// other; a token whose issuer no trust accepts asks none.
func checkKeysAsked(t *testing.T, tok string, asked []string, rule fuzzRule) {
	t.Helper()
	if len(asked) == 0 {
		return
	}
	m, known := payloadObject(tok)
	if !known {
		return
	}
	iss, _ := m["iss"].(string)
	if m == nil || rule.trustFor(iss) == nil {
		t.Fatalf("multi: keys of %v asked for a token whose issuer %q no trust accepts", asked, iss)
	}
	for _, a := range asked {
		if a != iss {
			t.Fatalf("multi: keys of %s asked for a token naming %s", a, iss)
		}
	}
}

// strArray returns v as strings if it is a JSON array of strings.
func strArray(v any) ([]string, bool) {
	arr, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := []string{}
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// jsonDepth is the deepest nesting of brackets outside strings.
func jsonDepth(data []byte) int {
	depth, deepest, inStr, esc := 0, 0, false, false
	for _, c := range data {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// decodeObject decodes a JSON object with encoding/json (numbers kept as
// text). ok is false unless data is valid UTF-8, valid JSON, an object,
// and free of duplicate top-level members — what the engine requires.
func decodeObject(data []byte) (map[string]any, bool) {
	if !utf8.Valid(data) || !json.Valid(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	m := map[string]any{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k := kt.(string)
		if _, dup := m[k]; dup {
			return nil, false
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		m[k] = v
	}
	return m, true
}

// FuzzExtractToken: extraction from a header, a cookie or the query never
// panics, and a token it returns is the single credential of the request,
// free of whitespace and commas, and either the whole header value or the
// value after a case-insensitive "Bearer ".
func FuzzExtractToken(f *testing.F) {
	for _, s := range extractSeeds {
		f.Add(s.v1, s.v2, s.n, s.cookie, s.query)
	}
	f.Fuzz(func(t *testing.T, v1, v2 string, n uint8, cookie, query string) {
		// Header source.
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		vals := []string{v1, v2}[:min(int(n%3), 2)]
		if len(vals) > 0 {
			r.Header["Authorization"] = vals
		}
		tok, err := ExtractToken(r, config.TokenSource{From: config.SourceHeader, Name: "Authorization"})
		switch {
		case err != nil:
			checkExtractDenial(t, err)
			if len(vals) >= 2 && err.Reason != "multiple_tokens" {
				t.Fatalf("two headers: reason %q", err.Reason)
			}
		case len(vals) != 1:
			t.Fatalf("token %q from %d headers", tok, len(vals))
		default:
			v := vals[0]
			if tok == "" || strings.ContainsAny(tok, " \t\r\n,") {
				t.Fatalf("token %q from %q", tok, v)
			}
			if tok != v && !(len(v) == len(tok)+7 && strings.EqualFold(v[:7], "bearer ") && v[7:] == tok) {
				t.Fatalf("token %q is neither %q nor its Bearer credential", tok, v)
			}
		}

		// Cookie source.
		r = httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Cookie"] = []string{cookie}
		tok, err = ExtractToken(r, config.TokenSource{From: config.SourceCookie, Name: "tok"})
		if err != nil {
			checkExtractDenial(t, err)
		} else {
			var got []string
			for _, c := range r.Cookies() {
				if c.Name == "tok" {
					got = append(got, c.Value)
				}
			}
			if len(got) != 1 || got[0] != tok || tok == "" {
				t.Fatalf("cookie token %q from cookies %q", tok, got)
			}
		}

		// Stripping leaves no cookie net/http reads as "tok", and every
		// other cookie.
		var others []string
		for _, c := range r.Cookies() {
			if c.Name != "tok" {
				others = append(others, c.Name+"="+c.Value)
			}
		}
		StripToken(r, config.TokenSource{From: config.SourceCookie, Name: "tok"})
		var after []string
		for _, c := range r.Cookies() {
			if c.Name == "tok" {
				t.Fatalf("cookie %q survived stripping (Cookie %q)", c.Value, cookie)
			}
			after = append(after, c.Name+"="+c.Value)
		}
		if strings.Count(cookie, ";") < maxCookies && strings.Join(after, "|") != strings.Join(others, "|") {
			t.Fatalf("stripping changed the other cookies: %q → %q", others, after)
		}

		// Query source.
		r = httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.RawQuery = query
		tok, err = ExtractToken(r, config.TokenSource{From: config.SourceQuery, Name: "access_token"})
		if err != nil {
			checkExtractDenial(t, err)
		} else if got := r.URL.Query()["access_token"]; len(got) != 1 || got[0] != tok || tok == "" {
			t.Fatalf("query token %q from %q", tok, got)
		}
		// Stripping leaves no parameter net/url reads as access_token,
		// and keeps every other segment as it was.
		StripToken(r, config.TokenSource{From: config.SourceQuery, Name: "access_token"})
		if q, _ := url.ParseQuery(r.URL.RawQuery); len(q["access_token"]) != 0 {
			t.Fatalf("query parameter survived stripping: %q → %q", query, r.URL.RawQuery)
		}
		for _, seg := range strings.Split(r.URL.RawQuery, "&") {
			if seg != "" && !strings.Contains("&"+query+"&", "&"+seg+"&") {
				t.Fatalf("stripping invented segment %q of %q", seg, query)
			}
		}
	})
}

func checkExtractDenial(t *testing.T, e *Error) {
	t.Helper()
	switch e.Reason {
	case "missing":
		if e.Kind != KindMissing {
			t.Fatalf("missing with kind %v", e.Kind)
		}
	case "malformed", "multiple_tokens":
		if e.Kind != KindInvalid {
			t.Fatalf("%s with kind %v", e.Reason, e.Kind)
		}
	default:
		t.Fatalf("extraction denial with reason %q", e.Reason)
	}
}

var extractSeeds = []struct {
	name          string
	v1, v2        string
	n             uint8
	cookie, query string
}{
	{"bearer", "Bearer a.b.c", "", 1, "tok=a.b.c", "access_token=a.b.c"},
	{"bare", "a.b.c", "", 1, "x=1; tok=a.b.c", "x=1&access_token=a.b.c"},
	{"lower", "bearer a.b.c", "", 1, "tok=", "access_token="},
	{"two headers", "Bearer a.b.c", "Bearer d.e.f", 2, "tok=a; tok=b", "access_token=a&access_token=b"},
	{"none", "", "", 0, "", ""},
	{"tab", "Bearer\ta.b.c", "", 1, "tok=\"a.b.c\"", "access_token=a;b"},
	{"double space", "Bearer  a.b.c", "", 1, "tok=a b", "access_token=a%20b"},
	{"comma", "Bearer a.b.c, Bearer d.e.f", "", 1, "tok=a,b", "access_token=a%2Cb"},
	{"scheme only", "Bearer", "", 1, "TOK=a", "ACCESS_TOKEN=a"},
	{"scheme space", "Bearer ", "", 1, "tok", "access_token"},
	{"basic", "Basic dXNlcjpwYXNz", "", 1, "tok=a\x00b", "access_token=%ZZ"},
	{"crlf", "Bearer a.b.c\r\nX-Cognito-Sub: admin", "", 1, "tok=a\r\nb", "access_token=a%0D%0Ab"},
	{"non-ascii", "Bearer \u00a0a.b.c", "", 1, "tok=\u00e9", "access_token=%C3%A9"},
	{"dots", strings.Repeat(".", 10000), "", 1, "tok=" + strings.Repeat(".", 100), "access_token=" + strings.Repeat(".", 100)},
}

// TestManyDotsBoundedWork: hostile shapes (CVE-2025-30204: a header of
// many dots made golang-jwt allocate per dot) cost the engine no
// allocation that grows with the input: the compact form is checked in one
// pass before anything is decoded or split.
func TestManyDotsBoundedWork(t *testing.T) {
	a := newTestAuthorizer(t, config.Authorizer{})
	ctx := context.Background()
	shapes := []struct{ name, tok string }{
		{"3 dots", "..."},
		{"10000 dots", strings.Repeat(".", 10000)},
		{"a. x 5000", strings.Repeat("a.", 5000)},
		{"16 KiB, no dot", strings.Repeat("A", config.DefaultMaxTokenBytes)},
		{"2 dots then junk", "a.b." + strings.Repeat("c", 16000)},
		{"1 MiB of dots", strings.Repeat(".", 1<<20)},
	}
	allocs := map[string]float64{}
	for _, s := range shapes {
		var err error
		allocs[s.name] = testing.AllocsPerRun(50, func() { _, err = a.Authorize(ctx, s.tok) })
		if err == nil {
			t.Fatalf("%s: accepted", s.name)
		}
		t.Logf("%s: %.0f allocations per call", s.name, allocs[s.name])
		if allocs[s.name] > 4 {
			t.Errorf("%s: %.0f allocations per call, want a small constant", s.name, allocs[s.name])
		}
	}
	if allocs["10000 dots"] != allocs["3 dots"] || allocs["a. x 5000"] != allocs["3 dots"] {
		t.Errorf("allocations grow with the number of dots: %v", allocs)
	}
	// The same through extraction (header value scanning).
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+strings.Repeat(".", 10000))
	if allocs := testing.AllocsPerRun(50, func() { _, _ = ExtractToken(r, config.TokenSource{From: "header", Name: "Authorization"}) }); allocs > 2 {
		t.Errorf("ExtractToken of 10000 dots: %.0f allocations", allocs)
	}
}

// BenchmarkAuthorizeManyDots shows the cost of a token of 10,000 dots next
// to a valid token; compare ns/op and allocs/op between the two.
func BenchmarkAuthorizeManyDots(b *testing.B) {
	a := newTestAuthorizer(b, config.Authorizer{})
	ctx := context.Background()
	for _, bc := range []struct{ name, tok string }{
		{"10000-dots", strings.Repeat(".", 10000)},
		{"valid", keyA.Sign(b, jwttest.Token{Claims: accessClaims()})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = a.Authorize(ctx, bc.tok)
			}
		})
	}
}

// TestWriteFuzzSeeds regenerates the checked-in seed corpora of this
// package's fuzz targets from the seed tables above (run with
// WRITE_FUZZ_SEEDS=1). The signed seeds hold header and payload only: the
// target signs them at run time with keys generated for the run.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	testKeys(t)
	for _, s := range authorizeSeeds() {
		writeSeed(t, "FuzzAuthorize", s.name, s.raw, s.head, s.payload, s.mode)
	}
	for _, s := range extractSeeds {
		writeSeed(t, "FuzzExtractToken", s.name, s.v1, s.v2, s.n, s.cookie, s.query)
	}
}

// writeSeed writes one corpus file in the "go test fuzz v1" format.
func writeSeed(t *testing.T, target, name string, vals ...any) {
	t.Helper()
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case uint8:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		default:
			t.Fatalf("unsupported seed type %T", v)
		}
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := "seed-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, name)
	if err := os.WriteFile(filepath.Join(dir, file), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
