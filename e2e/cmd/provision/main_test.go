package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/e2e/cognitolocal"
)

func TestShellQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", `a"b$c` + "`d`\\", "x y\nz", "''"} {
		out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(s)).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != s {
			t.Errorf("sh read %q back as %q", s, out)
		}
	}
}

func TestPorts(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"ports", "3"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(out.String())
	if len(lines) != 3 {
		t.Fatalf("got %q", out.String())
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if p, err := strconv.Atoi(l); err != nil || p <= 0 || seen[l] {
			t.Errorf("bad port %q in %q", l, out.String())
		}
		seen[l] = true
	}
	for _, bad := range [][]string{nil, {"ports"}, {"ports", "0"}, {"ports", "x"}, {"nope"}, {"demo"}} {
		if err := run(context.Background(), bad, &out); err == nil {
			t.Errorf("run(%q): want error", bad)
		}
	}
}

func TestDemoAgainstCognitoLocal(t *testing.T) {
	cognitolocal.RequireNode(t)
	if testing.Short() {
		t.Skip("starts cognito-local; skipped in -short")
	}
	ctx := context.Background()
	pkgDir, _ := filepath.Abs("../..")
	if err := cognitolocal.EnsureInstalled(ctx, pkgDir, nil); err != nil {
		t.Fatal(err)
	}
	s, err := cognitolocal.Start(ctx, cognitolocal.Options{PackageDir: pkgDir, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })

	var out bytes.Buffer
	if err := run(ctx, []string{"demo", "-endpoint", s.URL}, &out); err != nil {
		t.Fatal(err)
	}
	// Evaluate the output in a shell, exactly as scripts/demo.sh does.
	script := out.String() + `printf '%s\n' "$DEMO_ISSUER" "$DEMO_CLIENT_ID" "$ALICE_ACCESS_TOKEN" "$BOB_ACCESS_TOKEN" "$ALICE_SUB"`
	got, err := exec.Command("bash", "-c", script).Output()
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, out.String())
	}
	v := strings.Split(strings.TrimSpace(string(got)), "\n")
	if len(v) != 5 || !strings.HasPrefix(v[0], s.URL+"/") {
		t.Fatalf("vars %q", v)
	}
	ac, err := cognitolocal.UnverifiedClaims(v[2])
	if err != nil {
		t.Fatal(err)
	}
	if ac["iss"] != v[0] || ac["client_id"] != v[1] || ac["sub"] != v[4] {
		t.Errorf("alice claims %v", ac)
	}
	if g, _ := ac["cognito:groups"].([]any); len(g) != 1 || g[0] != "admins" {
		t.Errorf("alice groups %v", ac["cognito:groups"])
	}
	bc, _ := cognitolocal.UnverifiedClaims(v[3])
	if _, ok := bc["cognito:groups"]; ok {
		t.Errorf("bob must be in no group: %v", bc)
	}
}
