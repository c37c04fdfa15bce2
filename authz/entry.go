package authz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
)

// entry is what a verified token leaves behind: the claims the checks,
// the default headers and the placeholders need, and nothing else, so that
// 100 000 of them fit in a few tens of MiB. The claims many tokens have in
// common (issuer, client, token_use, scopes, groups) live in a shared
// claimSet; what is left is per user. Entries are immutable once built.
type entry struct {
	key  *jwks.Key // the key that verified the signature; its ID is the token's kid
	sh   *claimSet
	sub  string
	user string // "username", else "cognito:username"
	exp  int64
	nbf  int64
	iat  int64
	size int32 // bytes charged to the cache
	// ref is the CLOCK mark: set by a cache hit, cleared by the eviction
	// hand (see Cache). The only mutable field.
	ref  atomic.Uint32
	alg  uint8 // index in algNames
	bits uint8 // has* flags
}

const (
	hasExp = 1 << iota
	hasNbf
	hasIat
	hasUsername        // "username" present
	hasCognitoUsername // "cognito:username" present
	noCache            // the key set named the key otherwise than the token's kid
)

func (e *entry) has(bit uint8) bool { return e.bits&bit != 0 }

// claimSet holds the claims typically common to many tokens. Sets are
// interned (see interner): tokens whose claims have the same JSON text
// share one.
type claimSet struct {
	issuer, clientID, tokenUse, scope string
	audience, scopes, groups          []string
	hasAudience                       bool
	audHeader, groupsHeader           string // comma-joined, as Get renders them
	clientIDAny, tokenUseAny          any    // placeholders, boxed once
	issuerAny                         any    // placeholder, boxed once
	size                              int32  // approximate bytes held
}

// Sizes for the cache's byte accounting (see Cache). They are the
// allocation size classes of the structs plus the interface boxes and the
// map slot, rounded up so that the accounting errs on the safe side.
const (
	entryFixedBytes    = 96 + 80 + 40 // entry, map slot incl. growth slack, CLOCK slot
	claimSetFixedBytes = 240 + 3*16   // claimSet, the three boxed placeholder strings
)

// maxNumericDate is 9999-12-31T23:59:59Z. Larger or negative values are
// type confusion, not dates.
const maxNumericDate = 253402300799

// The claims of a claimSet, in the order of its intern key.
const (
	csIss = iota
	csClientID
	csTokenUse
	csAud
	csScope
	csScp
	csGroups
	csCount
)

// parseEntry decodes a verified payload with strict types: a claim of the
// wrong JSON type is an error, never coerced. Nothing returned aliases
// payload.
func parseEntry(payload []byte, in *interner) (*entry, error) {
	var buf [32]member
	members, err := scanObject(payload, buf[:0])
	if err != nil {
		return nil, err
	}
	return parseMembers(members, in)
}

// parseMembers is parseEntry of an already scanned payload.
func parseMembers(members []member, in *interner) (*entry, error) {
	var err error
	e := &entry{}
	var set [csCount]int // index+1 in members of each claimSet claim
	var subRaw, userRaw, cognitoUserRaw []byte
	scpFirst := false
	for i, m := range members {
		switch m.key {
		case "iss":
			err = wantString(m)
			set[csIss] = i + 1
		case "sub":
			err = wantString(m)
			subRaw = m.raw
		case "token_use":
			err = wantString(m)
			set[csTokenUse] = i + 1
		case "client_id":
			err = wantString(m)
			set[csClientID] = i + 1
		case "username":
			err = wantString(m)
			userRaw = m.raw
			e.bits |= hasUsername
		case "cognito:username":
			err = wantString(m)
			cognitoUserRaw = m.raw
			e.bits |= hasCognitoUsername
		case "aud":
			err = wantStringOrStrings(m)
			set[csAud] = i + 1
		case "scope":
			err = wantString(m)
			set[csScope] = i + 1
		case "scp":
			// Some issuers put scopes in "scp", as a string or an array;
			// API Gateway reads either claim.
			err = wantStringOrStrings(m)
			set[csScp] = i + 1
			scpFirst = set[csScope] == 0
		case "cognito:groups":
			if m.kind != kindArray {
				err = errors.New("must be an array of strings")
				break
			}
			err = checkArrayOfStrings(m.raw)
			set[csGroups] = i + 1
		case "exp":
			e.exp, err = dateClaim(m)
			e.bits |= hasExp
		case "nbf":
			e.nbf, err = dateClaim(m)
			e.bits |= hasNbf
		case "iat":
			e.iat, err = dateClaim(m)
			e.bits |= hasIat
		}
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", quoteForError(m.key), err)
		}
	}

	var sub, user string
	if subRaw != nil {
		if sub, err = decodeString(subRaw); err != nil {
			return nil, fmt.Errorf("claim \"sub\": %w", err)
		}
	}
	// Username: "username" unless absent or empty, then "cognito:username".
	switch {
	case len(userRaw) > 2:
	case cognitoUserRaw != nil:
		userRaw = cognitoUserRaw
	}
	if userRaw != nil {
		if bytes.Equal(userRaw, subRaw) {
			user = sub
		} else if user, err = decodeString(userRaw); err != nil {
			return nil, fmt.Errorf("claim \"username\": %w", err)
		}
	}
	e.sub, e.user = sub, user
	size := entryFixedBytes + roundSize(len(sub))
	if user != sub {
		size += roundSize(len(user))
	}

	// The claim set: interned by the JSON text of its claims.
	var kbuf [maxInternKey]byte
	key, ok := claimSetKey(kbuf[:0], members, &set, scpFirst)
	if ok && in != nil {
		e.sh = in.get(key)
	}
	if e.sh == nil {
		if e.sh, err = decodeClaimSet(members, &set, scpFirst); err != nil {
			return nil, err
		}
		if !ok || in == nil || !in.put(key, e.sh) {
			size += int(e.sh.size) // not shared: this entry pays for it
		}
	}
	e.size = int32(min(size, 1<<30))
	return e, nil
}

