package authz

import (
	"context"
	"crypto/sha256"
	"strings"
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
// its route rule on every hit, so one cache can serve all routes. An entry
// is dropped once its key leaves the key set (it
// is checked on every hit) or once the token has expired. Only tokens with
// a valid signature get in, so an attacker cannot flush good entries
// without valid tokens of their own. It is sharded (64 shards, read-locked
// on hits) and bounded; when a shard is full it evicts with CLOCK (second
// chance): a hit marks its entry, and the eviction hand passes over a
// marked entry once, clearing the mark, so tokens in use survive a stream
// of one-off tokens that plain oldest-first eviction would let push them
// out. No goroutine per entry.
//
// An entry keeps only what the checks, the default headers and the
// placeholders need (other claims are read from the request's own token
// when asked for), and claims common to many tokens are shared, so a
// typical Cognito access token costs about 300 bytes. The cache is bounded
// both in entries and in bytes: it never holds more than size entries nor,
// by its accounting, more than size × BytesPerEntry bytes, whatever the
// tokens carry (plus the shared claim sets, at most 2 MiB per cache).
//
// Tokens that verified but had already expired (for every route: past exp
// plus the largest leeway) are kept apart in a small table (staleSlots per
// shard): a client replaying a stale token gets the same answer again
// without another RSA verification, and the table's size bounds what
// replays can hold.
type Cache struct {
	shards    [cacheShards]cacheShard
	now       func() time.Time
	maxLeeway int64
	// interned shares the claim sets common to many tokens (same scopes,
	// groups, issuer …) between entries.
	interned *interner
}

const cacheShards = 64

// DefaultCacheSize is the default number of cached tokens: 100 000 active
// tokens take about 26 MiB with typical Cognito access tokens (61 MiB at
// most, by the byte budget). Sizing: one entry per token in use, i.e.
// roughly the number of users active within a token lifetime; a cache
// smaller than that makes every request of the overflow cost an RSA
// verification (README, "Sizing and limits").
const DefaultCacheSize = 100_000

// BytesPerEntry is the memory budget of the cache per entry of its size:
// NewCache(n) holds, by its accounting, at most n × BytesPerEntry bytes
// (61 MiB for 100 000). Typical entries take less than half of it; tokens
// with unusually large claims are cached in smaller numbers, and one
// larger than a shard's whole budget is not cached at all. The accounting
// (each entry charged its allocation size classes) is what bounds the
// worst case: 100 000 tokens with nothing to share would take ~950 B each,
// 91 MiB; the budget holds them to 57.7 MiB (BenchmarkCacheMemory100k/
// unshared), for a few additions per new token.
const BytesPerEntry = 640

// staleSlots is the size, per shard, of the table of verified but expired
// tokens: 64 × 32 = 2048 tokens, about 0.6 MiB at most.
const staleSlots = 32

type cacheShard struct {
	mu sync.RWMutex
	// per and perBytes are the shard's budget (Resize changes them).
	per      int
	perBytes int64
	m        map[[sha256.Size]byte]*entry
	// slots are the CLOCK ring: every cached entry has one slot; a slot
	// whose entry is no longer the map's for its key (dropped, replaced)
	// is dead and reused first. bytes counts the entries of all slots,
	// dead ones included, since they hold memory until reused.
	slots []cacheSlot
	hand  int
	bytes int64

	stale     map[[sha256.Size]byte]*entry
	staleRing [staleSlots][sha256.Size]byte
	staleNext int
}

type cacheSlot struct {
	sum [sha256.Size]byte
	e   *entry
}

// NewCache returns a cache for up to size tokens (DefaultCacheSize if
// size <= 0).
func NewCache(size int, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	c := &Cache{now: now, maxLeeway: int64(config.MaxLeeway / time.Second), interned: newInterner()}
	per, perBytes := shardBudget(size)
	for i := range c.shards {
		s := &c.shards[i]
		s.per, s.perBytes = per, perBytes
		s.m = make(map[[sha256.Size]byte]*entry, min(per, 1024))
	}
	return c
}

func shardBudget(size int) (int, int64) {
	if size <= 0 {
		size = DefaultCacheSize
	}
	per := max(1, (size+cacheShards-1)/cacheShards)
	return per, int64(per) * BytesPerEntry
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
func (c *Cache) Cap() int {
	s := &c.shards[0]
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.per * cacheShards
}

// Resize changes the most tokens the cache holds (DefaultCacheSize if
// size <= 0), keeping what fits: a config reload that changes the size
// applies it to the running cache instead of dropping it.
func (c *Cache) Resize(size int) {
	per, perBytes := shardBudget(size)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.per, s.perBytes = per, perBytes
		s.shrink()
		s.mu.Unlock()
	}
}

// tokenKey is the cache key of a token: the SHA-256 of its exact bytes.
func tokenKey(token string) [sha256.Size]byte {
	return sha256.Sum256(stringBytes(token))
}

// tokenDigests returns the cache key of a token and, in the same pass, the
// SHA-256 of what precedes its last '.' (the JWS signing input) and that
// input's length (-1 if there is no '.'): the digest an RS256/PS256
// verification needs is read off the running hash on the way to the key,
// so a token is hashed once, not twice (a 16 KB forgery cost two 16 KB
// hashes).
//
// Tokens shorter than digestSnapshotMinBytes get only the key (inputLen
// -1): for them a second hash on a miss is cheaper than the snapshot on
// every hit.
func tokenDigests(token string) (key, input [sha256.Size]byte, inputLen int) {
	if len(token) < digestSnapshotMinBytes {
		return sha256.Sum256(stringBytes(token)), input, -1
	}
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return sha256.Sum256(stringBytes(token)), input, -1
	}
	h := sha256.New() // does not escape: no allocation
	h.Write(stringBytes(token[:i]))
	h.Sum(input[:0]) // Sum leaves the running state as it was
	h.Write(stringBytes(token[i:]))
	h.Sum(key[:0])
	return key, input, i
}

