package deploy

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const root = ".."

// baseEnv is what an operator would set for a production-like run.
var baseEnv = map[string]string{
	"COGNITO_USER_POOL":  "eu-west-1_AbCdEf123",
	"COGNITO_CLIENT_IDS": "client1 client2",
	"JWKS_SOURCE":        "ssm",
	"JWKS_SSM_PARAMETER": "/cognito/jwks",
	"AWS_REGION":         "eu-west-1",
}

func loadCompose(t *testing.T, env map[string]string, profiles ...string) (*types.Project, error) {
	t.Helper()
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(kv), // not the test process's environment: results must not depend on it
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func mustLoad(t *testing.T, env map[string]string, profiles ...string) *types.Project {
	t.Helper()
	p, err := loadCompose(t, env, profiles...)
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func serviceNames(p *types.Project) []string {
	names := p.ServiceNames()
	sort.Strings(names)
	return names
}

func networksOf(s types.ServiceConfig) []string {
	var n []string
	for k := range s.Networks {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func TestComposeTopology(t *testing.T) {
	p := mustLoad(t, baseEnv, "dev")

	if got := serviceNames(p); !slices.Equal(got, []string{"authorizer", "backend", "cognito"}) {
		t.Fatalf("services %v", got)
	}

	// Networks: "internal" has no route out, "edge" does.
	if n, ok := p.Networks["internal"]; !ok || !n.Internal {
		t.Errorf("network internal: %+v (want internal: true)", n)
	}
	if n, ok := p.Networks["edge"]; !ok || n.Internal {
		t.Errorf("network edge: %+v (want a normal network, for JWKS/SSM egress)", n)
	}

	auth, backend, cognito := p.Services["authorizer"], p.Services["backend"], p.Services["cognito"]

	// Only the authorizer publishes anything, and exactly its HTTP port.
	for name, s := range p.Services {
		if name != "authorizer" && len(s.Ports) > 0 {
			t.Errorf("%s publishes ports %+v: only the authorizer may", name, s.Ports)
		}
	}
	if len(auth.Ports) != 1 || auth.Ports[0].Target != 8080 || auth.Ports[0].Published != "8080" {
		t.Errorf("authorizer ports %+v, want one 8080:8080", auth.Ports)
	} else if auth.Ports[0].HostIP != "127.0.0.1" {
		t.Errorf("authorizer publishes on %q by default, want 127.0.0.1", auth.Ports[0].HostIP)
	}

	// The backend is reachable only on the internal network.
	if got := networksOf(backend); !slices.Equal(got, []string{"internal"}) {
		t.Errorf("backend networks %v, want [internal]", got)
	}
	if len(backend.Expose) > 0 || backend.NetworkMode != "" {
		t.Errorf("backend expose %v network_mode %q: want neither", backend.Expose, backend.NetworkMode)
	}
	if got := networksOf(auth); !slices.Equal(got, []string{"edge", "internal"}) {
		t.Errorf("authorizer networks %v, want [edge internal]", got)
	}
	if got := networksOf(cognito); !slices.Equal(got, []string{"internal"}) {
		t.Errorf("cognito networks %v, want [internal]", got)
	}

	// Start order: the authorizer waits for a healthy backend.
	if dep, ok := auth.DependsOn["backend"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("authorizer depends_on %+v, want backend: service_healthy", auth.DependsOn)
	}

	// Health checks everywhere.
	for name, s := range p.Services {
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 {
			t.Errorf("%s: no usable healthcheck: %+v", name, s.HealthCheck)
		}
	}

	// cognito-local only in the dev profile.
	if !slices.Equal(cognito.Profiles, []string{"dev"}) {
		t.Errorf("cognito profiles %v, want [dev]", cognito.Profiles)
	}
	for _, name := range []string{"authorizer", "backend"} {
		if len(p.Services[name].Profiles) != 0 {
			t.Errorf("%s has profiles %v: it must always run", name, p.Services[name].Profiles)
		}
	}

	// Every service is built from a Dockerfile of this repository.
	for name, s := range p.Services {
		if s.Build == nil {
			t.Errorf("%s: no build section", name)
			continue
		}
		df := filepath.Join(s.Build.Context, s.Build.Dockerfile)
		if _, err := os.Stat(df); err != nil {
			t.Errorf("%s: dockerfile: %v", name, err)
		}
	}
}

func TestComposeWithoutDevProfile(t *testing.T) {
	p := mustLoad(t, baseEnv)
	if got := serviceNames(p); !slices.Equal(got, []string{"authorizer", "backend"}) {
		t.Errorf("services without a profile %v, want [authorizer backend]", got)
	}
}

func env(s types.ServiceConfig, k string) (string, bool) {
	v, ok := s.Environment[k]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// TestComposeEnvWiring checks that the authorizer's environment carries the
// operator's settings, points at the backend's real port, and provides every
// variable deploy/Caddyfile.env reads.
func TestComposeEnvWiring(t *testing.T) {
	p := mustLoad(t, baseEnv)
	auth, backend := p.Services["authorizer"], p.Services["backend"]

	for k, want := range baseEnv {
		if got, _ := env(auth, k); got != want {
			t.Errorf("authorizer %s = %q, want %q (from the operator's env)", k, got, want)
		}
	}
	listen, _ := env(backend, "LISTEN")
	_, port, ok := strings.Cut(listen, ":")
	if !ok || port == "" {
		t.Fatalf("backend LISTEN %q", listen)
	}
	if got, _ := env(auth, "BACKEND_URL"); got != "http://backend:"+port {
		t.Errorf("authorizer BACKEND_URL %q, want http://backend:%s", got, port)
	}
	if got, _ := env(auth, "HTTP_PORT"); got != "8080" || auth.Ports[0].Target != 8080 {
		t.Errorf("authorizer HTTP_PORT %q vs published target %d", got, auth.Ports[0].Target)
	}
	// The health check probes the port and path Caddyfile.env serves.
	hc := strings.Join(auth.HealthCheck.Test, " ")
	if !strings.Contains(hc, "http://127.0.0.1:8080/healthz") {
		t.Errorf("authorizer healthcheck %q does not probe :8080/healthz", hc)
	}

	caddyfile, err := os.ReadFile("Caddyfile.env")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(caddyfile), "handle /healthz {") {
		t.Error("Caddyfile.env does not serve /healthz")
	}
	for _, name := range caddyfileEnvVars(string(caddyfile)) {
		if _, ok := auth.Environment[name]; !ok {
			t.Errorf("Caddyfile.env reads {$%s} but the authorizer's environment does not set it", name)
		}
	}
	for name := range auth.Environment {
		if !strings.HasPrefix(name, "AWS_") && !slices.Contains(caddyfileEnvVars(string(caddyfile)), name) {
			t.Errorf("authorizer sets %s, which Caddyfile.env never reads", name)
		}
	}
}

// caddyfileEnvVars lists the {$NAME} and {$NAME:default} variables a
// Caddyfile reads, outside comments.
func caddyfileEnvVars(src string) []string {
	re := regexp.MustCompile(`\{\$([A-Za-z_][A-Za-z0-9_]*)`)
	seen := map[string]bool{}
	var names []string
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(line, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				names = append(names, m[1])
			}
		}
	}
	return names
}

func TestComposeRequiresClientIDs(t *testing.T) {
	env := map[string]string{}
	for k, v := range baseEnv {
		if k != "COGNITO_CLIENT_IDS" {
			env[k] = v
		}
	}
	_, err := loadCompose(t, env)
	if err == nil || !strings.Contains(err.Error(), "COGNITO_CLIENT_IDS") {
		t.Errorf("loading without COGNITO_CLIENT_IDS: %v, want an error naming it", err)
	}
}

// instruction is one Dockerfile instruction with continuations joined.
type instruction struct {
	Cmd  string // upper case
	Args string
	Line int
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// stages splits instructions at FROM.
func stages(ins []instruction) [][]instruction {
	var st [][]instruction
	for _, in := range ins {
		if in.Cmd == "FROM" {
			st = append(st, nil)
		}
		if len(st) > 0 {
			st[len(st)-1] = append(st[len(st)-1], in)
		}
	}
	return st
}

func goDirective(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no go directive in go.mod")
	}
	return string(m[1])
}

var dockerfiles = []struct {
	path, binary, pkg string
}{
	{filepath.Join(root, "Dockerfile"), "caddy", "./cmd/caddy"},
	{filepath.Join(root, "deploy", "Dockerfile.backend"), "sample-backend", "./cmd/sample-backend"},
}

func TestDockerfiles(t *testing.T) {
	goVersion := goDirective(t)
	for _, df := range dockerfiles {
		t.Run(filepath.Base(df.path), func(t *testing.T) {
			ins := parseDockerfile(t, df.path)
			st := stages(ins)
			if len(st) < 2 {
				t.Fatalf("%d stages, want a builder and a runtime stage", len(st))
			}
			// The builder's Go matches go.mod.
			var argGo string
			for _, in := range ins {
				if in.Cmd == "ARG" && strings.HasPrefix(in.Args, "GO_VERSION=") {
					argGo = strings.TrimPrefix(in.Args, "GO_VERSION=")
				}
			}
			if argGo != goVersion {
				t.Errorf("ARG GO_VERSION=%s, go.mod says go %s", argGo, goVersion)
			}
			if from := st[0][0].Args; !strings.HasPrefix(from, "golang:${GO_VERSION}") {
				t.Errorf("builder FROM %q, want golang:${GO_VERSION}...", from)
			}
			if n := len(buildLines(ins)); n != 1 {
				t.Errorf("%d go build lines, want 1", n)
			}
			final := st[len(st)-1]
			var user, health, entry string
			for _, in := range final {
				switch in.Cmd {
				case "USER":
					user = in.Args
				case "HEALTHCHECK":
					health = in.Args
				case "ENTRYPOINT":
					entry = in.Args
				}
			}
			if u, _, _ := strings.Cut(user, ":"); user == "" || u == "root" || u == "0" {
				t.Errorf("runtime USER %q: must be a non-root user", user)
			}
			if health == "" || strings.Contains(health, "NONE") {
				t.Errorf("runtime HEALTHCHECK %q", health)
			}
			if !strings.Contains(entry, "/"+df.binary) && !strings.Contains(entry, `"`+df.binary+`"`) {
				t.Errorf("ENTRYPOINT %q does not run %s", entry, df.binary)
			}
			if !slices.ContainsFunc(final, func(in instruction) bool {
				return in.Cmd == "COPY" && strings.HasPrefix(in.Args, "--from=build /out/"+df.binary+" ")
			}) {
				t.Errorf("runtime stage does not copy /out/%s from the builder", df.binary)
			}
		})
	}

	// The authorizer image: default Caddyfile from deploy/, the path users mount over.
	ins := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	var copied, cmd bool
	for _, in := range ins {
		copied = copied || (in.Cmd == "COPY" && in.Args == "deploy/Caddyfile.env /etc/caddy/Caddyfile")
		cmd = cmd || (in.Cmd == "CMD" && strings.Contains(in.Args, `"--config", "/etc/caddy/Caddyfile"`))
	}
	if !copied || !cmd {
		t.Errorf("Dockerfile: COPY deploy/Caddyfile.env /etc/caddy/Caddyfile %v, CMD --config /etc/caddy/Caddyfile %v", copied, cmd)
	}

	// The images build from go.mod and go.sum: a go.work in the context
	// would build them against the workspace's (other) dependency versions.
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	ignored := strings.Fields(string(b))
	for _, f := range []string{"go.work", "go.work.sum"} {
		if !slices.Contains(ignored, f) {
			t.Errorf(".dockerignore does not exclude %s", f)
		}
	}
}

// buildLines returns the go build command of each RUN that has one.
func buildLines(ins []instruction) []string {
	var cmds []string
	for _, in := range ins {
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
			cmds = append(cmds, in.Args)
		}
	}
	return cmds
}

// TestDockerfileBuildCommands runs each Dockerfile's go build line, exactly
// as written, on the host (into a temp dir instead of /out) and checks the
// binary is static, stripped and trimmed, then exercises it.
func TestDockerfileBuildCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds caddy; skipped in -short")
	}
	moduleRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, df := range dockerfiles {
		t.Run(df.binary, func(t *testing.T) {
			lines := buildLines(parseDockerfile(t, df.path))
			if len(lines) != 1 {
				t.Fatalf("want one go build line, got %q", lines)
			}
			line := lines[0]
			if !strings.Contains(line, "-o /out/"+df.binary+" "+df.pkg) {
				t.Fatalf("build line %q does not build %s into /out/%s", line, df.pkg, df.binary)
			}
			out := t.TempDir()
			cmdline := strings.Replace(line, "/out/", out+"/", 1)
			cmd := exec.Command("sh", "-c", cmdline)
			cmd.Dir = moduleRoot
			// The image builds from go.mod and go.sum alone (.dockerignore
			// keeps a developer's go.work out of the context): so does this.
			cmd.Env = append(os.Environ(), "GOWORK=off")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", cmdline, err, b)
			}
			bin := filepath.Join(out, df.binary)
			checkBinary(t, bin)
			if df.binary == "caddy" {
				checkCaddyfileEnv(t, bin)
			}
		})
	}
}

