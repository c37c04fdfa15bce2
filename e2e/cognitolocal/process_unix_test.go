//go:build unix

package cognitolocal

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcessStopKillsGroup checks that Stop ends the child's own children
// too, and that a process ignoring SIGTERM is killed after the grace period.
func TestProcessStopKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The shell ignores TERM and so does its background child.
	cmd := exec.Command("sh", "-c", `trap "" TERM; sleep 300 & echo $! > `+pidFile+`; echo started; wait`)
	p, err := StartProcess("sh", cmd, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	var child int
	deadline := time.Now().Add(5 * time.Second)
	for child == 0 && time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if child == 0 {
		t.Fatalf("child pid not written; output %q", p.Output())
	}
	start := time.Now()
	if err := p.Stop(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("Stop returned after %v, before the grace period: was TERM not ignored?", d)
	}
	if exited, _ := p.Exited(); !exited {
		t.Error("leader still running after Stop")
	}
	// The background sleep is reparented when the shell dies; poll until the
	// kernel reports it gone (it was SIGKILLed with the group).
	deadline = time.Now().Add(5 * time.Second)
	for alive(child) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("grandchild %d survived Stop", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(p.Output(), "started") {
		t.Errorf("output not captured: %q", p.Output())
	}
	if err := p.Stop(time.Second); err != nil { // idempotent
		t.Fatal(err)
	}
}

// alive reports whether pid exists and is not a zombie waiting to be reaped
// by whatever process adopted it.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		// On Linux a missing entry means it just went away; elsewhere there
		// is no /proc and kill(0) is all we know.
		return runtime.GOOS != "linux" || !errors.Is(err, os.ErrNotExist)
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
