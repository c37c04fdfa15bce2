package browser

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/caddy-cognito/caddy-cognito/e2e/browser/idp"
)

const (
	testUser     = "alice"
	testPassword = idp.Password
	testGroup    = idp.Group
)

// hasGroup reports whether a comma-joined group header holds g.
func hasGroup(header, g string) bool {
	return slices.Contains(strings.Split(header, ","), g)
}

// startProvider serves the provider on a free loopback port until the test
// ends.
func startProvider(t *testing.T) *idp.Provider {
	t.Helper()
	p, err := idp.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// site is a running protected site: the provider, the backend, and Caddy
// with cognito_auth and a login block in front of the backend.
type site struct {
	URL      string // http://localhost:<port>
	Provider *idp.Provider
	Echo     *echo
	ClientID string
}

type siteOptions struct {
	clientAuth string // client_auth; default client_secret_basic
	extra      string // more lines for the login block
	route      string // more lines for cognito_auth
}

// startSite starts the provider, the backend and Caddy. The site is
// "localhost" (browsers treat http://localhost as a secure context, so the
// Secure cookies work without TLS); the provider is on 127.0.0.1, another
// site, as a real identity provider is.
func startSite(t *testing.T, o siteOptions) *site {
	t.Helper()
	p := startProvider(t)
	e := startEcho(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	s := &site{URL: base, Provider: p, Echo: e, ClientID: "web-client-" + strings.ToLower(rand.Text()[:6])}

	secret := rand.Text()
	keys := make([]byte, 32)
	_, _ = rand.Read(keys)
	t.Setenv("BROWSER_TEST_CLIENT_SECRET", secret)
	t.Setenv("BROWSER_TEST_SESSION_KEYS", base64.StdEncoding.EncodeToString(keys))

	c := &idp.Client{
		ID: s.ClientID, Secret: secret, Method: oidc.AuthMethodBasic,
		Redirects:  []string{base + "/oauth2/idpresponse"},
		LogoutURIs: []string{base + "/signed-out"},
	}
	login := "client_secret {env.BROWSER_TEST_CLIENT_SECRET}"
	switch o.clientAuth {
	case "client_secret_post":
		c.Method = oidc.AuthMethodPost
		login += "\n\t\t\t\tclient_auth client_secret_post"
	case "none":
		c.Method, c.Secret = oidc.AuthMethodNone, ""
		login = "client_auth none"
	case "private_key_jwt":
		c.Method, c.Secret = oidc.AuthMethodPrivateKeyJWT, ""
		key, kid, file := clientKey(t)
		c.Key, c.KeyID = &key.PublicKey, kid
		// zitadel's provider wants its issuer as the assertion's
		// audience (as the RFC 7523 revision recommends); the default
		// is the token endpoint.
		login = "client_auth private_key_jwt\n\t\t\t\tprivate_key " + file + "\n\t\t\t\tprivate_key_id " + kid + "\n\t\t\t\tclient_assertion_audience " + p.Issuer
	}
	p.AddClient(c)

	caddyfile := fmt.Sprintf(`{
	admin off
	auto_https off
	log {
		level ERROR
	}
}

%[1]s {
	handle /signed-out {
		respond "signed out" 200
	}
	handle {
		cognito_auth {
			issuer %[2]s
			audience %[3]s
			groups %[4]s
			jwks url %[2]s/keys
			%[7]s
			login {
				%[5]s
				scopes openid profile email offline_access
				logout /logout
				logout_redirect /signed-out
				cookie_secret {env.BROWSER_TEST_SESSION_KEYS}
				alb_headers
				%[6]s
			}
		}
		reverse_proxy %[8]s
	}
}
`, base, p.Issuer, s.ClientID, testGroup, login, o.extra, o.route, e.URL)
	var lines []string
	for _, l := range strings.Split(caddyfile, "\n") {
		if strings.TrimSpace(l) != "" || l == "" {
			lines = append(lines, l)
		}
	}
	startCaddy(t, strings.Join(lines, "\n"))
	waitHTTP(t, base+"/signed-out")
	return s
}

// noRedirect is an HTTP client that shows redirects instead of following.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
