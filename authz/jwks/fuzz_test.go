package jwks_test

// FuzzParseSet: JWKS documents come from the network (or SSM, or a file);
// ParseSet must survive anything and keep only keys fit for verification.
// Run it for longer with
//
//	go test ./authz/jwks -run '^$' -fuzz '^FuzzParseSet$' -fuzztime 10m

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// privateMembers are the private-key members of an RSA JWK (RFC 7518
// §6.3.2). Any one of them published makes the key compromised: d, p or q
// directly, and dp (or dq) with the public e factors n, since
// gcd(m^(e·dp) − m, n) = p for almost any m.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth"}

// parseSetSeeds are shapes of JWKS documents, valid and hostile. n is a
// 2048-bit modulus generated for the run.
func parseSetSeeds(n, small string) map[string]string {
	key := func(extra string) string {
		return `{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"` + n + `","e":"AQAB"` + extra + `}`
	}
	doc := func(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }
	return map[string]string{
		"cognito":          doc(key(""), strings.Replace(key(""), `"k1"`, `"k2"`, 1)),
		"no-alg-no-use":    doc(`{"kty":"RSA","kid":"k1","n":"` + n + `","e":"AQAB"}`),
		"private-d":        doc(key(`,"d":"AQAB"`)),
		"private-p-q":      doc(key(`,"p":"AQAB","q":"AQAB"`)),
		"private-dp":       doc(key(`,"dp":"AQAB"`)),
		"private-dq":       doc(key(`,"dq":"AQAB"`)),
		"private-qi":       doc(key(`,"qi":"AQAB"`)),
		"private-oth":      doc(key(`,"oth":[{"r":"AQAB","d":"AQAB","t":"AQAB"}]`)),
		"private-D-upper":  doc(key(`,"D":"AQAB"`)),
		"private-DP-upper": doc(key(`,"DP":"AQAB"`)),
		"private-oTh":      doc(key(`,"oTh":[{"r":"AQAB","d":"AQAB","t":"AQAB"}]`)),
		"private-d-null":   doc(key(`,"d":null`)),
		"private-d-number": doc(key(`,"d":5`)),
		"use-enc":          doc(strings.Replace(key(""), `"sig"`, `"enc"`, 1)),
		"key-ops-encrypt":  doc(key(`,"key_ops":["encrypt"]`)),
		"key-ops-verify":   doc(key(`,"key_ops":["verify"]`)),
		"alg-HS256":        doc(strings.Replace(key(""), `"RS256"`, `"HS256"`, 1)),
		"alg-none":         doc(strings.Replace(key(""), `"RS256"`, `"none"`, 1)),
		"small-modulus":    doc(strings.Replace(key(""), n, small, 1)),
		"e-even":           doc(strings.Replace(key(""), `"AQAB"`, `"AAI"`, 1)),
		"e-one":            doc(strings.Replace(key(""), `"AQAB"`, `"AQ"`, 1)),
		"e-huge":           doc(strings.Replace(key(""), `"AQAB"`, `"`+strings.Repeat("_", 40)+`"`, 1)),
		"n-leading-zeros":  doc(strings.Replace(key(""), `"n":"`, `"n":"AAAA`, 1)),
		"n-padded":         doc(strings.Replace(key(""), n, n+"==", 1)),
		"n-std-alphabet":   doc(strings.Replace(key(""), n, strings.NewReplacer("-", "+", "_", "/").Replace(n), 1)),
		"dup-kid":          doc(key(""), key("")),
		"dup-kid-3":        doc(key(""), key(""), key("")),
		"kid-case":         doc(`{"kty":"RSA","KID":"k1","n":"` + n + `","e":"AQAB"}`),
		"kid-and-Kid":      doc(`{"kty":"RSA","kid":"a","Kid":"b","n":"` + n + `","e":"AQAB"}`),
		"kid-empty":        doc(strings.Replace(key(""), `"k1"`, `""`, 1)),
		"kid-missing":      doc(`{"kty":"RSA","n":"` + n + `","e":"AQAB"}`),
		"kid-long":         doc(strings.Replace(key(""), `"k1"`, `"`+strings.Repeat("k", 300)+`"`, 1)),
		"kty-EC":           doc(`{"kty":"EC","kid":"e","crv":"P-256","x":"AQAB","y":"AQAB"}`, key("")),
		"kty-oct":          doc(`{"kty":"oct","kid":"k1","k":"c2VjcmV0"}`),
		"kty-rsa-lower":    doc(strings.Replace(key(""), `"RSA"`, `"rsa"`, 1)),
		"dup-member-kty":   doc(`{"kty":"EC","kty":"RSA","kid":"k1","n":"` + n + `","e":"AQAB"}`),
		"dup-member-n":     doc(`{"kty":"RSA","kid":"k1","n":"` + small + `","n":"` + n + `","e":"AQAB"}`),
		"x5c-only":         doc(`{"kty":"RSA","kid":"k1","x5c":["MIIB"]}`),
		"keys-null":        `{"keys":null}`,
		"keys-object":      `{"keys":{}}`,
		"keys-missing":     `{}`,
		"keys-empty":       `{"keys":[]}`,
		"not-json":         `{"keys":[`,
		"trailing":         doc(key("")) + `{}`,
		"trailing-brace":   doc(key("")) + `}`,
		"trailing-bracket": doc(key("")) + `]`,
		"array":            `[` + key("") + `]`,
		"not-utf8":         doc(strings.Replace(key(""), `"k1"`, "\"k\xff\"", 1)),
		"nested":           `{"keys":[` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `]}`,
		"many-keys":        doc(slices.Repeat([]string{`{}`}, 70)...),
	}
}

