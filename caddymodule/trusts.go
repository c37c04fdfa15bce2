package caddymodule

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
)

// handlerKeys are the keyrings one handler uses: per trust, either the one
// key source the trust names (jwks) or one keyring per accepted issuer
// (<iss>/.well-known/jwks.json), each shared through the keyrings pool.
type handlerKeys struct {
	uses []keyUse
	// byIssuer: trust index → issuer → keys.
	byIssuer []map[string]*jwks.Keyring
	// startup are the keyrings started at provisioning, to wait for.
	startup []*jwks.Keyring
	// cache is the verified-token cache of the first keyring acquired.
	cache     *authz.Cache
	cacheSize int
}

// keyUse is one acquisition from the keyrings pool.
type keyUse struct {
	poolKey string
	shared  *sharedKeys
	lazy    bool
}

// keysFor implements the authz.WithKeysFor callback.
func (k *handlerKeys) keysFor(trust int, issuer string) authz.Keys {
	if ring := k.byIssuer[trust][issuer]; ring != nil {
		return ring
	}
	return nil
}

// release gives back every keyring acquired.
func (k *handlerKeys) release() error {
	var errs []error
	for _, u := range k.uses {
		if _, err := keyrings.Delete(u.poolKey); err != nil {
			errs = append(errs, err)
		}
	}
	k.uses = nil
	return errors.Join(errs...)
}

// acquireTrustKeys builds the key sources of every trust and acquires
// their keyrings, without waiting for any fetch:
//
//   - a trust with jwks (or the shorthand's top-level jwks): that source,
//     started now, verifies every issuer of the trust;
//   - otherwise, per accepted issuer, the url source
//     <iss>/.well-known/jwks.json: the primary issuer's keyring is started
//     now, the others (a pool's UPDATED form, its replica Regions) are
//     armed to fetch on the first token that names them — never at
//     start-up, since AWS answers 403 for forms a pool does not serve.
//
// All primary key sets load concurrently; each keyring fails alone.
func (h *Handler) acquireTrustKeys(ctx caddy.Context) (_ *handlerKeys, err error) {
	hk := &handlerKeys{cacheSize: h.CacheSize}
	defer func() {
		if err != nil {
			_ = hk.release()
		}
	}()
	trusts := h.rule.TrustList()
	hk.byIssuer = make([]map[string]*jwks.Keyring, len(trusts))
	for i, t := range trusts {
		hk.byIssuer[i] = map[string]*jwks.Keyring{}
		issuers := t.Issuers()
		sc := SourceContext{Context: ctx, Issuer: issuers[0].Issuer, UserPool: t.Pool, Logger: h.logger}

		ks, err := h.trustKeySource(ctx, i)
		if err != nil {
			return nil, err
		}
		if ks != nil {
			ring, err := hk.acquire(ks, sc, false)
			if err != nil {
				return nil, fmt.Errorf("%s: jwks: %w", t.Label(), err)
			}
			for _, iss := range issuers {
				hk.byIssuer[i][iss.Issuer] = ring
			}
			continue
		}
		for _, iss := range issuers {
			sc.Issuer = iss.Issuer
			src := &URLSource{}
			if h.issuerJWKSURL != nil {
				src.URL = h.issuerJWKSURL(iss.Issuer)
			}
			ring, err := hk.acquire(src, sc, !iss.Primary)
			if err != nil {
				return nil, fmt.Errorf("%s: jwks for issuer %s: %w", t.Label(), iss.Issuer, err)
			}
			hk.byIssuer[i][iss.Issuer] = ring
		}
	}
	return hk, nil
}

// trustKeySource loads the jwks module of trust i (the shorthand's
// top-level jwks for the shorthand), or returns nil if it has none.
func (h *Handler) trustKeySource(ctx caddy.Context, i int) (KeySource, error) {
	var mod any
	var err error
	switch {
	case len(h.Trusts) > 0 && h.Trusts[i].JWKS != nil:
		mod, err = ctx.LoadModule(&h.Trusts[i], "JWKS")
	case len(h.Trusts) == 0 && h.JWKSRaw != nil:
		mod, err = ctx.LoadModule(h, "JWKSRaw")
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading jwks source: %w", err)
	}
	ks, ok := mod.(KeySource)
	if !ok {
		return nil, fmt.Errorf("module %T is not a key source", mod)
	}
	return ks, nil
}

// acquire builds the source and takes a reference to its shared keyring:
// started now, or, when lazy, armed to fetch on first use. A keyring that
// another handler armed lazily is started when this one needs it now.
func (hk *handlerKeys) acquire(ks KeySource, sc SourceContext, lazy bool) (*jwks.Keyring, error) {
	src, opts, err := ks.NewKeySource(sc)
	if err != nil {
		return nil, err
	}
	opts.Logger = zap.New(currentLogCore{}).Named("http.handlers.cognito_auth.jwks")
	key := poolKey(src, opts)
	shared, err := acquireKeys(key, src, opts, hk.cacheSize, lazy)
	if err != nil {
		return nil, fmt.Errorf("starting keyring for %s: %w", src, err)
	}
	hk.uses = append(hk.uses, keyUse{poolKey: key, shared: shared, lazy: lazy})
	if hk.cache == nil {
		hk.cache = shared.cache
	}
	if !lazy {
		hk.startup = append(hk.startup, shared.ring)
	}
	return shared.ring, nil
}
