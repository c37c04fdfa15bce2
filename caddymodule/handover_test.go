package caddymodule_test

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// adminPort is the admin listener of the test Caddy (caddytest's default).
const adminPort = 2999

// waitHandover waits until a config load has finished handing Caddy's
// sockets over: one socket listening on the admin port and one on the site
// port.
//
// Caddy binds every config's listeners anew with SO_REUSEPORT. After a load
// the old config's admin and site sockets keep listening, and the kernel
// keeps spreading new connections over both, until the old servers'
// shutdown closes them. That shutdown runs in the background: POST /load
// (and caddytest's load) answers once it has started, not finished. A
// connection still queued on an old socket when it closes is reset by the
// kernel ("connection reset by peer" on a fresh connection), and one the old
// server accepts is answered by the old config. So a test's next request
// must wait for this, not for a fixed time that a busy machine outlasts.
//
// Kept-alive client connections to the old servers are another matter:
// the old server closes them (grace_period 1ns) whenever its shutdown gets
// to them, possibly just as a request is written. Callers drop their
// clients' idle connections after the hand-over, so every request after a
// load opens a connection to the new config.
func waitHandover(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		admin, aok := listeners(adminPort)
		site, sok := listeners(sitePort)
		if !aok || !sok {
			// No /proc/net (not Linux): the sockets cannot be watched.
			// Other systems' SO_REUSEPORT does not spread connections
			// over the sockets of one port in the same way.
			return
		}
		if admin == 1 && site == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a load, %d sockets still listen on the admin port %d and %d on the site port %d, want 1 each: "+
				"the old config's servers did not shut down within 20s (or another process listens there)",
				admin, adminPort, site, sitePort)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// listeners counts the TCP sockets (IPv4 and IPv6) in the LISTEN state on
// port, from /proc/net/tcp and /proc/net/tcp6. ok is false when neither can
// be read.
func listeners(port int) (n int, ok bool) {
	want := fmt.Sprintf(":%04X", port)
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		ok = true
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st ...; st 0A is TCP_LISTEN.
			fields := strings.Fields(sc.Text())
			if len(fields) > 3 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
				n++
			}
		}
		f.Close()
	}
	return n, ok
}
