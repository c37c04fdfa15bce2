package login

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
)

// TestALBData checks x-amzn-oidc-data as a backend written for an ALB
// checks it: ES256 over the padded segments with the PEM public key served
// for the kid, the ALB's header fields, the user's claims.
func TestALBData(t *testing.T) {
	s, err := NewALBSigner(nil, "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x/y", "https://issuer", "client-1")
	if err != nil {
		t.Fatal(err)
	}
	key := jwttest.NewKey(t, "k")
	now := time.Now()
	id := key.Sign(t, jwttest.Token{Claims: map[string]any{
		"sub": "user-1", "email": "a@example.com", "cognito:groups": []string{"staff"}, "aud": "client-1",
		"nonce": "n", "token_use": "id", "exp": now.Add(time.Hour).Unix(),
	}})
	tok, err := s.Data(id, now.Add(time.Hour).Unix(), now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("data %q", tok)
	}
	for i, p := range parts {
		if len(p)%4 != 0 {
			t.Fatalf("segment %d not padded: %q", i, p)
		}
	}
	blk, _ := pem.Decode(s.PublicKeyPEM())
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.URLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(pub.(*ecdsa.PublicKey), sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("ES256 signature does not verify with the served public key")
	}
	var hdr, claims map[string]any
	hb, _ := base64.URLEncoding.DecodeString(parts[0])
	pb, _ := base64.URLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(hb, &hdr)
	_ = json.Unmarshal(pb, &claims)
	if hdr["alg"] != "ES256" || hdr["kid"] != s.KeyID() || hdr["signer"] != "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x/y" ||
		hdr["client"] != "client-1" || hdr["iss"] != "https://issuer" || hdr["typ"] != "JWT" {
		t.Fatalf("header %v", hdr)
	}
	if exp := hdr["exp"].(float64); exp > float64(now.Add(albDataLifetime).Unix()) || exp < float64(now.Unix()) {
		t.Fatalf("exp %v", exp)
	}
	if claims["sub"] != "user-1" || claims["email"] != "a@example.com" || claims["nonce"] != nil || claims["aud"] != nil {
		t.Fatalf("claims %v", claims)
	}
	if g, _ := claims["cognito:groups"].([]any); len(g) != 1 || g[0] != "staff" {
		t.Fatalf("groups %v", claims["cognito:groups"])
	}
}