// digestSnapshotMinBytes is the token size from which the signing input's
// digest is read off the cache key's hash. The snapshot costs every request
// its extra finalization and the scan for the last '.', hits included (the
// cached path went from 1.01 to 1.30 µs with 1 KB tokens, back to 1.04 µs
// with this threshold, measured side by side); hashing the signing input again
// costs only a miss, about 0.5 µs per KiB next to a ~25 µs RSA
// verification. Cognito access tokens (~1 KB) stay under it; a 16 KB
// forgery is hashed once.
const digestSnapshotMinBytes = 4096

func (c *Cache) shard(sum *[sha256.Size]byte) *cacheShard {
	return &c.shards[sum[0]%cacheShards]
}

// get returns the cached entry of a token (from the table of expired
// tokens too), or nil. The caller checks that it trusts the entry's issuer
// and then calls stillVerifies with that issuer's keys: the cache is
// shared by rules with different trusts.
func (c *Cache) get(sum *[sha256.Size]byte) *entry {
	s := c.shard(sum)
	s.mu.RLock()
	e := s.m[*sum]
	stale := false
	if e == nil && len(s.stale) > 0 {
		e, stale = s.stale[*sum], true
	}
	s.mu.RUnlock()
	if e == nil {
		return nil
	}
	expired := c.now().Unix() >= e.exp+c.maxLeeway
	if stale != expired { // a live entry expired, or the clock went back
		c.drop(s, sum, e)
		return nil
	}
	if !stale && e.ref.Load() == 0 {
		e.ref.Store(1) // second chance; written only when not yet set
	}
	return e
}

