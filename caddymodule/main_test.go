package caddymodule_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
)

// loads counts configs a real Caddy accepted during the run.
var loads atomic.Int64

// caddytest skips a test when it cannot start Caddy (e.g. the admin port is
// taken). On CI that would turn the integration suite into a silent no-op,
// so a full run in which Caddy never loaded a config fails instead.
//
// Caddy binds with SO_REUSEPORT, so two runs of this package at once (two
// developers' shells, an editor's test runner) would silently share :2999
// and :9080 and load configs into each other's Caddy. A machine-wide lock
// makes concurrent runs wait for each other instead.
func TestMain(m *testing.M) {
	flag.Parse()
	var lock *os.File
	if os.Getenv(syncHelperEnv) == "" { // not the CLI helper process a locked test started
		lock, _ = os.OpenFile(filepath.Join(os.TempDir(), "caddy-cognito-caddytest.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	}
	if lock != nil {
		// Held until the process exits.
		_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
	}
	code := m.Run()
	// Keep the lock's file open (a collected *os.File closes its descriptor
	// and so releases the lock) until the end.
	runtime.KeepAlive(lock)
	if code == 0 && !testing.Short() && flag.Lookup("test.run").Value.String() == "" && loads.Load() == 0 {
		fmt.Fprintln(os.Stderr, "FAIL: no integration test could start Caddy (is localhost:2999 or :9080 in use?)")
		code = 1
	}
	os.Exit(code)
}
