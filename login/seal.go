package login

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// Sealer encrypts and authenticates cookie values with AES-256-GCM. The
// first key seals; every key opens, so keys rotate without signing anyone
// out: put the new key first, and drop the old one once the longest
// session it sealed has ended.
//
// A sealed value is base64url(keyID[4] | nonce[12] | ciphertext+tag). The
// key id (the first bytes of SHA-256 of the key) only picks the key to try;
// the GCM tag is what is trusted. The purpose (the cookie's name) is the
// additional data, so a state cookie cannot be replayed as a session
// cookie or the other way round.
type Sealer struct {
	keys []sealKey
}

type sealKey struct {
	id   [4]byte
	aead cipher.AEAD
}

const (
	keyIDLen = 4
	nonceLen = 12
)

// ErrUnseal is returned for any value that does not open: tampered,
// truncated, sealed with another key or for another purpose.
var ErrUnseal = errors.New("login: sealed value does not open (tampered, truncated, or sealed with a key not configured)")

// NewSealer returns a Sealer over 32-byte keys (the first seals).
func NewSealer(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("login: no cookie keys")
	}
	s := &Sealer{}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("login: cookie key %d is %d bytes, want 32", i+1, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("login: cookie key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("login: cookie key %d: %w", i+1, err)
		}
		sum := sha256.Sum256(k)
		var id [4]byte
		copy(id[:], sum[:])
		s.keys = append(s.keys, sealKey{id: id, aead: aead})
	}
	return s, nil
}

// Seal encrypts plaintext for purpose with the first key.
func (s *Sealer) Seal(purpose string, plaintext []byte) string {
	k := s.keys[0]
	out := make([]byte, keyIDLen+nonceLen, keyIDLen+nonceLen+len(plaintext)+k.aead.Overhead())
	copy(out, k.id[:])
	_, _ = rand.Read(out[keyIDLen:])
	out = k.aead.Seal(out, out[keyIDLen:keyIDLen+nonceLen], plaintext, []byte(purpose))
	return base64.RawURLEncoding.EncodeToString(out)
}

// Open decrypts a value sealed for purpose with any of the keys.
func (s *Sealer) Open(purpose, value string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < keyIDLen+nonceLen+16 {
		return nil, ErrUnseal
	}
	for _, k := range s.keys {
		if [4]byte(raw[:keyIDLen]) != k.id {
			continue
		}
		if pt, err := k.aead.Open(nil, raw[keyIDLen:keyIDLen+nonceLen], raw[keyIDLen+nonceLen:], []byte(purpose)); err == nil {
			return pt, nil
		}
	}
	return nil, ErrUnseal
}
