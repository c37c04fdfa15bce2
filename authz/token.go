package authz

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"

	"filippo.io/bigmod"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/config"
)

// header is the part of a JWS protected header we act on. "jku", "x5u",
// "jwk" and "x5c" are deliberately never read: keys come only from the
// configured key source.
type header struct {
	alg    string // one of algNames
	algIdx uint8
	kid    string
}

// splitToken checks the compact serialization — exactly three non-empty
// base64url segments, nothing else — in one pass, before any allocation,
// so a token of 10,000 dots costs one scan. The scan is table-driven, 8
// bytes at a time: a branch per character class would mispredict on every
// few bytes of a random-looking token.
func splitToken(tok string) (head, payload, sig string, err *Error) {
	first, second := -1, -1
	i := 0
	for {
		// Fast path: 8 alphabet bytes at a time.
		for ; i+8 <= len(tok); i += 8 {
			w := tok[i : i+8]
			if tokenClass[w[0]]&tokenClass[w[1]]&tokenClass[w[2]]&tokenClass[w[3]]&
				tokenClass[w[4]]&tokenClass[w[5]]&tokenClass[w[6]]&tokenClass[w[7]] != classAlphabet {
				break
			}
		}
		if i >= len(tok) {
			break
		}
		// Slow path: up to the end of this 8-byte block (or of the token).
		end := min(i+8, len(tok))
		for ; i < end; i++ {
			switch c := tok[i]; tokenClass[c] {
			case classAlphabet:
			case classDot:
				switch {
				case first < 0:
					first = i
				case second < 0:
					second = i
				default:
					return "", "", "", errSegments
				}
			default:
				return "", "", "", malformed("token is malformed: not base64url", fmt.Errorf("byte 0x%02x at offset %d", c, i))
			}
		}
	}
	if second < 0 {
		return "", "", "", errSegments
	}
	head, payload, sig = tok[:first], tok[first+1:second], tok[second+1:]
	if head == "" || payload == "" {
		return "", "", "", malformed("token is malformed: empty segment", nil)
	}
	if sig == "" {
		return "", "", "", invalid("unsigned", "token is unsigned", nil)
	}
	return head, payload, sig, nil
}

// Character classes of a compact JWS: the base64url alphabet and '.'.
const (
	classAlphabet = 1
	classDot      = 2
)

var tokenClass = func() (t [256]uint8) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = classAlphabet
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = classAlphabet
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = classAlphabet
	}
	t['-'], t['_'], t['.'] = classAlphabet, classAlphabet, classDot
	return t
}()

var b64 = base64.RawURLEncoding.Strict()

// decodeSegment decodes a base64url segment into dst, which must be large
// enough.
func decodeSegment(seg string, dst []byte) ([]byte, error) {
	n, err := b64.Decode(dst[:b64.DecodedLen(len(seg))], stringBytes(seg))
	if err != nil {
		return nil, err
	}
	return dst[:n], nil
}

// maxHeaderBytes bounds the decoded protected header.
const maxHeaderBytes = 512

