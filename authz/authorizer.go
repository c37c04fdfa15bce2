// Package authz is the authorization engine of caddy-cognito: it takes a
// bearer token and a route's rule and answers allow (with the verified
// claims) or deny (with an *Error whose kind maps to 401, 403 or 503), with
// the checks, order and answers of the Amazon API Gateway HTTP API JWT
// authorizer plus Cognito's token_use and groups.
//
// It does not import Caddy: it is tested, fuzzed and benchmarked with
// `go test` alone.
//
// Verification order:
//
//  1. size cap; compact form (exactly three base64url segments);
//  2. header: alg in the allow-list (RSA only), kid present, no crit;
//     jku/x5u/jwk/x5c ignored;
//  3. trust: the payload is decoded once, and its "iss" (strictly a
//     string, compared exactly) selects one of the configured trusts; an
//     issuer no trust accepts is refused ("issuer does not match") before
//     any key is looked up, so it never causes a key fetch;
//  4. key by kid from the selected trust's keys for that issuer only (a
//     kid of another trust is unknown here); the JWK's alg, when present,
//     must equal the header's; RSA signature;
//  5. claims, strictly typed: aud (else client_id) in the trust's
//     audience; exp required and in the future, nbf and iat not in the
//     future, with leeway; the trust's token_use; then the route's scopes
//     (any-of) and groups (any-of), which answer 403.
package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/config"
)

// Keys finds verification keys by kid. *jwks.Keyring implements it.
type Keys interface {
	Key(ctx context.Context, kid string) (*jwks.Key, error)
}

// Authorizer checks tokens against one configured rule. It is safe for
// concurrent use.
type Authorizer struct {
	// issuers are every "iss" the trusts accept, each with its trust and
	// the keys that verify its tokens. A token selects one by its "iss"
	// before any key is looked up.
	issuers       []acceptedIssuer
	scopes        []string
	groups        []string
	leeway        int64
	algs          algSet
	maxTokenBytes int

	cache *Cache
	now   func() time.Time
	// keysFor overrides the keys per trust and issuer (WithKeysFor).
	keysFor func(trust int, issuer string) Keys
}

// acceptedIssuer is one "iss" value a trust accepts.
type acceptedIssuer struct {
	iss   string
	trust *trust
	keys  Keys
}

// trust is the part of a config.Trust the checks need.
type trust struct {
	label    string // the primary issuer: names the trust in metrics
	audience []string
	tokenUse string
}

// Option configures an Authorizer.
type Option func(*Authorizer)

// WithClock sets the clock (default time.Now), so expiry and leeway are
// tested without sleeping.
func WithClock(now func() time.Time) Option { return func(a *Authorizer) { a.now = now } }

// WithCache shares a verified-token cache. Authorizers with different rules
// may share one: it holds verified claims, and every rule (trusts
// included) is re-applied on every hit.
func WithCache(c *Cache) Option { return func(a *Authorizer) { a.cache = c } }

// WithKeysFor gives every accepted issuer of every trust its own keys:
// New calls keysFor once per issuer, with the index of its trust in
// cfg.TrustList(); a nil result means the keys passed to New. Only the
// keys of the issuer a token names ever verify it.
func WithKeysFor(keysFor func(trust int, issuer string) Keys) Option {
	return func(a *Authorizer) { a.keysFor = keysFor }
}

// New returns an Authorizer for cfg, which must have passed Validate (New
// applies the defaults itself). keys verify the tokens of every trust that
// WithKeysFor does not give keys of its own; it may be nil if WithKeysFor
// covers every issuer.
func New(cfg config.Authorizer, keys Keys, opts ...Option) (*Authorizer, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	algs, err := newAlgSet(cfg.Algorithms)
	if err != nil {
		return nil, err
	}
	a := &Authorizer{
		scopes:        slices.Clone(cfg.Scopes),
		groups:        slices.Clone(cfg.Groups),
		leeway:        int64(time.Duration(cfg.Leeway) / time.Second),
		algs:          algs,
		maxTokenBytes: cfg.MaxTokenBytes,
		now:           time.Now,
	}
	for _, o := range opts {
		o(a)
	}
	for i, ct := range cfg.TrustList() {
		t := &trust{label: ct.PrimaryIssuer(), audience: slices.Clone(ct.Audience), tokenUse: ct.TokenUse}
		for _, iss := range ct.Issuers() {
			k := keys
			if a.keysFor != nil {
				if own := a.keysFor(i, iss.Issuer); own != nil {
					k = own
				}
			}
			if k == nil {
				return nil, fmt.Errorf("authz: no keys for %s (issuer %s)", ct.Label(), iss.Issuer)
			}
			a.issuers = append(a.issuers, acceptedIssuer{iss: iss.Issuer, trust: t, keys: k})
		}
	}
	a.keysFor = nil
	return a, nil
}

