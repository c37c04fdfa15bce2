package jwks

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"filippo.io/bigmod"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/caddy-cognito/caddy-cognito/config"
)

// Key is one verification key, ready for the hot path.
type Key struct {
	// ID is the JWK "kid".
	ID string
	// Algorithm is the JWK "alg", or "" when the JWK does not pin one.
	Algorithm string
	// Public is the RSA public key.
	Public *rsa.PublicKey

	modulus *bigmod.Modulus
}

// Modulus returns the key's modulus prepared for modular arithmetic (its
// Montgomery constants), computed once when the key set was parsed, so
// verifiers need not redo it for every signature (a third of the cost of
// an RSA-2048 verification). Nil for a Key not made by ParseSet.
func (k *Key) Modulus() *bigmod.Modulus { return k.modulus }

// Set is an immutable set of verification keys, indexed by kid.
type Set struct {
	keys    map[string]*Key
	version string
}

// Lookup returns the key with the given kid, or nil.
func (s *Set) Lookup(kid string) *Key {
	if s == nil {
		return nil
	}
	return s.keys[kid]
}

// Len returns the number of keys.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// KeyIDs returns the kids, sorted.
func (s *Set) KeyIDs() []string {
	ids := make([]string, 0, s.Len())
	if s != nil {
		for id := range s.keys {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Version is the source's version of the document the set came from.
func (s *Set) Version() string {
	if s == nil {
		return ""
	}
	return s.version
}

// Limits of a key set. Cognito publishes two keys per pool.
const (
	maxKeys    = 64
	minRSABits = 2048
	maxRSABits = 8192
)

// MaxKeyIDBytes bounds a key id, in a key set and in a token header (where
// it is attacker input used as a map key). The one home of the rule.
const MaxKeyIDBytes = 256

// privateMembers are the JWK members of RSA private keys (RFC 7518 §6.3.2)
// and of symmetric keys ("k").
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// ErrNoUsableKey reports a key set from which hygiene dropped every key.
var ErrNoUsableKey = errors.New("jwks: no usable key in the key set")

// ParseSet parses a JWKS document and keeps only the keys fit to verify
// RS*/PS* signatures: kty RSA, "use" absent or "sig", a non-empty kid, an
// RSA "alg" if any, a modulus of 2048 to 8192 bits, and no private members.
// Each dropped key is described in warnings. A document with no usable key is
// an error, so a broken publish never replaces good keys.
func ParseSet(doc []byte) (set *Set, warnings []string, err error) {
	if len(doc) > MaxDocumentBytes {
		return nil, nil, fmt.Errorf("jwks: document of %d bytes exceeds the %d-byte limit", len(doc), MaxDocumentBytes)
	}
	if !utf8.Valid(doc) {
		return nil, nil, errors.New("jwks: document is not valid UTF-8")
	}
	var top struct {
		Keys []json.RawMessage `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(&top); err != nil {
		return nil, nil, fmt.Errorf("jwks: document is not a JSON object with a \"keys\" array: %w", err)
	}
	if len(bytes.TrimLeft(doc[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, nil, errors.New("jwks: trailing data after the JSON document")
	}
	if top.Keys == nil {
		return nil, nil, errors.New(`jwks: document has no "keys" array`)
	}
	if len(top.Keys) > maxKeys {
		return nil, nil, fmt.Errorf("jwks: %d keys exceed the limit of %d", len(top.Keys), maxKeys)
	}
	keys := make(map[string]*Key, len(top.Keys))
	dup := map[string]bool{}
	for i, raw := range top.Keys {
		k, why := parseKey(raw)
		if why != "" {
			warnings = append(warnings, fmt.Sprintf("key %d dropped: %s", i, why))
			continue
		}
		if _, ok := keys[k.ID]; ok || dup[k.ID] {
			// Two keys under one kid make the lookup ambiguous: trust neither.
			delete(keys, k.ID)
			dup[k.ID] = true
			warnings = append(warnings, fmt.Sprintf("key %d dropped: kid %q appears more than once", i, k.ID))
			continue
		}
		keys[k.ID] = k
	}
	if len(keys) == 0 {
		return nil, warnings, ErrNoUsableKey
	}
	return &Set{keys: keys}, warnings, nil
}

// parseKey returns the key, or a reason to drop it.
func parseKey(raw json.RawMessage) (*Key, string) {
	var probe struct {
		Kty string   `json:"kty"`
		Kid *string  `json:"kid"`
		Use string   `json:"use"`
		Alg string   `json:"alg"`
		Ops []string `json:"key_ops"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, "malformed JWK: " + err.Error()
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, "malformed JWK: " + err.Error()
	}
	if probe.Kty != "RSA" {
		return nil, fmt.Sprintf("kty %q is not RSA", probe.Kty)
	}
	if probe.Kid == nil || *probe.Kid == "" {
		return nil, "no kid"
	}
	kid := *probe.Kid
	if len(kid) > MaxKeyIDBytes {
		return nil, "kid too long"
	}
	if probe.Use != "" && probe.Use != "sig" {
		return nil, fmt.Sprintf("kid %q: use %q is not sig", kid, probe.Use)
	}
	if probe.Ops != nil && !slices.Contains(probe.Ops, "verify") {
		return nil, fmt.Sprintf("kid %q: key_ops does not include verify", kid)
	}
	if probe.Alg != "" && !config.IsRSAAlgorithm(probe.Alg) {
		return nil, fmt.Sprintf("kid %q: alg %q is not an RSA signature algorithm", kid, probe.Alg)
	}
	for name := range members {
		for _, m := range privateMembers {
			// Case-insensitively, as encoding/json matches the members
			// we read: "D" must not slip past a check for "d".
			if strings.EqualFold(name, m) {
				// A published private key is compromised; whoever
				// published it should rotate it. Never verify with it.
				return nil, fmt.Sprintf("kid %q: contains private key material %q (rotate this key)", kid, name)
			}
		}
	}
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, fmt.Sprintf("kid %q: %v", kid, err)
	}
	var pub rsa.PublicKey
	if err := key.Raw(&pub); err != nil {
		return nil, fmt.Sprintf("kid %q: not an RSA public key: %v", kid, err)
	}
	if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Sprintf("kid %q: RSA modulus of %d bits (want %d to %d)", kid, bits, minRSABits, maxRSABits)
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return nil, fmt.Sprintf("kid %q: invalid RSA exponent %d", kid, pub.E)
	}
	m, err := bigmod.NewModulus(pub.N.Bytes())
	if err != nil {
		return nil, fmt.Sprintf("kid %q: invalid RSA modulus: %v", kid, err)
	}
	return &Key{ID: kid, Algorithm: probe.Alg, Public: &pub, modulus: m}, ""
}
