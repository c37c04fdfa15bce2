package login

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-cognito/caddy-cognito/config"
)

// Endpoints are the identity provider's URLs the sign-in uses.
type Endpoints struct {
	Authorization string
	Token         string
	// Logout is Cognito's /logout (client_id + logout_uri) when Cognito
	// is true, else the OpenID end_session_endpoint (client_id +
	// post_logout_redirect_uri), or empty when the provider has none.
	Logout string
	// Cognito: the endpoints are a Cognito managed-login domain's.
	Cognito bool
}

// DomainEndpoints returns the endpoints of a Cognito managed-login (hosted
// UI) domain.
func DomainEndpoints(domain string) Endpoints {
	d := strings.TrimSuffix(domain, "/")
	return Endpoints{
		Authorization: d + "/oauth2/authorize",
		Token:         d + "/oauth2/token",
		Logout:        d + "/logout",
		Cognito:       true,
	}
}

// maxDiscoveryBytes bounds the discovery document (Cognito's is ~1.5 KiB).
const maxDiscoveryBytes = 1 << 20

// Discover reads <issuer>/.well-known/openid-configuration. The document's
// issuer must be the configured one (OpenID Connect Discovery §4.3), so a
// misdirected URL cannot substitute another provider's endpoints.
func Discover(ctx context.Context, client *http.Client, issuer string) (Endpoints, error) {
	u := config.DiscoveryURL(issuer)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Endpoints{}, fmt.Errorf("discovery %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return Endpoints{}, fmt.Errorf("discovery %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBytes))
	if err != nil {
		return Endpoints{}, fmt.Errorf("discovery %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Endpoints{}, fmt.Errorf("discovery %s: HTTP %d", u, resp.StatusCode)
	}
	var doc struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
		EndSessionEndpoint    string `json:"end_session_endpoint"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return Endpoints{}, fmt.Errorf("discovery %s: %w", u, err)
	}
	if doc.Issuer != issuer {
		return Endpoints{}, fmt.Errorf("discovery %s: issuer %q is not the configured %q", u, doc.Issuer, issuer)
	}
	for name, v := range map[string]string{"authorization_endpoint": doc.AuthorizationEndpoint, "token_endpoint": doc.TokenEndpoint} {
		p, err := url.Parse(v)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return Endpoints{}, fmt.Errorf("discovery %s: %s %q is not an http(s) URL", u, name, v)
		}
	}
	ep := Endpoints{Authorization: doc.AuthorizationEndpoint, Token: doc.TokenEndpoint, Logout: doc.EndSessionEndpoint}
	// Cognito's end_session_endpoint is its /logout, which wants
	// client_id + logout_uri rather than the OpenID parameters.
	if strings.HasSuffix(doc.EndSessionEndpoint, "/logout") && strings.HasSuffix(doc.AuthorizationEndpoint, "/oauth2/authorize") {
		ep.Cognito = true
	}
	return ep, nil
}
