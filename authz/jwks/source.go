// Package jwks holds the verification keys: where they come from (a Source:
// an HTTPS URL, OIDC discovery, a file, AWS SSM Parameter Store), which of
// them are fit for use (ParseSet and its hygiene rules), and the Keyring that
// keeps them fresh — periodic refresh, one shared refetch for an unknown key
// id behind a cooldown, backoff on failure, and the last good keys kept
// through any outage.
//
// The hot path reads an immutable *Set through an atomic pointer and never
// blocks on the network, except for the single shared refetch an unknown kid
// may trigger.
package jwks

import (
	"context"
	"errors"
	"time"
)

// Source fetches a JWKS document. Implementations do the transport only;
// the Keyring owns timing, retries and the key hygiene.
type Source interface {
	// Fetch returns the JWKS document and an opaque version for it (an
	// ETag, a parameter version, a content hash). When prevVersion is not
	// empty and the document has not changed since, Fetch may return
	// ErrNotModified instead.
	Fetch(ctx context.Context, prevVersion string) (doc []byte, version string, err error)

	// String names the source in logs and metrics, e.g. the URL. It must
	// not contain secrets.
	String() string
}

// ErrNotModified reports that the document is unchanged since the version
// the caller holds.
var ErrNotModified = errors.New("jwks: not modified")

// RetryAfterError is a fetch failure after which the source asked to be left
// alone for a while (HTTP 429/503 with Retry-After, SSM throttling).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// MaxDocumentBytes bounds a JWKS document. Cognito's is under 2 KiB; a
// megabyte leaves room for any real key set and stops a hostile or broken
// server from exhausting memory.
const MaxDocumentBytes = 1 << 20
