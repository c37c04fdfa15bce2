package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Trust is one issuer whose tokens a rule accepts: a Cognito user pool
// (pool) or any OpenID Connect issuer (issuer), with the audience and
// token_use its tokens must have and where its keys come from.
type Trust struct {
	// A Cognito user pool id, e.g. "us-east-1_AAA". The accepted "iss"
	// values are derived from it (see issuer_format and replica_regions),
	// and compared exactly. Exactly one of pool and issuer must be set.
	Pool string `json:"pool,omitempty"`

	// Any issuer URL, compared exactly (including a trailing slash) with
	// the token's "iss" claim, e.g. a partner's OpenID Connect provider or
	// a local Cognito emulator (http://127.0.0.1:9229/<pool>).
	Issuer string `json:"issuer,omitempty"`

	// The app client ids the tokens of this trust may be for: "aud" when
	// the token has one, else "client_id" (as API Gateway). Required.
	Audience []string `json:"audience,omitempty"`

	// Require this "token_use" claim of this trust's tokens: "access" or
	// "id". Empty accepts both.
	TokenUse string `json:"token_use,omitempty"`

	// Which of a pool's two issuer formats (the pool's
	// IssuerConfiguration) to accept: "any" (default),
	// "original" (https://cognito-idp.<region>.amazonaws.com/<pool>) or
	// "updated" (https://issuer-cognito-idp.<region>.amazonaws.com/<pool>,
	// region being the pool's primary Region). Only with pool.
	//
	// Unless jwks is set, a token's keys come from its own issuer's
	// /.well-known/jwks.json. The ORIGINAL form's key set is loaded at
	// start-up (the UPDATED form's when issuer_format is "updated"); the
	// other forms' are fetched on the first token that names them, never
	// at start-up, because AWS answers 403 for the UPDATED key set of a
	// pool that has not switched.
	IssuerFormat string `json:"issuer_format,omitempty"`

	// Regions of the pool's multi-Region replicas whose ORIGINAL-format
	// issuer (https://cognito-idp.<replica-region>.amazonaws.com/<pool>)
	// is also accepted, for replicas that mint tokens naming their own
	// Region. Each key set is fetched on the first token naming it. Not
	// with issuer_format "updated" (UPDATED issuers always name the
	// primary Region). Only with pool.
	ReplicaRegions []string `json:"replica_regions,omitempty"`

	// Where this trust's verification keys come from: a key source module
	// in the http.handlers.cognito_auth.jwks namespace (url, discovery,
	// file, ssm). It replaces the per-issuer default: one key set verifies
	// every accepted form of the pool. The engine does not read it; the
	// host (the Caddy handler) loads the module.
	JWKS json.RawMessage `json:"jwks,omitempty" caddy:"namespace=http.handlers.cognito_auth.jwks inline_key=source"`
}

// Issuer formats of a Cognito user pool (IssuerConfigurationType).
const (
	IssuerFormatAny      = "any"
	IssuerFormatOriginal = "original"
	IssuerFormatUpdated  = "updated"
)

