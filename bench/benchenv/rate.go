package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// rate sends requests at a constant rate (an open model: request i is due at
// start + i/rate whether or not earlier ones were answered) and prints one
// RATE line with the latency percentiles. Latency runs from the moment a
// request was due, not from when a connection was free to send it, so a
// server that falls behind cannot hide its queue (no coordinated omission).
//
// It is deliberately lean (raw HTTP/1.1 requests prepared up front, one
// goroutine per connection) so that it can share a core with the backend at
// rates where a general-purpose generator would itself be the bottleneck.
func rate(args []string) error {
	fs := flag.NewFlagSet("rate", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port to send to (loopback only)")
	tokenFile := fs.String("tokens", "", "token file (one JWT per line), sent round robin as Authorization: Bearer")
	perSec := fs.Int("rate", 1000, "requests per second")
	dur := fs.Duration("d", 10*time.Second, "how long to send")
	maxConns := fs.Int("conns", 256, "connections at most; a request due while all are busy waits (and its wait counts)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("rate: -addr %q must be a loopback host:port", *addr)
	}
	if *perSec <= 0 || *dur <= 0 || *maxConns <= 0 {
		return errors.New("rate: -rate, -d and -conns must be positive")
	}
	reqs, err := prepareRequests(*addr, *tokenFile)
	if err != nil {
		return err
	}

	total := int(dur.Seconds() * float64(*perSec))
	interval := time.Second / time.Duration(*perSec)
	r := &rateRun{addr: *addr, latencies: make([]time.Duration, total), statuses: make([]int, total)}
	idle := make(chan *rateConn, *maxConns)
	open := 0
	// The schedule needs timers finer than the Go runtime's when it is
	// idle (it then waits in epoll with a millisecond timeout, which would
	// add up to 1 ms to every latency). So the scheduler sleeps in
	// nanosleep(2) on its own thread, and a second P keeps the connection
	// goroutines running meanwhile, even when pinned to one CPU.
	runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now().Add(10 * time.Millisecond)
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		sleepUntil(due)
		var c *rateConn
		select {
		case c = <-idle:
		default:
			if open < *maxConns {
				open++
				c = r.newConn(idle)
			} else {
				c = <-idle
			}
		}
		c.work <- rateJob{i: i, due: due, req: reqs[i%len(reqs)]}
	}
	for range open {
		c := <-idle
		close(c.work)
	}
	r.wg.Wait()
	elapsed := time.Since(start)

	ok, failed := 0, 0
	for _, st := range r.statuses {
		if st == http.StatusOK {
			ok++
		} else {
			failed++
		}
	}
	lat := slices.Clone(r.latencies)
	slices.Sort(lat)
	pct := func(p float64) int64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds() }
	fmt.Printf("RATE offered=%d requests=%d ok=%d failed=%d achieved=%.0f conns=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d\n",
		*perSec, total, ok, failed, float64(total)/elapsed.Seconds(), open,
		pct(0.50), pct(0.90), pct(0.99), pct(0.999), lat[len(lat)-1].Microseconds())
	if r.firstErr != nil {
		fmt.Fprintln(os.Stderr, "rate: first error:", r.firstErr)
	}
	return nil
}

// sleepUntil blocks the calling thread (not just the goroutine) until t.
func sleepUntil(t time.Time) {
	for {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil)
	}
}

// prepareRequests builds one raw GET per token (or one without a token).
func prepareRequests(addr, tokenFile string) ([][]byte, error) {
	if tokenFile == "" {
		return [][]byte{[]byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")}, nil
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("rate: %w", err)
	}
	var reqs [][]byte
	for _, tok := range strings.Fields(string(b)) {
		reqs = append(reqs, []byte("GET / HTTP/1.1\r\nHost: "+addr+"\r\nAuthorization: Bearer "+tok+"\r\n\r\n"))
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("rate: no tokens in %s", tokenFile)
	}
	return reqs, nil
}

type rateRun struct {
	addr      string
	wg        sync.WaitGroup
	latencies []time.Duration // by request index; each written by one goroutine
	statuses  []int
	errOnce   sync.Once
	firstErr  error
}

type rateJob struct {
	i   int
	due time.Time
	req []byte
}

type rateConn struct {
	work chan rateJob
	conn net.Conn
	br   *bufio.Reader
}

func (r *rateRun) newConn(idle chan<- *rateConn) *rateConn {
	c := &rateConn{work: make(chan rateJob, 1)}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			if c.conn != nil {
				c.conn.Close()
			}
		}()
		for job := range c.work {
			st, err := c.roundTrip(r.addr, job.req)
			r.latencies[job.i] = time.Since(job.due)
			r.statuses[job.i] = st
			if err != nil {
				r.errOnce.Do(func() { r.firstErr = err })
			}
			idle <- c
		}
	}()
	return c
}

// roundTrip sends one request on the connection, dialling (again) if it has
// none or the server closed it, and reads the whole response.
func (c *rateConn) roundTrip(addr string, req []byte) (int, error) {
	for attempt := 0; attempt < 2; attempt++ {
		if c.conn == nil {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				return 0, err
			}
			c.conn, c.br = conn, bufio.NewReaderSize(conn, 16<<10)
		}
		st, err := c.exchange(req)
		if err == nil {
			return st, nil
		}
		if c.conn != nil {
			c.conn.Close()
			c.conn = nil
		}
		if attempt == 1 || !reusedConnError(err) {
			return 0, err
		}
	}
	return 0, errors.New("unreachable")
}

func (c *rateConn) exchange(req []byte) (int, error) {
	if _, err := c.conn.Write(req); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		c.conn.Close()
		c.conn = nil
	}
	return resp.StatusCode, err
}

// reusedConnError: a kept-alive connection the server had closed.
func reusedConnError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset")
}
