package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeNginxProfile checks the "nginx" profile: nginx is the entry
// point, the forward-auth service (our Caddy in forward_auth mode) is
// reachable from nginx alone, and the backend still only from inside.
func TestComposeNginxProfile(t *testing.T) {
	p := mustLoad(t, baseEnv, "nginx")
	if got := serviceNames(p); !slices.Equal(got, []string{"authorizer", "backend", "forward-auth", "nginx"}) {
		t.Fatalf("services with profile nginx %v", got)
	}
	nginx, fa, backend := p.Services["nginx"], p.Services["forward-auth"], p.Services["backend"]
	for _, s := range []types.ServiceConfig{nginx, fa} {
		if !slices.Equal(s.Profiles, []string{"nginx"}) {
			t.Errorf("%s profiles %v, want [nginx]", s.Name, s.Profiles)
		}
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 {
			t.Errorf("%s: no usable healthcheck", s.Name)
		}
		if !s.ReadOnly {
			t.Errorf("%s: root filesystem not read-only", s.Name)
		}
	}

	// nginx publishes one port, on loopback by default; forward-auth none.
	if len(nginx.Ports) != 1 || nginx.Ports[0].Target != 8080 || nginx.Ports[0].HostIP != "127.0.0.1" {
		t.Errorf("nginx ports %+v, want one 127.0.0.1:…:8080", nginx.Ports)
	}
	if len(fa.Ports) > 0 || len(fa.Expose) > 0 || fa.NetworkMode != "" {
		t.Errorf("forward-auth ports %v expose %v network_mode %q: it must publish nothing", fa.Ports, fa.Expose, fa.NetworkMode)
	}

	// "auth" is internal and shared by nginx and forward-auth only; the
	// forward-auth service shares no network with anything else except its
	// own egress.
	if n := p.Networks["auth"]; !n.Internal {
		t.Errorf("network auth: %+v, want internal: true", n)
	}
	if got := networksOf(fa); !slices.Equal(got, []string{"auth", "auth-egress"}) {
		t.Errorf("forward-auth networks %v, want [auth auth-egress]", got)
	}
	for name, s := range p.Services {
		for _, n := range networksOf(s) {
			if (n == "auth" && name != "nginx" && name != "forward-auth") || (n == "auth-egress" && name != "forward-auth") {
				t.Errorf("%s is on network %s: only nginx and forward-auth may reach the auth service", name, n)
			}
		}
	}
	if !slices.Contains(networksOf(nginx), "internal") || !slices.Equal(networksOf(backend), []string{"internal"}) {
		t.Errorf("nginx %v / backend %v: nginx must reach the backend on internal", networksOf(nginx), networksOf(backend))
	}
	for _, dep := range []string{"forward-auth", "backend"} {
		if d, ok := nginx.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("nginx depends_on %s: %+v, want service_healthy", dep, d)
		}
	}

	// forward-auth runs our image with the forward-auth Caddyfile and the
	// operator's settings.
	if fa.Image != p.Services["authorizer"].Image {
		t.Errorf("forward-auth image %q, want the authorizer's %q", fa.Image, p.Services["authorizer"].Image)
	}
	mounted := false
	for _, v := range fa.Volumes {
		if v.Target == "/etc/caddy/Caddyfile" && filepath.Base(v.Source) == "Caddyfile.forward-auth" && v.ReadOnly {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("forward-auth volumes %+v: want deploy/Caddyfile.forward-auth read-only at /etc/caddy/Caddyfile", fa.Volumes)
	}
	for k, want := range baseEnv {
		if got, _ := env(fa, k); got != want {
			t.Errorf("forward-auth %s = %q, want %q", k, got, want)
		}
	}
	cf, err := os.ReadFile("Caddyfile.forward-auth")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range caddyfileEnvVars(string(cf)) {
		if _, ok := fa.Environment[v]; !ok {
			t.Errorf("Caddyfile.forward-auth reads $%s, which forward-auth's environment does not set", v)
		}
	}
	port, _ := env(fa, "HTTP_PORT")
	for _, want := range []string{"forward_auth", "cognito_original_request x-original", "http://:{$HTTP_PORT:9091}"} {
		if !strings.Contains(string(cf), want) {
			t.Errorf("Caddyfile.forward-auth lacks %q", want)
		}
	}

	// nginx.conf points at those services and ports, and holds the
	// README's safety lines.
	conf := readFile(t, "nginx.conf")
	listen, _ := env(backend, "LISTEN")
	for _, want := range []string{
		"server forward-auth:" + port + ";",
		"server backend:" + strings.TrimPrefix(listen, ":") + ";",
		"listen 8080;",
		"more_clear_input_headers 'X-Cognito-*';",
		"auth_request /_cognito_auth;",
		"proxy_set_header X-Original-Method $request_method;",
		"proxy_set_header X-Original-URI $request_uri;",
		"proxy_pass_request_body off;",
		"include /etc/nginx/cognito_headers.conf;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf lacks %q", want)
		}
	}
	// The header snippet is the README's, byte for byte.
	readme := readFile(t, filepath.Join(root, "README.md"))
	if snippet := readFile(t, "cognito_headers.conf"); !strings.Contains(readme, "```nginx\n"+snippet+"```") {
		t.Error("deploy/cognito_headers.conf differs from the README's nginx-headers block")
	}
	df := readFile(t, "Dockerfile.nginx")
	for _, want := range []string{"COPY deploy/nginx.conf /etc/nginx/nginx.conf", "COPY deploy/cognito_headers.conf /etc/nginx/cognito_headers.conf", "libnginx-mod-http-headers-more-filter"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile.nginx lacks %q", want)
		}
	}
}

// TestNginxConfSyntax runs `nginx -t` on deploy/nginx.conf (service names
// replaced by loopback, paths by a temporary directory) when nginx is
// installed; CI installs it.
func TestNginxConfSyntax(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("nginx is not installed (CI=true: not skipping)")
			}
			t.Skip("nginx is not installed")
		}
		bin = "/usr/sbin/nginx"
	}
	const headersMore = "/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so"
	if _, err := os.Stat(headersMore); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the nginx headers-more module is not installed (CI=true: not skipping)")
		}
		t.Skip("the nginx headers-more module is not installed")
	}
	dir := t.TempDir()
	snippet, err := filepath.Abs("cognito_headers.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := substituteOnce(t, readFile(t, "nginx.conf"),
		"server forward-auth:", "server 127.0.0.1:",
		"server backend:", "server 127.0.0.1:",
		"include /etc/nginx/cognito_headers.conf;", "include "+snippet+";",
		"pid /run/nginx.pid;", "pid "+filepath.Join(dir, "nginx.pid")+";",
		"include /etc/nginx/modules-enabled/*.conf;", "load_module "+headersMore+";",
	)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-t", "-p", dir, "-e", "stderr", "-c", path).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// substituteOnce replaces each old string, which must occur exactly once.
func substituteOnce(t *testing.T, s string, oldNew ...string) string {
	t.Helper()
	for i := 0; i+1 < len(oldNew); i += 2 {
		if n := strings.Count(s, oldNew[i]); n != 1 {
			t.Fatalf("nginx.conf: %q occurs %d times, want once", oldNew[i], n)
		}
		s = strings.Replace(s, oldNew[i], oldNew[i+1], 1)
	}
	return s
}