// parseHeader decodes and checks the protected header.
func parseHeader(seg string, allowed algSet) (header, *Error) {
	n := b64.DecodedLen(len(seg))
	if n > maxHeaderBytes {
		return header{}, malformed("token header is too large", nil)
	}
	raw, err := decodeSegment(seg, make([]byte, n))
	if err != nil {
		return header{}, malformed("token header is malformed", err)
	}
	var mbuf [8]member
	members, err := scanObject(raw, mbuf[:0])
	if err != nil {
		return header{}, malformed("token header is malformed", err)
	}
	var algRaw, kidRaw []byte
	for _, m := range members {
		switch m.key {
		case "alg":
			if m.kind != kindString {
				return header{}, malformed("token header is malformed", errors.New("alg is not a string"))
			}
			algRaw = m.raw
		case "kid":
			if m.kind != kindString {
				return header{}, malformed("token header is malformed", errors.New("kid is not a string"))
			}
			kidRaw = m.raw
		case "crit":
			// RFC 7515 §4.1.11: extensions we do not understand make the
			// JWS invalid; we understand none.
			return header{}, invalid("crit", "token uses unsupported critical header parameters", nil)
		}
	}
	if algRaw == nil {
		return header{}, malformed("token header has no alg", nil)
	}
	var h header
	idx, ok := algIndexRaw(algRaw)
	if !ok || !allowed.hasIdx(idx) {
		alg, _ := decodeString(algRaw)
		return header{}, invalid("alg", "token signing algorithm is not allowed", fmt.Errorf("alg %s", quoteForError(alg)))
	}
	h.alg, h.algIdx = algNames[idx], idx
	if kidRaw == nil || len(kidRaw) == 2 {
		return header{}, invalid("no_kid", "token header has no kid", nil)
	}
	h.kid, _ = decodeString(kidRaw)
	if len(h.kid) > jwks.MaxKeyIDBytes {
		return header{}, invalid("unknown_kid", "token signing key is not known", errors.New("kid too long"))
	}
	return h, nil
}

// algNames are the RSA JWS algorithms, in the bit order of algSet.
var algNames = config.RSAAlgorithms()

// algIndex returns the index of alg in algNames.
func algIndex(alg string) (uint8, bool) {
	for i, n := range algNames {
		if n == alg {
			return uint8(i), true
		}
	}
	return 0, false
}

// algIndexRaw is algIndex of a JSON string literal, without allocating.
func algIndexRaw(raw []byte) (uint8, bool) {
	body := raw[1 : len(raw)-1]
	if hasEscape(body) {
		alg, err := decodeString(raw)
		if err != nil {
			return 0, false
		}
		return algIndex(alg)
	}
	return algIndex(string(body))
}

// algSet is a small allow-list of RSA JWS algorithms.
type algSet uint8

func newAlgSet(algs []string) (algSet, error) {
	var s algSet
	for _, a := range algs {
		i, ok := algIndex(a)
		if !ok {
			return 0, fmt.Errorf("algorithm %q is not supported", a)
		}
		s |= 1 << i
	}
	return s, nil
}

func (s algSet) hasIdx(i uint8) bool { return i < 8 && s&(1<<i) != 0 }

var (
	pss256 = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	pss384 = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA384}
	pss512 = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA512}
)

// verifySignature checks the RSA signature over "header.payload": RS*
// with verifyPKCS1v15 (below), PS* with crypto/rsa. sum256, if not nil, is
// the SHA-256 of signingInput, already computed for the cache key.
func verifySignature(key *jwks.Key, alg, signingInput, sigSeg string, sum256 *[sha256.Size]byte) error {
	pub := key.Public
	var sbuf [1024]byte
	if b64.DecodedLen(len(sigSeg)) > len(sbuf) {
		return errors.New("signature too long")
	}
	sig, err := decodeSegment(sigSeg, sbuf[:])
	if err != nil {
		return fmt.Errorf("signature encoding: %w", err)
	}
	if len(sig) != pub.Size() {
		return fmt.Errorf("signature of %d bytes for a %d-byte key", len(sig), pub.Size())
	}
	in := stringBytes(signingInput)
	switch alg {
	case "RS256", "PS256":
		var d [sha256.Size]byte
		if sum256 != nil {
			d = *sum256
		} else {
			d = sha256.Sum256(in)
		}
		if alg == "PS256" {
			return rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, pss256)
		}
		return verifyPKCS1v15With(pub, key.Modulus(), prefixSHA256, d[:], sig)
	case "RS384", "PS384":
		d := sha512.Sum384(in)
		if alg == "PS384" {
			return rsa.VerifyPSS(pub, crypto.SHA384, d[:], sig, pss384)
		}
		return verifyPKCS1v15With(pub, key.Modulus(), prefixSHA384, d[:], sig)
	case "RS512", "PS512":
		d := sha512.Sum512(in)
		if alg == "PS512" {
			return rsa.VerifyPSS(pub, crypto.SHA512, d[:], sig, pss512)
		}
		return verifyPKCS1v15With(pub, key.Modulus(), prefixSHA512, d[:], sig)
	}
	return fmt.Errorf("algorithm %q", alg)
}

