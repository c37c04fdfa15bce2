package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// claimsMap is `claims`: a map view over the verified payload. Find and Get
// convert the one claim asked for; only iteration, equality and conversion
// build the whole map. It is one pointer wide, so making it an interface
// value does not allocate.
type claimsMap struct{ s *state }

var errClaims = types.NewErr("the token's claims could not be read")

// Find implements traits.Mapper.
func (m claimsMap) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		if types.IsUnknownOrError(key) {
			return key, false
		}
		return nil, false
	}
	if v, found := m.s.claim(string(k)); found {
		return v, true
	}
	if !m.s.claims().OK() {
		return errClaims, false
	}
	return nil, false
}

// Get implements traits.Indexer.
func (m claimsMap) Get(key ref.Val) ref.Val {
	v, found := m.Find(key)
	if !found {
		return types.ValOrErr(v, "no such key: %v", key)
	}
	return v
}

// Contains implements traits.Container.
func (m claimsMap) Contains(key ref.Val) ref.Val {
	v, found := m.Find(key)
	if !found && v != nil && types.IsUnknownOrError(v) {
		return v
	}
	return types.Bool(found)
}

// Size implements traits.Sizer.
func (m claimsMap) Size() ref.Val {
	payload := m.s.claims()
	n := 0
	payload.Each(func(string, string) bool { n++; return true })
	if !payload.OK() {
		return errClaims
	}
	return types.Int(n)
}

func (m claimsMap) full() ref.Val {
	s := m.s
	if s.claimMap == nil {
		payload := s.claims()
		entries := map[ref.Val]ref.Val{}
		payload.Each(func(name, raw string) bool {
			entries[types.String(name)] = jsonValue(raw)
			return true
		})
		if !payload.OK() {
			return errClaims
		}
		s.claimMap = types.NewRefValMap(types.DefaultTypeAdapter, entries)
	}
	return s.claimMap
}

// Iterator implements traits.Iterable.
func (m claimsMap) Iterator() traits.Iterator {
	if full, ok := m.full().(traits.Mapper); ok {
		return full.Iterator()
	}
	return errIterator{}
}

func (m claimsMap) ConvertToNative(t reflect.Type) (any, error) { return m.full().ConvertToNative(t) }
func (m claimsMap) ConvertToType(t ref.Type) ref.Val            { return m.full().ConvertToType(t) }
func (m claimsMap) Equal(other ref.Val) ref.Val                 { return m.full().Equal(other) }
func (m claimsMap) Type() ref.Type                              { return types.MapType }
func (m claimsMap) Value() any                                  { return m.full().Value() }

// segmentList is `request.path_segments`: Get and Size read the state's
// segments; anything else works on a copy.
type segmentList struct{ s *state }

// Get implements traits.Indexer.
func (l segmentList) Get(index ref.Val) ref.Val {
	i, err := types.IndexOrError(index)
	if err != nil {
		return types.ValOrErr(index, "%v", err)
	}
	if i < 0 || i >= len(l.s.segs) {
		return types.NewErr("index '%d' out of range in list size '%d'", i, len(l.s.segs))
	}
	return types.String(l.s.segs[i])
}

// Size implements traits.Sizer.
func (l segmentList) Size() ref.Val { return types.Int(len(l.s.segs)) }

func (l segmentList) full() traits.Lister {
	s := l.s
	if s.segList == nil {
		s.segList = types.NewStringList(types.DefaultTypeAdapter, slices.Clone(s.segs))
	}
	return s.segList.(traits.Lister)
}

func (l segmentList) Add(other ref.Val) ref.Val                   { return l.full().Add(other) }
func (l segmentList) Contains(v ref.Val) ref.Val                  { return l.full().Contains(v) }
func (l segmentList) Iterator() traits.Iterator                   { return l.full().Iterator() }
func (l segmentList) ConvertToNative(t reflect.Type) (any, error) { return l.full().ConvertToNative(t) }
func (l segmentList) ConvertToType(t ref.Type) ref.Val            { return l.full().ConvertToType(t) }
func (l segmentList) Equal(other ref.Val) ref.Val                 { return l.full().Equal(other) }
func (l segmentList) Type() ref.Type                              { return types.ListType }
func (l segmentList) Value() any                                  { return l.full().Value() }

