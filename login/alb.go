package login

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ALB headers, as an Application Load Balancer sends them after
// authenticate-cognito, so a backend written for an ALB runs unchanged.
const (
	HeaderALBAccessToken = "X-Amzn-Oidc-Accesstoken"
	HeaderALBIdentity    = "X-Amzn-Oidc-Identity"
	HeaderALBData        = "X-Amzn-Oidc-Data"
)

// albDataLifetime: the ALB mints x-amzn-oidc-data per request with a short
// life (one capture shows about two minutes); ours is the same, capped at
// the token's own expiry.
const albDataLifetime = 2 * time.Minute

// ALBSigner signs x-amzn-oidc-data with an EC P-256 key (ES256).
type ALBSigner struct {
	key    *ecdsa.PrivateKey
	kid    string
	signer string
	issuer string
	client string
	pem    []byte
}

// NewALBSigner returns a signer. keyPEM may be nil: a key is generated.
// The kid is derived from the public key (a UUID-shaped hash of it), so
// sidecars given the same key file agree on it.
func NewALBSigner(keyPEM []byte, signer, issuer, clientID string) (*ALBSigner, error) {
	var key *ecdsa.PrivateKey
	if keyPEM == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	} else {
		blk, _ := pem.Decode(keyPEM)
		if blk == nil {
			return nil, errors.New("alb_key: not PEM")
		}
		var k any
		var err error
		if blk.Type == "EC PRIVATE KEY" {
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		} else {
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		}
		if err != nil {
			return nil, errors.New("alb_key: not an EC private key (SEC 1 or PKCS#8 PEM)")
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok || ek.Curve != elliptic.P256() {
			return nil, errors.New("alb_key: must be an EC P-256 key (ES256)")
		}
		key = ek
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	h := fmt.Sprintf("%x", sum[:16])
	kid := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	return &ALBSigner{
		key: key, kid: kid, signer: signer, issuer: issuer, client: clientID,
		pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
	}, nil
}

// KeyID is the kid of the signing key.
func (s *ALBSigner) KeyID() string { return s.kid }

// PublicKeyPEM is the public key, served at <alb_key_path>/<kid>.
func (s *ALBSigner) PublicKeyPEM() []byte { return s.pem }

// dropFromData are token mechanics, not user claims: the ALB's data token
// carries the user's attributes.
var dropFromData = map[string]bool{
	"aud": true, "nonce": true, "at_hash": true, "c_hash": true, "token_use": true, "auth_time": true,
	"iat": true, "nbf": true, "jti": true, "origin_jti": true, "event_id": true, "azp": true, "amr": true,
	"acr": true, "sid": true,
}

// Data returns x-amzn-oidc-data for the session: the ID token's user
// claims (with cognito:groups, which the ALB's own header lacks) as an
// ES256 JWT whose header has the ALB's fields (typ, kid, alg, signer, iss,
// client, exp), every segment base64url with padding, as the ALB sends it.
func (s *ALBSigner) Data(idToken string, tokenExp int64, now time.Time) (string, error) {
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return "", errors.New("id token is not a compact JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", fmt.Errorf("id token payload: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return "", fmt.Errorf("id token payload: %w", err)
	}
	for k := range claims {
		if dropFromData[k] {
			delete(claims, k)
		}
	}
	exp := now.Add(albDataLifetime).Unix()
	if tokenExp > 0 && tokenExp < exp {
		exp = tokenExp
	}
	claims["exp"] = exp
	claims["iss"] = s.issuer
	hdr := map[string]any{"typ": "JWT", "kid": s.kid, "alg": "ES256", "iss": s.issuer, "client": s.client, "signer": s.signer, "exp": exp}
	hj, err := json.Marshal(hdr)
	if err != nil {
		return "", err
	}
	pj, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.URLEncoding.EncodeToString(hj) + "." + base64.URLEncoding.EncodeToString(pj)
	sum := sha256.Sum256([]byte(input))
	r, ss, err := ecdsa.Sign(rand.Reader, s.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return input + "." + base64.URLEncoding.EncodeToString(sig), nil
}
