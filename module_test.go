package caddycognito_test

// Checks of the root module as a Caddy plugin: what `xcaddy build --with
// github.com/caddy-cognito/caddy-cognito` pulls in, which Go it needs, and
// that such a build works.

import (
	"bytes"
	"context"
	"encoding/json"
	"go/version"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// goMod is the part of `go mod edit -json` the tests read.
type goMod struct {
	Module  struct{ Path string }
	Go      string
	Require []struct {
		Path     string
		Version  string
		Indirect bool
	}
}

func readGoMod(t *testing.T, path string) goMod {
	t.Helper()
	out, err := exec.Command("go", "mod", "edit", "-json", path).Output()
	if err != nil {
		t.Fatalf("go mod edit -json %s: %v", path, stderrOf(err))
	}
	var m goMod
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("go mod edit -json %s: %v", path, err)
	}
	return m
}

func stderrOf(err error) error {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return &exitError{err, ee.Stderr}
	}
	return err
}

type exitError struct {
	err    error
	stderr []byte
}

func (e *exitError) Error() string { return e.err.Error() + "\n" + string(e.stderr) }
func (e *exitError) Unwrap() error { return e.err }

// notInPlugin are modules that only the Lambda (cmd/jwks-ssm-resource) and
// the deploy tests (deploy/) use. They live in those directories' own Go
// modules so that a Caddy built with this plugin does not pull them (and
// their YAML and Docker libraries) in.
var notInPlugin = []string{
	"github.com/aws/aws-lambda-go",
	"github.com/compose-spec/compose-go",
}

func isNotInPlugin(path string) bool {
	return slices.ContainsFunc(notInPlugin, func(p string) bool {
		return path == p || strings.HasPrefix(path, p+"/")
	})
}

// TestRootModuleRequirements fails when the plugin's go.mod requires a
// module that only the Lambda or the deploy tests need.
func TestRootModuleRequirements(t *testing.T) {
	m := readGoMod(t, "go.mod")
	if m.Module.Path != "github.com/caddy-cognito/caddy-cognito" {
		t.Fatalf("module path %q", m.Module.Path)
	}
	for _, r := range m.Require {
		if isNotInPlugin(r.Path) {
			t.Errorf("go.mod requires %s %s: only cmd/jwks-ssm-resource or deploy (own modules) may; "+
				"move the import there and run go mod tidy in each module", r.Path, r.Version)
		}
	}
}

// TestGoVersionNotNewerThanCaddy keeps the go line of the plugin's go.mod no
// newer than the one of the Caddy it builds against: whoever can build that
// Caddy can build the plugin.
func TestGoVersionNotNewerThanCaddy(t *testing.T) {
	ours := readGoMod(t, "go.mod").Go
	out, err := exec.Command("go", "list", "-m", "-json", "github.com/caddyserver/caddy/v2").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/caddyserver/caddy/v2: %v", stderrOf(err))
	}
	var caddy struct{ Version, GoMod string }
	if err := json.Unmarshal(out, &caddy); err != nil {
		t.Fatal(err)
	}
	if caddy.GoMod == "" {
		t.Fatalf("go list -m: no go.mod path for Caddy: %s", out)
	}
	theirs := readGoMod(t, caddy.GoMod).Go
	if ours == "" || theirs == "" {
		t.Fatalf("go lines: ours %q, Caddy %s's %q", ours, caddy.Version, theirs)
	}
	if version.Compare("go"+ours, "go"+theirs) > 0 {
		t.Errorf("go.mod says go %s, newer than Caddy %s's go %s: lower it (go mod edit -go=%s) "+
			"unless a feature of the newer Go is needed and worth excluding Caddy's builders",
			ours, caddy.Version, theirs, theirs)
	}
}

// TestXcaddyBuild builds the plugin the way `xcaddy build --with <module>`
// does, with the module named by the README's xcaddy line: a fresh main
// module whose main.go imports Caddy's command, Caddy's standard modules and
// ours, a replace to this checkout, go mod tidy and go build. The binary
// must list our modules, and the build list must not hold the Lambda's or
// the deploy tests' dependencies. Packages come from the shared build cache;
// the cost is mostly the link.
func TestXcaddyBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy; skipped in -short")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^xcaddy build --with (\S+)`).FindSubmatch(readme)
	if line == nil {
		t.Fatal("README.md has no `xcaddy build --with <module>` line")
	}
	plugin := string(line[1])
	if want := readGoMod(t, "go.mod").Module.Path; plugin != want {
		t.Fatalf("README's xcaddy line builds %s, the module is %s", plugin, want)
	}
	checkout, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	mainGo := `package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "` + plugin + `"
)

func main() {
	caddycmd.Main()
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(mainGo), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// Outside any workspace and without inherited -mod flags, like a user's
	// fresh directory.
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	run := func(args ...string) []byte {
		t.Helper()
		start := time.Now()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
		}
		t.Logf("%s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		return out
	}
	run("go", "mod", "init", "caddy")
	run("go", "mod", "edit", "-replace", plugin+"="+checkout)
	run("go", "mod", "tidy")
	run("go", "build", "-o", "caddy", ".")

	mods := string(run(filepath.Join(dir, "caddy"), "list-modules"))
	for _, want := range []string{
		"http.handlers.cognito_auth",
		"http.handlers.cognito_auth.jwks.url",
		"http.handlers.cognito_auth.jwks.discovery",
		"http.handlers.cognito_auth.jwks.file",
		"http.handlers.cognito_auth.jwks.ssm",
		"http.handlers.reverse_proxy", // Caddy's standard modules
	} {
		if !slices.Contains(strings.Fields(mods), want) {
			t.Errorf("list-modules lacks %s:\n%s", want, mods)
		}
	}
	if help := string(run(filepath.Join(dir, "caddy"), "help")); !strings.Contains(help, "cognito-jwks-sync") {
		t.Errorf("caddy help lists no cognito-jwks-sync command:\n%s", help)
	}
	for _, m := range strings.Fields(string(run("go", "list", "-m", "-f", "{{.Path}}", "all"))) {
		if isNotInPlugin(m) {
			t.Errorf("an xcaddy build pulls in %s", m)
		}
	}
}
