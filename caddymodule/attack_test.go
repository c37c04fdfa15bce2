package caddymodule_test

// The attack corpus: every known way to get a forged, altered, confused or
// smuggled credential past a JWT verifier (RFC 8725, RFC 7515/7519, and the
// real-world bypasses listed in shared/reference/apigw-jwt-authorizer.md
// §8), minted at test time and sent to the real cognito_auth handler in a
// real Caddy. attackCases is the one place the cases are listed; each row
// says how the request is minted and the exact answer it must get:
//
//   - status, WWW-Authenticate (error and error_description) and JSON body;
//   - the decision reason, read from caddy_cognito_decisions_total (every
//     request is counted exactly once, under exactly that reason);
//   - the backend is reached only by the rows that are allowed (its hit
//     count is checked after every row), and then sees only verified
//     identity headers;
//   - the attacker's server (where jku and x5u point, whose key x5c and jwk
//     embed) is never contacted, and the real key server at most once for
//     the whole corpus (one refetch for an unknown kid, then the cooldown);
//   - no answer echoes any part of the credential.
//
// Routes: /api/* (RS256 only, token_use access, header email X-User-Email,
// header_up of a claim placeholder), /scoped/* (scope order/post.order),
// /grouped/* (group ops), /tenant/* (require: the tenant claim names the
// path's tenant); one key set. The corpus runs twice, under two
// server configurations (see TestAttackCorpus).

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// attackCase is one row of the corpus.
type attackCase struct {
	name string
	// path is the route; default /api/x.
	path string
	// mint builds the request headers (name, value, name, value…).
	mint func(f *attackFixture) []string
	// raw, when set, builds the whole HTTP/1.1 request instead (for what
	// Go's client refuses to send); it is written on a bare TCP connection.
	raw func(f *attackFixture) string

	status int
	// desc is the error_description of a 401 invalid_token or a 403; empty
	// for the bare "Bearer" challenge of a missing token.
	desc string
	// scope is the scope attribute of a 403 (the route's scopes).
	scope string
	// reason is the decision reason counted in the metrics; empty for an
	// allowed request (result "allow") or one Caddy never handed to us.
	reason string
	// check inspects what the backend received, for allowed rows.
	check func(t *testing.T, f *attackFixture, got http.Header)
}

// Public descriptions (authz/errors.go), spelled out so that a change in
// wording fails here.
const (
	dSegments     = "token contains an invalid number of segments"
	dNotB64       = "token is malformed: not base64url"
	dEmptySegment = "token is malformed: empty segment"
	dUnsigned     = "token is unsigned"
	dHeader       = "token header is malformed"
	dHeaderLarge  = "token header is too large"
	dNoAlg        = "token header has no alg"
	dAlg          = "token signing algorithm is not allowed"
	dNoKID        = "token header has no kid"
	dCrit         = "token uses unsupported critical header parameters"
	dUnknownKID   = "token signing key is not known"
	dSignature    = "token signature is invalid"
	dClaims       = "token claims are malformed"
	dIssuer       = "issuer does not match"
	dAudience     = "the token does not have a valid audience"
	dNoExp        = "token has no expiry"
	dExpired      = "token is expired"
	dNotYet       = "token is not valid yet"
	dTokenUse     = "token_use is not allowed"
	dMultiple     = "request carries more than one token"
	dBearer       = "authorization header is malformed"
	dTooLarge     = "token is too large"
	dScope        = "the token does not have a required scope"
	dGroup        = "the token does not have a required group"
	dPolicy       = "the token does not satisfy the route policy"
)

const attackSub = "11111111-2222-3333-4444-555555555555"