// FieldError is a configuration error that names the setting at fault, so
// a host can point at where it was written (the Caddyfile adapter reports
// the line of the subdirective).
type FieldError struct {
	// Trust is the index in Trusts of the trust the setting belongs to, or
	// -1 for a rule-level setting (including the shorthand fields).
	Trust int
	// Field is the setting's JSON name, e.g. "audience" or "leeway".
	Field string
	// Index is the element of a list setting at fault (headers,
	// replica_regions, …), or -1.
	Index int
	// Err says what is wrong; its text names the setting and the value.
	Err error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(trust int, field string, index int, format string, args ...any) error {
	return &FieldError{Trust: trust, Field: field, Index: index, Err: fmt.Errorf(format, args...)}
}

// TrustList returns the trusts of the rule: Trusts, or the one trust the
// shorthand fields describe. The result shares no slice with a.
func (a *Authorizer) TrustList() []Trust {
	if len(a.Trusts) > 0 {
		return slices.Clone(a.Trusts)
	}
	if a.UserPool == "" && a.Issuer == "" {
		return nil
	}
	return []Trust{{Pool: a.UserPool, Issuer: a.Issuer, Audience: a.Audience, TokenUse: a.TokenUse}}
}

// Label names the trust in messages, logs and metrics: "pool <id>" or
// "issuer <url>".
func (t *Trust) Label() string {
	if t.Pool != "" {
		return "pool " + t.Pool
	}
	return "issuer " + t.Issuer
}

// AcceptedIssuer is one "iss" value a trust accepts.
type AcceptedIssuer struct {
	Issuer string
	// Primary: the form whose key set is loaded at start-up (and names
	// the trust in metrics). The key sets of the other forms are fetched
	// only when a token names them.
	Primary bool
}

// Issuers returns the "iss" values the trust accepts, the primary first.
// Call it on a validated configuration.
func (t *Trust) Issuers() []AcceptedIssuer {
	if t.Pool == "" {
		return []AcceptedIssuer{{Issuer: t.Issuer, Primary: true}}
	}
	region, _ := poolRegion(t.Pool)
	var out []AcceptedIssuer
	switch t.IssuerFormat {
	case IssuerFormatUpdated:
		return []AcceptedIssuer{{Issuer: poolIssuer(IssuerFormatUpdated, region, t.Pool), Primary: true}}
	case IssuerFormatOriginal:
		out = append(out, AcceptedIssuer{Issuer: poolIssuer(IssuerFormatOriginal, region, t.Pool), Primary: true})
	default:
		out = append(out, AcceptedIssuer{Issuer: poolIssuer(IssuerFormatOriginal, region, t.Pool), Primary: true},
			AcceptedIssuer{Issuer: poolIssuer(IssuerFormatUpdated, region, t.Pool)})
	}
	for _, r := range t.ReplicaRegions {
		out = append(out, AcceptedIssuer{Issuer: poolIssuer(IssuerFormatOriginal, r, t.Pool)})
	}
	return out
}

// PrimaryIssuer returns the trust's primary accepted issuer (see
// AcceptedIssuer). Call it on a validated configuration.
func (t *Trust) PrimaryIssuer() string { return t.Issuers()[0].Issuer }

// PoolIssuerURL returns the issuer of a Cognito user pool in one format
// ("original" or "updated"), or an error if poolID is malformed.
func PoolIssuerURL(poolID, format string) (string, error) {
	region, err := PoolRegion(poolID)
	if err != nil {
		return "", err
	}
	switch format {
	case IssuerFormatOriginal, IssuerFormatUpdated:
	default:
		return "", fmt.Errorf("issuer format %q: must be %s or %s", format, IssuerFormatOriginal, IssuerFormatUpdated)
	}
	return poolIssuer(format, region, poolID), nil
}

// poolIssuer builds a pool's issuer: cognito-idp (ORIGINAL) or
// issuer-cognito-idp (UPDATED) in region, ".amazonaws.com.cn" in the China
// partition.
func poolIssuer(format, region, poolID string) string {
	host := "cognito-idp."
	if format == IssuerFormatUpdated {
		host = "issuer-cognito-idp."
	}
	return "https://" + host + region + "." + regionDomain(region) + "/" + poolID
}

func regionDomain(region string) string {
	if strings.HasPrefix(region, "cn-") {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

// validateTrusts checks the shorthand or the trust list: exactly one of
// the two forms, each trust complete, and no "iss" accepted twice.
func (a *Authorizer) validateTrusts() error {
	if len(a.Trusts) == 0 {
		switch {
		case a.UserPool != "" && a.Issuer != "":
			return fieldErr(-1, "issuer", -1, "user_pool and issuer are mutually exclusive: set one")
		case a.UserPool == "" && a.Issuer == "":
			return fieldErr(-1, "user_pool", -1, "one of user_pool or issuer is required (or a list of trusts: pool and issuer blocks)")
		}
		return validateTrust(Trust{Pool: a.UserPool, Issuer: a.Issuer, Audience: a.Audience, TokenUse: a.TokenUse}, -1)
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"user_pool", a.UserPool != ""}, {"issuer", a.Issuer != ""}, {"audience", len(a.Audience) > 0}, {"token_use", a.TokenUse != ""}} {
		if f.set {
			return fieldErr(-1, f.name, -1, "%s: the top-level user_pool, issuer, audience and token_use are the one-trust shorthand and cannot be mixed with pool or issuer blocks (trusts); set %s inside each block", f.name, f.name)
		}
	}
	accepted := map[string]int{} // iss → trust index
	for i, t := range a.Trusts {
		if err := validateTrust(t, i); err != nil {
			return err
		}
		for j, prev := range a.Trusts[:i] {
			switch {
			case t.Pool != "" && t.Pool == prev.Pool:
				return fieldErr(i, "pool", -1, "pool %s: listed twice (trusts %d and %d); merge the blocks", t.Pool, j, i)
			case t.Issuer != "" && t.Issuer == prev.Issuer:
				return fieldErr(i, "issuer", -1, "issuer %s: listed twice (trusts %d and %d); merge the blocks", t.Issuer, j, i)
			}
		}
		for _, iss := range t.Issuers() {
			if j, dup := accepted[iss.Issuer]; dup {
				prev := a.Trusts[j]
				return fieldErr(i, keyField(t), -1, "%s: accepts issuer %s, which %s accepts already: each issuer must select one trust", t.Label(), iss.Issuer, prev.Label())
			}
			accepted[iss.Issuer] = i
		}
	}
	return nil
}

func keyField(t Trust) string {
	if t.Pool != "" {
		return "pool"
	}
	return "issuer"
}

// validateTrust checks one trust; i is its index, -1 for the shorthand
// (whose fields are named user_pool, issuer, audience, token_use).
func validateTrust(t Trust, i int) error {
	poolField, prefix := "pool", ""
	if i < 0 {
		poolField = "user_pool"
	}
	switch {
	case t.Pool != "" && t.Issuer != "":
		return fieldErr(i, "issuer", -1, "trusts[%d]: pool and issuer are mutually exclusive: set one", i)
	case t.Pool == "" && t.Issuer == "":
		return fieldErr(i, "pool", -1, "trusts[%d]: one of pool or issuer is required", i)
	}
	region := ""
	if t.Pool != "" {
		var ok bool
		if region, ok = poolRegion(t.Pool); !ok {
			return fieldErr(i, poolField, -1, "%s %q: %s", poolField, t.Pool, poolIDHint)
		}
	} else if err := CheckIssuer(t.Issuer); err != nil {
		return &FieldError{Trust: i, Field: "issuer", Index: -1, Err: err}
	}
	if i >= 0 {
		prefix = t.Label() + ": "
	}
	if len(t.Audience) == 0 {
		return fieldErr(i, "audience", -1, "%saudience is required: at least one app client id the tokens are issued for", prefix)
	}
	for j, aud := range t.Audience {
		if strings.TrimSpace(aud) == "" {
			return fieldErr(i, "audience", j, "%saudience: empty client id", prefix)
		}
	}
	switch t.TokenUse {
	case "", TokenUseAccess, TokenUseID:
	default:
		return fieldErr(i, "token_use", -1, "%stoken_use %q: must be %q or %q", prefix, t.TokenUse, TokenUseAccess, TokenUseID)
	}
	switch t.IssuerFormat {
	case "", IssuerFormatAny, IssuerFormatOriginal, IssuerFormatUpdated:
	default:
		return fieldErr(i, "issuer_format", -1, "%sissuer_format %q: must be %s, %s or %s", prefix, t.IssuerFormat, IssuerFormatAny, IssuerFormatOriginal, IssuerFormatUpdated)
	}
	if t.Pool == "" {
		if t.IssuerFormat != "" {
			return fieldErr(i, "issuer_format", -1, "%sissuer_format applies to Cognito pools only", prefix)
		}
		if len(t.ReplicaRegions) > 0 {
			return fieldErr(i, "replica_regions", -1, "%sreplica_regions applies to Cognito pools only", prefix)
		}
		return nil
	}
	if len(t.ReplicaRegions) > 0 && t.IssuerFormat == IssuerFormatUpdated {
		return fieldErr(i, "replica_regions", -1, "%sreplica_regions: UPDATED-format issuers name the primary Region in every replica; use issuer_format any or original with replica_regions", prefix)
	}
	for j, r := range t.ReplicaRegions {
		switch {
		case !regionPattern.MatchString(r):
			return fieldErr(i, "replica_regions", j, "%sreplica_regions %q: not an AWS Region name (e.g. us-west-2)", prefix, r)
		case r == region:
			return fieldErr(i, "replica_regions", j, "%sreplica_regions %q: the pool's own Region is always accepted; list only replica Regions", prefix, r)
		case regionDomain(r) != regionDomain(region):
			return fieldErr(i, "replica_regions", j, "%sreplica_regions %q: not in the partition of the pool's Region %s", prefix, r, region)
		case slices.Contains(t.ReplicaRegions[:j], r):
			return fieldErr(i, "replica_regions", j, "%sreplica_regions %q: listed twice", prefix, r)
		}
	}
	return nil
}