// Issuer returns the primary issuer of the first trust (the only one with
// the shorthand configuration).
func (a *Authorizer) Issuer() string { return a.issuers[0].trust.label }

// TrustLabel returns the primary issuer of the trust that accepts iss, or
// "" if none does: a bounded label for metrics, whatever the token says.
func (a *Authorizer) TrustLabel(iss string) string {
	if ai := a.selectIssuer(iss); ai != nil {
		return ai.trust.label
	}
	return ""
}

// Scopes returns the route's required scopes (any-of).
func (a *Authorizer) Scopes() []string { return a.scopes }

// selectIssuer returns the accepted issuer iss names, or nil. A handful
// of exact string comparisons (length first) beat a map's hashing of a
// URL for the few issuers a rule has.
func (a *Authorizer) selectIssuer(iss string) *acceptedIssuer {
	for i := range a.issuers {
		if a.issuers[i].iss == iss {
			return &a.issuers[i]
		}
	}
	return nil
}

// Authorize verifies token and applies the rule. On success it returns the
// verified claims; on failure an *Error. There is no third outcome: every
// failure, expected or not, denies.
func (a *Authorizer) Authorize(ctx context.Context, token string) (*Claims, error) {
	if token == "" {
		return nil, errMissing
	}
	if len(token) > a.maxTokenBytes {
		return nil, errTooLarge
	}
	var e *entry
	var ai *acceptedIssuer
	var sum, input [32]byte
	inputLen := -1
	if a.cache != nil {
		sum, input, inputLen = tokenDigests(token)
		if e = a.cache.get(&sum); e != nil {
			// Verified, but perhaps for another rule's trusts: this rule
			// must trust its issuer, and the key that verified it must
			// still be in the key set of that issuer here.
			if ai = a.selectIssuer(e.sh.issuer); ai == nil {
				return e.claims(token), errIssuer
			}
			if !a.cache.stillVerifies(ctx, &sum, e, ai.keys) {
				e = nil
			}
		}
	}
	if e == nil {
		var err *Error
		if e, ai, err = a.verify(ctx, token, &input, inputLen); err != nil {
			return nil, err
		}
		if a.cache != nil {
			a.cache.put(&sum, e)
		}
	} else if !a.algs.hasIdx(e.alg) {
		return nil, invalid("alg", "token signing algorithm is not allowed", nil)
	}
	c := e.claims(token)
	if err := a.check(e, ai.trust); err != nil {
		return c, err
	}
	return c, nil
}

// verify checks form and header, selects the trust by the payload's "iss"
// (decoded once, before any key is looked up: an issuer no trust accepts
// costs no key fetch), then checks key and signature with that issuer's
// keys only and decodes the claims.
//
// input is the SHA-256 of token[:inputLen] when inputLen >= 0 (computed
// with the cache key): the RS256/PS256 digest, when that is the signing
// input, so the token is not hashed twice.
func (a *Authorizer) verify(ctx context.Context, token string, input *[32]byte, inputLen int) (*entry, *acceptedIssuer, *Error) {
	headSeg, payloadSeg, sigSeg, err := splitToken(token)
	if err != nil {
		return nil, nil, err
	}
	h, err := parseHeader(headSeg, a.algs)
	if err != nil {
		return nil, nil, err
	}
	payload, dErr := decodeSegment(payloadSeg, make([]byte, b64.DecodedLen(len(payloadSeg))))
	if dErr != nil {
		return nil, nil, malformed("token payload is malformed", dErr)
	}
	var buf [32]member
	members, sErr := scanObject(payload, buf[:0])
	if sErr != nil {
		return nil, nil, malformed("token claims are malformed", sErr)
	}
	iss, iErr := issuerOf(members)
	if iErr != nil {
		return nil, nil, malformed("token claims are malformed", iErr)
	}
	ai := a.selectIssuer(iss)
	if ai == nil {
		return nil, nil, &Error{Kind: KindInvalid, Reason: errIssuer.Reason, Description: errIssuer.Description,
			Err: fmt.Errorf("iss %s is not trusted", quoteForError(iss))}
	}
	key, kerr := ai.keys.Key(ctx, h.kid)
	switch {
	case errors.Is(kerr, jwks.ErrUnavailable):
		return nil, nil, errUnavailable
	case kerr != nil:
		return nil, nil, &Error{Kind: errUnknownKID.Kind, Reason: errUnknownKID.Reason, Description: errUnknownKID.Description,
			Err: fmt.Errorf("kid %s: %w", quoteForError(h.kid), kerr)}
	}
	if key.Algorithm != "" && key.Algorithm != h.alg {
		// RFC 8725 §3.1: each key is used with exactly one algorithm.
		return nil, nil, invalid("alg", "token signing algorithm does not match its key", fmt.Errorf("header %s, key %s", h.alg, key.Algorithm))
	}
	signingInput := token[:len(headSeg)+1+len(payloadSeg)]
	if len(signingInput) != inputLen {
		input = nil
	}
	if vErr := verifySignature(key, h.alg, signingInput, sigSeg, input); vErr != nil {
		return nil, nil, &Error{Kind: KindInvalid, Reason: errBadSignature.Reason, Description: errBadSignature.Description, Err: vErr}
	}
	e, cErr := parseMembers(members, a.interner())
	if cErr != nil {
		return nil, nil, malformed("token claims are malformed", cErr)
	}
	setKey(e, h, key)
	return e, ai, nil
}

