package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/caddy-cognito/caddy-cognito/e2e/cognitolocal"
)

// env is everything the checks need: servers, ids, users and tokens.
type env struct {
	cl      *cognitolocal.Server
	api     *cognitolocal.Client
	caddy   string // base URL of our caddy, http://127.0.0.1:<port>
	http    *http.Client
	poolA   string
	poolB   string
	main    string            // app client of pool A, accepted by most routes
	other   string            // app client of pool A that no route but /other accepts
	short   string            // app client of pool A with 3 s tokens
	clientB string            // app client of pool B
	poolC   string            // a pool no route trusts
	clientC string            // app client of pool C
	dave    cognitolocal.User // pool C
	alice   cognitolocal.User
	bob     cognitolocal.User
	carol   cognitolocal.User // pool B
}

const (
	password        = "E2e-Passw0rd!"
	shortValidity   = 3 * time.Second
	adminScope      = "aws.cognito.signin.user.admin"
	caddyfileSource = `{
	admin off
	auto_https off
	persist_config off
	http_port {{.Port}}
}

http://127.0.0.1:{{.Port}} {
	handle /healthz {
		respond "ok" 200
	}

	# any token of pool A's main client; pool B's client is in the audience
	# on purpose, so only "iss" tells the pools apart here
	handle /any/* {
		cognito_auth {
			issuer {{.IssA}}
			jwks url {{.JWKSA}}
			audience {{.Main}} {{.ClientB}}
		}
		reverse_proxy {{.Backend}}
	}

	handle /access/* {
		cognito_auth {
			issuer {{.IssA}}
			jwks url {{.JWKSA}}
			audience {{.Main}}
			token_use access
		}
		reverse_proxy {{.Backend}}
	}

	handle /admins/* {
		cognito_auth {
			issuer {{.IssA}}
			jwks url {{.JWKSA}}
			audience {{.Main}}
			groups admins
		}
		reverse_proxy {{.Backend}}
	}

	handle /userscope/* {
		cognito_auth {
			issuer {{.IssA}}
			jwks url {{.JWKSA}}
			audience {{.Main}}
			token_use access
			scopes {{.Scope}}
		}
		reverse_proxy {{.Backend}}
	}

	handle /orders/* {
		cognito_auth {
			issuer {{.IssA}}
			jwks url {{.JWKSA}}
			audience {{.Main}}
			scopes orders/write orders/admin
		}
		reverse_proxy {{.Backend}}
	}

	handle /short/* {
		cognito_auth {
			issuer {{.IssA}}
			jwks url {{.JWKSA}}
			audience {{.Short}}
			leeway 0s
		}
		reverse_proxy {{.Backend}}
	}

	handle /poolb/* {
		cognito_auth {
			issuer {{.IssB}}
			jwks url {{.JWKSB}}
			audience {{.ClientB}}
		}
		reverse_proxy {{.Backend}}
	}

	# two pools in one handler (issue 10): each token's iss picks its trust,
	# with that trust's audience and keys; pool C is trusted nowhere
	handle /twopools/* {
		cognito_auth {
			issuer {{.IssA}} {
				audience {{.Main}}
				jwks url {{.JWKSA}}
			}
			issuer {{.IssB}} {
				audience {{.ClientB}}
				token_use access
				jwks url {{.JWKSB}}
			}
		}
		reverse_proxy {{.Backend}}
	}

	handle /strip/* {
		cognito_auth {
			issuer {{.IssA}}
			jwks url {{.JWKSA}}
			audience {{.Main}}
			strip_authorization
		}
		reverse_proxy {{.Backend}}
	}

	handle {
		respond "no such route" 404
	}
}
`
)

// echo is what cmd/sample-backend answers.
type echo struct {
	Method        string              `json:"method"`
	Path          string              `json:"path"`
	Authorization bool                `json:"authorization"`
	Cognito       map[string][]string `json:"cognito"`
}

// answer is one response from caddy.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) String() string {
	return fmt.Sprintf("%d WWW-Authenticate=%q body=%.400s", a.status, a.header.Get("WWW-Authenticate"), a.body)
}

func (a answer) echo(t *testing.T) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(a.body, &e); err != nil || e.Method == "" {
		t.Fatalf("not a backend echo: %v: %s", err, a)
	}
	return e
}

