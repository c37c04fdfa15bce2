package caddymodule

import (
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
)

func init() {
	caddy.RegisterModule(new(startupApp))
}

// startupApp bounds how long one config load waits for signing keys. It is
// not configured: each cognito_auth handler gets it with ctx.App, which
// instantiates it for the config being loaded, and registers the keyrings
// it acquired in Provision, where they are already started. Caddy starts
// the app with the config, and its Start waits once, against one deadline,
// for every registered keyring: the whole load waits at most the largest
// startup_wait, whatever the number of handlers and key sources, instead of
// one startup_wait per handler one after another (which held a reload, and
// with it Caddy's admin API, for handlers × startup_wait).
//
// Start also applies the cache sizes the config asks for: keyrings and
// their caches outlive configs, so a reload that changes cache_size
// resizes the running cache (to the largest size among the handlers of a
// source), and a reload that fails changes nothing.
type startupApp struct {
	began time.Time // when the config load began provisioning handlers
	log   *zap.Logger

	mu      sync.Mutex
	pending []startupRing
	sizes   map[*authz.Cache]int
}

type startupRing struct {
	ring *jwks.Keyring
	wait time.Duration
}

// startupAppID is the app's name. It is never written in a config.
const startupAppID = "cognito_auth_startup"

// CaddyModule returns the Caddy module information.
func (*startupApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: startupAppID, New: func() caddy.Module { return new(startupApp) }}
}

// Provision implements caddy.Provisioner.
func (a *startupApp) Provision(ctx caddy.Context) error {
	a.began = time.Now()
	a.log = ctx.Logger()
	a.sizes = map[*authz.Cache]int{}
	return nil
}

// register adds a handler's started keyrings: the load waits for them
// until startup_wait after the load began; and its cache, which gets at
// least size entries (0: the default).
func (a *startupApp) register(rings []*jwks.Keyring, wait time.Duration, cache *authz.Cache, size int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range rings {
		a.pending = append(a.pending, startupRing{ring: r, wait: wait})
	}
	if size <= 0 {
		size = authz.DefaultCacheSize
	}
	if cache != nil {
		a.sizes[cache] = max(a.sizes[cache], size)
	}
}

// Start waits for the registered keyrings, each until its first fetch has
// ended (keys loaded, or failed) or its deadline, all deadlines measured
// from the start of the load; then it logs those still without keys (they
// answer 503 and keep retrying in the background). It never fails the
// load: keys may come later, and until then the answer is 503, not a crash
// loop.
func (a *startupApp) Start() error {
	a.mu.Lock()
	pending, sizes := a.pending, a.sizes
	a.pending, a.sizes = nil, map[*authz.Cache]int{}
	a.mu.Unlock()

	for cache, size := range sizes {
		cache.Resize(size)
	}

	seen := map[*jwks.Keyring]bool{}
	for _, p := range pending {
		if seen[p.ring] {
			continue
		}
		seen[p.ring] = true
		// Deadlines are absolute, from the start of the load: waiting for
		// one keyring uses up the others' time too, so the whole wait is at
		// most the largest startup_wait.
		if left := time.Until(a.began.Add(p.wait)); left > 0 {
			t := time.NewTimer(left)
			select {
			case <-p.ring.Ready():
			case <-p.ring.Attempted():
			case <-t.C:
			}
			t.Stop()
		}
		if p.ring.Snapshot() == nil {
			st := p.ring.Stats()
			a.log.Warn("no signing keys yet; answering 503 for the tokens they verify until they load (retrying in the background)",
				zap.String("source", p.ring.Source().String()), zap.String("last_error", st.LastError))
		}
	}
	return nil
}

// Stop implements caddy.App. The keyrings belong to the handlers (and the
// pool), not to the app.
func (a *startupApp) Stop() error { return nil }

// Interface guards
var (
	_ caddy.App         = (*startupApp)(nil)
	_ caddy.Provisioner = (*startupApp)(nil)
)

// awaitKeysAtStart registers a handler's started keyrings and its cache
// with the startup app of the config being loaded.
func awaitKeysAtStart(ctx caddy.Context, rings []*jwks.Keyring, wait time.Duration, cache *authz.Cache, cacheSize int) error {
	app, err := ctx.App(startupAppID)
	if err != nil {
		return err
	}
	app.(*startupApp).register(rings, wait, cache, cacheSize)
	return nil
}