func FuzzParseSet(f *testing.F) {
	keys(f)
	n := base64.RawURLEncoding.EncodeToString(k1.Private.N.Bytes())
	smallN := base64.RawURLEncoding.EncodeToString(small.Private.N.Bytes())
	for _, doc := range parseSetSeeds(n, smallN) {
		f.Add([]byte(doc))
	}
	f.Add(jwttest.JWKS(k1, k2, k3))
	f.Fuzz(func(t *testing.T, doc []byte) {
		set, warnings, err := jwks.ParseSet(doc)
		if err != nil {
			if set != nil {
				t.Fatalf("error %v with a non-nil set", err)
			}
			return
		}
		checkKeptKeys(t, doc, set, warnings)
	})
}

// checkKeptKeys is the oracle of FuzzParseSet for a document ParseSet
// accepted: every kept key is an RSA public key of 2048 to 8192 bits with
// an odd exponent ≥ 3, an RSA alg or none, a kid of 1 to 256 bytes, and
// comes from a JWK of the document (same kid, kty RSA, same modulus) none
// of which carries a private member. Members are resolved the way
// encoding/json resolves them (case-insensitively, the last one winning),
// since that is how the hygiene rules read them.
func checkKeptKeys(t *testing.T, doc []byte, set *jwks.Set, warnings []string) {
	t.Helper()
	if set.Len() < 1 || set.Len() > 64 {
		t.Fatalf("accepted a set of %d keys", set.Len())
	}
	var top struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &top); err != nil {
		t.Fatalf("ParseSet accepted a document encoding/json rejects: %v", err)
	}
	type entry struct {
		kid, kty, mod string
		private       string // a private member it carries, if any
	}
	var entries []entry
	for _, raw := range top.Keys {
		members, ok := orderedMembers(raw)
		if !ok {
			continue
		}
		var e entry
		for _, m := range members {
			var s string
			isStr := json.Unmarshal(m.value, &s) == nil
			switch {
			case strings.EqualFold(m.name, "kid") && isStr:
				e.kid = s
			case strings.EqualFold(m.name, "kty") && isStr:
				e.kty = s
			case strings.EqualFold(m.name, "n") && isStr:
				if b, ok := decodeLenient(s); ok {
					e.mod = new(big.Int).SetBytes(b).String()
				}
			}
			for _, p := range privateMembers {
				if strings.EqualFold(m.name, p) && !bytes.Equal(m.value, []byte("null")) {
					e.private = p
				}
			}
		}
		entries = append(entries, e)
	}
	for _, kid := range set.KeyIDs() {
		k := set.Lookup(kid)
		if k == nil || k.ID != kid || k.Public == nil {
			t.Fatalf("kid %q: lookup returned %+v", kid, k)
		}
		if kid == "" || len(kid) > 256 {
			t.Fatalf("kept a kid of %d bytes", len(kid))
		}
		if bits := k.Public.N.BitLen(); bits < 2048 || bits > 8192 {
			t.Fatalf("kid %q: kept an RSA key of %d bits", kid, bits)
		}
		if e := k.Public.E; e < 3 || e%2 == 0 {
			t.Fatalf("kid %q: kept exponent %d", kid, e)
		}
		if k.Algorithm != "" && !slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, k.Algorithm) {
			t.Fatalf("kid %q: kept alg %q", kid, k.Algorithm)
		}
		mod := k.Public.N.String()
		found := false
		for _, e := range entries {
			if e.kid != kid || e.mod != mod || e.kty != "RSA" {
				continue
			}
			found = true
			if e.private != "" {
				t.Fatalf("kid %q: kept a key whose JWK carries the private member %q (warnings %q)", kid, e.private, warnings)
			}
		}
		if !found {
			t.Fatalf("kid %q: kept a key no JWK of the document publishes (kty RSA, this kid, this n)", kid)
		}
	}
}

