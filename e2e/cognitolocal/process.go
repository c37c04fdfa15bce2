package cognitolocal

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// Process is a child process started in its own process group, so that Stop
// also ends anything it spawned. Its combined output is kept (the last
// 256 KiB) for error messages and optionally copied to a writer.
type Process struct {
	Name string

	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	err  error // Wait's result, valid once done is closed

	stopOnce sync.Once
	stopErr  error
}

// StartProcess starts cmd in a new process group (on Unix) with stdout and
// stderr captured. copyTo, if not nil, also receives the output.
func StartProcess(name string, cmd *exec.Cmd, copyTo io.Writer) (*Process, error) {
	p := &Process{Name: name, cmd: cmd, out: &tailBuffer{max: 256 << 10}, done: make(chan struct{})}
	var w io.Writer = p.out
	if copyTo != nil {
		w = io.MultiWriter(p.out, copyTo)
	}
	cmd.Stdout = w
	cmd.Stderr = w
	// If a grandchild keeps the output pipe open after the leader exits,
	// don't let Wait hang on it forever.
	cmd.WaitDelay = 2 * time.Second
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id (also the process group id on Unix).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and its Wait error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Output returns the captured output (its tail if it was long).
func (p *Process) Output() string { return p.out.String() }

// Stop asks the process group to terminate (SIGTERM), waits up to grace,
// then kills the group (SIGKILL). It is safe to call more than once and
// after the process has exited on its own. It returns an error only if the
// process could not be made to exit.
func (p *Process) Stop(grace time.Duration) error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
		default:
			_ = signalGroup(p.cmd, false)
			select {
			case <-p.done:
			case <-time.After(grace):
				_ = signalGroup(p.cmd, true)
				select {
				case <-p.done:
				case <-time.After(10 * time.Second):
					p.stopErr = fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.Pid())
					return
				}
			}
		}
		// The leader is gone; make sure no member of its group outlives it.
		_ = signalGroup(p.cmd, true)
	})
	return p.stopErr
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu        sync.Mutex
	buf       []byte
	max       int
	truncated bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.truncated = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return "[…]" + string(b.buf)
	}
	return string(b.buf)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may still take it before the caller binds it; callers that
// start servers retry with a new port when the bind fails.
func FreePort() (int, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// FreePorts returns n distinct free ports on 127.0.0.1 (all are held open at
// once while choosing, so they differ from each other).
func FreePorts(n int) ([]int, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Addr formats a loopback address for port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// errExited is returned by waiters when the process died before becoming ready.
var errExited = errors.New("process exited")
