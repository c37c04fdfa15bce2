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
//  3. key by kid from the key set; the JWK's alg, when present, must equal
//     the header's; RSA signature;
//  4. claims, strictly typed: iss exact; aud (else client_id) in the
//     audience; exp required and in the future, nbf and iat not in the
//     future, with leeway; token_use; then scopes (any-of) and groups
//     (any-of), which answer 403.
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
	issuer        string
	audience      []string
	tokenUse      string
	scopes        []string
	groups        []string
	leeway        int64
	algs          algSet
	maxTokenBytes int

	keys  Keys
	cache *Cache
	now   func() time.Time
}

// Option configures an Authorizer.
type Option func(*Authorizer)

// WithClock sets the clock (default time.Now), so expiry and leeway are
// tested without sleeping.
func WithClock(now func() time.Time) Option { return func(a *Authorizer) { a.now = now } }

// WithCache shares a verified-token cache. Authorizers with different rules
// may share one: it holds verified claims, and every rule is re-applied on
// every hit.
func WithCache(c *Cache) Option { return func(a *Authorizer) { a.cache = c } }

// New returns an Authorizer for cfg, which must have passed Validate (New
// applies the defaults itself).
func New(cfg config.Authorizer, keys Keys, opts ...Option) (*Authorizer, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("authz: no key source")
	}
	algs, err := newAlgSet(cfg.Algorithms)
	if err != nil {
		return nil, err
	}
	a := &Authorizer{
		issuer:        cfg.IssuerURL(),
		audience:      slices.Clone(cfg.Audience),
		tokenUse:      cfg.TokenUse,
		scopes:        slices.Clone(cfg.Scopes),
		groups:        slices.Clone(cfg.Groups),
		leeway:        int64(time.Duration(cfg.Leeway) / time.Second),
		algs:          algs,
		maxTokenBytes: cfg.MaxTokenBytes,
		keys:          keys,
		now:           time.Now,
	}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// Issuer returns the issuer tokens must carry.
func (a *Authorizer) Issuer() string { return a.issuer }

// Scopes returns the route's required scopes (any-of).
func (a *Authorizer) Scopes() []string { return a.scopes }

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
	var sum [32]byte
	if a.cache != nil {
		sum = tokenKey(token)
		e = a.cache.get(ctx, &sum, a.keys)
	}
	if e == nil {
		var err *Error
		if e, err = a.verify(ctx, token); err != nil {
			return nil, err
		}
		if a.cache != nil {
			a.cache.put(&sum, e)
		}
	} else if !a.algs.hasIdx(e.alg) {
		return nil, invalid("alg", "token signing algorithm is not allowed", nil)
	}
	c := e.claims(token)
	if err := a.check(e); err != nil {
		return c, err
	}
	return c, nil
}

// verify checks form, header, key and signature and decodes the claims.
func (a *Authorizer) verify(ctx context.Context, token string) (*entry, *Error) {
	headSeg, payloadSeg, sigSeg, err := splitToken(token)
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(headSeg, a.algs)
	if err != nil {
		return nil, err
	}
	key, kerr := a.keys.Key(ctx, h.kid)
	switch {
	case errors.Is(kerr, jwks.ErrUnavailable):
		return nil, errUnavailable
	case kerr != nil:
		return nil, &Error{Kind: errUnknownKID.Kind, Reason: errUnknownKID.Reason, Description: errUnknownKID.Description,
			Err: fmt.Errorf("kid %s: %w", quoteForError(h.kid), kerr)}
	}
	if key.Algorithm != "" && key.Algorithm != h.alg {
		// RFC 8725 §3.1: each key is used with exactly one algorithm.
		return nil, invalid("alg", "token signing algorithm does not match its key", fmt.Errorf("header %s, key %s", h.alg, key.Algorithm))
	}
	signingInput := token[:len(headSeg)+1+len(payloadSeg)]
	if vErr := verifySignature(key, h.alg, signingInput, sigSeg); vErr != nil {
		return nil, &Error{Kind: KindInvalid, Reason: errBadSignature.Reason, Description: errBadSignature.Description, Err: vErr}
	}
	return decodeVerifiedClaims(payloadSeg, h, key, a.interner())
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
	e.key, e.alg = key, h.algIdx
	e.kid = h.kid
	if key.ID == h.kid {
		e.kid = key.ID // the key set's copy: the header's can be collected
	}
	return e, nil
}

// check applies the claim rules and the route rule, in API Gateway's order.
func (a *Authorizer) check(e *entry) *Error {
	cs := e.sh
	if cs.issuer != a.issuer {
		return errIssuer
	}
	if !a.audienceOK(cs) {
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
	if a.tokenUse != "" && cs.tokenUse != a.tokenUse {
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
func (a *Authorizer) audienceOK(cs *claimSet) bool {
	if cs.hasAudience {
		return anyIn(a.audience, cs.audience)
	}
	return cs.clientID != "" && slices.Contains(a.audience, cs.clientID)
}

func anyIn(want, have []string) bool {
	for _, h := range have {
		if slices.Contains(want, h) {
			return true
		}
	}
	return false
}
