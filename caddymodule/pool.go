package caddymodule

import (
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
)

// keyrings holds one keyring (and its verified-token cache) per distinct key
// source, shared by every handler that uses the source and kept across
// config reloads: the new config takes a reference before the old one
// releases its own, so a reload neither refetches keys nor drops the cache.
// The keyring's goroutine ends when the last handler using it is cleaned up.
var keyrings = caddy.NewUsagePool()

// sharedKeys is the pooled value.
type sharedKeys struct {
	ring  *jwks.Keyring
	cache *authz.Cache
}

// Destruct implements caddy.Destructor.
func (s *sharedKeys) Destruct() error {
	s.ring.Stop()
	return nil
}

// poolKey identifies a keyring: the same source with the same timing.
func poolKey(src jwks.Source, o jwks.Options) string {
	return fmt.Sprintf("%T|%s|refresh=%s|cooldown=%s|timeout=%s", src, src.String(), o.Refresh, o.Cooldown, o.FetchTimeout)
}

// acquireKeys returns the shared keyring for src, creating it if it is new.
// It starts the keyring (a no-op if it runs already), or, when lazy, arms
// a new one to fetch on first use (see jwks.Keyring.StartLazily); starting
// never waits for a fetch.
func acquireKeys(key string, src jwks.Source, o jwks.Options, cacheSize int, lazy bool) (*sharedKeys, error) {
	v, _, err := keyrings.LoadOrNew(key, func() (caddy.Destructor, error) {
		ring := jwks.NewKeyring(src, o)
		if lazy {
			ring.StartLazily()
		}
		return &sharedKeys{ring: ring, cache: authz.NewCache(cacheSize, o.Now)}, nil
	})
	if err != nil {
		return nil, err
	}
	sk := v.(*sharedKeys)
	if !lazy {
		sk.ring.Start()
	}
	return sk, nil
}

// retryAfter is the Retry-After of a 503: the seconds until the first of
// the handler's keyrings still without keys next tries to load them (at
// least 1).
func (k *handlerKeys) retryAfter() string {
	secs := int64(1)
	var next time.Time
	if k != nil {
		for _, ring := range k.startup {
			if ring.Snapshot() == nil && (next.IsZero() || ring.NextAttempt().Before(next)) {
				next = ring.NextAttempt()
			}
		}
	}
	if d := time.Until(next); !next.IsZero() && d > time.Second {
		secs = int64((d + time.Second - 1) / time.Second)
	}
	return strconv.FormatInt(secs, 10)
}
