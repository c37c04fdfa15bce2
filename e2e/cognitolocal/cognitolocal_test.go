package cognitolocal

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClientCallAndErrors(t *testing.T) {
	var gotTarget, gotCT string
	var gotBody map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTarget, gotCT = r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type")
		_ = json.NewDecoder(r.Body).Decode(&gotBody)
		switch gotTarget {
		case "AWSCognitoIdentityProviderService.CreateUserPool":
			_, _ = io.WriteString(w, `{"UserPool":{"Id":"local_abc"}}`)
		case "AWSCognitoIdentityProviderService.InitiateAuth":
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"__type":"NotAuthorizedException","message":"Incorrect username or password."}`)
		default:
			w.WriteHeader(500)
			_, _ = io.WriteString(w, `not json`)
		}
	}))
	defer srv.Close()
	c := NewClient(srv.URL + "/")
	ctx := context.Background()

	id, err := c.CreateUserPool(ctx, "p")
	if err != nil || id != "local_abc" {
		t.Fatalf("CreateUserPool = %q, %v", id, err)
	}
	if gotCT != "application/x-amz-json-1.1" || gotBody["PoolName"] != "p" {
		t.Errorf("request: ct %q body %v", gotCT, gotBody)
	}

	_, err = c.Login(ctx, "cid", "u@example.com", "pw")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Type != "NotAuthorizedException" || ae.Op != "InitiateAuth" {
		t.Fatalf("Login error = %#v", err)
	}
	params, _ := gotBody["AuthParameters"].(map[string]any)
	if gotBody["AuthFlow"] != "USER_PASSWORD_AUTH" || params["USERNAME"] != "u@example.com" || params["PASSWORD"] != "pw" {
		t.Errorf("InitiateAuth body %v", gotBody)
	}

	err = c.CreateGroup(ctx, "p", "g")
	if !errors.As(err, &ae) || ae.Status != 500 || !strings.Contains(ae.Message, "not json") {
		t.Fatalf("CreateGroup error = %#v", err)
	}
}

func TestUnverifiedClaimsAndExpiry(t *testing.T) {
	tok := "eyJhbGciOiJub25lIn0." + b64(`{"exp":1700000000,"sub":"s"}`) + ".sig"
	c, err := UnverifiedClaims(tok)
	if err != nil || c["sub"] != "s" {
		t.Fatalf("claims %v, %v", c, err)
	}
	exp, err := Expiry(tok)
	if err != nil || exp.Unix() != 1700000000 {
		t.Fatalf("Expiry %v, %v", exp, err)
	}
	for _, bad := range []string{"", "a.b", "a.!!.c", "a." + b64(`[1]`) + ".c"} {
		if _, err := UnverifiedClaims(bad); err == nil {
			t.Errorf("UnverifiedClaims(%q): want error", bad)
		}
	}
	if _, err := Expiry("a." + b64(`{"exp":"soon"}`) + ".c"); err == nil {
		t.Error("Expiry with string exp: want error")
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestFreePortsDistinct(t *testing.T) {
	ports, err := FreePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("bad or duplicate port %d in %v", p, ports)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", Addr(p))
		if err != nil {
			t.Fatalf("port %d not bindable: %v", p, err)
		}
		ln.Close()
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 5}
	_, _ = b.Write([]byte("abc"))
	if b.String() != "abc" {
		t.Fatalf("%q", b.String())
	}
	_, _ = b.Write([]byte("defg"))
	if b.String() != "[…]cdefg" {
		t.Fatalf("%q", b.String())
	}
}

func pkgDir(t *testing.T) string {
	d, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestAgainstCognitoLocal runs the harness against a real cognito-local.
func TestAgainstCognitoLocal(t *testing.T) {
	RequireNode(t)
	if testing.Short() {
		t.Skip("starts cognito-local; skipped in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := EnsureInstalled(ctx, pkgDir(t), nil); err != nil {
		t.Fatal(err)
	}
	s, err := Start(ctx, Options{PackageDir: pkgDir(t), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("cognito-local output:\n%s", s.Proc.Output())
		}
	})
	c := s.Client()

	pool, err := c.CreateUserPool(ctx, "harness")
	if err != nil {
		t.Fatal(err)
	}
	client, err := c.CreateAppClient(ctx, pool, "short", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateGroup(ctx, pool, "admins"); err != nil {
		t.Fatal(err)
	}
	u, err := c.CreateUser(ctx, pool, "alice@example.com", "Correct-Horse-1", "admins")
	if err != nil {
		t.Fatal(err)
	}
	if u.Sub == "" || u.Username == "" {
		t.Fatalf("user %+v", u)
	}
	tok, err := c.Login(ctx, client, u.Email, u.Password)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := UnverifiedClaims(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if ac["iss"] != s.Issuer(pool) || ac["client_id"] != client || ac["token_use"] != "access" || ac["sub"] != u.Sub {
		t.Errorf("access claims %v", ac)
	}
	if g, _ := ac["cognito:groups"].([]any); len(g) != 1 || g[0] != "admins" {
		t.Errorf("groups %v", ac["cognito:groups"])
	}
	exp, err := Expiry(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if life := time.Until(exp); life > 3*time.Second || life < -time.Second {
		t.Errorf("token lifetime %v, want about 2s", life)
	}
	ic, _ := UnverifiedClaims(tok.IDToken)
	if ic["aud"] != client || ic["token_use"] != "id" {
		t.Errorf("id claims %v", ic)
	}
	ref, err := c.Refresh(ctx, client, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := UnverifiedClaims(ref.AccessToken); rc["sub"] != u.Sub || rc["jti"] == ac["jti"] {
		t.Errorf("refreshed claims %v", rc)
	}

	_, err = c.Login(ctx, client, u.Email, "wrong-password")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("wrong password: %v", err)
	}

	// JWKS is served for the pool.
	resp, err := http.Get(s.JWKSURL(pool))
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct{ Keys []struct{ Kid string } }
	_ = json.NewDecoder(resp.Body).Decode(&jwks)
	resp.Body.Close()
	if len(jwks.Keys) == 0 || jwks.Keys[0].Kid != "CognitoLocal" {
		t.Errorf("jwks %+v", jwks)
	}

	// Stop really stops it.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", Addr(s.Port), time.Second); err == nil {
		conn.Close()
		t.Error("cognito-local still listening after Stop")
	}
}

func TestStartFailsCleanly(t *testing.T) {
	RequireNode(t)
	_, err := Start(context.Background(), Options{PackageDir: t.TempDir(), WorkDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("Start without node_modules: %v", err)
	}
	if _, err := Start(context.Background(), Options{PackageDir: pkgDir(t)}); err == nil {
		t.Error("Start without WorkDir: want error")
	}
}
