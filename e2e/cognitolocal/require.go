package cognitolocal

import (
	"os"
	"os/exec"
	"testing"
)

// RequireNode skips tb when node is not on PATH, with a clear message, but
// fails it instead when CI=true: CI must never skip the end-to-end tests.
func RequireNode(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("node"); err == nil {
		return
	}
	msg := "node is not on PATH: install Node.js 20+ (and npm) to run the cognito-local end-to-end tests"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + " (CI=true: not skipping)")
	}
	tb.Skip(msg)
}