func wantString(m member) error {
	if m.kind != kindString {
		return errors.New("must be a string")
	}
	return nil
}

func wantStringOrStrings(m member) error {
	switch m.kind {
	case kindString:
		return nil
	case kindArray:
		return checkArrayOfStrings(m.raw)
	}
	return errors.New("must be a string or an array of strings")
}

// claimSetKey appends the intern key of a token's claim set to dst: per
// claim, its kind and the length and text of its raw JSON. ok is false if
// the key would not fit in dst's capacity.
func claimSetKey(dst []byte, members []member, set *[csCount]int, scpFirst bool) ([]byte, bool) {
	if scpFirst {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	for _, idx := range set {
		if idx == 0 {
			dst = append(dst, 0)
			continue
		}
		m := members[idx-1]
		if len(dst)+3+len(m.raw) > cap(dst) {
			return nil, false
		}
		dst = append(dst, byte(m.kind))
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(m.raw)))
		dst = append(dst, m.raw...)
	}
	return dst, true
}

// decodeClaimSet decodes the (already type-checked) claims of a set.
func decodeClaimSet(members []member, set *[csCount]int, scpFirst bool) (*claimSet, error) {
	cs := &claimSet{}
	var err error
	str := func(c int) string {
		if set[c] == 0 || err != nil {
			return ""
		}
		var s string
		s, err = decodeString(members[set[c]-1].raw)
		return s
	}
	strs := func(c int, dst []string) []string {
		if set[c] == 0 || err != nil {
			return dst
		}
		m := members[set[c]-1]
		if m.kind == kindArray {
			dst, err = appendArrayStrings(dst, m.raw)
			return dst
		}
		var s string
		if s, err = decodeString(m.raw); err != nil {
			return dst
		}
		if c == csAud {
			return append(dst, s)
		}
		return append(dst, strings.Fields(s)...)
	}
	cs.issuer = str(csIss)
	cs.clientID = str(csClientID)
	cs.tokenUse = str(csTokenUse)
	cs.scope = str(csScope)
	if set[csAud] != 0 {
		cs.hasAudience = true
		cs.audience = strs(csAud, nil)
	}
	if scpFirst {
		cs.scopes = strs(csScp, nil)
		cs.scopes = append(cs.scopes, strings.Fields(cs.scope)...)
	} else {
		cs.scopes = append(cs.scopes, strings.Fields(cs.scope)...)
		cs.scopes = strs(csScp, cs.scopes)
	}
	cs.groups = strs(csGroups, nil)
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	cs.audHeader = strings.Join(cs.audience, ",")
	cs.groupsHeader = strings.Join(cs.groups, ",")
	clientID := cs.clientID
	if clientID == "" {
		clientID = cs.audHeader
	}
	cs.clientIDAny = clientID
	cs.tokenUseAny = cs.tokenUse
	cs.issuerAny = cs.issuer

	n := claimSetFixedBytes + roundSize(len(cs.issuer)) + roundSize(len(cs.clientID)) + roundSize(len(cs.tokenUse)) +
		roundSize(len(cs.scope)) + roundSize(len(cs.audHeader)) + roundSize(len(cs.groupsHeader))
	for _, l := range [][]string{cs.audience, cs.scopes, cs.groups} {
		n += roundSize(16 * cap(l))
		for _, s := range l {
			n += roundSize(len(s))
		}
	}
	cs.size = int32(min(n, 1<<30))
	return cs, nil
}

// roundSize is n rounded up to 16 bytes, the granularity of small
// allocations.
func roundSize(n int) int {
	if n == 0 {
		return 0
	}
	return (n + 15) &^ 15
}

// dateClaim reads a NumericDate. Cognito writes integers; fractions,
// exponents, negative or absurd values are rejected rather than rounded.
func dateClaim(m member) (int64, error) {
	if m.kind != kindNumber {
		return 0, errors.New("must be a number")
	}
	if len(m.raw) > 12 {
		return 0, errors.New("out of range")
	}
	var v int64
	for _, c := range m.raw {
		if c < '0' || c > '9' {
			return 0, errors.New("must be a non-negative integer")
		}
		v = v*10 + int64(c-'0')
	}
	if v > maxNumericDate {
		return 0, errors.New("out of range")
	}
	return v, nil
}

// claims returns the Claims of token, whose decoded claims are e.
func (e *entry) claims(token string) *Claims {
	cs := e.sh
	return &Claims{
		Issuer:       cs.issuer,
		Subject:      e.sub,
		TokenUse:     cs.tokenUse,
		ClientID:     cs.clientID,
		Username:     e.user,
		Audience:     cs.audience,
		HasAudience:  cs.hasAudience,
		Scope:        cs.scope,
		Scopes:       cs.scopes,
		Groups:       cs.groups,
		Expires:      e.exp,
		NotBefore:    e.nbf,
		IssuedAt:     e.iat,
		HasExpires:   e.has(hasExp),
		HasNotBefore: e.has(hasNbf),
		HasIssuedAt:  e.has(hasIat),
		KeyID:        e.key.ID,
		Algorithm:    algNames[e.alg],
		token:        token,
		e:            e,
	}
}
