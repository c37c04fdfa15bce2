package caddymodule

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
)

// Metrics live in the registry of the Caddy context that provisioned the
// handler (one per config load). Keyrings outlive configs, so their figures
// are not pushed into collectors but pulled at scrape time by a collector
// registered in each config's registry.

// metrics are the collectors of one registry.
type metrics struct {
	decisions *prometheus.CounterVec
	keyrings  *keyringCollector
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "cognito",
		Name:      "decisions_total",
		Help:      "Authorization decisions by result (allow, deny) and reason.",
	}, []string{"issuer", "result", "reason"})
	if err := reg.Register(decisions); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		decisions = are.ExistingCollector.(*prometheus.CounterVec)
	}
	kc := newKeyringCollector()
	if err := reg.Register(kc); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		kc = are.ExistingCollector.(*keyringCollector)
	}
	return &metrics{decisions: decisions, keyrings: kc}, nil
}

type keyringCollector struct {
	fetches, keys, lastSuccess, cacheEntries, cacheCapacity *prometheus.Desc

	mu sync.Mutex
	// rings → armed lazily: such a keyring is reported once it has
	// fetched (a form no token has named yet is not an outage).
	rings map[*jwks.Keyring]bool
	// caches → the source of the keyring that owns the cache.
	caches map[*authz.Cache]string
}

func newKeyringCollector() *keyringCollector {
	return &keyringCollector{
		fetches: prometheus.NewDesc("caddy_cognito_jwks_fetches_total",
			"Key set fetches by source and result (ok, not_modified, error).", []string{"source", "result"}, nil),
		keys: prometheus.NewDesc("caddy_cognito_jwks_keys",
			"Keys in service, by source.", []string{"source"}, nil),
		lastSuccess: prometheus.NewDesc("caddy_cognito_jwks_last_success_timestamp_seconds",
			"Unix time of the last successful fetch (including not-modified answers), by source.", []string{"source"}, nil),
		cacheEntries: prometheus.NewDesc("caddy_cognito_token_cache_entries",
			"Verified tokens cached, by the key source that owns the cache.", []string{"source"}, nil),
		cacheCapacity: prometheus.NewDesc("caddy_cognito_token_cache_capacity",
			"The most verified tokens the cache holds (cache_size), by the key source that owns the cache.", []string{"source"}, nil),
		rings:  map[*jwks.Keyring]bool{},
		caches: map[*authz.Cache]string{},
	}
}

// addCache reports a verified-token cache under the source that owns it.
func (c *keyringCollector) addCache(cache *authz.Cache, source string) {
	c.mu.Lock()
	c.caches[cache] = source
	c.mu.Unlock()
}

func (c *keyringCollector) add(r *jwks.Keyring, lazy bool) {
	c.mu.Lock()
	if old, ok := c.rings[r]; ok {
		lazy = lazy && old
	}
	c.rings[r] = lazy
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *keyringCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.fetches
	ch <- c.keys
	ch <- c.lastSuccess
	ch <- c.cacheEntries
	ch <- c.cacheCapacity
}

// Collect implements prometheus.Collector.
func (c *keyringCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	rings := make([]*jwks.Keyring, 0, len(c.rings))
	for r, lazy := range c.rings {
		if st := r.Stats(); lazy && st.FetchOK+st.FetchNotModified+st.FetchError == 0 {
			continue
		}
		rings = append(rings, r)
	}
	caches := make(map[*authz.Cache]string, len(c.caches))
	for cache, src := range c.caches {
		caches[cache] = src
	}
	c.mu.Unlock()
	seenCache := map[string]bool{}
	for cache, src := range caches {
		if seenCache[src] {
			continue
		}
		seenCache[src] = true
		ch <- prometheus.MustNewConstMetric(c.cacheEntries, prometheus.GaugeValue, float64(cache.Len()), src)
		ch <- prometheus.MustNewConstMetric(c.cacheCapacity, prometheus.GaugeValue, float64(cache.Cap()), src)
	}
	seen := map[string]bool{}
	for _, r := range rings {
		src := r.Source().String()
		if seen[src] {
			continue // same source with other timing: report once
		}
		seen[src] = true
		st := r.Stats()
		ch <- prometheus.MustNewConstMetric(c.fetches, prometheus.CounterValue, float64(st.FetchOK), src, "ok")
		ch <- prometheus.MustNewConstMetric(c.fetches, prometheus.CounterValue, float64(st.FetchNotModified), src, "not_modified")
		ch <- prometheus.MustNewConstMetric(c.fetches, prometheus.CounterValue, float64(st.FetchError), src, "error")
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(st.Keys), src)
		var ts float64
		if !st.LastSuccess.IsZero() {
			ts = float64(st.LastSuccess.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(c.lastSuccess, prometheus.GaugeValue, ts, src)
	}
}