// stillVerifies reports whether the key that verified e is still the key
// keys give for its kid. (Rotation removes a key: its tokens must stop
// working at the next refresh, cached or not.) If not, the entry is
// dropped and the token must be verified again.
func (c *Cache) stillVerifies(ctx context.Context, sum *[sha256.Size]byte, e *entry, keys Keys) bool {
	key, err := keys.Key(ctx, e.key.ID)
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

// drop removes the entry from the map; its slot, now dead, is reused by
// the next insertion that reaches it.
func (c *Cache) drop(s *cacheShard, sum *[sha256.Size]byte, e *entry) {
	s.mu.Lock()
	if s.m[*sum] == e {
		delete(s.m, *sum)
	} else if s.stale[*sum] == e {
		delete(s.stale, *sum)
	}
	s.mu.Unlock()
}

func (c *Cache) put(sum *[sha256.Size]byte, e *entry) {
	if e.key == nil || !e.has(hasExp) || e.has(noCache) {
		return
	}
	if c.now().Unix() >= e.exp+c.maxLeeway {
		c.putStale(sum, e)
		return
	}
	size := int64(e.size)
	s := c.shard(sum)
	s.mu.Lock()
	defer s.mu.Unlock()
	if size > s.perBytes {
		return // larger than a shard's whole budget: verified every time
	}
	s.m[*sum] = e // replaces an entry of the same token: its slot goes dead
	if len(s.slots) < s.per && s.bytes+size <= s.perBytes {
		if len(s.slots) == cap(s.slots) {
			s.grow()
		}
		s.slots = append(s.slots, cacheSlot{sum: *sum, e: e})
		s.bytes += size
		return
	}
	// The hand goes round, freeing dead slots and entries not hit since
	// it last passed (clearing the mark of those that were), until the
	// new entry fits: within two turns, since the first clears every mark.
	for {
		sl := &s.slots[s.hand]
		if sl.e != nil {
			live := s.m[sl.sum] == sl.e
			if live && sl.e.ref.Load() != 0 {
				sl.e.ref.Store(0)
				s.hand = (s.hand + 1) % len(s.slots)
				continue
			}
			if live {
				delete(s.m, sl.sum)
			}
			s.bytes -= int64(sl.e.size)
			sl.e = nil
		}
		if s.bytes+size <= s.perBytes {
			*sl = cacheSlot{sum: *sum, e: e}
			s.bytes += size
			s.hand = (s.hand + 1) % len(s.slots)
			return
		}
		s.hand = (s.hand + 1) % len(s.slots)
	}
}

// grow enlarges the slot ring's capacity, up to the shard's budget.
func (s *cacheShard) grow() {
	f := make([]cacheSlot, len(s.slots), min(s.per, 2*cap(s.slots)+16))
	copy(f, s.slots)
	s.slots = f
}

// shrink fits the shard to its budget: live entries are kept, those
// marked as hit first, up to per entries and perBytes bytes.
func (s *cacheShard) shrink() {
	per, perBytes := s.per, s.perBytes
	if len(s.slots) <= per && s.bytes <= perBytes {
		return
	}
	kept := make([]cacheSlot, 0, min(per, len(s.slots)))
	var bytes int64
	for pass := range 2 { // marked entries first, then the others
		for i := range s.slots {
			sl := &s.slots[i]
			if sl.e == nil || s.m[sl.sum] != sl.e || (sl.e.ref.Load() != 0) != (pass == 0) {
				continue
			}
			if len(kept) < per && bytes+int64(sl.e.size) <= perBytes {
				kept = append(kept, *sl)
				bytes += int64(sl.e.size)
			} else {
				delete(s.m, sl.sum)
			}
		}
	}
	s.slots, s.bytes, s.hand = kept, bytes, 0
}

// putStale remembers a verified token that has expired for every route,
// in a ring of staleSlots keys per shard: the oldest goes first. Every key
// of the map has a ring slot (a key may hold two, if it was dropped and
// came back; it then goes at the first), so the map never holds more than
// staleSlots entries.
func (c *Cache) putStale(sum *[sha256.Size]byte, e *entry) {
	s := c.shard(sum)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stale == nil {
		s.stale = make(map[[sha256.Size]byte]*entry, staleSlots)
	}
	if _, ok := s.stale[*sum]; ok {
		s.stale[*sum] = e
		return
	}
	delete(s.stale, s.staleRing[s.staleNext])
	s.staleRing[s.staleNext] = *sum
	s.staleNext = (s.staleNext + 1) % staleSlots
	s.stale[*sum] = e
}