func attackCases() []attackCase {
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	signed := func(mint func(f *attackFixture) string) func(f *attackFixture) []string {
		return func(f *attackFixture) []string { return bearer(mint(f)) }
	}
	// spoofs are identity headers a client might try to smuggle, in every
	// spelling a backend could fold together.
	spoofs := []string{
		"X-Cognito-Sub", "admin-1", "x-cognito-sub", "admin-2", "X_Cognito_Sub", "admin-3", "X-COGNITO-SUB", "admin-4",
		"X-Cognito-Sub", "admin-5", // duplicated value
		"X-Cognito-Username", "root", "X-Cognito-Groups", "admins", "X_COGNITO_GROUPS", "admins",
		"X-Cognito-Scope", "order/post.order", "X-Cognito-Client-Id", "evil", "X-Cognito-Token-Use", "id",
		"X-Cognito-Anything", "x", "X-User-Email", "ceo@example.com", "x_user_email", "ceo@example.com",
		// PHP folds '.' (and '_') to '_' in $_SERVER: HTTP_X_COGNITO_SUB.
		"X.Cognito.Sub", "admin-6", "x.cognito.groups", "admins", "X.User.Email", "ceo@example.com",
	}
	noSpoofReachedBackend := func(t *testing.T, _ *attackFixture, got http.Header) {
		t.Helper()
		for name, vals := range got {
			for _, v := range vals {
				if strings.HasPrefix(v, "admin-") || v == "root" || v == "admins" || v == "evil" || v == "ceo@example.com" || v == "x" {
					t.Errorf("spoofed %s: %q reached the backend", name, v)
				}
			}
			if n := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name)); strings.HasPrefix(n, "x-cognito-") && name != http.CanonicalHeaderKey(name) {
				t.Errorf("non-canonical identity header %q reached the backend", name)
			}
		}
		for name, want := range map[string]string{
			"X-Cognito-Sub": attackSub, "X-Cognito-Username": "alice", "X-Cognito-Client-Id": testClient,
			"X-Cognito-Token-Use": "access", "X-Cognito-Scope": "order/get.order openid", "X-Cognito-Groups": "admin,users",
		} {
			if v := got.Values(name); len(v) != 1 || v[0] != want {
				t.Errorf("backend got %s %q, want exactly the verified %q", name, v, want)
			}
		}
	}

	cases := []attackCase{
		// Controls: the setup lets a real token through, so every denial
		// below is the handler's doing.
		{name: "control: valid access token", mint: signed(func(f *attackFixture) string { return f.token() }), status: 200},
		{name: "control: lower-case scheme", mint: func(f *attackFixture) []string { return []string{"Authorization", "bearer " + f.token()} }, status: 200},

		// alg: none (RFC 8725 §2.1).
		{name: "alg none, no signature", mint: signed(func(f *attackFixture) string { return f.rawHead(`{"alg":"none","kid":"key-1"}`) + "." }),
			status: 401, desc: dUnsigned, reason: "unsigned"},
		{name: "alg none, signature kept", mint: signed(func(f *attackFixture) string { return f.reHead(f.token(), `{"alg":"none","kid":"key-1"}`) }),
			status: 401, desc: dAlg, reason: "alg"},
		{name: "alg None, signature kept", mint: signed(func(f *attackFixture) string { return f.reHead(f.token(), `{"alg":"None","kid":"key-1"}`) }),
			status: 401, desc: dAlg, reason: "alg"},
		{name: "alg NONE, no signature", mint: signed(func(f *attackFixture) string { return f.rawHead(`{"alg":"NONE","kid":"key-1"}`) + "." }),
			status: 401, desc: dUnsigned, reason: "unsigned"},
		{name: "alg missing", mint: signed(func(f *attackFixture) string { return f.signRawHead(`{"kid":"key-1"}`) }),
			status: 401, desc: dNoAlg, reason: "malformed"},
		{name: "alg empty", mint: signed(func(f *attackFixture) string { return f.signRawHead(`{"alg":"","kid":"key-1"}`) }),
			status: 401, desc: dAlg, reason: "alg"},
		{name: "alg lower-case rs256", mint: signed(func(f *attackFixture) string { return f.signRawHead(`{"alg":"rs256","kid":"key-1"}`) }),
			status: 401, desc: dAlg, reason: "alg"},

		// HMAC keyed with the RSA public key (RFC 8725 §2.1, CVE-2015-9235).
		{name: "HS256 keyed with the public key PEM (PKIX)", mint: signed(func(f *attackFixture) string { return f.hmac("HS256", sha256.New, f.pubPKIX) }), status: 401, desc: dAlg, reason: "alg"},
		{name: "HS384 keyed with the public key PEM (PKIX)", mint: signed(func(f *attackFixture) string { return f.hmac("HS384", sha512.New384, f.pubPKIX) }), status: 401, desc: dAlg, reason: "alg"},
		{name: "HS512 keyed with the public key PEM (PKIX)", mint: signed(func(f *attackFixture) string { return f.hmac("HS512", sha512.New, f.pubPKIX) }), status: 401, desc: dAlg, reason: "alg"},
		{name: "HS256 keyed with the public key PEM (PKCS#1)", mint: signed(func(f *attackFixture) string { return f.hmac("HS256", sha256.New, f.pubPKCS1) }), status: 401, desc: dAlg, reason: "alg"},
		{name: "HS256 keyed with the JWK bytes", mint: signed(func(f *attackFixture) string { return f.hmac("HS256", sha256.New, f.pubJWK) }), status: 401, desc: dAlg, reason: "alg"},
		{name: "HS384 keyed with the JWK bytes", mint: signed(func(f *attackFixture) string { return f.hmac("HS384", sha512.New384, f.pubJWK) }), status: 401, desc: dAlg, reason: "alg"},
		{name: "HS512 keyed with the JWK bytes", mint: signed(func(f *attackFixture) string { return f.hmac("HS512", sha512.New, f.pubJWK) }), status: 401, desc: dAlg, reason: "alg"},
		{name: "HS256 keyed with the JWKS document", mint: signed(func(f *attackFixture) string { return f.hmac("HS256", sha256.New, jwttest.JWKS(f.e.key)) }), status: 401, desc: dAlg, reason: "alg"},
		{name: "HS256 keyed with the modulus bytes", mint: signed(func(f *attackFixture) string { return f.hmac("HS256", sha256.New, f.e.key.Private.N.Bytes()) }), status: 401, desc: dAlg, reason: "alg"},

		// Other algorithms, correctly signed, when only RS256 is allowed.
		{name: "ES256 by an EC key, existing kid", mint: signed(func(f *attackFixture) string { return f.es256() }), status: 401, desc: dAlg, reason: "alg"},
		{name: "PS256 by the real key", mint: signed(func(f *attackFixture) string { return f.signAlg(f.e.key, "PS256") }), status: 401, desc: dAlg, reason: "alg"},
		{name: "RS512 by the real key", mint: signed(func(f *attackFixture) string { return f.signAlg(f.e.key, "RS512") }), status: 401, desc: dAlg, reason: "alg"},
		{name: "RS256 header over a PS256 signature", mint: signed(func(f *attackFixture) string {
			in := f.e.key.SigningInput(jwttest.Token{Claims: f.e.claims()})
			return in + "." + b64u(f.e.key.SignBytes(f.e.t, "PS256", []byte(in)))
		}), status: 401, desc: dSignature, reason: "bad_signature"},

		// Keys that are not the issuer's.
		{name: "RS256 by a foreign key, existing kid", mint: signed(func(f *attackFixture) string { return attackerKeyG.Sign(f.e.t, jwttest.Token{Claims: f.e.claims()}) }),
			status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "RS256 by a foreign key, its own kid", mint: signed(func(f *attackFixture) string {
			return attackerKeyG.Sign(f.e.t, jwttest.Token{Header: map[string]any{"kid": "attacker"}, Claims: f.e.claims()})
		}), status: 401, desc: dUnknownKID, reason: "unknown_kid"},

		// kid (RFC 8725 §3.10): an opaque map key, bounded.
		{name: "kid missing", mint: signed(func(f *attackFixture) string { return f.signHead(map[string]any{"kid": nil}) }), status: 401, desc: dNoKID, reason: "no_kid"},
		{name: "kid empty", mint: signed(func(f *attackFixture) string { return f.signHead(map[string]any{"kid": ""}) }), status: 401, desc: dNoKID, reason: "no_kid"},
		{name: "kid null", mint: signed(func(f *attackFixture) string { return f.signRawHead(`{"alg":"RS256","kid":null}`) }), status: 401, desc: dHeader, reason: "malformed"},
		{name: "kid number", mint: signed(func(f *attackFixture) string { return f.signRawHead(`{"alg":"RS256","kid":1}`) }), status: 401, desc: dHeader, reason: "malformed"},
		{name: "kid 300 bytes", mint: signed(func(f *attackFixture) string { return f.signHead(map[string]any{"kid": strings.Repeat("k", 300)}) }), status: 401, desc: dUnknownKID, reason: "unknown_kid"},
		{name: "kid 8 KiB", mint: signed(func(f *attackFixture) string { return f.signHead(map[string]any{"kid": strings.Repeat("k", 8<<10)}) }), status: 401, desc: dHeaderLarge, reason: "malformed"},
		{name: "kid path traversal", mint: signed(func(f *attackFixture) string { return f.signHead(map[string]any{"kid": "../../../../etc/passwd"}) }), status: 401, desc: dUnknownKID, reason: "unknown_kid"},
		{name: "kid path to /dev/null", mint: signed(func(f *attackFixture) string { return f.signHead(map[string]any{"kid": "/dev/null"}) }), status: 401, desc: dUnknownKID, reason: "unknown_kid"},
		{name: "kid SQL injection", mint: signed(func(f *attackFixture) string { return f.signHead(map[string]any{"kid": "key-1' OR '1'='1' --"}) }), status: 401, desc: dUnknownKID, reason: "unknown_kid"},
		{name: "kid with NUL", mint: signed(func(f *attackFixture) string { return f.signHead(map[string]any{"kid": "key-1\x00"}) }), status: 401, desc: dUnknownKID, reason: "unknown_kid"},
		{name: "kid other case", mint: signed(func(f *attackFixture) string { return f.signHead(map[string]any{"kid": "KEY-1"}) }), status: 401, desc: dUnknownKID, reason: "unknown_kid"},
		{name: "kid trailing space", mint: signed(func(f *attackFixture) string { return f.signHead(map[string]any{"kid": "key-1 "}) }), status: 401, desc: dUnknownKID, reason: "unknown_kid"},

		// Header-supplied keys (RFC 7515 §4.1.2–4.1.6, CVE-2018-0114):
		// ignored, never fetched.
		{name: "jku to the attacker, existing kid", mint: signed(func(f *attackFixture) string {
			return f.attackerSigned(map[string]any{"jku": f.attacker.URL + "/jwks.json"})
		}),
			status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "jku to the attacker, attacker kid", mint: signed(func(f *attackFixture) string {
			return f.attackerSigned(map[string]any{"jku": f.attacker.URL + "/jwks.json", "kid": "attacker"})
		}), status: 401, desc: dUnknownKID, reason: "unknown_kid"},
		{name: "x5u to the attacker", mint: signed(func(f *attackFixture) string {
			return f.attackerSigned(map[string]any{"x5u": f.attacker.URL + "/cert.pem"})
		}),
			status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "embedded jwk of the attacker", mint: signed(func(f *attackFixture) string { return f.attackerSigned(map[string]any{"jwk": attackerKeyG.JWK()}) }),
			status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "embedded jwk, no kid", mint: signed(func(f *attackFixture) string {
			return f.attackerSigned(map[string]any{"jwk": attackerKeyG.JWK(), "kid": nil})
		}),
			status: 401, desc: dNoKID, reason: "no_kid"},
		// A real certificate makes the header larger than the 512-byte cap
		// (a Cognito header is about 60 bytes): refused before any key is
		// looked at.
		{name: "x5c with the attacker's certificate", mint: signed(func(f *attackFixture) string { return f.attackerSigned(map[string]any{"x5c": []string{f.x5c}}) }),
			status: 401, desc: dHeaderLarge, reason: "malformed"},
		{name: "x5c with a short chain entry", mint: signed(func(f *attackFixture) string { return f.attackerSigned(map[string]any{"x5c": []string{f.x5c[:64]}}) }),
			status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "x5c and x5u and jku together", mint: signed(func(f *attackFixture) string {
			return f.attackerSigned(map[string]any{"x5c": []string{f.x5c}, "x5u": f.attacker.URL + "/c", "jku": f.attacker.URL + "/k", "jwk": attackerKeyG.JWK()})
		}), status: 401, desc: dHeaderLarge, reason: "malformed"},
		{name: "x5u and jku together, short header", mint: signed(func(f *attackFixture) string {
			return f.attackerSigned(map[string]any{"x5u": f.attacker.URL + "/c", "jku": f.attacker.URL + "/k"})
		}), status: 401, desc: dSignature, reason: "bad_signature"},

		// crit (RFC 7515 §4.1.11): nothing is understood, so any is fatal.
		{name: "crit with a listed parameter", mint: signed(func(f *attackFixture) string { return f.signHead(map[string]any{"crit": []string{"exp"}, "exp": 1}) }), status: 401, desc: dCrit, reason: "crit"},
		{name: "crit empty array", mint: signed(func(f *attackFixture) string { return f.signHead(map[string]any{"crit": []string{}}) }), status: 401, desc: dCrit, reason: "crit"},
		{name: "crit b64 false (RFC 7797)", mint: signed(func(f *attackFixture) string {
			return f.signHead(map[string]any{"crit": []string{"b64"}, "b64": false})
		}), status: 401, desc: dCrit, reason: "crit"},

		// Signature tampering.
		{name: "signature stripped, dot kept", mint: signed(func(f *attackFixture) string { p := parts(f.token()); return p[0] + "." + p[1] + "." }), status: 401, desc: dUnsigned, reason: "unsigned"},
		{name: "signature stripped, dot dropped", mint: signed(func(f *attackFixture) string { p := parts(f.token()); return p[0] + "." + p[1] }), status: 401, desc: dSegments, reason: "malformed"},
		{name: "payload swapped under a valid signature", mint: signed(func(f *attackFixture) string {
			p := parts(f.token())
			return p[0] + "." + parts(f.token("sub", "mallory", "scope", "order/post.order admin"))[1] + "." + p[2]
		}), status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "signature of another valid token", mint: signed(func(f *attackFixture) string {
			p := parts(f.token("sub", "mallory"))
			return p[0] + "." + p[1] + "." + parts(f.token())[2]
		}), status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "signature truncated", mint: signed(func(f *attackFixture) string { t := f.token(); return t[:len(t)-4] }), status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "signature with a flipped bit", mint: signed(func(f *attackFixture) string {
			p := parts(f.token())
			sig, _ := base64.RawURLEncoding.DecodeString(p[2])
			sig[10] ^= 1
			return p[0] + "." + p[1] + "." + b64u(sig)
		}), status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "signature with non-zero padding bits", mint: signed(func(f *attackFixture) string {
			// 256 bytes encode to 342 characters whose last 4 bits are
			// padding: set one. A lenient decoder yields the same bytes.
			t := f.token()
			last := strings.IndexByte(b64Alphabet, t[len(t)-1])
			return t[:len(t)-1] + string(b64Alphabet[last|1])
		}), status: 401, desc: dSignature, reason: "bad_signature"},

		// RSA edge cases (the verifier is crypto/rsa-equivalent code of our
		// own): out-of-range and degenerate signatures, and Bleichenbacher's
		// e=3 forgery, which only a verifier that does not compare the whole
		// decoded block byte for byte accepts. The forgery's premise is
		// checked when it is made, and a control shows the e=3 key works.
		{name: "control: valid RS256 by an e=3 key", mint: signed(func(f *attackFixture) string {
			return f.e3.Sign(f.e.t, jwttest.Token{Claims: f.e.claims()})
		}), status: 200},
		{name: "Bleichenbacher e=3 forgery (garbage after the digest)", mint: signed(func(f *attackFixture) string {
			in := f.e3.SigningInput(jwttest.Token{Claims: f.e.claims("scope", "order/post.order admin")})
			return in + "." + b64u(f.bleichenbacher(in))
		}), status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "valid signature plus the modulus", mint: signed(func(f *attackFixture) string {
			p := parts(f.token())
			s := new(big.Int).SetBytes(mustB64(p[2]))
			return p[0] + "." + p[1] + "." + b64u(s.Add(s, f.e.key.Private.N).Bytes())
		}), status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "signature with a leading zero byte", mint: signed(func(f *attackFixture) string {
			p := parts(f.token())
			return p[0] + "." + p[1] + "." + b64u(append([]byte{0}, mustB64(p[2])...))
		}), status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "signature equal to the modulus", mint: signed(func(f *attackFixture) string {
			p := parts(f.token())
			return p[0] + "." + p[1] + "." + b64u(f.e.key.Private.N.Bytes())
		}), status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "signature 0", mint: signed(func(f *attackFixture) string {
			p := parts(f.token())
			return p[0] + "." + p[1] + "." + b64u(make([]byte, 256))
		}),
			status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "signature 1", mint: signed(func(f *attackFixture) string {
			p := parts(f.token())
			one := make([]byte, 256)
			one[255] = 1
			return p[0] + "." + p[1] + "." + b64u(one)
		}), status: 401, desc: dSignature, reason: "bad_signature"},

		// Compact form.
		{name: "one dot", mint: signed(func(f *attackFixture) string { p := parts(f.token()); return p[0] + "." + p[1] + p[2] }), status: 401, desc: dSegments, reason: "malformed"},
		{name: "three dots (trailing dot)", mint: signed(func(f *attackFixture) string { return f.token() + "." }), status: 401, desc: dSegments, reason: "malformed"},
		{name: "three dots (four segments)", mint: signed(func(f *attackFixture) string { return f.token() + ".e30" }), status: 401, desc: dSegments, reason: "malformed"},
		{name: "four dots (JWE, five segments)", mint: signed(func(f *attackFixture) string {
			return b64u([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM","kid":"key-1"}`)) + ".ZW5jcnlwdGVkLWtleQ.aXY.Y2lwaGVydGV4dA.dGFn"
		}), status: 401, desc: dSegments, reason: "malformed"},
		{name: "10000 dots", mint: signed(func(*attackFixture) string { return strings.Repeat(".", 10000) }), status: 401, desc: dSegments, reason: "malformed"},
		{name: "empty header segment", mint: signed(func(f *attackFixture) string { p := parts(f.token()); return "." + p[1] + "." + p[2] }), status: 401, desc: dEmptySegment, reason: "malformed"},
		{name: "base64 padding", mint: signed(func(f *attackFixture) string {
			p := parts(f.token())
			return base64.URLEncoding.EncodeToString(mustB64(p[0])) + "." + p[1] + "." + base64.URLEncoding.EncodeToString(mustB64(p[2]))
		}), status: 401, desc: dNotB64, reason: "malformed"},
		{name: "base64 standard alphabet", mint: signed(func(f *attackFixture) string {
			p := parts(f.tokenWithStdAlphabetChars())
			return strings.NewReplacer("-", "+", "_", "/").Replace(p[0] + "." + p[1] + "." + p[2])
		}), status: 401, desc: dNotB64, reason: "malformed"},
		{name: "whitespace inside the token", mint: signed(func(f *attackFixture) string { p := parts(f.token()); return p[0] + ". " + p[1] + "." + p[2] }), status: 401, desc: dBearer, reason: "malformed"},
		{name: "tab inside the token", mint: signed(func(f *attackFixture) string { p := parts(f.token()); return p[0] + "\t." + p[1] + "." + p[2] }), status: 401, desc: dBearer, reason: "malformed"},
		{name: "header folded inside the token (obs-fold)", raw: func(f *attackFixture) string {
			p := parts(f.token())
			return "GET /api/x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + p[0] + "." + p[1] + "\r\n ." + p[2] + "\r\nConnection: close\r\n\r\n"
		}, status: 401, desc: dBearer, reason: "malformed"},
		{name: "non-ASCII bytes in the token", mint: signed(func(f *attackFixture) string { return "\xef\xbb\xbf" + f.token() }), status: 401, desc: dNotB64, reason: "malformed"},

		// Encoding and JSON of the header and payload, correctly signed by
		// the real key so that only the parser stands in the way.
		{name: "header not UTF-8", mint: signed(func(f *attackFixture) string {
			return f.signRawHead("{\"alg\":\"RS256\",\"kid\":\"key-1\",\"x\":\"\xff\"}")
		}), status: 401, desc: dHeader, reason: "malformed"},
		{name: "header invalid JSON", mint: signed(func(f *attackFixture) string { return f.signRawHead(`{"alg":"RS256","kid":"key-1"`) }), status: 401, desc: dHeader, reason: "malformed"},
		{name: "header JSON array", mint: signed(func(f *attackFixture) string { return f.signRawHead(`["RS256","key-1"]`) }), status: 401, desc: dHeader, reason: "malformed"},
		{name: "header trailing data", mint: signed(func(f *attackFixture) string { return f.signRawHead(`{"alg":"RS256","kid":"key-1"}{}`) }), status: 401, desc: dHeader, reason: "malformed"},
		{name: "header with BOM", mint: signed(func(f *attackFixture) string { return f.signRawHead("\ufeff" + `{"alg":"RS256","kid":"key-1"}`) }), status: 401, desc: dHeader, reason: "malformed"},
		{name: "payload not UTF-8", mint: signed(func(f *attackFixture) string { return f.signPayload(f.payload(`,"name":"` + "\xc3\x28" + `"`)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "payload invalid JSON", mint: signed(func(f *attackFixture) string { return f.signPayload(f.payload(`,"x":`)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "payload JSON string", mint: signed(func(f *attackFixture) string { return f.signPayload(`"` + f.e.issuer + `"`) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "payload nested 100 deep", mint: signed(func(f *attackFixture) string {
			return f.signPayload(f.payload(`,"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100)))
		}), status: 401, desc: dClaims, reason: "malformed"},

		// Duplicate members: no "last one wins" (or first one).
		{name: "iss twice, friendly last", mint: signed(func(f *attackFixture) string {
			return f.signPayload(`{"iss":"https://evil.example",` + f.payload("")[1:])
		}), status: 401, desc: dClaims, reason: "malformed"},
		{name: "iss twice, friendly first", mint: signed(func(f *attackFixture) string { return f.signPayload(f.payload(`,"iss":"https://evil.example"`)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "iss twice, second spelled with an escape", mint: signed(func(f *attackFixture) string { return f.signPayload(f.payload(`,"\u0069ss":"https://evil.example"`)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "exp twice", mint: signed(func(f *attackFixture) string { return f.signPayload(f.payload(`,"exp":9999999999`)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "client_id twice", mint: signed(func(f *attackFixture) string { return f.signPayload(f.payload(`,"client_id":"other"`)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "alg twice in the header", mint: signed(func(f *attackFixture) string { return f.signRawHead(`{"alg":"none","alg":"RS256","kid":"key-1"}`) }), status: 401, desc: dHeader, reason: "malformed"},
		{name: "kid twice in the header", mint: signed(func(f *attackFixture) string { return f.signRawHead(`{"alg":"RS256","kid":"attacker","kid":"key-1"}`) }), status: 401, desc: dHeader, reason: "malformed"},

		// Claim type confusion (CVE-2020-26160): never coerced.
		{name: "exp as string", mint: signed(func(f *attackFixture) string { return f.token("exp", fmt.Sprint(time.Now().Unix()+3600)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "exp as float", mint: signed(func(f *attackFixture) string { return f.token("exp", float64(time.Now().Unix())+3600.5) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "exp with exponent", mint: signed(func(f *attackFixture) string { return f.signPayload(f.payloadExp(`9.9e9`)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "exp huge", mint: signed(func(f *attackFixture) string { return f.signPayload(f.payloadExp(`99999999999999999999999999`)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "exp beyond year 9999", mint: signed(func(f *attackFixture) string { return f.signPayload(f.payloadExp(`253402300800`)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "exp negative", mint: signed(func(f *attackFixture) string { return f.signPayload(f.payloadExp(`-1`)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "exp null", mint: signed(func(f *attackFixture) string { return f.signPayload(f.payloadExp(`null`)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "exp true", mint: signed(func(f *attackFixture) string { return f.signPayload(f.payloadExp(`true`)) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "exp missing", mint: signed(func(f *attackFixture) string { return f.token("exp", nil) }), status: 401, desc: dNoExp, reason: "no_exp"},
		{name: "exp in the past", mint: signed(func(f *attackFixture) string { return f.token("exp", time.Now().Unix()-1) }), status: 401, desc: dExpired, reason: "expired"},
		{name: "nbf in the future", mint: signed(func(f *attackFixture) string { return f.token("nbf", time.Now().Unix()+600) }), status: 401, desc: dNotYet, reason: "not_yet_valid"},
		{name: "aud as object", mint: signed(func(f *attackFixture) string { return f.token("aud", map[string]any{"aud": testClient}) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "aud as number", mint: signed(func(f *attackFixture) string { return f.token("aud", 42) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "aud array with a number", mint: signed(func(f *attackFixture) string { return f.token("aud", []any{testClient, 1}) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "aud wrong, client_id right", mint: signed(func(f *attackFixture) string { return f.token("aud", "other-client") }), status: 401, desc: dAudience, reason: "audience"},
		{name: "aud empty array, client_id right", mint: signed(func(f *attackFixture) string { return f.token("aud", []string{}) }), status: 401, desc: dAudience, reason: "audience"},
		{name: "client_id as array", mint: signed(func(f *attackFixture) string { return f.token("client_id", []string{testClient}) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "iss as array", mint: signed(func(f *attackFixture) string { return f.token("iss", []string{"x", "y"}) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "scope as array", mint: signed(func(f *attackFixture) string { return f.token("scope", []string{"order/post.order"}) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "scope as array, scoped route", path: "/scoped/x", mint: signed(func(f *attackFixture) string { return f.token("scope", []string{"order/post.order"}) }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "cognito:groups as string", mint: signed(func(f *attackFixture) string { return f.token("cognito:groups", "ops") }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "cognito:groups as string, group route", path: "/grouped/x", mint: signed(func(f *attackFixture) string { return f.token("cognito:groups", "ops") }), status: 401, desc: dClaims, reason: "malformed"},
		{name: "token_use as number", mint: signed(func(f *attackFixture) string { return f.token("token_use", 1) }), status: 401, desc: dClaims, reason: "malformed"},

		// Issuer and token kind (RFC 8725 §3.8, §3.12).
		{name: "iss with a trailing slash", mint: signed(func(f *attackFixture) string { return f.token("iss", f.e.issuer+"/") }), status: 401, desc: dIssuer, reason: "issuer"},
		{name: "iss in upper case", mint: signed(func(f *attackFixture) string { return f.token("iss", strings.ToUpper(f.e.issuer)) }), status: 401, desc: dIssuer, reason: "issuer"},
		{name: "iss with other path case", mint: signed(func(f *attackFixture) string {
			return f.token("iss", f.e.jwks.URL+strings.ToLower(strings.TrimPrefix(f.e.issuer, f.e.jwks.URL)))
		}), status: 401, desc: dIssuer, reason: "issuer"},
		{name: "iss of another pool", mint: signed(func(f *attackFixture) string { return f.token("iss", f.e.jwks.URL+"/us-west-2_OtherPool") }), status: 401, desc: dIssuer, reason: "issuer"},
		{name: "iss with leading space", mint: signed(func(f *attackFixture) string { return f.token("iss", " "+f.e.issuer) }), status: 401, desc: dIssuer, reason: "issuer"},
		{name: "iss missing", mint: signed(func(f *attackFixture) string { return f.token("iss", nil) }), status: 401, desc: dIssuer, reason: "issuer"},
		{name: "other pool, same signing key (cognito-local)", mint: signed(func(f *attackFixture) string {
			// cognito-local signs every pool's tokens with one key: only iss
			// (and the app client) tell the pools apart.
			return f.token("iss", f.e.jwks.URL+"/local_OtherPool", "client_id", "other-pool-client")
		}), status: 401, desc: dIssuer, reason: "issuer"},
		{name: "other pool, same key, our client id", mint: signed(func(f *attackFixture) string { return f.token("iss", f.e.jwks.URL+"/local_OtherPool") }), status: 401, desc: dIssuer, reason: "issuer"},
		{name: "token_use Access", mint: signed(func(f *attackFixture) string { return f.token("token_use", "Access") }), status: 401, desc: dTokenUse, reason: "token_use"},
		{name: "ID token on an access-only route", mint: signed(func(f *attackFixture) string {
			return f.token("token_use", "id", "client_id", nil, "aud", testClient, "scope", nil)
		}), status: 401, desc: dTokenUse, reason: "token_use"},
		{name: "wrong client_id", mint: signed(func(f *attackFixture) string { return f.token("client_id", testClient+"x") }), status: 401, desc: dAudience, reason: "audience"},

		// Route rules: 403 only for a fully valid token.
		{name: "scope superstring", path: "/scoped/x", mint: signed(func(f *attackFixture) string { return f.token("scope", "order/post.orders") }),
			status: 403, desc: dScope, scope: "order/post.order", reason: "scope"},
		{name: "scope in an unknown claim", path: "/scoped/x", mint: signed(func(f *attackFixture) string { return f.token("scopes", "order/post.order") }),
			status: 403, desc: dScope, scope: "order/post.order", reason: "scope"},
		{name: "scope with other case", path: "/scoped/x", mint: signed(func(f *attackFixture) string { return f.token("scope", "ORDER/POST.ORDER") }),
			status: 403, desc: dScope, scope: "order/post.order", reason: "scope"},
		{name: "group with other case", path: "/grouped/x", mint: signed(func(f *attackFixture) string { return f.token("cognito:groups", []string{"Ops"}) }),
			status: 403, desc: dGroup, reason: "group"},
		{name: "group in a custom claim", path: "/grouped/x", mint: signed(func(f *attackFixture) string { return f.token("custom:groups", "ops") }),
			status: 403, desc: dGroup, reason: "group"},
		{name: "forged scope under a valid signature", path: "/scoped/x", mint: signed(func(f *attackFixture) string {
			p := parts(f.token())
			return p[0] + "." + parts(f.token("scope", "order/post.order"))[1] + "." + p[2]
		}), status: 401, desc: dSignature, reason: "bad_signature"},

		// Size. Caddy caps request headers at 16 KiB by default
		// (max_header_bytes; Go's server allows 4 KiB more), so a token
		// that big never reaches the handler: Go answers 431 itself. Below
		// that, the handler's own cap (max_token_size, 16 KiB) answers 401
		// before any parsing. The 1 MiB request is written on a bare
		// connection while the answer is read: Go's client would fail on
		// the reset that follows the early 431 instead of returning it.
		{name: "1 MiB token", raw: func(f *attackFixture) string {
			p := parts(f.token())
			tok := p[0] + "." + strings.Repeat("A", 1<<20-len(p[0])-len(p[2])-2) + "." + p[2]
			return "GET /api/x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + tok + "\r\nConnection: close\r\n\r\n"
		}, status: 431},
		{name: "16 KiB + 1 token", mint: signed(func(f *attackFixture) string {
			p := parts(f.token())
			return p[0] + "." + strings.Repeat("A", 16<<10+1-len(p[0])-len(p[2])-2) + "." + p[2]
		}), status: 401, desc: dTooLarge, reason: "too_large"},

		// The Authorization header itself.
		{name: "two Authorization headers, both valid", mint: func(f *attackFixture) []string {
			return append(bearer(f.token()), bearer(f.token("sub", "mallory"))...)
		},
			status: 401, desc: dMultiple, reason: "multiple_tokens"},
		{name: "two Authorization headers, invalid then valid", mint: func(f *attackFixture) []string { return append(bearer("x.y.z"), bearer(f.token())...) },
			status: 401, desc: dMultiple, reason: "multiple_tokens"},
		{name: "10 Authorization headers, all valid", mint: func(f *attackFixture) []string {
			var h []string
			for range 10 {
				h = append(h, bearer(f.token())...)
			}
			return h
		}, status: 401, desc: dMultiple, reason: "multiple_tokens"},
		{name: "1000 Authorization headers, one valid", mint: func(f *attackFixture) []string {
			h := bearer(f.token())
			for i := range 999 {
				h = append(h, "Authorization", fmt.Sprint(i))
			}
			return h
		}, status: 401, desc: dMultiple, reason: "multiple_tokens"},
		{name: "two credentials in one header", mint: func(f *attackFixture) []string {
			return []string{"Authorization", "Bearer " + f.token() + ", Bearer " + f.token()}
		},
			status: 401, desc: dBearer, reason: "malformed"},
		{name: "Bearer and a tab", mint: func(f *attackFixture) []string { return []string{"Authorization", "Bearer\t" + f.token()} }, status: 401, desc: dBearer, reason: "malformed"},
		{name: "Bearer and two spaces", mint: func(f *attackFixture) []string { return []string{"Authorization", "Bearer  " + f.token()} }, status: 401, desc: dBearer, reason: "malformed"},
		{name: "Bearer, space and a tab", mint: func(f *attackFixture) []string { return []string{"Authorization", "Bearer \t" + f.token()} }, status: 401, desc: dBearer, reason: "malformed"},
		{name: "Bearer twice", mint: func(f *attackFixture) []string { return []string{"Authorization", "Bearer Bearer " + f.token()} }, status: 401, desc: dBearer, reason: "malformed"},
		{name: "Basic credentials", mint: func(*attackFixture) []string { return []string{"Authorization", "Basic YWRtaW46YWRtaW4="} }, status: 401, desc: dBearer, reason: "malformed"},
		{name: "other scheme", mint: func(f *attackFixture) []string { return []string{"Authorization", "Token " + f.token()} }, status: 401, desc: dBearer, reason: "malformed"},
		{name: "scheme only", mint: func(*attackFixture) []string { return []string{"Authorization", "Bearer"} }, status: 401, reason: "missing"},
		{name: "token only in the query", path: "/api/x?access_token=TOKEN", mint: func(*attackFixture) []string { return nil }, status: 401, reason: "missing"},
		{name: "token only in a cookie", mint: func(f *attackFixture) []string { return []string{"Cookie", "access_token=" + f.token()} }, status: 401, reason: "missing"},
		{name: "token only in Proxy-Authorization", mint: func(f *attackFixture) []string { return []string{"Proxy-Authorization", "Bearer " + f.token()} }, status: 401, reason: "missing"},

		// Identity-header smuggling: stripped on every request, whatever
		// the token.
		{name: "spoofed identity headers, valid token", mint: func(f *attackFixture) []string { return append(bearer(f.token()), spoofs...) },
			status: 200, check: noSpoofReachedBackend},
		{name: "spoofed claim header, valid token without that claim", mint: func(f *attackFixture) []string { return append(bearer(f.token("email", nil)), spoofs...) },
			status: 200, check: func(t *testing.T, f *attackFixture, got http.Header) {
				noSpoofReachedBackend(t, f, got)
				if v := got.Values("X-User-Email"); len(v) != 0 {
					t.Errorf("backend got X-User-Email %q from a token without email", v)
				}
			}},
		{name: "spoofed identity headers, invalid token", mint: func(f *attackFixture) []string {
			return append(bearer(f.token("exp", time.Now().Unix()-60)), spoofs...)
		},
			status: 401, desc: dExpired, reason: "expired"},
		{name: "spoofed identity headers, forged token", mint: func(f *attackFixture) []string {
			return append(bearer(attackerKeyG.Sign(f.e.t, jwttest.Token{Claims: f.e.claims()})), spoofs...)
		}, status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "spoofed identity headers, no token", mint: func(*attackFixture) []string { return spoofs }, status: 401, reason: "missing"},
		{name: "spoofed identity headers with CORS headers, no token", mint: func(*attackFixture) []string {
			return append([]string{"Origin", "https://evil.example", "Access-Control-Request-Method", "POST"}, spoofs...)
		}, status: 401, reason: "missing"},

		// Claim values are data, never header syntax or placeholders.
		{name: "claim with CR LF cannot add a header", mint: func(f *attackFixture) []string {
			return bearer(f.token("email", "a@b.example\r\nX-Cognito-Sub: admin-7", "username", "bob\nX-Cognito-Groups: admins"))
		}, status: 200, check: func(t *testing.T, _ *attackFixture, got http.Header) {
			for name, vals := range got {
				for _, v := range vals {
					if strings.ContainsAny(v, "\r\n") || strings.HasPrefix(v, "admin-") || v == "admins" {
						t.Errorf("backend got %s: %q", name, v)
					}
				}
			}
			// Dropped like an absent claim, as a header and as a placeholder
			// (header_up {http.auth.user.claims.email}).
			if v := got.Values("X-User-Email"); len(v) != 0 {
				t.Errorf("a claim with control characters was forwarded: %q", v)
			}
			if v := got.Get("X-Claim-Email"); v != "" {
				t.Errorf("a claim with control characters was forwarded by {http.auth.user.claims.email}: %q", v)
			}
			if v := got.Get("X-Claim-User"); v != "" {
				t.Errorf("a claim with control characters was forwarded by {http.auth.user.username}: %q", v)
			}
			if v := got.Values("X-Cognito-Sub"); len(v) != 1 || v[0] != attackSub {
				t.Errorf("X-Cognito-Sub %q", v)
			}
		}},
		{name: "claim that looks like a placeholder stays literal", mint: func(f *attackFixture) []string {
			return bearer(f.token("email", "{env.HOME}{http.request.header.Authorization}"))
		}, status: 200, check: func(t *testing.T, _ *attackFixture, got http.Header) {
			const lit = "{env.HOME}{http.request.header.Authorization}"
			if v := got.Get("X-Claim-Email"); v != lit {
				t.Errorf("header_up {http.auth.user.claims.email} gave %q, want the literal %q", v, lit)
			}
			if v := got.Get("X-User-Email"); v != lit {
				t.Errorf("X-User-Email %q, want the literal %q", v, lit)
			}
			if v := got.Get("X-Claim-User"); v != "alice" {
				t.Errorf("header_up {http.auth.user.username} gave %q", v)
			}
		}},

		// A route policy (/tenant/*: the tenant claim must name the path's
		// tenant) holds only for verified claims: a forged or altered
		// tenant claim fails the signature first and is never evaluated.
		{name: "policy control: own tenant", path: "/tenant/acme/x",
			mint: signed(func(f *attackFixture) string { return f.token("custom:tenant_id", "acme") }), status: 200},
		{name: "policy: another tenant's path", path: "/tenant/globex/x",
			mint: signed(func(f *attackFixture) string { return f.token("custom:tenant_id", "acme") }), status: 403, desc: dPolicy, reason: "policy"},
		{name: "policy: no tenant claim", path: "/tenant/acme/x",
			mint: signed(func(f *attackFixture) string { return f.token() }), status: 403, desc: dPolicy, reason: "policy"},
		{name: "policy: tenant claim of another type", path: "/tenant/7/x",
			mint: signed(func(f *attackFixture) string { return f.token("custom:tenant_id", 7) }), status: 403, desc: dPolicy, reason: "policy"},
		{name: "policy: dot segments towards another tenant", path: "/tenant/acme/%2e%2e/globex/x",
			mint: signed(func(f *attackFixture) string { return f.token("custom:tenant_id", "acme") }), status: 403, desc: dPolicy, reason: "policy"},
		{name: "policy: forged tenant claim (attacker's key, real kid)", path: "/tenant/globex/x",
			mint: signed(func(f *attackFixture) string {
				return attackerKeyG.Sign(f.e.t, jwttest.Token{Claims: f.e.claims("custom:tenant_id", "globex")})
			}), status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "policy: tenant claim rewritten after signing", path: "/tenant/globex/x",
			mint: signed(func(f *attackFixture) string {
				p := parts(f.token("custom:tenant_id", "acme"))
				claims, _ := json.Marshal(f.e.claims("custom:tenant_id", "globex"))
				return p[0] + "." + b64u(claims) + "." + p[2]
			}), status: 401, desc: dSignature, reason: "bad_signature"},
		{name: "policy: unsigned token with the tenant claim", path: "/tenant/globex/x",
			mint: signed(func(f *attackFixture) string {
				claims, _ := json.Marshal(f.e.claims("custom:tenant_id", "globex"))
				return b64u([]byte(`{"alg":"none","kid":"key-1"}`)) + "." + b64u(claims) + "."
			}), status: 401, desc: dUnsigned, reason: "unsigned"},
		{name: "policy: tenant claim twice, the other tenant last", path: "/tenant/globex/x",
			mint: signed(func(f *attackFixture) string {
				return f.signPayload(f.payload(`,"custom:tenant_id":"acme","custom:tenant_id":"globex"`))
			}), status: 401, desc: dClaims, reason: "malformed"},
	}
	// What the backend believes: hop-by-hop, placeholders, error routes,
	// cookie spellings, trailers, whitespace values (attack_identity_test.go).
	return append(cases, identityAttackCases()...)
}

// TestAttackCorpus runs the corpus through a real Caddy, twice:
//
//   - with Caddy's defaults, under which Caddy itself drops every inbound
//     header whose name has '_' or '.' (GHSA-f59h-q822-g45g) before any
//     handler runs, so the handler strips the hyphenated spellings;
//   - with those spellings of the identity headers allowlisted
//     (expected_underscore_headers / expected_dot_headers, as a deployment
//     that needs some such header would do): then Caddy drops the
//     hyphenated ones and the handler must strip the '_' and '.' ones.
func TestAttackCorpus(t *testing.T) {
	cases := attackCases()
	names := map[string]bool{}
	for _, tc := range cases {
		if names[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		names[tc.name] = true
		if (tc.status == 401 || tc.status == 403) != (tc.reason != "") || (tc.mint == nil) == (tc.raw == nil) {
			t.Fatalf("case %q: a 401/403 needs a reason (and only they), and exactly one of mint and raw", tc.name)
		}
	}
	t.Logf("%d attack cases", len(cases))
	for _, mode := range []struct{ name, servers string }{
		{"caddy defaults", ""},
		{"underscore and dot headers allowed", "expected_underscore_headers X_Cognito_* x_user_email\n\t\texpected_dot_headers X.Cognito.* x.user.email"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t)
			f := newAttackFixture(e)
			site := fmt.Sprintf(`
	route /metrics {
		metrics
	}
	route /api/* {
		%[1]s
		reverse_proxy %[2]s {
			header_up X-Claim-Email {http.auth.user.claims.email}
			header_up X-Claim-User {http.auth.user.username}
			header_up X-Claim-Missing "[{http.auth.user.claims.custom:no_such_claim}]"
		}
	}
	route /scoped/* {
		%[3]s
		reverse_proxy %[2]s
	}
	route /grouped/* {
		%[4]s
		reverse_proxy %[2]s
	}
	route /cookie/* {
		%[5]s
		reverse_proxy %[2]s
	}
	route /tenant/* {
		%[6]s
		reverse_proxy %[2]s
	}
	# A proxying error route: denials must still never reach the backend.
	handle_errors {
		reverse_proxy %[2]s
	}`,
				f.authBlock("token_use access", "header email X-User-Email"), e.backend.URL,
				f.authBlock("scopes order/post.order"), f.authBlock("groups ops"),
				f.authBlock("token_source cookie token", "strip_authorization", "header email X-User-Email"),
				f.authBlock("require `claims[\"custom:tenant_id\"] == request.path_segments[1]`"))
			if mode.servers == "" {
				e.load(site)
			} else {
				f.loadWithServerOptions(mode.servers, site)
			}

			jwksBefore := e.jwks.Hits()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					parent := e.t
					e.t = t
					defer func() { e.t = parent }()
					f.runCase(t, tc)
				})
			}
			if n := f.attacker.hits.Load(); n != 0 {
				t.Errorf("the attacker's server was contacted %d times", n)
			}
			// Unknown kids may cost one refetch in all (then the cooldown holds).
			if n := e.jwks.Hits() - jwksBefore; n > 1 {
				t.Errorf("the corpus caused %d key set fetches, want at most 1", n)
			}
		})
	}
}

// loadWithServerOptions is e.load with options for the site's server.
func (f *attackFixture) loadWithServerOptions(opts, siteBody string) {
	f.e.t.Helper()
	f.e.loadWithGlobals(fmt.Sprintf("grace_period 1ns\n\tservers {\n\t\t%s\n\t}", opts), siteBody)
}

func (f *attackFixture) runCase(t *testing.T, tc attackCase) {
	e := f.e
	before := f.decisions()
	_, backendBefore := e.backend.lastHeaders()
	attackerBefore := f.attacker.hits.Load()

	var r response
	var sent string // every credential byte sent, to check nothing is echoed
	if tc.raw != nil {
		req := tc.raw(f)
		sent = req
		r = f.rawDo(req)
	} else {
		hdr := tc.mint(f)
		for i := 1; i < len(hdr); i += 2 {
			sent += hdr[i] + "\n"
		}
		path := tc.path
		if path == "" {
			path = "/api/x"
		}
		r = e.do(http.MethodGet, path, hdr...)
	}

	// The answer.
	wantBody := map[int]string{401: `{"message":"Unauthorized"}`, 403: `{"message":"Forbidden"}`}[tc.status]
	switch {
	case tc.status == 200:
		e.expect(r, 200, "", "")
		if v := r.header.Get("WWW-Authenticate"); v != "" {
			t.Errorf("allowed request answered with WWW-Authenticate %q", v)
		}
	case tc.status == 401 && tc.desc == "":
		e.expect(r, 401, "Bearer", wantBody)
	case tc.status == 401:
		e.expect(r, 401, `Bearer error="invalid_token", error_description="`+tc.desc+`"`, wantBody)
	case tc.status == 403:
		want := `Bearer error="insufficient_scope", error_description="` + tc.desc + `"`
		if tc.scope != "" {
			want += `, scope="` + tc.scope + `"`
		}
		e.expect(r, 403, want, wantBody)
	case tc.status == 431:
		// Go's own answer, before Caddy: nothing of ours, nothing echoed.
		e.expect(r, 431, "", "431 Request Header Fields Too Large")
	default:
		t.Fatalf("no expectations for status %d", tc.status)
	}
	if tc.status == 401 || tc.status == 403 {
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q", cc)
		}
	}

	// Nothing of the credential comes back.
	answer := r.body
	for name, vals := range r.header {
		answer += name + ": " + strings.Join(vals, ", ") + "\n"
	}
	for _, chunk := range credentialChunks(sent) {
		if strings.Contains(answer, chunk) {
			t.Errorf("the answer echoes part of the credential: %.40q…", chunk)
		}
	}

	// The backend: reached once by allowed requests, never by denied ones.
	got, backendAfter := e.backend.lastHeaders()
	switch {
	case tc.status == 200 && backendAfter != backendBefore+1:
		t.Errorf("allowed request: backend hits %d → %d", backendBefore, backendAfter)
	case tc.status != 200 && backendAfter != backendBefore:
		t.Errorf("DENIED REQUEST REACHED THE BACKEND (%d → %d hits)", backendBefore, backendAfter)
	}
	if tc.check != nil && tc.status == 200 {
		tc.check(t, f, got)
	}

	// The decision, as counted: exactly one, with exactly this reason.
	delta := f.decisions().minus(before)
	want := decisionCounts{}
	switch {
	case tc.status == 200:
		want["allow/"] = 1
	case tc.reason != "":
		want["deny/"+tc.reason] = 1
	}
	if fmt.Sprint(delta) != fmt.Sprint(want) {
		t.Errorf("decisions counted %v, want %v", delta, want)
	}

	if n := f.attacker.hits.Load(); n != attackerBefore {
		t.Errorf("the attacker's server was contacted (%d → %d)", attackerBefore, n)
	}
}

// credentialChunks splits what was sent into pieces long enough that
// finding one in the answer means it was echoed.
func credentialChunks(sent string) []string {
	var out []string
	for _, field := range strings.FieldsFunc(sent, func(r rune) bool { return r == '\n' || r == ' ' || r == '\t' || r == ',' }) {
		for _, part := range strings.Split(field, ".") {
			if len(part) < 16 {
				continue
			}
			out = append(out, part[:16], part[len(part)-16:])
		}
	}
	return out
}

// attackFixture holds what the rows mint from.
type attackFixture struct {
	e        *env
	attacker *attackerServer
	ec       *ecdsa.PrivateKey
	// The real public key, in the encodings an HMAC confusion attack uses
	// as the secret.
	pubPKIX, pubPKCS1, pubJWK []byte
	// x5c is the attacker's self-signed certificate (base64 DER).
	x5c string
	// e3 is a published key with public exponent 3.
	e3 *jwttest.Key
}

// attackerServer serves the attacker's key set and certificate and counts
// every request: the handler must never fetch from it.
type attackerServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newAttackFixture(e *env) *attackFixture {
	t := e.t
	f := &attackFixture{e: e}
	f.attacker = &attackerServer{}
	doc := jwttest.JWKS(attackerKeyG)
	f.attacker.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.attacker.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(f.attacker.Close)

	var err error
	if f.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	pub := &e.key.Private.PublicKey
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	f.pubPKIX = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	f.pubPKCS1 = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})
	if f.pubJWK, err = json.Marshal(e.key.JWK()); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cognito-idp.attacker.example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &attackerKeyG.Private.PublicKey, attackerKeyG.Private)
	if err != nil {
		t.Fatal(err)
	}
	f.x5c = base64.StdEncoding.EncodeToString(cert)
	e3Once.Do(func() { e3Key = newE3Key(t, "e3-key") })
	f.e3 = e3Key
	e.jwks.Set(jwttest.JWKS(e.key, f.e3))
	return f
}

var (
	e3Once sync.Once
	e3Key  *jwttest.Key
)

// newE3Key generates a 2048-bit RSA key with public exponent 3
// (crypto/rsa only makes 65537).
func newE3Key(t *testing.T, kid string) *jwttest.Key {
	three, one := big.NewInt(3), big.NewInt(1)
	prime := func() *big.Int {
		for {
			p, err := rand.Prime(rand.Reader, 1024)
			if err != nil {
				t.Fatal(err)
			}
			if new(big.Int).Mod(p, three).Int64() == 2 { // 3 ∤ p-1
				return p
			}
		}
	}
	p, q := prime(), prime()
	for p.Cmp(q) == 0 {
		q = prime()
	}
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 3},
		D:         new(big.Int).ModInverse(three, phi),
		Primes:    []*big.Int{p, q},
	}
	k.Precompute()
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	return &jwttest.Key{ID: kid, Private: k, Alg: "RS256"}
}

// bleichenbacher forges an RS256 signature over signingInput for the e=3
// key: the integer cube root of 00 01 FF 00 DigestInfo digest FF…FF. Its
// cube starts with the right bytes and ends in garbage, which a verifier
// that parses the block instead of comparing all of it would accept
// (Bleichenbacher, CRYPTO 2006).
func (f *attackFixture) bleichenbacher(signingInput string) []byte {
	size := f.e3.Private.Size()
	digest := sha256.Sum256([]byte(signingInput))
	prefix := append([]byte{0x00, 0x01, 0xff, 0x00}, sha256DigestInfo...)
	prefix = append(prefix, digest[:]...)
	em := make([]byte, size)
	copy(em, prefix)
	for i := len(prefix); i < size; i++ {
		em[i] = 0xff
	}
	x := new(big.Int).SetBytes(em)
	// Integer cube root by bisection.
	lo, hi := big.NewInt(0), new(big.Int).Lsh(big.NewInt(1), uint(x.BitLen()/3+2))
	for new(big.Int).Sub(hi, lo).Cmp(big.NewInt(1)) > 0 {
		mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
		if new(big.Int).Exp(mid, big.NewInt(3), nil).Cmp(x) <= 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	cube := new(big.Int).Exp(lo, big.NewInt(3), nil)
	if cube.Cmp(f.e3.Private.N) >= 0 || !strings.HasPrefix(string(cube.FillBytes(make([]byte, size))), string(prefix)) {
		f.e.t.Fatalf("the forgery does not have the shape a lenient verifier accepts")
	}
	return lo.FillBytes(make([]byte, size))
}

// sha256DigestInfo is the DER prefix of a SHA-256 DigestInfo (RFC 8017).
var sha256DigestInfo = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// authBlock is the handler of the corpus routes: the env's issuer and key
// server, with a cooldown that holds for the whole run.
func (f *attackFixture) authBlock(extra ...string) string {
	return fmt.Sprintf(`cognito_auth {
			issuer %s
			audience %s
			jwks url %s {
				cooldown 1h
			}
			startup_wait 2s
			%s
		}`, f.e.issuer, testClient, f.e.jwks.JWKSURL(), strings.Join(extra, "\n\t\t\t"))
}

// token is a valid access token with claims changed (nil deletes).
func (f *attackFixture) token(kv ...any) string { return f.e.token(kv...) }

// tokenWithStdAlphabetChars is a valid token whose encoding contains '-'
// or '_', so that the standard alphabet spells it differently.
func (f *attackFixture) tokenWithStdAlphabetChars() string {
	for i := 0; ; i++ {
		tok := f.token("jti", fmt.Sprint(i))
		if strings.ContainsAny(tok, "-_") {
			return tok
		}
	}
}

// signHead signs valid claims with the real key under a changed header.
func (f *attackFixture) signHead(head map[string]any) string {
	return f.e.key.Sign(f.e.t, jwttest.Token{Header: head, Claims: f.e.claims()})
}

// signRawHead signs valid claims with the real key under a literal header.
func (f *attackFixture) signRawHead(head string) string {
	return f.e.key.Sign(f.e.t, jwttest.Token{RawHead: []byte(head), Claims: f.e.claims()})
}

// signPayload signs a literal payload with the real key.
func (f *attackFixture) signPayload(payload string) string {
	return f.e.key.Sign(f.e.t, jwttest.Token{Payload: []byte(payload)})
}

// signAlg signs valid claims with k under alg (RS*/PS*).
func (f *attackFixture) signAlg(k *jwttest.Key, alg string) string {
	return k.Sign(f.e.t, jwttest.Token{Header: map[string]any{"alg": alg}, Claims: f.e.claims()})
}

// attackerSigned signs valid claims with the attacker's key (kid key-1
// unless changed) and the given extra header members.
func (f *attackFixture) attackerSigned(head map[string]any) string {
	return attackerKeyG.Sign(f.e.t, jwttest.Token{Header: head, Claims: f.e.claims()})
}

// rawHead is base64url(head) "." base64url(valid claims).
func (f *attackFixture) rawHead(head string) string {
	return b64u([]byte(head)) + "." + parts(f.token())[1]
}

// reHead replaces the header of tok, keeping payload and signature.
func (f *attackFixture) reHead(tok, head string) string {
	p := parts(tok)
	return b64u([]byte(head)) + "." + p[1] + "." + p[2]
}

// payload is the JSON text of valid claims with raw members appended.
func (f *attackFixture) payload(extra string) string {
	now := time.Now().Unix()
	return fmt.Sprintf(`{"sub":%q,"iss":%q,"client_id":%q,"token_use":"access","exp":%d,"iat":%d%s}`,
		attackSub, f.e.issuer, testClient, now+3600, now-10, extra)
}

// payloadExp is a payload with exp spelled literally.
func (f *attackFixture) payloadExp(exp string) string {
	return fmt.Sprintf(`{"sub":%q,"iss":%q,"client_id":%q,"token_use":"access","exp":%s}`, attackSub, f.e.issuer, testClient, exp)
}

// hmac builds an HMAC-signed token over valid claims, keyed with secret.
func (f *attackFixture) hmac(alg string, h func() hash.Hash, secret []byte) string {
	in := f.e.key.SigningInput(jwttest.Token{Header: map[string]any{"alg": alg}, Claims: f.e.claims()})
	m := hmac.New(h, secret)
	m.Write([]byte(in))
	return in + "." + b64u(m.Sum(nil))
}

// es256 is a valid ES256 token (by an EC key, under the real kid).
func (f *attackFixture) es256() string {
	in := f.e.key.SigningInput(jwttest.Token{Header: map[string]any{"alg": "ES256"}, Claims: f.e.claims()})
	digest := crypto.SHA256.New()
	digest.Write([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, f.ec, digest.Sum(nil))
	if err != nil {
		f.e.t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + b64u(sig)
}

// rawDo writes a literal request on a bare connection (writing and reading
// at once: the server may answer before the request is fully sent).
func (f *attackFixture) rawDo(req string) response {
	t := f.e.t
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("localhost:%d", sitePort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(conn, req) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return response{resp.StatusCode, resp.Header, string(body)}
}

// decisionCounts are caddy_cognito_decisions_total values by
// "result/reason".
type decisionCounts map[string]float64

var decisionLine = regexp.MustCompile(`(?m)^caddy_cognito_decisions_total\{issuer="[^"]*",reason="([^"]*)",result="([^"]*)"\} (\S+)$`)

func (f *attackFixture) decisions() decisionCounts {
	r := f.e.do(http.MethodGet, "/metrics")
	if r.status != 200 {
		f.e.t.Fatalf("metrics: status %d", r.status)
	}
	out := decisionCounts{}
	for _, m := range decisionLine.FindAllStringSubmatch(r.body, -1) {
		var v float64
		fmt.Sscan(m[3], &v)
		out[m[2]+"/"+m[1]] += v
	}
	return out
}

func (d decisionCounts) minus(before decisionCounts) decisionCounts {
	out := decisionCounts{}
	for k, v := range d {
		if diff := v - before[k]; diff != 0 {
			out[k] = diff
		}
	}
	return out
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustB64(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func parts(tok string) []string { return strings.SplitN(tok, ".", 3) }