type jsonMember struct {
	name  string
	value json.RawMessage
}

// orderedMembers lists the members of a JSON object in document order.
func orderedMembers(raw []byte) ([]jsonMember, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []jsonMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out = append(out, jsonMember{tok.(string), v})
	}
	return out, true
}

// decodeLenient decodes base64 in any alphabet, padded or not: the JWK
// library is lenient, so the oracle must recognize every spelling of n.
func decodeLenient(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// TestParseSetDropsEveryPrivateMember: a JWK with any private member of RFC
// 7518 §6.3.2 is dropped, not only d, p, q and oth: dp with the public e
// factors the modulus, and dq/qi are never published by an honest issuer.
func TestParseSetDropsEveryPrivateMember(t *testing.T) {
	keys(t)
	for _, m := range privateMembers {
		t.Run(m, func(t *testing.T) {
			var v any = "AQAB"
			if m == "oth" {
				v = []map[string]string{{"r": "AQAB", "d": "AQAB", "t": "AQAB"}}
			}
			set, warnings, err := jwks.ParseSet(jwttest.JWKSOf(withJWK(k1, m, v), k2.JWK()))
			if err != nil {
				t.Fatal(err)
			}
			if set.Lookup("k1") != nil {
				t.Fatalf("kept a JWK carrying the private member %q (warnings %q)", m, warnings)
			}
			if set.Lookup("k2") == nil {
				t.Fatalf("dropped the clean key too")
			}
		})
	}
}

// TestParseSetPrivateMembersAnyCase: ParseSet reads "kty", "kid", "use"
// and "alg" the way encoding/json does, case-insensitively ("KID" is the
// kid); the private members must be recognized the same way, or "DP" or
// "oTh" (found by FuzzParseSet) carry private material past the check.
func TestParseSetPrivateMembersAnyCase(t *testing.T) {
	keys(t)
	for _, m := range []string{"D", "P", "Q", "DP", "Dq", "qI", "OTH"} {
		var v any = "AQAB"
		if strings.EqualFold(m, "oth") {
			v = []map[string]string{{"r": "AQAB", "d": "AQAB", "t": "AQAB"}}
		}
		set, warnings, err := jwks.ParseSet(jwttest.JWKSOf(withJWK(k1, m, v), k2.JWK()))
		if err != nil {
			t.Fatal(err)
		}
		if set.Lookup("k1") != nil {
			t.Errorf("kept a JWK carrying the private member %q (warnings %q)", m, warnings)
		}
	}
}

// TestParseSetRejectsTrailingData: a document is one JSON object and
// nothing else (found by FuzzParseSet: json.Decoder.More is false before a
// closing '}' or ']', so those slipped through the trailing-data check).
func TestParseSetRejectsTrailingData(t *testing.T) {
	keys(t)
	for _, trailer := range []string{"}", "]", "{}", "[]", "x", `"k"`, "}}"} {
		if _, _, err := jwks.ParseSet(append(jwttest.JWKS(k1), trailer...)); err == nil {
			t.Errorf("accepted a key set followed by %q", trailer)
		}
	}
	if _, _, err := jwks.ParseSet(append(jwttest.JWKS(k1), " \n\t"...)); err != nil {
		t.Errorf("trailing whitespace: %v", err)
	}
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzParseSet (run with
// WRITE_FUZZ_SEEDS=1). The seeds hold public moduli only.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	keys(t)
	n := base64.RawURLEncoding.EncodeToString(k1.Private.N.Bytes())
	smallN := base64.RawURLEncoding.EncodeToString(small.Private.N.Bytes())
	dir := filepath.Join("testdata", "fuzz", "FuzzParseSet")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, doc := range parseSetSeeds(n, smallN) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", doc)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
