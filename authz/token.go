package authz

import (
	"crypto"
	"crypto/rsa"
	_ "crypto/sha256" // RS256, PS256
	_ "crypto/sha512" // RS384, RS512, PS384, PS512
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// header is the part of a JWS protected header we act on. "jku", "x5u",
// "jwk" and "x5c" are deliberately never read: keys come only from the
// configured key source.
type header struct {
	alg string
	kid string
}

// maxKIDLen bounds the kid: it is attacker input used as a map key.
const maxKIDLen = 256

// splitToken checks the compact serialization — exactly three non-empty
// base64url segments, nothing else — in one pass, before any allocation,
// so a token of 10,000 dots costs one scan.
func splitToken(tok string) (head, payload, sig string, err *Error) {
	first, second := -1, -1
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
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

var b64 = base64.RawURLEncoding.Strict()

func decodeSegment(seg string, dst []byte) ([]byte, error) {
	n, err := b64.Decode(dst[:b64.DecodedLen(len(seg))], []byte(seg))
	if err != nil {
		return nil, err
	}
	return dst[:n], nil
}

// parseHeader decodes and checks the protected header.
func parseHeader(seg string, allowed algSet) (header, *Error) {
	var buf [512]byte
	if b64.DecodedLen(len(seg)) > len(buf) {
		return header{}, malformed("token header is too large", nil)
	}
	raw, err := decodeSegment(seg, buf[:])
	if err != nil {
		return header{}, malformed("token header is malformed", err)
	}
	var mbuf [8]member
	members, err := scanObject(raw, mbuf[:0])
	if err != nil {
		return header{}, malformed("token header is malformed", err)
	}
	var h header
	var hasAlg, hasKID bool
	for _, m := range members {
		switch m.key {
		case "alg":
			if m.kind != kindString {
				return header{}, malformed("token header is malformed", errors.New("alg is not a string"))
			}
			h.alg, _ = decodeString(m.raw)
			hasAlg = true
		case "kid":
			if m.kind != kindString {
				return header{}, malformed("token header is malformed", errors.New("kid is not a string"))
			}
			h.kid, _ = decodeString(m.raw)
			hasKID = true
		case "crit":
			// RFC 7515 §4.1.11: extensions we do not understand make the
			// JWS invalid; we understand none.
			return header{}, invalid("crit", "token uses unsupported critical header parameters", nil)
		}
	}
	if !hasAlg {
		return header{}, malformed("token header has no alg", nil)
	}
	if !allowed.has(h.alg) {
		return header{}, invalid("alg", "token signing algorithm is not allowed", fmt.Errorf("alg %s", quoteForError(h.alg)))
	}
	if !hasKID || h.kid == "" {
		return header{}, invalid("no_kid", "token header has no kid", nil)
	}
	if len(h.kid) > maxKIDLen {
		return header{}, invalid("unknown_kid", "token signing key is not known", errors.New("kid too long"))
	}
	return h, nil
}

// algSet is a small allow-list of RSA JWS algorithms.
type algSet uint8

var algBits = map[string]algSet{"RS256": 1, "RS384": 2, "RS512": 4, "PS256": 8, "PS384": 16, "PS512": 32}

func newAlgSet(algs []string) (algSet, error) {
	var s algSet
	for _, a := range algs {
		bit, ok := algBits[a]
		if !ok {
			return 0, fmt.Errorf("algorithm %q is not supported", a)
		}
		s |= bit
	}
	return s, nil
}

func (s algSet) has(alg string) bool {
	switch alg {
	case "RS256":
		return s&1 != 0
	case "RS384":
		return s&2 != 0
	case "RS512":
		return s&4 != 0
	case "PS256":
		return s&8 != 0
	case "PS384":
		return s&16 != 0
	case "PS512":
		return s&32 != 0
	}
	return false
}

// verifySignature checks the RSA signature over "header.payload".
func verifySignature(pub *rsa.PublicKey, alg, signingInput, sigSeg string) error {
	var hash crypto.Hash
	pss := strings.HasPrefix(alg, "PS")
	switch alg {
	case "RS256", "PS256":
		hash = crypto.SHA256
	case "RS384", "PS384":
		hash = crypto.SHA384
	case "RS512", "PS512":
		hash = crypto.SHA512
	default:
		return fmt.Errorf("algorithm %q", alg)
	}
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
	h := hash.New()
	h.Write([]byte(signingInput))
	var dbuf [64]byte
	digest := h.Sum(dbuf[:0])
	if pss {
		return rsa.VerifyPSS(pub, hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: hash})
	}
	return rsa.VerifyPKCS1v15(pub, hash, digest, sig)
}