func checkBinary(t *testing.T, bin string) {
	t.Helper()
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != want {
			t.Errorf("build setting %s = %q, want %q", k, settings[k], want)
		}
	}
	// Go does not record -ldflags under -trimpath; check their effect below.
	if v, ok := settings["-ldflags"]; ok && v != "-s -w" {
		t.Errorf("build setting -ldflags = %q, want -s -w", v)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has an ELF interpreter: not static")
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("binary has a symbol table: not stripped (-s)")
	}
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("binary has DWARF section %s: not built with -w", s.Name)
			break
		}
	}
}

// checkCaddyfileEnv adapts deploy/Caddyfile.env with the built caddy in the
// modes it documents and checks the handler config that results.
func checkCaddyfileEnv(t *testing.T, bin string) {
	t.Helper()
	mods, err := exec.Command(bin, "list-modules").Output()
	if err != nil {
		t.Fatalf("list-modules: %v", err)
	}
	if !strings.Contains(string(mods), "http.handlers.cognito_auth\n") {
		t.Fatalf("cognito_auth not in the build:\n%s", mods)
	}
	caddyfile, err := filepath.Abs("Caddyfile.env")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		want map[string]any // expected fields of the cognito_auth handler
		jwks map[string]any // expected "jwks" object; nil: absent
	}{
		{
			name: "user pool, default JWKS",
			env:  map[string]string{"COGNITO_USER_POOL": "eu-west-1_AbCdEf123", "COGNITO_CLIENT_IDS": "c1 c2", "BACKEND_URL": "http://backend:8081"},
			want: map[string]any{"user_pool": "eu-west-1_AbCdEf123", "audience": []any{"c1", "c2"}, "token_use": "access"},
		},
		{
			name: "issuer and JWKS URL",
			env: map[string]string{
				"COGNITO_ISSUER_SOURCE": "issuer", "COGNITO_ISSUER": "http://cognito:9229/local_abc",
				"COGNITO_CLIENT_IDS": "c1", "COGNITO_TOKEN_USE": "id", "JWKS_SOURCE": "url",
				"JWKS_URL": "http://cognito:9229/local_abc/.well-known/jwks.json", "BACKEND_URL": "http://backend:8081",
			},
			want: map[string]any{"issuer": "http://cognito:9229/local_abc", "audience": []any{"c1"}, "token_use": "id"},
			jwks: map[string]any{"source": "url", "url": "http://cognito:9229/local_abc/.well-known/jwks.json"},
		},
		{
			name: "JWKS from SSM",
			env: map[string]string{
				"COGNITO_USER_POOL": "eu-west-1_AbCdEf123", "COGNITO_CLIENT_IDS": "c1",
				"JWKS_SOURCE": "ssm", "JWKS_SSM_PARAMETER": "/cognito/jwks", "BACKEND_URL": "http://backend:8081",
			},
			want: map[string]any{"user_pool": "eu-west-1_AbCdEf123"},
			jwks: map[string]any{"source": "ssm"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The image's Caddyfile documents JWKS_SOURCE=ssm: a build
			// without the ssm key source is a broken image, not a skip.
			if tc.jwks != nil && tc.jwks["source"] == "ssm" && !strings.Contains(string(mods), "http.handlers.cognito_auth.jwks.ssm\n") {
				t.Fatalf("the image's caddy has no http.handlers.cognito_auth.jwks.ssm module, but Caddyfile.env offers JWKS_SOURCE=ssm:\n%s", mods)
			}
			cmd := exec.Command(bin, "adapt", "--config", caddyfile, "--adapter", "caddyfile")
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			for k, v := range tc.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("caddy adapt: %v\n%s", err, stderr.String())
			}
			if strings.Contains(stderr.String(), "not formatted") {
				t.Errorf("Caddyfile.env is not caddy-fmt clean: %s", stderr.String())
			}
			h := findHandler(t, out, "cognito_auth")
			for k, want := range tc.want {
				if got, _ := json.Marshal(h[k]); string(got) != mustJSON(t, want) {
					t.Errorf("%s = %s, want %s", k, got, mustJSON(t, want))
				}
			}
			if tc.jwks == nil {
				if _, ok := h["jwks"]; ok {
					t.Errorf("jwks = %v, want the default (absent)", h["jwks"])
				}
			} else {
				j, _ := h["jwks"].(map[string]any)
				for k, want := range tc.jwks {
					if got, _ := json.Marshal(j[k]); string(got) != mustJSON(t, want) {
						t.Errorf("jwks.%s = %s, want %s", k, got, mustJSON(t, want))
					}
				}
			}
			if !strings.Contains(string(out), `"dial":"backend:8081"`) {
				t.Errorf("reverse_proxy does not dial backend:8081: %s", out)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// findHandler returns the first handler object named name anywhere in a
// Caddy JSON config.
func findHandler(t *testing.T, cfg []byte, name string) map[string]any {
	t.Helper()
	var v any
	if err := json.Unmarshal(cfg, &v); err != nil {
		t.Fatalf("adapt output: %v", err)
	}
	var found map[string]any
	var walk func(any)
	walk = func(x any) {
		if found != nil {
			return
		}
		switch x := x.(type) {
		case map[string]any:
			if x["handler"] == name {
				found = x
				return
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	if found == nil {
		t.Fatalf("no %s handler in %s", name, cfg)
	}
	return found
}

// TestComposeV1Config validates docker-compose.yml with docker-compose v1
// too (stricter about some fields), when it is installed.
func TestComposeV1Config(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose (v1) not installed; apt-get install docker-compose to run this check")
	}
	for _, profile := range []string{"", "dev"} {
		args := []string{"-f", filepath.Join(root, "docker-compose.yml")}
		if profile != "" {
			args = append(args, "--profile", profile)
		}
		cmd := exec.Command(bin, append(args, "config", "-q")...)
		cmd.Env = append(os.Environ(), "COGNITO_CLIENT_IDS=client1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker-compose config (profile %q): %v\n%s", profile, err, out)
		}
	}
}

// TestCognitoLocalPinned checks the dev profile's cognito-local image installs
// exactly the version e2e/package-lock.json pins, with npm ci.
func TestCognitoLocalPinned(t *testing.T) {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	for path, v := range map[string]any{"package.json": &pkg, "package-lock.json": &lock} {
		b, err := os.ReadFile(filepath.Join(root, "e2e", path))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if got := pkg.Dependencies["cognito-local"]; got != "5.3.0" {
		t.Errorf("e2e/package.json cognito-local %q, want exactly 5.3.0", got)
	}
	if got := lock.Packages["node_modules/cognito-local"].Version; got != "5.3.0" {
		t.Errorf("e2e/package-lock.json cognito-local %q, want 5.3.0", got)
	}
	var copiesLock, npmCI bool
	for _, in := range parseDockerfile(t, filepath.Join(root, "deploy", "Dockerfile.cognito")) {
		copiesLock = copiesLock || (in.Cmd == "COPY" && strings.Contains(in.Args, "e2e/package-lock.json"))
		npmCI = npmCI || (in.Cmd == "RUN" && strings.Contains(in.Args, "npm ci"))
	}
	if !copiesLock || !npmCI {
		t.Errorf("Dockerfile.cognito: copies the lockfile %v, installs with npm ci %v", copiesLock, npmCI)
	}
}
