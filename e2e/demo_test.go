package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/e2e/cognitolocal"
)

// TestDemoScript runs `make demo` headless (scripts/demo.sh with
// DEMO_NONINTERACTIVE=1): every curl must give its expected status, and the
// script must leave no process and no temporary directory behind.
func TestDemoScript(t *testing.T) {
	cognitolocal.RequireNode(t)
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH", tool)
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "demo.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "DEMO_NONINTERACTIVE=1", "TMPDIR="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("demo took %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	text := out.String()
	if !strings.Contains(text, "demo: all 11 checks gave the expected status") {
		t.Errorf("no success line:\n%s", text)
	}
	if n := strings.Count(text, "as expected"); n != 10 {
		t.Errorf("%d curl checks as expected, want 10:\n%s", n, text)
	}
	if !regexp.MustCompile(`open http://localhost:\d+/ in a browser and sign in as alice / \S+`).MatchString(text) {
		t.Errorf("no browser sign-in URL and user printed:\n%s", text)
	}

	m := regexp.MustCompile(`into (\S+caddy-cognito-demo\.\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("work dir not printed:\n%s", text)
	}
	work := m[1]
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("work dir %s left behind (%v)", work, err)
	}
	if strays := processesMentioning(work); len(strays) > 0 {
		t.Errorf("processes left running: %q", strays)
	}
}

// processesMentioning lists the processes (from /proc) whose command line
// contains s or whose working directory is under s.
func processesMentioning(s string) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var found []string
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join(d, "cwd"))
		if bytes.Contains(cmdline, []byte(s)) || strings.HasPrefix(cwd, s) {
			found = append(found, strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}
