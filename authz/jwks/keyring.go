package jwks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Errors of Keyring.Key.
var (
	// ErrUnavailable: no key set has ever been loaded.
	ErrUnavailable = errors.New("jwks: no keys loaded yet")
	// ErrUnknownKID: the kid is not in the current key set, and a refetch
	// either did not find it or is not allowed yet (cooldown).
	ErrUnknownKID = errors.New("jwks: unknown key id")
)

// Options tune a Keyring. Zero values take the defaults.
type Options struct {
	// Refresh is the period of the background refresh. Default 1h.
	Refresh time.Duration
	// Cooldown is the least time between two fetches caused by unknown key
	// ids, stretched by up to Jitter. Default 10s (aws-jwt-verify's penalty
	// box).
	Cooldown time.Duration
	// Jitter spreads refreshes and retries by up to this fraction, so a
	// fleet started together does not fetch together. Default 0.1.
	Jitter float64
	// FetchTimeout bounds one fetch. Default 10s.
	FetchTimeout time.Duration
	// MaxBackoff caps the wait between retries after failures.
	// Default 5m (or Refresh, if shorter).
	MaxBackoff time.Duration
	// OnDemandWait caps how long Key waits for the fetch an unknown kid
	// started (or joined); after it the kid is answered as unknown while
	// the fetch goes on. A key server that accepts and never answers then
	// holds each such request (a goroutine, a connection) for this long,
	// not for FetchTimeout. Default 1s.
	OnDemandWait time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives fetch failures and hygiene warnings. Default no-op.
	Logger *zap.Logger
}

