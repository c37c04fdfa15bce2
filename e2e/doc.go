// Package e2e holds the end-to-end tests: the real caddy binary built from
// ./cmd/caddy, the sample backend, and real tokens from cognito-local (the
// npm package pinned in package.json here, installed with npm ci when
// node_modules is missing).
//
//	go test ./e2e/ -v           # needs node and npm on PATH
//
// Without node the tests skip, except when CI=true, where they fail.
// The reusable harness lives in e2e/cognitolocal.
package e2e
