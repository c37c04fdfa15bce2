package authz

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
	"unsafe"
)

// A small, strict scanner for the flat JSON objects of JWT headers and
// payloads. encoding/json would silently keep the last of two duplicate
// keys ("iss" twice: which one did the signer mean?) and coerce nothing
// useful for us; this scanner validates the whole document, rejects
// duplicate top-level members, and hands back each member's raw value
// without allocating, so only the claims we need are decoded.

type valueKind byte

const (
	kindString valueKind = iota + 1
	kindNumber
	kindObject
	kindArray
	kindBool
	kindNull
)

// maxMembers bounds the members of a header or payload; Cognito tokens
// have about twenty.
const (
	maxMembers = 200
	maxDepth   = 16
)

var errJSON = errors.New("malformed JSON")

// member is one top-level member of an object.
type member struct {
	// key is the decoded name. A name without escapes is not copied: it
	// aliases the scanned data (see aliasString), so it lives as long as,
	// and must be read-only like, that data.
	key  string
	raw  []byte // the value's JSON text
	kind valueKind
}

// aliasString returns b as a string without copying. The caller promises
// that b is never written again while the string is in use: every buffer
// scanned here is allocated for one base64 decode and then only read.
func aliasString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// stringBytes returns the bytes of s without copying, for reading only
// (hashing, base64 decoding).
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// scanObject splits a JSON object into its members. The members slice is
// appended to (pass a stack buffer to avoid allocating).
func scanObject(data []byte, members []member) ([]member, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, errors.New("not a JSON object")
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		if skipWS(data, i+1) != len(data) {
			return nil, errJSON
		}
		return members, nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, errJSON
		}
		kend, err := skipString(data, i)
		if err != nil {
			return nil, err
		}
		key, err := decodeKey(data[i:kend])
		if err != nil {
			return nil, err
		}
		i = skipWS(data, kend)
		if i >= len(data) || data[i] != ':' {
			return nil, errJSON
		}
		i = skipWS(data, i+1)
		vend, kind, err := skipValue(data, i, 0)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			if m.key == key {
				return nil, errors.New("duplicate member " + quoteForError(key))
			}
		}
		if len(members) >= maxMembers {
			return nil, errors.New("too many members")
		}
		members = append(members, member{key: key, raw: data[i:vend], kind: kind})
		i = skipWS(data, vend)
		if i >= len(data) {
			return nil, errJSON
		}
		if data[i] == '}' {
			if skipWS(data, i+1) != len(data) {
				return nil, errJSON
			}
			return members, nil
		}
		if data[i] != ',' {
			return nil, errJSON
		}
		i = skipWS(data, i+1)
	}
}

func quoteForError(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func skipWS(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the end of the value starting at i.
func skipValue(data []byte, i, depth int) (int, valueKind, error) {
	if i >= len(data) {
		return 0, 0, errJSON
	}
	switch c := data[i]; {
	case c == '"':
		end, err := skipString(data, i)
		return end, kindString, err
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return 0, 0, errors.New("JSON nested too deeply")
		}
		end, err := skipContainer(data, i, depth)
		if c == '{' {
			return end, kindObject, err
		}
		return end, kindArray, err
	case c == 't':
		return literal(data, i, "true", kindBool)
	case c == 'f':
		return literal(data, i, "false", kindBool)
	case c == 'n':
		return literal(data, i, "null", kindNull)
	case c == '-' || (c >= '0' && c <= '9'):
		end, err := skipNumber(data, i)
		return end, kindNumber, err
	}
	return 0, 0, errJSON
}

func literal(data []byte, i int, lit string, kind valueKind) (int, valueKind, error) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return 0, 0, errJSON
	}
	return i + len(lit), kind, nil
}

func skipContainer(data []byte, i, depth int) (int, error) {
	open := data[i]
	closeC := byte(']')
	if open == '{' {
		closeC = '}'
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == closeC {
		return i + 1, nil
	}
	for {
		if open == '{' {
			if i >= len(data) || data[i] != '"' {
				return 0, errJSON
			}
			end, err := skipString(data, i)
			if err != nil {
				return 0, err
			}
			i = skipWS(data, end)
			if i >= len(data) || data[i] != ':' {
				return 0, errJSON
			}
			i = skipWS(data, i+1)
		}
		end, _, err := skipValue(data, i, depth+1)
		if err != nil {
			return 0, err
		}
		i = skipWS(data, end)
		if i >= len(data) {
			return 0, errJSON
		}
		if data[i] == closeC {
			return i + 1, nil
		}
		if data[i] != ',' {
			return 0, errJSON
		}
		i = skipWS(data, i+1)
	}
}

// skipString returns the index after the closing quote of the string at i.
func skipString(data []byte, i int) (int, error) {
	i++
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(data) {
				return 0, errJSON
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || !isHex4(data[i+2:i+6]) {
					return 0, errJSON
				}
				i += 6
			default:
				return 0, errJSON
			}
		case c < 0x20:
			return 0, errJSON
		default:
			i++
		}
	}
	return 0, errJSON
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func skipNumber(data []byte, i int) (int, error) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	default:
		return 0, errJSON
	}
	if i < len(data) && data[i] == '.' {
		i++
		start := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == start {
			return 0, errJSON
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		start := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == start {
			return 0, errJSON
		}
	}
	return i, nil
}

// decodeString decodes a validated JSON string literal (with quotes) into
// a new string.
func decodeString(raw []byte) (string, error) {
	body := raw[1 : len(raw)-1]
	if !hasEscape(body) {
		return string(body), nil
	}
	return unescape(raw)
}

// decodeKey decodes a member name; without escapes it aliases raw.
func decodeKey(raw []byte) (string, error) {
	body := raw[1 : len(raw)-1]
	if !hasEscape(body) {
		return aliasString(body), nil
	}
	return unescape(raw)
}

func hasEscape(body []byte) bool {
	for _, c := range body {
		if c == '\\' {
			return true
		}
	}
	return false
}

// unescape decodes a string literal with escapes the way encoding/json
// does (invalid surrogates become U+FFFD).
func unescape(raw []byte) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errJSON
	}
	return s, nil
}

// checkArrayOfStrings validates that raw (a JSON array) holds strings
// only, without decoding them.
func checkArrayOfStrings(raw []byte) error {
	i := skipWS(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return nil
	}
	for i < len(raw) {
		if raw[i] != '"' {
			return errors.New("array element is not a string")
		}
		end, err := skipString(raw, i)
		if err != nil {
			return err
		}
		i = skipWS(raw, end)
		if i < len(raw) && raw[i] == ']' {
			return nil
		}
		if i >= len(raw) || raw[i] != ',' {
			return errJSON
		}
		i = skipWS(raw, i+1)
	}
	return errJSON
}

// appendArrayStrings appends the elements of a JSON array, which must be
// strings only, to dst.
func appendArrayStrings(dst []string, raw []byte) ([]string, error) {
	i := skipWS(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return dst, nil
	}
	for i < len(raw) {
		if raw[i] != '"' {
			return dst, errors.New("array element is not a string")
		}
		end, err := skipString(raw, i)
		if err != nil {
			return dst, err
		}
		s, err := decodeString(raw[i:end])
		if err != nil {
			return dst, err
		}
		dst = append(dst, s)
		i = skipWS(raw, end)
		if i < len(raw) && raw[i] == ']' {
			return dst, nil
		}
		if i >= len(raw) || raw[i] != ',' {
			return dst, errJSON
		}
		i = skipWS(raw, i+1)
	}
	return dst, errJSON
}
