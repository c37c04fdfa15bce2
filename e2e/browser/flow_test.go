package browser

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// echoHeaders reads the echo page.
func echoHeaders(t *testing.T, body string) (string, map[string]string) {
	t.Helper()
	i, j := strings.Index(body, `<pre id="echo">`), strings.LastIndex(body, "</pre>")
	if i < 0 || j < i {
		t.Fatalf("not the echo page: %.300s", body)
	}
	var v struct {
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(body[i+len(`<pre id="echo">`):j])), &v); err != nil {
		t.Fatal(err)
	}
	return v.Path, v.Headers
}

// TestClientAuthMethods signs in through the real provider with each
// client authentication at its token endpoint, without a browser (the
// browser test uses client_secret_basic).
func TestClientAuthMethods(t *testing.T) {
	for _, m := range []string{"client_secret_post", "none", "private_key_jwt"} {
		t.Run(m, func(t *testing.T) {
			s := startSite(t, siteOptions{clientAuth: m})
			a := newAgent(t)
			resp, body, at := a.signIn(s.URL+"/app?tab=1", testUser)
			if resp.StatusCode != 200 || at != s.URL+"/app?tab=1" {
				t.Fatalf("after sign-in: %d at %s: %.300s", resp.StatusCode, at, body)
			}
			path, h := echoHeaders(t, body)
			if path != "/app?tab=1" || h["X-Cognito-Sub"] != "user-alice" || h["X-Cognito-Username"] != testUser ||
				!hasGroup(h["X-Cognito-Groups"], testGroup) || h["X-Cognito-Token-Use"] != "access" {
				t.Fatalf("backend saw %s %v", path, h)
			}
			if strings.Contains(h["Cookie"], "cognito_session") {
				t.Fatalf("backend saw the session cookie: %q", h["Cookie"])
			}
			if got := s.Provider.CodeGrants(); got != 1 {
				t.Fatalf("%d code grants", got)
			}
		})
	}
}

// TestRequestKinds: the answers by kind of request, through a real Caddy.
func TestRequestKinds(t *testing.T) {
	s := startSite(t, siteOptions{})
	get := func(path string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	nav := map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}
	if r := get("/app", nav); r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), s.Provider.Issuer+"/auth?") {
		t.Fatalf("navigation: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if r := get("/app", map[string]string{"Accept": "text/html"}); r.StatusCode != http.StatusFound {
		t.Fatalf("Accept text/html without Fetch Metadata: %d", r.StatusCode)
	}
	if r := get("/app", map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "*/*"}); r.StatusCode != http.StatusUnauthorized ||
		r.Header.Get("Www-Authenticate") != "Bearer" {
		t.Fatalf("fetch(): %d %q", r.StatusCode, r.Header.Get("Www-Authenticate"))
	}
	bearer := map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html", "Authorization": "Bearer not.a.jwt"}
	if r := get("/app", bearer); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("Www-Authenticate"), "invalid_token") {
		t.Fatalf("bearer token on a navigation: %d (a bearer request is never redirected)", r.StatusCode)
	}
	// Callback refusals: forged (no state cookie), and an IdP error whose
	// description is escaped.
	resp, err := noRedirect.Get(s.URL + "/oauth2/idpresponse?code=x&state=abcdefghijklmnop")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged callback: %v %v", resp, err)
	}
	resp.Body.Close()
	a := newAgent(t)
	resp, body := a.do("GET", s.URL+"/oauth2/idpresponse?error=access_denied&error_description="+url.QueryEscape("<img src=x onerror=alert(1)>"), nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "<img") || !strings.Contains(body, "&lt;img") {
		t.Fatalf("IdP error page: %d %s", resp.StatusCode, body)
	}
	// A client cannot pose as an ALB.
	a = newAgent(t)
	a.signIn(s.URL+"/", testUser)
	_, body = a.do("GET", s.URL+"/", nil, map[string]string{"Accept": "text/html", "X-Amzn-Oidc-Identity": "admin", "x_amzn_oidc_data": "forged"})
	_, h := echoHeaders(t, body)
	if h["X-Amzn-Oidc-Identity"] != "user-alice" || h["X-Amzn-Oidc-Data"] == "forged" || h["X_amzn_oidc_data"] != "" {
		t.Fatalf("spoofed ALB headers reached the backend: %v", h)
	}
}

// TestForbiddenStaysForbidden: a signed-in user without the route's group
// gets 403, not a redirect loop.
func TestForbiddenStaysForbidden(t *testing.T) {
	s := startSite(t, siteOptions{})
	a := newAgent(t)
	resp, body, at := a.signIn(s.URL+"/admin", "bob")
	if resp.StatusCode != http.StatusForbidden || at != s.URL+"/admin" || !strings.Contains(resp.Header.Get("Www-Authenticate"), "insufficient_scope") {
		t.Fatalf("bob: %d at %s: %s", resp.StatusCode, at, body)
	}
	if got := s.Provider.CodeGrants(); got != 1 {
		t.Fatalf("%d sign-ins (a 403 must not send the browser round again)", got)
	}
}

// TestSessionRequire: the route's require expressions apply to a session
// as to a bearer token: 403, not a redirect.
func TestSessionRequire(t *testing.T) {
	s := startSite(t, siteOptions{route: "require `claims[\"cognito:username\"] == \"bob\"`"})
	a := newAgent(t)
	resp, body, at := a.signIn(s.URL+"/reports", testUser)
	if resp.StatusCode != http.StatusForbidden || at != s.URL+"/reports" {
		t.Fatalf("alice under require bob: %d at %s: %s", resp.StatusCode, at, body)
	}
}
