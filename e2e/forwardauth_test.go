package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/caddy-cognito/caddy-cognito/e2e/cognitolocal"
)

// The forward-auth end-to-end test: cognito_auth in forward_auth mode as
// the auth service of a real nginx (auth_request) and of a plain Caddy
// (forward_auth, standard modules only), each in front of the sample
// backend, with tokens from cognito-local. The nginx and Caddy front
// configurations are the README's ("Behind nginx, Traefik, Envoy or Caddy").

// nginxHeadersMore is the headers-more module of Debian's
// libnginx-mod-http-headers-more-filter, which the documented nginx
// configuration uses to drop every inbound X-Cognito-* header.
const nginxHeadersMore = "/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so"

// requireNginx returns the nginx binary. It skips the test when nginx (with
// the auth_request and headers-more modules) is absent, unless CI=true:
// then it fails, since CI must run this test.
func requireNginx(t *testing.T) string {
	t.Helper()
	missing := func(msg string) {
		msg += " (Debian: apt-get install nginx libnginx-mod-http-headers-more-filter; .ci/run does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: not skipping)")
		}
		t.Skip(msg)
	}
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			missing("nginx is not installed")
		}
		bin = "/usr/sbin/nginx"
	}
	out, err := exec.Command(bin, "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -V: %v\n%s", bin, err, out)
	}
	if !bytes.Contains(out, []byte("--with-http_auth_request_module")) {
		missing(bin + " is built without the auth_request module")
	}
	if _, err := os.Stat(nginxHeadersMore); err != nil {
		missing("the nginx headers-more module is not installed (" + nginxHeadersMore + ")")
	}
	return bin
}

// authCaddyfile is the auth service: cognito_auth in forward_auth mode.
// The same rules are selected by the original request as nginx sends it
// (X-Original-*, on /nginx) and as Caddy's forward_auth sends it
// (X-Forwarded-*, on /caddy); /location/* holds rules chosen by the nginx
// location instead (the auth_request URI names the rule).
const authCaddyfile = `{
	admin off
	auto_https off
	persist_config off
	http_port {{.Port}}
}

(pool) {
	issuer {{.Iss}}
	jwks url {{.JWKS}}
	audience {{.Main}}
	forward_auth
}

(rules) {
	handle /admins/* {
		cognito_auth {
			import pool
			groups admins
		}
	}
	handle /userscope/* {
		cognito_auth {
			import pool
			token_use access
			scopes {{.Scope}}
		}
	}
	# reading orders needs any token, changing them orders/write
	@orderWrites {
		path /orders/*
		not method GET HEAD
	}
	handle @orderWrites {
		cognito_auth {
			import pool
			scopes orders/write
		}
	}
	handle /cookie/* {
		cognito_auth {
			import pool
			token_source cookie id_token
		}
	}
	handle /query/* {
		cognito_auth {
			import pool
			token_source query access_token
		}
	}
	handle /public/* {
		respond 200
	}
	handle {
		cognito_auth {
			import pool
		}
	}
}

# Any Host: nginx sends its upstream's name. A site bound to one host name
# would leave other names unmatched, and Caddy answers those with an empty
# 200, which every proxy takes for "allow".
http://:{{.Port}} {
	bind 127.0.0.1
	handle /healthz {
		respond "ok" 200
	}
	handle /nginx {
		cognito_original_request x-original
		import rules
	}
	handle /caddy {
		cognito_original_request x-forwarded
		import rules
	}
	handle /location/admins {
		cognito_auth {
			import pool
			groups admins
		}
	}
	handle {
		respond 404
	}
}
`

// nginxMain wraps the README's nginx server configuration (block
// "nginx-server") for a test run: private paths, the headers-more module,
// the foreground process.
const nginxMain = `{{if .User}}user {{.User}};
{{end}}worker_processes 1;
daemon off;
pid {{.Dir}}/nginx.pid;
error_log stderr warn;
load_module {{.HeadersMore}};
events {
	worker_connections 256;
}
http {
	access_log off;
	client_body_temp_path {{.Dir}}/client_body;
	proxy_temp_path {{.Dir}}/proxy;
	fastcgi_temp_path {{.Dir}}/fastcgi;
	uwsgi_temp_path {{.Dir}}/uwsgi;
	scgi_temp_path {{.Dir}}/scgi;
{{.Server}}
}
`

// frontGlobals precede the README's Caddy forward_auth site (block "caddy").
const frontGlobals = `{
	admin off
	auto_https off
	persist_config off
}
`

