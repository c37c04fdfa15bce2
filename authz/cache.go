package authz

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// Cache remembers tokens whose signature has been verified, keyed by the
// SHA-256 of the exact token bytes, so a client that reuses its token (for
// an hour, typically) costs one RSA verification, not one per request.
//
// It holds verified claims, never decisions: every Authorizer re-applies
// issuer, audience, expiry and its route rule on every hit, so one cache can
// serve all routes. An entry is dropped once its key leaves the key set (it
// is checked on every hit) or once the token has expired. Only tokens with
// a valid signature get in, so an attacker cannot flush good entries
// without valid tokens of their own. It is bounded and sharded; no
// goroutine per entry.
type Cache struct {
	shards    [cacheShards]cacheShard
	perShard  int
	now       func() time.Time
	maxLeeway int64
}

const cacheShards = 64

// DefaultCacheSize is the default number of cached tokens.
const DefaultCacheSize = 100_000

type cacheShard struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]*Claims
}

// NewCache returns a cache for up to size tokens (DefaultCacheSize if
// size <= 0).
func NewCache(size int, now func() time.Time) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	if now == nil {
		now = time.Now
	}
	c := &Cache{perShard: max(1, (size+cacheShards-1)/cacheShards), now: now, maxLeeway: 300}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]*Claims)
	}
	return c
}

// Len returns the number of cached tokens.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// Cap returns the most tokens the cache holds.
func (c *Cache) Cap() int { return c.perShard * cacheShards }

func (c *Cache) get(ctx context.Context, token string, keys Keys) *Claims {
	sum := sha256.Sum256([]byte(token))
	s := &c.shards[sum[0]%cacheShards]
	s.mu.RLock()
	cl := s.m[sum]
	s.mu.RUnlock()
	if cl == nil {
		return nil
	}
	// Still the key that verified it? (Rotation removes a key: its tokens
	// must stop working at the next refresh, cached or not.)
	key, err := keys.Key(ctx, cl.KeyID)
	if err != nil || key == nil || key != cl.key {
		c.drop(s, sum)
		return nil
	}
	if c.now().Unix() >= cl.Expires+c.maxLeeway {
		c.drop(s, sum)
		return nil
	}
	return cl
}

func (c *Cache) drop(s *cacheShard, sum [sha256.Size]byte) {
	s.mu.Lock()
	delete(s.m, sum)
	s.mu.Unlock()
}

func (c *Cache) put(token string, cl *Claims) {
	if cl.key == nil || !cl.HasExpires || c.now().Unix() >= cl.Expires+c.maxLeeway {
		return
	}
	sum := sha256.Sum256([]byte(token))
	s := &c.shards[sum[0]%cacheShards]
	s.mu.Lock()
	if len(s.m) >= c.perShard {
		// Evict from a small random sample (map order is randomized):
		// expired entries first, else one at random. Bounded work under
		// the lock, whatever the shard size.
		now := c.now().Unix()
		var victim [sha256.Size]byte
		n := 0
		for k, v := range s.m {
			if now >= v.Expires+c.maxLeeway {
				victim = k
				break
			}
			if n == 0 {
				victim = k
			}
			if n++; n == 8 {
				break
			}
		}
		delete(s.m, victim)
	}
	s.m[sum] = cl
	s.mu.Unlock()
}
