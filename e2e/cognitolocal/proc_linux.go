//go:build linux

package cognitolocal

import "syscall"

// setParentDeathSignal has the kernel kill the child if the test process dies
// without running its cleanups (for example on a hard timeout).
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