// errIterator iterates over nothing; it stands in when the claims could
// not be read (Size and Get report the error).
type errIterator struct{}

func (errIterator) HasNext() ref.Val                          { return types.False }
func (errIterator) Next() ref.Val                             { return nil }
func (errIterator) ConvertToNative(reflect.Type) (any, error) { return nil, errors.New("no iterator") }
func (errIterator) ConvertToType(ref.Type) ref.Val            { return errClaims }
func (errIterator) Equal(ref.Val) ref.Val                     { return types.False }
func (errIterator) Type() ref.Type                            { return types.IteratorType }
func (errIterator) Value() any                                { return nil }

// jsonValue converts one claim's JSON text (valid: the payload was
// verified and scanned) to a CEL value: strings, bools and null as such;
// numbers written as integers (no fraction or exponent) that fit int64 as
// int, other numbers as double; arrays as lists and objects as maps, with
// the same rules inside.
func jsonValue(raw string) ref.Val {
	if raw == "" {
		return types.NewErr("empty claim")
	}
	switch raw[0] {
	case '"':
		if body := raw[1 : len(raw)-1]; strings.IndexByte(body, '\\') < 0 {
			return types.String(body)
		}
		var s string
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			return types.WrapErr(err)
		}
		return types.String(s)
	case 't':
		return types.True
	case 'f':
		return types.False
	case 'n':
		return types.NullValue
	case '[':
		// Claims like amr, aud and cognito:groups are lists of plain
		// strings: read those directly (the strings alias the payload).
		if v, ok := stringList(raw); ok {
			return v
		}
		fallthrough
	case '{':
		dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return types.WrapErr(err)
		}
		return nativeValue(v)
	}
	return numberValue(raw)
}

// stringList reads a JSON array of strings without escapes; ok is false
// for anything else (which encoding/json then reads).
func stringList(raw string) (ref.Val, bool) {
	var items []ref.Val
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return types.NewRefValList(types.DefaultTypeAdapter, items), skipSpace(raw, i+1) == len(raw)
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return nil, false
		}
		end := strings.IndexAny(raw[i+1:], "\\\"")
		if end < 0 || raw[i+1+end] != '"' {
			return nil, false
		}
		items = append(items, types.String(raw[i+1:i+1+end]))
		i = skipSpace(raw, i+2+end)
		if i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case ']':
			return types.NewRefValList(types.DefaultTypeAdapter, items), skipSpace(raw, i+1) == len(raw)
		default:
			return nil, false
		}
	}
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func numberValue(n string) ref.Val {
	if !strings.ContainsAny(n, ".eE") {
		if i, err := strconv.ParseInt(n, 10, 64); err == nil {
			return types.Int(i)
		}
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return types.WrapErr(err)
	}
	return types.Double(f)
}

// nativeValue converts a value decoded by encoding/json with UseNumber.
func nativeValue(v any) ref.Val {
	switch v := v.(type) {
	case string:
		return types.String(v)
	case bool:
		return types.Bool(v)
	case nil:
		return types.NullValue
	case json.Number:
		return numberValue(string(v))
	case []any:
		out := make([]ref.Val, len(v))
		for i, e := range v {
			out[i] = nativeValue(e)
		}
		return types.NewRefValList(types.DefaultTypeAdapter, out)
	case map[string]any:
		out := make(map[ref.Val]ref.Val, len(v))
		for k, e := range v {
			out[types.String(k)] = nativeValue(e)
		}
		return types.NewRefValMap(types.DefaultTypeAdapter, out)
	}
	return types.NewErr("unsupported JSON value %T", v)
}

var (
	_ traits.Mapper = claimsMap{}
	_ traits.Lister = segmentList{}
)