func (e *env) get(t *testing.T, path, token string, extra http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.caddy+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		req.Header[k] = v // raw keys on purpose (X_Cognito_Sub)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

func (e *env) login(t *testing.T, clientID string, u cognitolocal.User) cognitolocal.Tokens {
	t.Helper()
	tok, err := e.api.Login(context.Background(), clientID, u.Email, u.Password)
	if err != nil {
		t.Fatalf("login %s via %s: %v", u.Email, clientID, err)
	}
	return tok
}

// wantOK checks a 200 that came from the backend.
func wantOK(t *testing.T, a answer) echo {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("want 200 from the backend, got %s", a)
	}
	return a.echo(t)
}

// wantDenied checks a 401/403 answered by the handler (never the backend).
func wantDenied(t *testing.T, a answer, status int, invalidToken bool) {
	t.Helper()
	if a.status != status {
		t.Fatalf("want %d, got %s", status, a)
	}
	var body struct{ Message string }
	if err := json.Unmarshal(a.body, &body); err != nil {
		t.Fatalf("deny body is not JSON: %s", a)
	}
	wantMsg := map[int]string{401: "Unauthorized", 403: "Forbidden"}[status]
	if body.Message != wantMsg {
		t.Errorf("deny body message %q, want %q: %s", body.Message, wantMsg, a)
	}
	if bytes.Contains(a.body, []byte(`"method"`)) {
		t.Errorf("a denied request reached the backend: %s", a)
	}
	wa := a.header.Get("WWW-Authenticate")
	switch {
	case status == 401 && invalidToken:
		if !strings.HasPrefix(wa, "Bearer ") || !strings.Contains(wa, `error="invalid_token"`) {
			t.Errorf(`WWW-Authenticate %q, want Bearer error="invalid_token"`, wa)
		}
	case status == 401:
		if wa != "Bearer" && !strings.HasPrefix(wa, "Bearer realm=") {
			t.Errorf("WWW-Authenticate %q, want a bare Bearer challenge", wa)
		}
		if strings.Contains(wa, "error=") {
			t.Errorf("WWW-Authenticate %q: no error code expected without a token", wa)
		}
	}
}