// issuerOf returns the "iss" claim of a scanned payload, strictly typed: a
// string or absent ("", which no trust accepts).
func issuerOf(members []member) (string, error) {
	for _, m := range members {
		if m.key == "iss" {
			if err := wantString(m); err != nil {
				return "", fmt.Errorf("claim \"iss\": %w", err)
			}
			iss, err := decodeString(m.raw)
			if err != nil {
				return "", fmt.Errorf("claim \"iss\": %w", err)
			}
			return iss, nil
		}
	}
	return "", nil
}

// interner shares claim sets between the entries of this authorizer's
// cache; without a cache there is nothing to share them with.
func (a *Authorizer) interner() *interner {
	if a.cache == nil {
		return nil
	}
	return a.cache.interned
}

// decodeVerifiedClaims decodes the payload of a token whose signature
// verified. Nothing kept aliases the decoded payload.
func decodeVerifiedClaims(payloadSeg string, h header, key *jwks.Key, in *interner) (*entry, *Error) {
	payload, dErr := decodeSegment(payloadSeg, make([]byte, b64.DecodedLen(len(payloadSeg))))
	if dErr != nil {
		return nil, malformed("token payload is malformed", dErr)
	}
	e, cErr := parseEntry(payload, in)
	if cErr != nil {
		return nil, malformed("token claims are malformed", cErr)
	}
	setKey(e, h, key)
	return e, nil
}

// setKey records the key that verified e's token.
func setKey(e *entry, h header, key *jwks.Key) {
	e.key, e.alg = key, h.algIdx
	if key.ID != h.kid {
		// The cache finds an entry's key again by the key's ID; keys that
		// answer a kid with a key named otherwise are not cached.
		e.bits |= noCache
	}
}

// check applies the claim rules of the token's trust t (selected by its
// issuer) and the route rule, in API Gateway's order.
func (a *Authorizer) check(e *entry, t *trust) *Error {
	cs := e.sh
	if !t.audienceOK(cs) {
		return errAudience
	}
	now := a.now().Unix()
	if !e.has(hasExp) {
		return invalid("no_exp", "token has no expiry", nil)
	}
	if now >= e.exp+a.leeway {
		return errExpired
	}
	if e.has(hasNbf) && e.nbf > now+a.leeway {
		return errNotYetValid
	}
	if e.has(hasIat) && e.iat > now+a.leeway {
		return errIssuedInFuture
	}
	if t.tokenUse != "" && cs.tokenUse != t.tokenUse {
		return errTokenUse
	}
	if len(a.scopes) > 0 && !anyIn(a.scopes, cs.scopes) {
		return errInsufficientScop
	}
	if len(a.groups) > 0 && !anyIn(a.groups, cs.groups) {
		return errInsufficientGrp
	}
	return nil
}

// audienceOK: "aud" when present (a wrong aud is not rescued by a right
// client_id), else "client_id".
func (t *trust) audienceOK(cs *claimSet) bool {
	if cs.hasAudience {
		return anyIn(t.audience, cs.audience)
	}
	return cs.clientID != "" && slices.Contains(t.audience, cs.clientID)
}

func anyIn(want, have []string) bool {
	for _, h := range have {
		if slices.Contains(want, h) {
			return true
		}
	}
	return false
}
