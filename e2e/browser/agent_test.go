package browser

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// agent is a minimal user agent for the flows without a browser: it
// follows redirects itself and keeps cookies per host the way a browser
// does for these tests (Go's cookie jar would not send Secure cookies over
// http://localhost, which browsers do).
type agent struct {
	t    *testing.T
	jars map[string]map[string]*http.Cookie
}

func newAgent(t *testing.T) *agent {
	return &agent{t: t, jars: map[string]map[string]*http.Cookie{}}
}

func (a *agent) jar(host string) map[string]*http.Cookie {
	j := a.jars[host]
	if j == nil {
		j = map[string]*http.Cookie{}
		a.jars[host] = j
	}
	return j
}

// do sends one request (no redirect following), with the cookies of the
// host, and stores the cookies it sets.
func (a *agent) do(method, target string, body url.Values, hdr map[string]string) (*http.Response, string) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	j := a.jar(req.URL.Host)
	for _, c := range j {
		if strings.HasPrefix(req.URL.Path, c.Path) || c.Path == "" {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, target, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(j, c.Name)
		} else {
			j[c.Name] = c
		}
	}
	return resp, string(b)
}

// navigate GETs target as a browser navigation and follows redirects;
// it returns the final response, its body and the final URL.
func (a *agent) navigate(target string) (*http.Response, string, string) {
	a.t.Helper()
	hdr := map[string]string{"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}
	for range 20 {
		resp, body := a.do("GET", target, nil, hdr)
		if resp.StatusCode < 300 || resp.StatusCode >= 400 {
			return resp, body, target
		}
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			a.t.Fatal(err)
		}
		target = loc.String()
	}
	a.t.Fatalf("too many redirects at %s", target)
	return nil, "", ""
}

// signIn goes to target, signs in on the provider's page as user and
// returns the final response, body and URL.
func (a *agent) signIn(target, user string) (*http.Response, string, string) {
	a.t.Helper()
	resp, body, at := a.navigate(target)
	u, _ := url.Parse(at)
	id := u.Query().Get("authRequestID")
	if resp.StatusCode != 200 || !strings.HasPrefix(u.Path, "/login/username") || id == "" {
		a.t.Fatalf("expected the provider's login page, got %d at %s: %.300s", resp.StatusCode, at, body)
	}
	resp, body = a.do("POST", u.Scheme+"://"+u.Host+"/login/username", url.Values{"id": {id}, "username": {user}, "password": {testPassword}}, nil)
	if resp.StatusCode != http.StatusFound {
		a.t.Fatalf("login form: %d %.300s", resp.StatusCode, body)
	}
	loc, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
	return a.navigate(loc.String())
}
