package browser

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium finds the browser. Without one the test skips, unless CI is
// set: then it fails (.ci/run installs the Debian package "chromium").
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required with CI set (apt-get install chromium)")
	}
	t.Skip("chromium not installed (apt-get install chromium); set CI=true to make this a failure")
	return ""
}

// browserPage is the echo page as the browser shows it.
type browserPage struct {
	URL     string
	Path    string
	Headers map[string]string
}

// TestBrowserSignIn drives a real headless Chromium through the sign-in:
// a protected page redirects to the provider, the user signs in on the
// provider's page, lands back on the original URL and the backend's echo
// shows the identity (X-Cognito-* and the ALB headers); then the session
// is refreshed at the provider after its access token nears expiry, a
// fetch() without a session gets 401 while a navigation is redirected, a
// tampered cookie is refused, and logout ends the session at the provider.
func TestBrowserSignIn(t *testing.T) {
	exe := chromium(t)
	s := startSite(t, siteOptions{})
	// The first tokens live 62 s: a minute before expiry they are
	// refreshed, so the refresh happens within seconds, with no clock
	// tricks in the browser or the server.
	s.Provider.SetAccessTokenTTL(62 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // containers run as root
		chromedp.Flag("headless", "new"),
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	fail := func(step string, err error) {
		t.Helper()
		url, _ := chromedp.Run(bctx, chromedp.Location())
		body, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v (at %s: %.500s)", step, err, url, body)
	}
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			fail(step, err)
		}
	}
	location := func() string {
		t.Helper()
		url, err := chromedp.Run(bctx, chromedp.Location())
		if err != nil {
			fail("location", err)
		}
		return url
	}
	echoPage := func(step string) browserPage {
		t.Helper()
		run(step, chromedp.WaitVisible(chromedp.ID("echo")))
		txt, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("echo")))
		if err != nil {
			fail(step, err)
		}
		var v struct {
			Path    string            `json:"path"`
			Headers map[string]string `json:"headers"`
		}
		if err := json.Unmarshal([]byte(txt), &v); err != nil {
			t.Fatalf("%s: echo page: %v: %s", step, err, txt)
		}
		return browserPage{URL: location(), Path: v.Path, Headers: v.Headers}
	}
	signInOnProviderPage := func(step, user string) {
		t.Helper()
		run(step+": provider's login page", chromedp.WaitVisible(chromedp.ID("username")))
		if url := location(); !strings.HasPrefix(url, s.Provider.Issuer+"/login/username") {
			t.Fatalf("%s: expected the provider's login page, at %s", step, url)
		}
		run(step+": sign in",
			chromedp.SendKeys(chromedp.ID("username"), user),
			chromedp.SendKeys(chromedp.ID("password"), testPassword),
			chromedp.Submit(chromedp.ID("password")),
		)
	}
	sessionCookies := func() map[string]*network.Cookie {
		t.Helper()
		res, err := chromedp.Call(bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.URL + "/"}})
		if err != nil {
			fail("cookies", err)
		}
		m := map[string]*network.Cookie{}
		for _, c := range res.Cookies {
			if strings.HasPrefix(c.Name, "cognito_session-") {
				m[c.Name] = c
			}
		}
		return m
	}
	fetchStatus := func(path string) int {
		t.Helper()
		status, err := chromedp.Run(bctx, chromedp.Evaluate[int](`fetch(`+jsString(path)+`, {credentials: "same-origin"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
		if err != nil {
			fail("fetch "+path, err)
		}
		return status
	}

	// 1. A protected page: redirected to the provider, sign in, back on
	// the original URL, the backend sees who signed in.
	const original = "/reports/q3?region=eu&sort=desc"
	run("open the protected page", chromedp.Navigate(s.URL+original))
	signInOnProviderPage("first sign-in", testUser)
	p := echoPage("back on the original URL")
	if p.URL != s.URL+original || p.Path != original {
		t.Fatalf("landed at %s (backend path %s), want %s", p.URL, p.Path, s.URL+original)
	}
	h := p.Headers
	if h["X-Cognito-Sub"] != "user-alice" || h["X-Cognito-Username"] != testUser || h["X-Cognito-Token-Use"] != "access" ||
		!hasGroup(h["X-Cognito-Groups"], testGroup) || h["X-Cognito-Client-Id"] != s.ClientID {
		t.Fatalf("identity headers: %v", h)
	}
	if strings.Contains(h["Cookie"], "cognito_session") {
		t.Fatalf("the backend saw the session cookie: %q", h["Cookie"])
	}
	if h["X-Amzn-Oidc-Identity"] != "user-alice" || !strings.HasPrefix(h["X-Amzn-Oidc-Accesstoken"], "ey") {
		t.Fatalf("ALB headers: %v", h)
	}
	checkALBData(t, s, h["X-Amzn-Oidc-Data"])
	cookies := sessionCookies()
	if len(cookies) == 0 {
		t.Fatal("no session cookie in the browser")
	}
	for _, c := range cookies {
		if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax || c.Path != "/" {
			t.Fatalf("session cookie %s: HttpOnly %v Secure %v SameSite %v Path %s", c.Name, c.HTTPOnly, c.Secure, c.SameSite, c.Path)
		}
	}
	if got := fetchStatus("/api/data"); got != 200 {
		t.Fatalf("fetch() with the session: %d", got)
	}

	// 2. Refresh: the access token has under a minute left within a few
	// seconds; reloading then refreshes it at the provider (its
	// refresh_token grant), with no new sign-in.
	s.Provider.SetAccessTokenTTL(time.Hour)
	firstToken := h["X-Amzn-Oidc-Accesstoken"]
	deadline := time.Now().Add(60 * time.Second)
	for s.Provider.RefreshGrants() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the session was not refreshed")
		}
		run("reload", chromedp.Reload())
		echoPage("reloaded")
	}
	run("reload after refresh", chromedp.Reload())
	p = echoPage("after the refresh")
	if p.Headers["X-Cognito-Sub"] != "user-alice" || p.Headers["X-Amzn-Oidc-Accesstoken"] == firstToken {
		t.Fatalf("after refresh: sub %q, token changed %v", p.Headers["X-Cognito-Sub"], p.Headers["X-Amzn-Oidc-Accesstoken"] != firstToken)
	}
	if n := s.Provider.CodeGrants(); n != 1 {
		t.Fatalf("%d sign-ins; the refresh must not sign in again", n)
	}

	// 3. A tampered cookie: fetch() gets 401 (never a redirect), a
	// navigation goes to the sign-in.
	cookies = sessionCookies()
	c0 := cookies["cognito_session-0"]
	if c0 == nil {
		t.Fatalf("no cognito_session-0 among %v", cookies)
	}
	tampered := []byte(c0.Value)
	tampered[len(tampered)/2] ^= 0x01
	if tampered[len(tampered)/2] == '.' || tampered[len(tampered)/2] > 'z' {
		tampered[len(tampered)/2] = 'A'
	}
	yes := true
	if _, err := chromedp.Call(bctx, network.SetCookie, network.SetCookieParams{
		Name: c0.Name, Value: string(tampered), URL: s.URL + "/", Path: "/",
		HTTPOnly: &yes, Secure: &yes, SameSite: network.CookieSameSiteLax,
	}); err != nil {
		fail("tamper with the cookie", err)
	}
	if got := fetchStatus("/api/data"); got != http.StatusUnauthorized {
		t.Fatalf("fetch() with a tampered cookie: %d, want 401", got)
	}
	run("navigate with the tampered session", chromedp.Navigate(s.URL+"/after-tamper"))
	signInOnProviderPage("sign in again after tampering", testUser)
	p = echoPage("signed in again")
	if p.Path != "/after-tamper" || p.Headers["X-Cognito-Sub"] != "user-alice" {
		t.Fatalf("after the new sign-in: %s %v", p.Path, p.Headers)
	}

	// 4. Logout: every chunk cleared, the provider's logout, back on the
	// signed-out page; the protected page asks for a sign-in again.
	run("logout", chromedp.Navigate(s.URL+"/logout"), chromedp.WaitVisible(chromedp.CSS("body")))
	url := location()
	body, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		fail("signed out", err)
	}
	if url != s.URL+"/signed-out" || !strings.Contains(body, "signed out") {
		t.Fatalf("after logout at %s: %q", url, body)
	}
	if left := sessionCookies(); len(left) != 0 {
		t.Fatalf("session cookies left after logout: %v", left)
	}
	if got := fetchStatus("/api/data"); got != http.StatusUnauthorized {
		t.Fatalf("fetch() after logout: %d", got)
	}
	run("protected page after logout", chromedp.Navigate(s.URL+"/reports"))
	run("login page again", chromedp.WaitVisible(chromedp.ID("username")))
}

// checkALBData verifies x-amzn-oidc-data as a backend written for an ALB
// does: the PEM public key fetched for the header's kid, ES256 over the
// padded segments, the claims.
func checkALBData(t *testing.T, s *site, data string) {
	t.Helper()
	parts := strings.Split(data, ".")
	if len(parts) != 3 {
		t.Fatalf("x-amzn-oidc-data %q", data)
	}
	hb, err := base64.URLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatalf("header segment (padded base64url): %v", err)
	}
	var hdr map[string]any
	_ = json.Unmarshal(hb, &hdr)
	kid, _ := hdr["kid"].(string)
	if hdr["alg"] != "ES256" || hdr["client"] != s.ClientID || hdr["signer"] != "caddy-cognito" || hdr["iss"] != s.Provider.Issuer || kid == "" {
		t.Fatalf("x-amzn-oidc-data header %v", hdr)
	}
	resp, err := http.Get(s.URL + "/oauth2/alb-public-keys/" + kid)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	blk, _ := pem.Decode(pemBytes)
	if resp.StatusCode != 200 || blk == nil {
		t.Fatalf("public key: %d %q", resp.StatusCode, pemBytes)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.URLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(pub.(*ecdsa.PublicKey), sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("x-amzn-oidc-data signature does not verify")
	}
	pb, _ := base64.URLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(pb, &claims)
	if claims["sub"] != "user-alice" || claims["email"] != "alice@example.com" {
		t.Fatalf("x-amzn-oidc-data claims %v", claims)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
