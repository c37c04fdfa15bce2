//go:build !unix

package cognitolocal

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

// signalGroup can only end the child itself on this platform.
func signalGroup(cmd *exec.Cmd, _ bool) error { return cmd.Process.Kill() }

// lockFile is a no-op here: concurrent installs are not guarded.
func lockFile(string) (func(), error) { return func() {}, nil }
