package login

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddy-cognito/caddy-cognito/config"
)

// TokenResponse is the token endpoint's answer (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
}

// TokenError is a failed token request. Status 0 means the endpoint could
// not be reached.
type TokenError struct {
	Status      int
	Code        string // the OAuth "error", e.g. invalid_grant
	Description string // the OAuth "error_description" (from the provider; logged, never shown)
	Err         error
}

func (e *TokenError) Error() string {
	var b strings.Builder
	b.WriteString("token endpoint: ")
	if e.Status == 0 {
		b.WriteString("unreachable")
	} else {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, " (%.200q)", e.Description)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *TokenError) Unwrap() error { return e.Err }

// Hint says what to fix, for the log line of a failed sign-in.
func (e *TokenError) Hint() string {
	switch {
	case e.Status == 0:
		return "check that the token endpoint is reachable from this host (DNS, egress, TLS trust)"
	case e.Code == "invalid_client" || e.Status == http.StatusUnauthorized:
		return "the provider refused the client authentication: check client_id, client_secret / private_key and client_auth against the app client's settings"
	case e.Code == "invalid_grant":
		return "the code or refresh token was refused: an expired or reused code, a callback URL that is not registered exactly as <scheme>://<host><callback>, or a revoked session"
	case e.Code == "unauthorized_client":
		return "the app client is not allowed the authorization-code or refresh-token grant"
	case e.Status >= 500:
		return "the identity provider failed; retry later"
	}
	return "see the provider's error above"
}

// clientAuth authenticates the client at the token endpoint.
type clientAuth struct {
	method    string
	clientID  string
	secret    string
	key       *rsa.PrivateKey
	keyID     string
	assertAud string // default: the token endpoint
	now       func() time.Time
}

// assertionLifetime is the client assertion's lifetime: short, as RFC 7523
// §3 asks ("the authorization server MAY reject JWTs with an exp claim
// value that is unreasonably far in the future").
const assertionLifetime = 5 * time.Minute

// apply adds the client authentication to a token request.
func (c *clientAuth) apply(req *http.Request, form url.Values, tokenURL string) error {
	switch c.method {
	case config.ClientAuthBasic:
		// RFC 6749 §2.3.1: both parts form-urlencoded before Basic.
		req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.secret))
	case config.ClientAuthPost:
		form.Set("client_id", c.clientID)
		form.Set("client_secret", c.secret)
	case config.ClientAuthPrivateKeyJWT:
		aud := c.assertAud
		if aud == "" {
			aud = tokenURL
		}
		a, err := c.assertion(aud)
		if err != nil {
			return err
		}
		form.Set("client_id", c.clientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", a)
	default: // none: a public client names itself
		form.Set("client_id", c.clientID)
	}
	return nil
}

// assertion is the RS256 client assertion of RFC 7523 §3 / OpenID Connect
// Core §9: iss = sub = client id, aud, a unique jti, iat, exp.
func (c *clientAuth) assertion(aud string) (string, error) {
	now := c.now()
	hdr := map[string]string{"alg": "RS256", "typ": "JWT"}
	if c.keyID != "" {
		hdr["kid"] = c.keyID
	}
	claims := map[string]any{
		"iss": c.clientID,
		"sub": c.clientID,
		"aud": aud,
		"jti": rand.Text(),
		"iat": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
	}
	return signRS256(c.key, hdr, claims)
}

func signRS256(key *rsa.PrivateKey, hdr map[string]string, claims map[string]any) (string, error) {
	h, err := json.Marshal(hdr)
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("signing client assertion: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// maxTokenResponseBytes bounds the token endpoint's answer (three tokens
// of a few KiB each).
const maxTokenResponseBytes = 1 << 20

// tokenRequest posts form to the token endpoint with the client's
// authentication.
func tokenRequest(ctx context.Context, client *http.Client, auth *clientAuth, tokenURL string, form url.Values) (*TokenResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, nil)
	if err != nil {
		return nil, &TokenError{Err: err}
	}
	if err := auth.apply(req, form, tokenURL); err != nil {
		return nil, &TokenError{Err: err}
	}
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, &TokenError{Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponseBytes))
	if err != nil {
		return nil, &TokenError{Status: resp.StatusCode, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(raw, &e)
		return nil, &TokenError{Status: resp.StatusCode, Code: printable(e.Error, 64), Description: printable(e.Description, 200)}
	}
	var tr TokenResponse
	if err := json.Unmarshal(raw, &tr); err != nil {
		return nil, &TokenError{Status: resp.StatusCode, Err: fmt.Errorf("response is not a token response: %w", err)}
	}
	if tr.AccessToken == "" {
		return nil, &TokenError{Status: resp.StatusCode, Err: errors.New("response has no access_token")}
	}
	if tt := tr.TokenType; tt != "" && !strings.EqualFold(tt, "Bearer") {
		return nil, &TokenError{Status: resp.StatusCode, Err: fmt.Errorf("token_type %.20q is not Bearer", tt)}
	}
	return &tr, nil
}

// printable keeps provider text safe for a log line.
func printable(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

// ParsePrivateKey reads an RSA private key for private_key_jwt: PEM
// (PKCS#1 or PKCS#8) or a JWK (whose kid is returned). Error messages never
// include key material.
func ParsePrivateKey(data []byte) (*rsa.PrivateKey, string, error) {
	if blk, _ := pem.Decode(data); blk != nil {
		if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
			return k, "", nil
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, "", errors.New("PEM block is neither a PKCS#1 nor a PKCS#8 private key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, "", fmt.Errorf("private key is %T, want RSA (RS256)", k)
		}
		return rk, "", nil
	}
	var j struct {
		Kty, Kid, N, E, D, P, Q, Dp, Dq, Qi string
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, "", errors.New("neither PEM nor a JSON Web Key")
	}
	if j.Kty != "RSA" || j.D == "" || j.P == "" || j.Q == "" {
		return nil, "", errors.New("JWK is not an RSA private key (kty RSA with d, p, q)")
	}
	ints := make([]*big.Int, 5)
	for i, s := range []string{j.N, j.E, j.D, j.P, j.Q} {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil || len(b) == 0 {
			return nil, "", errors.New("JWK has a malformed RSA member")
		}
		ints[i] = new(big.Int).SetBytes(b)
	}
	if !ints[1].IsInt64() || ints[1].Int64() > 1<<31-1 {
		return nil, "", errors.New("JWK exponent out of range")
	}
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: ints[0], E: int(ints[1].Int64())},
		D:         ints[2],
		Primes:    []*big.Int{ints[3], ints[4]},
	}
	if err := k.Validate(); err != nil {
		return nil, "", errors.New("JWK is not a consistent RSA private key")
	}
	k.Precompute()
	if k.N.BitLen() < 2048 {
		return nil, "", fmt.Errorf("RSA key is %d bits, want at least 2048", k.N.BitLen())
	}
	return k, j.Kid, nil
}