func TestEndToEnd(t *testing.T) {
	cognitolocal.RequireNode(t)
	start := time.Now()
	e := setup(t)
	t.Logf("setup (npm, builds, cognito-local, provisioning, caddy) took %v", time.Since(start).Round(time.Millisecond))

	aliceMain := e.login(t, e.main, e.alice)
	bobMain := e.login(t, e.main, e.bob)

	t.Run("no token is 401 with a bare Bearer challenge", func(t *testing.T) {
		wantDenied(t, e.get(t, "/any/x", "", nil), 401, false)
	})

	t.Run("garbage token is 401 invalid_token", func(t *testing.T) {
		wantDenied(t, e.get(t, "/any/x", "not.a.jwt", nil), 401, true)
	})

	t.Run("access token reaches the backend with identity headers", func(t *testing.T) {
		ec := wantOK(t, e.get(t, "/any/hello", aliceMain.AccessToken, nil))
		if ec.Path != "/any/hello" || !ec.Authorization {
			t.Errorf("echo %+v", ec)
		}
		want := map[string]string{
			"X-Cognito-Sub":       e.alice.Sub,
			"X-Cognito-Username":  e.alice.Username,
			"X-Cognito-Client-Id": e.main,
			"X-Cognito-Token-Use": "access",
			"X-Cognito-Scope":     adminScope,
			"X-Cognito-Groups":    "admins",
		}
		for k, v := range want {
			if got := ec.Cognito[k]; len(got) != 1 || got[0] != v {
				t.Errorf("backend saw %s = %q, want [%q]", k, got, v)
			}
		}
	})

	t.Run("ID token is accepted where token_use is unset", func(t *testing.T) {
		ec := wantOK(t, e.get(t, "/any/id", aliceMain.IDToken, nil))
		if got := ec.Cognito["X-Cognito-Sub"]; len(got) != 1 || got[0] != e.alice.Sub {
			t.Errorf("X-Cognito-Sub %q, want %q", got, e.alice.Sub)
		}
		if got := ec.Cognito["X-Cognito-Token-Use"]; len(got) != 1 || got[0] != "id" {
			t.Errorf("X-Cognito-Token-Use %q, want id", got)
		}
	})

	t.Run("ID token is 401 where token_use is access", func(t *testing.T) {
		wantOK(t, e.get(t, "/access/x", aliceMain.AccessToken, nil))
		wantDenied(t, e.get(t, "/access/x", aliceMain.IDToken, nil), 401, true)
	})

	t.Run("token of another app client is 401", func(t *testing.T) {
		tok := e.login(t, e.other, e.alice)
		wantDenied(t, e.get(t, "/any/x", tok.AccessToken, nil), 401, true)
		wantDenied(t, e.get(t, "/any/x", tok.IDToken, nil), 401, true)
	})

	t.Run("group rule: member 200, non-member 403", func(t *testing.T) {
		wantOK(t, e.get(t, "/admins/x", aliceMain.AccessToken, nil))
		wantDenied(t, e.get(t, "/admins/x", bobMain.AccessToken, nil), 403, false)
		// bob is fine where no group is required
		ec := wantOK(t, e.get(t, "/any/x", bobMain.AccessToken, nil))
		if g, ok := ec.Cognito["X-Cognito-Groups"]; ok && strings.Join(g, "") != "" {
			t.Errorf("bob has no groups, backend saw X-Cognito-Groups %q", g)
		}
	})

	t.Run("scopes: granted scope 200, missing scope 403", func(t *testing.T) {
		wantOK(t, e.get(t, "/userscope/x", bobMain.AccessToken, nil))
		wantDenied(t, e.get(t, "/orders/x", bobMain.AccessToken, nil), 403, false)
		wantDenied(t, e.get(t, "/orders/x", aliceMain.AccessToken, nil), 403, false)
	})

	t.Run("token from another pool with the same signing key is 401", func(t *testing.T) {
		tok := e.login(t, e.clientB, e.carol)
		// The token itself is good: its own pool's route takes it.
		wantOK(t, e.get(t, "/poolb/x", tok.AccessToken, nil))
		// Pool B's client is in /any's audience and the key is the same, so
		// only the issuer check can refuse it.
		wantDenied(t, e.get(t, "/any/x", tok.AccessToken, nil), 401, true)
		wantDenied(t, e.get(t, "/any/x", tok.IDToken, nil), 401, true)
		// And the other way round.
		wantDenied(t, e.get(t, "/poolb/x", aliceMain.AccessToken, nil), 401, true)
	})

	t.Run("two pools in one handler: each by its own issuer, audience and token_use", func(t *testing.T) {
		carol := e.login(t, e.clientB, e.carol)
		for _, c := range []struct {
			tok, iss string
		}{{aliceMain.AccessToken, e.cl.Issuer(e.poolA)}, {aliceMain.IDToken, e.cl.Issuer(e.poolA)}, {carol.AccessToken, e.cl.Issuer(e.poolB)}} {
			ec := wantOK(t, e.get(t, "/twopools/x", c.tok, nil))
			if got := strings.Join(ec.Cognito["X-Cognito-Issuer"], ","); got != c.iss {
				t.Errorf("X-Cognito-Issuer %q, want %q", got, c.iss)
			}
		}
		// Pool B's trust takes access tokens only.
		wantDenied(t, e.get(t, "/twopools/x", carol.IDToken, nil), 401, true)
		// A client of pool A that pool A's trust does not list.
		other := e.login(t, e.other, e.alice)
		wantDenied(t, e.get(t, "/twopools/x", other.AccessToken, nil), 401, true)
		// A pool the route does not trust, although cognito-local signs
		// every pool with the same key.
		dave := e.login(t, e.clientC, e.dave)
		wantDenied(t, e.get(t, "/twopools/x", dave.AccessToken, nil), 401, true)
		wantDenied(t, e.get(t, "/twopools/x", dave.IDToken, nil), 401, true)
	})

	t.Run("spoofed identity headers never reach the backend", func(t *testing.T) {
		spoof := http.Header{
			"X-Cognito-Sub":      {"evil"},
			"X_Cognito_Sub":      {"evil"},
			"X-Cognito-Username": {"evil"},
			"X-Cognito-Groups":   {"admins"},
			"X-Cognito-Admin":    {"true"},
			"x-cognito-scope":    {"evil"},
		}
		for _, path := range []string{"/any/spoof", "/admins/spoof"} {
			ec := wantOK(t, e.get(t, path, aliceMain.AccessToken, spoof))
			for name, vals := range ec.Cognito {
				for _, v := range vals {
					if strings.Contains(v, "evil") || name == "X-Cognito-Admin" {
						t.Errorf("%s: spoofed %s: %q reached the backend", path, name, v)
					}
				}
				if strings.Contains(name, "_") {
					t.Errorf("%s: underscore variant %s: %q reached the backend", path, name, vals)
				}
			}
			if got := ec.Cognito["X-Cognito-Sub"]; len(got) != 1 || got[0] != e.alice.Sub {
				t.Errorf("%s: X-Cognito-Sub %q, want exactly [%q]", path, got, e.alice.Sub)
			}
		}
		// A denied request with spoofed headers is still denied.
		wantDenied(t, e.get(t, "/admins/spoof", bobMain.AccessToken, spoof), 403, false)
		wantDenied(t, e.get(t, "/any/spoof", "", spoof), 401, false)
	})

	t.Run("strip_authorization", func(t *testing.T) {
		if ec := wantOK(t, e.get(t, "/strip/x", aliceMain.AccessToken, nil)); ec.Authorization {
			t.Error("Authorization reached the backend despite strip_authorization")
		}
	})

	t.Run("expired token is 401, refreshed token is 200", func(t *testing.T) {
		tok := e.login(t, e.short, e.alice)
		exp, err := cognitolocal.Expiry(tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if time.Until(exp) > 500*time.Millisecond {
			wantOK(t, e.get(t, "/short/x", tok.AccessToken, nil))
		} else {
			t.Logf("machine too slow to see the short token valid (exp in %v)", time.Until(exp))
		}
		// Poll until the handler refuses it; it must not happen before exp.
		deadline := exp.Add(5 * time.Second)
		for {
			a := e.get(t, "/short/x", tok.AccessToken, nil)
			if a.status == http.StatusUnauthorized {
				// exp has one-second resolution; allow that much early.
				if now := time.Now(); now.Before(exp.Add(-time.Second)) {
					t.Fatalf("refused at %v, before exp %v: %s", now, exp, a)
				}
				wantDenied(t, a, 401, true)
				break
			}
			if a.status != http.StatusOK {
				t.Fatalf("while waiting for expiry: %s", a)
			}
			if time.Now().After(deadline) {
				t.Fatalf("token still accepted %v after exp", time.Since(exp))
			}
			time.Sleep(100 * time.Millisecond)
		}
		ref, err := e.api.Refresh(context.Background(), e.short, tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		ec := wantOK(t, e.get(t, "/short/x", ref.AccessToken, nil))
		if got := ec.Cognito["X-Cognito-Sub"]; len(got) != 1 || got[0] != e.alice.Sub {
			t.Errorf("refreshed token: X-Cognito-Sub %q", got)
		}
		wantOK(t, e.get(t, "/short/x", ref.IDToken, nil))
	})

	t.Logf("whole test took %v", time.Since(start).Round(time.Millisecond))
}

// setup installs cognito-local if needed, builds caddy and the backend,
// provisions cognito-local and starts everything; t.Cleanup stops it all.
func setup(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pkgDir := filepath.Join(root, "e2e")
	tmp := t.TempDir()

	// Builds run while cognito-local starts and is provisioned.
	var wg sync.WaitGroup
	var caddyBin, backendBin string
	var buildErr [2]error
	wg.Add(2)
	go func() {
		defer wg.Done()
		caddyBin, buildErr[0] = goBuild(ctx, root, tmp, "./cmd/caddy", "caddy")
	}()
	go func() {
		defer wg.Done()
		backendBin, buildErr[1] = goBuild(ctx, root, tmp, "./cmd/sample-backend", "sample-backend")
	}()
	waitBuilds := func() {
		wg.Wait()
		for _, err := range buildErr {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// Never leave a build running behind a failed test: cancel, then wait.
	t.Cleanup(func() { cancel(); wg.Wait() })

	if err := cognitolocal.EnsureInstalled(ctx, pkgDir, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	cl, err := cognitolocal.Start(ctx, cognitolocal.Options{PackageDir: pkgDir, WorkDir: filepath.Join(tmp, "cognito")})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, cl.Proc)

	e := &env{
		cl:   cl,
		api:  cl.Client(),
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}},
	}
	provision(ctx, t, e)

	waitBuilds()
	_, backend := startWithRetry(t, "sample-backend", func(port int) *exec.Cmd {
		return exec.Command(backendBin, "-listen", cognitolocal.Addr(port))
	}, "/healthz")

	caddyPort, _ := startWithRetry(t, "caddy", func(port int) *exec.Cmd {
		cfg := filepath.Join(tmp, fmt.Sprintf("Caddyfile.%d", port))
		writeCaddyfile(t, cfg, map[string]any{
			"Port":    port,
			"Backend": backend,
			"IssA":    cl.Issuer(e.poolA), "JWKSA": cl.JWKSURL(e.poolA),
			"IssB": cl.Issuer(e.poolB), "JWKSB": cl.JWKSURL(e.poolB),
			"Main": e.main, "Short": e.short, "ClientB": e.clientB,
			"Scope": adminScope,
		})
		cmd := exec.Command(caddyBin, "run", "--config", cfg, "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(),
			"XDG_CONFIG_HOME="+filepath.Join(tmp, "xdg-config"),
			"XDG_DATA_HOME="+filepath.Join(tmp, "xdg-data"),
			"HOME="+tmp,
		)
		return cmd
	}, "/healthz")
	e.caddy = "http://" + cognitolocal.Addr(caddyPort)
	return e
}

// provision creates three pools, five app clients, a group and four users.
func provision(ctx context.Context, t *testing.T, e *env) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("provisioning: %v", err)
		}
	}
	var err error
	c := e.api
	e.poolA, err = c.CreateUserPool(ctx, "e2e-main")
	must(err)
	e.poolB, err = c.CreateUserPool(ctx, "e2e-other")
	must(err)
	e.main, err = c.CreateAppClient(ctx, e.poolA, "main", 0)
	must(err)
	e.other, err = c.CreateAppClient(ctx, e.poolA, "other", 0)
	must(err)
	e.short, err = c.CreateAppClient(ctx, e.poolA, "short-lived", shortValidity)
	must(err)
	e.clientB, err = c.CreateAppClient(ctx, e.poolB, "pool-b", 0)
	must(err)
	e.poolC, err = c.CreateUserPool(ctx, "e2e-untrusted")
	must(err)
	e.clientC, err = c.CreateAppClient(ctx, e.poolC, "pool-c", 0)
	must(err)
	must(c.CreateGroup(ctx, e.poolA, "admins"))
	e.alice, err = c.CreateUser(ctx, e.poolA, "alice@example.com", password, "admins")
	must(err)
	e.bob, err = c.CreateUser(ctx, e.poolA, "bob@example.com", password)
	must(err)
	e.carol, err = c.CreateUser(ctx, e.poolB, "carol@example.com", password)
	must(err)
	e.dave, err = c.CreateUser(ctx, e.poolC, "dave@example.com", password)
	must(err)
}