// readmeBlock returns the fenced code block after the README marker
// "<!-- forward-auth: <name> -->": the configurations this test runs are
// the documented ones.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- forward-auth: " + name + " -->"
	_, rest, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("README.md has no %s", marker)
	}
	_, rest, ok = strings.Cut(rest, "```")
	if ok {
		_, rest, ok = strings.Cut(rest, "\n")
	}
	block, _, closed := strings.Cut(rest, "\n```")
	if !ok || !closed {
		t.Fatalf("README.md: no code block after %s", marker)
	}
	return block + "\n"
}

// substitute replaces each old string, which must occur exactly once, so a
// README edit that breaks the test's assumptions fails loudly.
func substitute(t *testing.T, what, s string, oldNew ...string) string {
	t.Helper()
	for i := 0; i+1 < len(oldNew); i += 2 {
		if n := strings.Count(s, oldNew[i]); n != 1 {
			t.Fatalf("README %s: %q occurs %d times, want once", what, oldNew[i], n)
		}
		s = strings.Replace(s, oldNew[i], oldNew[i+1], 1)
	}
	return s
}

func renderTo(t *testing.T, path, src string, data map[string]any) {
	t.Helper()
	var b bytes.Buffer
	if err := template.Must(template.New(filepath.Base(path)).Option("missingkey=error").Parse(src)).Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fwdEnv is the forward-auth stack.
type fwdEnv struct {
	*env
	nginx string // http://127.0.0.1:<port> of nginx
	front string // http://127.0.0.1:<port> of the plain Caddy
}

func setupForwardAuth(t *testing.T, nginxBin string) *fwdEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pkgDir := filepath.Join(root, "e2e")
	tmp := t.TempDir()

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

	wg.Wait()
	for _, err := range buildErr {
		if err != nil {
			t.Fatal(err)
		}
	}
	_, backend := startWithRetry(t, "sample-backend", func(port int) *exec.Cmd {
		return exec.Command(backendBin, "-listen", cognitolocal.Addr(port))
	}, "/healthz")

	caddyEnv := func(dir string) []string {
		return append(os.Environ(),
			"XDG_CONFIG_HOME="+filepath.Join(dir, "xdg-config"),
			"XDG_DATA_HOME="+filepath.Join(dir, "xdg-data"),
			"HOME="+dir,
		)
	}
	_, auth := startWithRetry(t, "caddy-auth", func(port int) *exec.Cmd {
		cfg := filepath.Join(tmp, fmt.Sprintf("Caddyfile.auth.%d", port))
		renderTo(t, cfg, authCaddyfile, map[string]any{
			"Port": port, "Iss": cl.Issuer(e.poolA), "JWKS": cl.JWKSURL(e.poolA),
			"Main": e.main, "Scope": adminScope,
		})
		cmd := exec.Command(caddyBin, "run", "--config", cfg, "--adapter", "caddyfile")
		cmd.Env = caddyEnv(tmp)
		return cmd
	}, "/healthz")

	nginxDir := filepath.Join(tmp, "nginx")
	if err := os.MkdirAll(nginxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	headersConf := filepath.Join(nginxDir, "cognito_headers.conf")
	if err := os.WriteFile(headersConf, []byte(readmeBlock(t, "nginx-headers")), 0o644); err != nil {
		t.Fatal(err)
	}
	serverTmpl := readmeBlock(t, "nginx-server")
	// As root, nginx would run its worker as "nobody", who cannot read the
	// test's private temporary directory: keep the worker as the caller.
	runAs := ""
	if os.Geteuid() == 0 {
		if u, err := user.Current(); err == nil {
			runAs = u.Username
		}
	}
	nginxPort, _ := startWithRetry(t, "nginx", func(port int) *exec.Cmd {
		cfg := filepath.Join(nginxDir, fmt.Sprintf("nginx.%d.conf", port))
		server := substitute(t, "nginx-server", serverTmpl,
			"server 127.0.0.1:9091;", "server "+auth+";",
			"server 127.0.0.1:8081;", "server "+backend+";",
			"listen 80;", fmt.Sprintf("listen %s;\n\tlocation = /healthz {\n\t\treturn 200 \"ok\";\n\t}", cognitolocal.Addr(port)),
			// the test's auth service holds the original-request rules under /nginx
			"proxy_pass http://cognito_auth/;", "proxy_pass http://cognito_auth/nginx;",
		)
		server = strings.ReplaceAll(server, "/etc/nginx/cognito_headers.conf", headersConf)
		renderTo(t, cfg, nginxMain, map[string]any{
			"User": runAs, "Dir": nginxDir, "HeadersMore": nginxHeadersMore, "Server": server,
		})
		return exec.Command(nginxBin, "-p", nginxDir, "-e", "stderr", "-c", cfg)
	}, "/healthz")

	frontTmpl := readmeBlock(t, "caddy")
	frontPort, _ := startWithRetry(t, "caddy-front", func(port int) *exec.Cmd {
		cfg := filepath.Join(tmp, fmt.Sprintf("Caddyfile.front.%d", port))
		front := frontGlobals + substitute(t, "caddy", frontTmpl,
			"app.example.com {", fmt.Sprintf("http://%s {\n\thandle /healthz {\n\t\trespond \"ok\" 200\n\t}", cognitolocal.Addr(port)),
			"forward_auth 127.0.0.1:9091 {", "forward_auth "+auth+" {",
			// the test's auth service holds the X-Forwarded-* rules under /caddy
			"uri /\n", "uri /caddy\n",
			"reverse_proxy 127.0.0.1:8081", "reverse_proxy "+backend,
		)
		if err := os.WriteFile(cfg, []byte(front), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(tmp, "front")
		cmd := exec.Command(caddyBin, "run", "--config", cfg, "--adapter", "caddyfile")
		cmd.Env = caddyEnv(dir)
		return cmd
	}, "/healthz")

	return &fwdEnv{
		env:   e,
		nginx: "http://" + cognitolocal.Addr(nginxPort),
		front: "http://" + cognitolocal.Addr(frontPort),
	}
}

// request sends one request to base+path.
func (e *env) request(t *testing.T, method, base, path, token string, extra http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
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
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: body.Bytes()}
}

// wantRefused checks a denial that came back through a proxy: the status,
// our challenge, and that the backend never answered. nginx replaces the
// body with its own error page, so the JSON body is checked only when
// jsonBody is set (Caddy, Traefik and Envoy pass ours on).
func wantRefused(t *testing.T, a answer, status int, invalidToken, jsonBody bool) {
	t.Helper()
	if jsonBody {
		wantDenied(t, a, status, invalidToken)
		return
	}
	if a.status != status {
		t.Fatalf("want %d, got %s", status, a)
	}
	if bytes.Contains(a.body, []byte(`"method"`)) {
		t.Errorf("a denied request reached the backend: %s", a)
	}
	if status != http.StatusUnauthorized {
		return
	}
	wa := a.header.Get("WWW-Authenticate")
	if invalidToken {
		if !strings.HasPrefix(wa, "Bearer ") || !strings.Contains(wa, `error="invalid_token"`) {
			t.Errorf(`WWW-Authenticate %q, want Bearer error="invalid_token"`, wa)
		}
	} else if wa != "Bearer" {
		t.Errorf("WWW-Authenticate %q, want a bare Bearer challenge", wa)
	}
}

func TestForwardAuthBehindNginxAndCaddy(t *testing.T) {
	nginxBin := requireNginx(t)
	cognitolocal.RequireNode(t)
	start := time.Now()
	e := setupForwardAuth(t, nginxBin)
	t.Logf("setup (builds, cognito-local, auth caddy, nginx, front caddy) took %v", time.Since(start).Round(time.Millisecond))

	alice := e.login(t, e.main, e.alice)
	bob := e.login(t, e.main, e.bob)
	fronts := []struct {
		name string
		base string
		json bool // the proxy passes our JSON deny body on
	}{
		{"nginx", e.nginx, false},
		{"caddy", e.front, true},
	}
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) {
			do := func(method, path, token string, extra http.Header) answer {
				t.Helper()
				return e.request(t, method, f.base, path, token, extra)
			}
			get := func(path, token string, extra http.Header) answer {
				t.Helper()
				return do(http.MethodGet, path, token, extra)
			}
			sub := func(t *testing.T, ec echo, want string) {
				t.Helper()
				if got := ec.Cognito["X-Cognito-Sub"]; len(got) != 1 || got[0] != want {
					t.Errorf("backend saw X-Cognito-Sub %q, want [%q]", got, want)
				}
			}

			t.Run("no token is 401 with a bare Bearer challenge", func(t *testing.T) {
				wantRefused(t, get("/any/x", "", nil), 401, false, f.json)
			})
			t.Run("invalid token is 401 invalid_token", func(t *testing.T) {
				wantRefused(t, get("/any/x", "not.a.jwt", nil), 401, true, f.json)
			})
			t.Run("valid token reaches the backend with the identity", func(t *testing.T) {
				ec := wantOK(t, get("/any/hello?x=1", alice.AccessToken, nil))
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
					"X-Cognito-Issuer":    e.cl.Issuer(e.poolA),
				}
				for k, v := range want {
					if got := ec.Cognito[k]; len(got) != 1 || got[0] != v {
						t.Errorf("backend saw %s = %q, want [%q]", k, got, v)
					}
				}
				if len(ec.Cognito) != len(want) {
					t.Errorf("backend saw identity headers %v, want exactly %v", ec.Cognito, want)
				}
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
				// bob has no groups: the auth answer's X-Cognito-Groups is
				// empty, and the spoofed "admins" must not survive that.
				for _, tok := range []struct {
					name, token, sub string
				}{{"alice", alice.AccessToken, e.alice.Sub}, {"bob", bob.AccessToken, e.bob.Sub}} {
					ec := wantOK(t, get("/any/spoof", tok.token, spoof))
					for name, vals := range ec.Cognito {
						for _, v := range vals {
							if strings.Contains(v, "evil") || name == "X-Cognito-Admin" || strings.Contains(name, "_") {
								t.Errorf("%s: spoofed %s: %q reached the backend", tok.name, name, v)
							}
						}
					}
					sub(t, ec, tok.sub)
					if tok.name == "bob" {
						if g := ec.Cognito["X-Cognito-Groups"]; strings.Join(g, "") != "" {
							t.Errorf("bob has no groups, backend saw X-Cognito-Groups %q", g)
						}
					}
				}
				wantRefused(t, get("/any/spoof", "", spoof), 401, false, f.json)
				wantRefused(t, get("/admins/spoof", bob.AccessToken, spoof), 403, false, f.json)
			})
			t.Run("rules by the original URI: groups and scopes give 200 and 403", func(t *testing.T) {
				sub(t, wantOK(t, get("/admins/x", alice.AccessToken, nil)), e.alice.Sub)
				wantRefused(t, get("/admins/x", bob.AccessToken, nil), 403, false, f.json)
				wantOK(t, get("/userscope/x", bob.AccessToken, nil))
				// token_use access on /userscope: an ID token is refused
				wantRefused(t, get("/userscope/x", bob.IDToken, nil), 401, true, f.json)
			})
			t.Run("rules by the original method", func(t *testing.T) {
				wantOK(t, get("/orders/1", bob.AccessToken, nil))
				a := do(http.MethodPost, "/orders/1", bob.AccessToken, nil)
				wantRefused(t, a, 403, false, f.json)
				if f.json && !strings.Contains(a.header.Get("WWW-Authenticate"), `scope="orders/write"`) {
					t.Errorf("WWW-Authenticate %q, want the required scope", a.header.Get("WWW-Authenticate"))
				}
				wantRefused(t, do(http.MethodDelete, "/orders/1", alice.AccessToken, nil), 403, false, f.json)
			})
			t.Run("a crafted path cannot choose a weaker rule", func(t *testing.T) {
				for _, p := range []string{"/public/../admins/x", "/public/%2e%2e/admins/x", "/%61dmins/x", "/any/..//admins/x"} {
					a := get(p, bob.AccessToken, nil)
					if a.status != http.StatusForbidden && a.status != http.StatusBadRequest {
						t.Errorf("%s as bob: %s, want 403 (admins only) or 400", p, a)
					}
				}
				// the public rule itself answers 200 without a token
				ec := wantOK(t, get("/public/x", "", nil))
				if len(ec.Cognito) != 0 {
					t.Errorf("public route got identity headers %v", ec.Cognito)
				}
			})
			t.Run("token from a cookie or the original query", func(t *testing.T) {
				ec := wantOK(t, get("/cookie/x", "", http.Header{"Cookie": {"theme=dark; id_token=" + alice.IDToken}}))
				sub(t, ec, e.alice.Sub)
				wantRefused(t, get("/cookie/x", "", http.Header{"Cookie": {"id_token=garbage"}}), 401, true, f.json)
				ec = wantOK(t, get("/query/x?page=2&access_token="+alice.AccessToken, "", nil))
				sub(t, ec, e.alice.Sub)
				wantRefused(t, get("/query/x?page=2", "", nil), 401, false, f.json)
			})
			if f.name == "nginx" {
				t.Run("rules by nginx location", func(t *testing.T) {
					// /reports/ asks /location/admins whatever the original URI
					sub(t, wantOK(t, get("/reports/x", alice.AccessToken, nil)), e.alice.Sub)
					wantRefused(t, get("/reports/x", bob.AccessToken, nil), 403, false, false)
					wantRefused(t, get("/reports/x", "", nil), 401, false, false)
				})
			}
		})
	}
	t.Logf("whole test took %v", time.Since(start).Round(time.Millisecond))
}