// RSASSA-PKCS1-v1_5 verification with a prepared key.
//
// crypto/rsa.VerifyPKCS1v15 converts the public key for its bigmod engine
// on every call — computing the Montgomery constant R² mod N, a third of
// the cost of a 2048-bit verification. verifyPKCS1v15 does exactly what
// crypto/rsa does (RFC 8017 §8.2.2: the signature as an integer must be
// below N, s^e mod N is computed with the same constant-time arithmetic,
// filippo.io/bigmod, which is crypto/rsa's own engine published as a
// module, and the result must equal, byte for byte, the encoding of the
// expected DigestInfo) but converts each key once, when its key set is
// parsed (jwks.Key.Modulus). Tests check it against crypto/rsa on valid,
// corrupted and out-of-range signatures.

// DigestInfo prefixes (RFC 8017 §9.2 note 1), as in crypto/rsa.
var (
	prefixSHA256 = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	prefixSHA384 = []byte{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30}
	prefixSHA512 = []byte{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40}
)

var errRSAVerification = errors.New("crypto/rsa: verification error")

// preparedKey is an RSA public key converted for verification.
type preparedKey struct {
	e    int
	m    *bigmod.Modulus
	size int
}

// prepareKey checks pub as crypto/rsa does (an odd modulus, an odd
// exponent of at least 3 that fits in 31 bits) plus its 1024-bit minimum,
// and converts it, reusing m — the modulus the key set prepared once per
// key — when given.
func prepareKey(pub *rsa.PublicKey, m *bigmod.Modulus) (preparedKey, error) {
	if pub.N == nil || pub.N.Sign() <= 0 || pub.N.Bit(0) == 0 || pub.N.BitLen() < 1024 || pub.N.BitLen() > 16384 {
		return preparedKey{}, errors.New("crypto/rsa: unsupported public modulus")
	}
	if pub.E < 3 || pub.E&1 == 0 || pub.E > 1<<31-1 {
		return preparedKey{}, errors.New("crypto/rsa: unsupported public exponent")
	}
	if m == nil {
		var err error
		if m, err = bigmod.NewModulus(pub.N.Bytes()); err != nil {
			return preparedKey{}, err
		}
	}
	return preparedKey{e: pub.E, m: m, size: m.Size()}, nil
}

// verifyPKCS1v15 is rsa.VerifyPKCS1v15 for a hash with the given DigestInfo
// prefix.
func verifyPKCS1v15(pub *rsa.PublicKey, prefix, digest, sig []byte) error {
	return verifyPKCS1v15With(pub, nil, prefix, digest, sig)
}

func verifyPKCS1v15With(pub *rsa.PublicKey, m *bigmod.Modulus, prefix, digest, sig []byte) error {
	p, err := prepareKey(pub, m)
	if err != nil {
		return err
	}
	k := p.size
	tLen := len(prefix) + len(digest)
	if k < tLen+11 || len(sig) != k || k > 2048 {
		return errRSAVerification
	}
	s, err := bigmod.NewNat().SetBytes(sig, p.m) // fails if s >= N
	if err != nil {
		return errRSAVerification
	}
	em := bigmod.NewNat().ExpShortVarTime(s, uint(p.e), p.m).Bytes(p.m)
	// EM = 0x00 || 0x01 || PS (0xff…) || 0x00 || DigestInfo prefix || digest
	var buf [2048]byte
	want := buf[:k]
	want[0], want[1] = 0x00, 0x01
	for i := 2; i < k-tLen-1; i++ {
		want[i] = 0xff
	}
	want[k-tLen-1] = 0x00
	copy(want[k-tLen:], prefix)
	copy(want[k-len(digest):], digest)
	if subtle.ConstantTimeCompare(em, want) != 1 {
		return errRSAVerification
	}
	return nil
}
