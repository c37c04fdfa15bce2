package caddymodule_test

import (
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
)

// loads counts configs a real Caddy accepted during the run.
var loads atomic.Int64

// caddytest skips a test when it cannot start Caddy (e.g. the admin port is
// taken). On CI that would turn the integration suite into a silent no-op,
// so a full run in which Caddy never loaded a config fails instead.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && !testing.Short() && flag.Lookup("test.run").Value.String() == "" && loads.Load() == 0 {
		fmt.Fprintln(os.Stderr, "FAIL: no integration test could start Caddy (is localhost:2999 or :9080 in use?)")
		code = 1
	}
	os.Exit(code)
}
