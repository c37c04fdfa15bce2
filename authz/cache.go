package authz

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/config"
)

// Cache remembers tokens whose signature has been verified, keyed by the
// SHA-256 of the exact token bytes, so a client that reuses its token (for
// an hour, typically) costs one RSA verification, not one per request.
//
// It holds verified claims, never decisions: every Authorizer re-applies
// its trusts (the entry's issuer must select one of them, and the key that
// verified the token must still be that issuer's key), audience, expiry and
// its route rule on every hit, so one cache can serve all routes. An entry is dropped once its key leaves the key set (it
// is checked on every hit) or once the token has expired. Only tokens with
// a valid signature get in, so an attacker cannot flush good entries
// without valid tokens of their own. It is sharded (64 shards, read-locked
// on hits) and bounded; when a shard is full its oldest entry goes first;
// no goroutine per entry.
//
// An entry keeps only what the checks, the default headers and the
// placeholders need (other claims are read from the request's own token
// when asked for), and claims common to many tokens are shared, so a
// typical Cognito access token costs about 300 bytes. The cache is bounded
// both in entries and in bytes: it never holds more than size entries nor,
// by its accounting, more than size × BytesPerEntry bytes, whatever the
// tokens carry (plus the shared claim sets, at most 2 MiB per cache
// process).
type Cache struct {
	shards        [cacheShards]cacheShard
	perShard      int
	perShardBytes int64
	now           func() time.Time
	maxLeeway     int64
	// interned shares the claim sets common to many tokens (same scopes,
	// groups, issuer …) between entries.
	interned *interner
}

const cacheShards = 64

// DefaultCacheSize is the default number of cached tokens.
const DefaultCacheSize = 100_000

// BytesPerEntry is the memory budget of the cache per entry of its size:
// NewCache(n) holds, by its accounting, at most n × BytesPerEntry bytes
// (61 MiB for 100 000). Typical entries take less than half of it; tokens
// with unusually large claims are cached in smaller numbers, and one
// larger than a shard's whole budget is not cached at all.
const BytesPerEntry = 640

type cacheShard struct {
	mu    sync.RWMutex
	m     map[[sha256.Size]byte]*entry
	bytes int64
	// fifo holds the keys in insertion order, fifo[head] the oldest, n of
	// them: eviction takes the oldest (for tokens of one lifetime, the
	// nearest to expiry) in O(1), whatever the shard size. A key may be in
	// it twice, or no longer cached; evicting a slot drops its key if
	// cached, so every cached key has a slot.
	fifo    [][sha256.Size]byte
	head, n int
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
	per := max(1, (size+cacheShards-1)/cacheShards)
	c := &Cache{perShard: per, perShardBytes: int64(per) * BytesPerEntry, now: now, maxLeeway: int64(config.MaxLeeway / time.Second), interned: newInterner()}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]*entry, min(per, 1024))
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

// tokenKey is the cache key of a token.
func tokenKey(token string) [sha256.Size]byte {
	return sha256.Sum256(stringBytes(token))
}

func (c *Cache) shard(sum *[sha256.Size]byte) *cacheShard {
	return &c.shards[sum[0]%cacheShards]
}

// get returns the cached entry of a token, or nil. The caller checks that
// it trusts the entry's issuer and then calls stillVerifies with that
// issuer's keys: the cache is shared by rules with different trusts.
func (c *Cache) get(sum *[sha256.Size]byte) *entry {
	s := c.shard(sum)
	s.mu.RLock()
	e := s.m[*sum]
	s.mu.RUnlock()
	if e == nil {
		return nil
	}
	if c.now().Unix() >= e.exp+c.maxLeeway {
		c.drop(s, sum, e)
		return nil
	}
	return e
}

// stillVerifies reports whether the key that verified e is still the key
// keys give for its kid. (Rotation removes a key: its tokens must stop
// working at the next refresh, cached or not.) If not, the entry is
// dropped and the token must be verified again.
func (c *Cache) stillVerifies(ctx context.Context, sum *[sha256.Size]byte, e *entry, keys Keys) bool {
	key, err := keys.Key(ctx, e.kid)
	if err != nil || key == nil || (key != e.key && !sameKey(key, e.key)) {
		c.drop(c.shard(sum), sum, e)
		return false
	}
	return true
}

// sameKey: a refresh that parsed the same key again (same kid, alg and
// public key) has not removed it.
func sameKey(a, b *jwks.Key) bool {
	return a.ID == b.ID && a.Algorithm == b.Algorithm && a.Public != nil && b.Public != nil &&
		a.Public.E == b.Public.E && a.Public.N.Cmp(b.Public.N) == 0
}

func (c *Cache) drop(s *cacheShard, sum *[sha256.Size]byte, e *entry) {
	s.mu.Lock()
	if s.m[*sum] == e {
		delete(s.m, *sum)
		s.bytes -= int64(e.size)
	}
	s.mu.Unlock()
}

func (c *Cache) put(sum *[sha256.Size]byte, e *entry) {
	if e.key == nil || !e.has(hasExp) || c.now().Unix() >= e.exp+c.maxLeeway {
		return
	}
	size := int64(e.size)
	if size > c.perShardBytes {
		return // larger than a shard's whole budget: verified every time
	}
	s := c.shard(sum)
	s.mu.Lock()
	if old := s.m[*sum]; old != nil {
		delete(s.m, *sum)
		s.bytes -= int64(old.size)
	}
	for s.n > 0 && (len(s.m) >= c.perShard || s.bytes+size > c.perShardBytes || s.n >= c.perShard) {
		s.evictOldest()
	}
	if s.n == len(s.fifo) {
		s.grow(c.perShard)
	}
	s.fifo[(s.head+s.n)%len(s.fifo)] = *sum
	s.n++
	s.m[*sum] = e
	s.bytes += size
	s.mu.Unlock()
}

// grow doubles the FIFO, up to max slots.
func (s *cacheShard) grow(max int) {
	f := make([][sha256.Size]byte, min(max, 2*len(s.fifo)+16))
	for i := range s.n {
		f[i] = s.fifo[(s.head+i)%len(s.fifo)]
	}
	s.fifo, s.head = f, 0
}

// evictOldest frees the oldest slot, dropping its key if still cached.
func (s *cacheShard) evictOldest() {
	k := &s.fifo[s.head]
	if v := s.m[*k]; v != nil {
		delete(s.m, *k)
		s.bytes -= int64(v.size)
	}
	s.head = (s.head + 1) % len(s.fifo)
	s.n--
}