func (o *Options) setDefaults() {
	if o.Refresh <= 0 {
		o.Refresh = time.Hour
	}
	if o.Cooldown <= 0 {
		o.Cooldown = 10 * time.Second
	}
	if o.Jitter <= 0 {
		o.Jitter = 0.1
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 10 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	o.MaxBackoff = min(o.MaxBackoff, o.Refresh)
	if o.OnDemandWait <= 0 {
		o.OnDemandWait = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Stats are a Keyring's counters, for metrics.
type Stats struct {
	FetchOK, FetchNotModified, FetchError uint64
	Keys                                  int
	LastSuccess                           time.Time
	LastError                             string
}

// Keyring keeps the current key set of one Source.
type Keyring struct {
	src  Source
	opts Options
	log  *zap.Logger

	snap      atomic.Pointer[Set]
	ready     chan struct{} // closed when the first key set is loaded
	once      sync.Once
	attempted chan struct{} // closed when the first fetch has ended, either way
	attempt   sync.Once

	mu           sync.Mutex
	inflight     *fetchCall
	nextOnDemand time.Time // no on-demand fetch before this
	lastErr      string
	lastSuccess  time.Time
	// nextAttempt is when the refresh loop fetches next (UnixNano; 0: now,
	// a fetch is running or about to).
	nextAttempt atomic.Int64

	fetchOK, fetchNotModified, fetchErr atomic.Uint64

	// loopMu guards the refresh loop's life: not started, running (done
	// closes when it ends) or stopped. lazy: started by StartLazily.
	loopMu    sync.Mutex
	loopState int
	lazy      atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// NewKeyring returns a keyring for src. Call Start to load keys.
func NewKeyring(src Source, opts Options) *Keyring {
	opts.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Keyring{
		src:       src,
		opts:      opts,
		log:       opts.Logger.With(zap.String("jwks_source", src.String())),
		ready:     make(chan struct{}),
		attempted: make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
	}
}

// Source returns the keyring's source.
func (k *Keyring) Source() Source { return k.src }

// States of the refresh loop.
const (
	loopIdle = iota
	loopRunning
	loopStopped
)

// Start runs the first fetch and then the refresh loop in the background,
// until Stop. Starting a started keyring does nothing; starting one that
// was started lazily and has not fetched yet fetches now.
func (k *Keyring) Start() { k.startLoop(false) }

// StartLazily arms the keyring without fetching: the first Key call (a
// token that needs these keys) makes the first fetch, as an on-demand
// fetch under the cooldown, so a flood of such tokens costs one fetch per
// cooldown and a source nobody needs is never contacted. The periodic
// refresh begins after the first successful fetch. It is for key sets that
// may legitimately not exist, such as the UPDATED-issuer key set of a
// Cognito pool that has not switched format (AWS answers 403 there).
func (k *Keyring) StartLazily() { k.lazy.Store(true) }

// startLoop starts the refresh loop once; afterSuccess makes it wait a
// refresh period first (a key set was just fetched).
func (k *Keyring) startLoop(afterSuccess bool) {
	k.loopMu.Lock()
	defer k.loopMu.Unlock()
	if k.loopState != loopIdle {
		return
	}
	k.loopState = loopRunning
	go k.loop(afterSuccess)
}

// Stop ends the background work and waits for it. A source with idle
// connections to close (an HTTP client) has them closed, so a stopped
// keyring leaves no goroutines behind.
func (k *Keyring) Stop() {
	k.loopMu.Lock()
	running := k.loopState == loopRunning
	k.loopState = loopStopped
	k.loopMu.Unlock()
	k.cancel()
	if running {
		<-k.done
	}
	k.mu.Lock()
	c := k.inflight
	k.mu.Unlock()
	if c != nil {
		<-c.done
	}
	if s, ok := k.src.(interface{ CloseIdleConnections() }); ok {
		s.CloseIdleConnections()
	}
}

// Ready is closed once a key set has been loaded.
func (k *Keyring) Ready() <-chan struct{} { return k.ready }

// WaitReady waits until keys are loaded or ctx ends.
func (k *Keyring) WaitReady(ctx context.Context) error {
	select {
	case <-k.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the first key set from %s: %w", k.src, ctx.Err())
	}
}

// Attempted is closed once the first fetch has ended, successfully or not.
func (k *Keyring) Attempted() <-chan struct{} { return k.attempted }

// Snapshot returns the current key set (nil before the first load).
func (k *Keyring) Snapshot() *Set { return k.snap.Load() }

// Key returns the key with the given kid. On a miss it joins or starts one
// shared refetch, at most one per cooldown, and waits for it at most
// OnDemandWait; during the cooldown a miss is answered at once with
// ErrUnknownKID (or ErrUnavailable if no key set was ever loaded), so a
// flood of invented kids costs the source nothing and holds nothing.
func (k *Keyring) Key(ctx context.Context, kid string) (*Key, error) {
	if key := k.snap.Load().Lookup(kid); key != nil {
		return key, nil
	}
	k.mu.Lock()
	c := k.inflight
	if c == nil {
		now := k.opts.Now()
		if now.Before(k.nextOnDemand) {
			k.mu.Unlock()
			return nil, k.missErr()
		}
		// The cooldown is stretched by a random fraction (never shortened),
		// so a fleet hit by the same flood of forged kids does not refetch
		// in lockstep.
		k.nextOnDemand = now.Add(k.opts.Cooldown + time.Duration(rand.Float64()*k.opts.Jitter*float64(k.opts.Cooldown)))
		c = k.startFetchLocked()
	}
	k.mu.Unlock()
	t := time.NewTimer(k.opts.OnDemandWait)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		// The fetch is slow: answer now; it goes on, and the next
		// request with this kid finds the key if it came.
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for key %q: %w", kid, ctx.Err())
	}
	if key := k.snap.Load().Lookup(kid); key != nil {
		return key, nil
	}
	return nil, k.missErr()
}

func (k *Keyring) missErr() error {
	if k.snap.Load() == nil {
		return ErrUnavailable
	}
	return ErrUnknownKID
}

// Refresh fetches now (joining a fetch in flight) and returns its error.
func (k *Keyring) Refresh(ctx context.Context) error {
	k.mu.Lock()
	c := k.inflight
	if c == nil {
		c = k.startFetchLocked()
	}
	k.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startFetchLocked starts the shared fetch. The fetch runs on the keyring's
// own context, not the request's, so a client that gives up does not
// cancel it for everyone else.
func (k *Keyring) startFetchLocked() *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	k.inflight = c
	go func() {
		c.err = k.fetch()
		k.mu.Lock()
		k.inflight = nil
		k.mu.Unlock()
		close(c.done)
		k.attempt.Do(func() { close(k.attempted) })
	}()
	return c
}

func (k *Keyring) fetch() error {
	ctx, cancel := context.WithTimeout(k.ctx, k.opts.FetchTimeout)
	defer cancel()
	prev := k.snap.Load()
	doc, version, err := k.src.Fetch(ctx, prev.Version())
	if errors.Is(err, ErrNotModified) && prev != nil {
		k.fetchNotModified.Add(1)
		k.succeeded()
		return nil
	}
	if err == nil && prev != nil && version != "" && version == prev.version {
		k.fetchNotModified.Add(1)
		k.succeeded()
		return nil
	}
	var set *Set
	if err == nil {
		var warnings []string
		set, warnings, err = ParseSet(doc)
		for _, w := range warnings {
			k.log.Warn("jwks key ignored", zap.String("reason", w))
		}
	}
	if err != nil {
		k.fetchErr.Add(1)
		k.mu.Lock()
		k.lastErr = err.Error()
		k.mu.Unlock()
		k.log.Warn("jwks fetch failed; keeping the last good keys",
			zap.Error(err), zap.Int("keys_in_service", prev.Len()))
		return err
	}
	set.version = version
	k.snap.Store(set)
	k.fetchOK.Add(1)
	k.succeeded()
	k.once.Do(func() { close(k.ready) })
	k.log.Info("jwks loaded", zap.Strings("kids", set.KeyIDs()), zap.String("version", version))
	if k.lazy.Load() {
		k.startLoop(true) // keys are wanted: keep them fresh from now on
	}
	return nil
}

func (k *Keyring) succeeded() {
	k.mu.Lock()
	k.lastSuccess = k.opts.Now()
	k.lastErr = ""
	k.mu.Unlock()
}

// NextAttempt is when the keyring will next fetch on its own: the end of
// the current refresh period or failure backoff, or now if a fetch is
// running. (A request with an unknown kid may cause one earlier.)
func (k *Keyring) NextAttempt() time.Time {
	n := k.nextAttempt.Load()
	if n == 0 {
		return k.opts.Now()
	}
	return time.Unix(0, n)
}

// Stats returns the keyring's counters.
func (k *Keyring) Stats() Stats {
	k.mu.Lock()
	defer k.mu.Unlock()
	return Stats{
		FetchOK:          k.fetchOK.Load(),
		FetchNotModified: k.fetchNotModified.Load(),
		FetchError:       k.fetchErr.Load(),
		Keys:             k.snap.Load().Len(),
		LastSuccess:      k.lastSuccess,
		LastError:        k.lastErr,
	}
}

func (k *Keyring) loop(afterSuccess bool) {
	defer close(k.done)
	failures := 0
	for {
		var err error
		if afterSuccess {
			afterSuccess = false
		} else {
			k.nextAttempt.Store(0)
			err = k.Refresh(k.ctx)
		}
		if k.ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err == nil {
			failures = 0
			wait = k.jitter(k.opts.Refresh)
		} else {
			failures++
			wait = k.backoff(failures)
			var ra *RetryAfterError
			if errors.As(err, &ra) && ra.After > wait {
				wait = min(ra.After, k.opts.MaxBackoff)
			}
		}
		k.nextAttempt.Store(k.opts.Now().Add(wait).UnixNano())
		t := time.NewTimer(wait)
		select {
		case <-k.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is 1s, 2s, 4s … up to MaxBackoff, with jitter.
func (k *Keyring) backoff(failures int) time.Duration {
	d := time.Second << min(failures-1, 20)
	return k.jitter(min(d, k.opts.MaxBackoff))
}

// jitter returns d shortened by a random fraction up to Jitter, so the
// period is never exceeded.
func (k *Keyring) jitter(d time.Duration) time.Duration {
	return d - time.Duration(rand.Float64()*k.opts.Jitter*float64(d))
}