func goBuild(ctx context.Context, root, dir, pkg, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	fmt.Fprintf(os.Stderr, "e2e: built %s in %v\n", pkg, time.Since(start).Round(time.Millisecond))
	return out, nil
}

// startWithRetry starts a server on a free port and waits for GET ready to
// answer 200; if the port was taken meanwhile it tries again with another.
// It returns the port and "127.0.0.1:<port>".
func startWithRetry(t *testing.T, name string, mk func(port int) *exec.Cmd, ready string) (int, string) {
	t.Helper()
	var lastErr error
	for range 3 {
		port, err := cognitolocal.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		p, err := cognitolocal.StartProcess(name, mk(port), nil)
		if err != nil {
			t.Fatal(err)
		}
		stopOnCleanup(t, p)
		url := "http://" + cognitolocal.Addr(port) + ready
		err = cognitolocal.WaitHTTP(context.Background(), url, 60*time.Second, p, func(status int, _ []byte) bool {
			return status == http.StatusOK
		})
		if err == nil {
			return port, cognitolocal.Addr(port)
		}
		lastErr = fmt.Errorf("%w\n%s output:\n%s", err, name, p.Output())
		_ = p.Stop(5 * time.Second)
	}
	t.Fatalf("starting %s: %v", name, lastErr)
	return 0, ""
}

func stopOnCleanup(t *testing.T, p *cognitolocal.Process) {
	t.Cleanup(func() {
		if err := p.Stop(10 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("--- %s (pid %d) output:\n%s", p.Name, p.Pid(), p.Output())
		}
	})
}

func writeCaddyfile(t *testing.T, path string, data map[string]any) {
	t.Helper()
	var b bytes.Buffer
	if err := template.Must(template.New("Caddyfile").Option("missingkey=error").Parse(caddyfileSource)).Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// testWriter sends npm's output to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
