package authz

import "strings"

// Payload reads the claims of a verified token as JSON text, for engines
// that evaluate claims as typed JSON values (package policy) rather than
// as header strings (Get). It decodes the payload on demand, only as far
// as a lookup needs, into a buffer the caller may reuse across requests,
// so reading a claim per request costs no allocation and, for a claim near
// the start, little decoding.
//
// The payload was fully validated (strict JSON, UTF-8, no duplicate
// claims) when the token was verified, so Payload only finds boundaries;
// whatever the bytes, it never panics.
type Payload struct {
	seg  string // the base64url payload segment
	buf  []byte // decoded prefix: buf[:n]; cap is the whole payload
	n    int    // bytes decoded
	used int    // base64 characters decoded
	bad  bool
}

// firstChunk is how much of the payload is decoded first (base64
// characters); each further step doubles what is decoded.
const firstChunk = 256

// Payload resets p to read c's payload, decoding into buf (grown if too
// small; pass the previous Buffer to reuse it).
//
// The strings p returns alias the buffer, so they copy nothing: the caller
// must not write to the buffer, or reset a Payload onto it, while it still
// uses them.
func (c *Claims) Payload(p *Payload, buf []byte) {
	_, seg, _ := strings.Cut(c.token, ".")
	seg, _, ok := strings.Cut(seg, ".")
	*p = Payload{seg: seg, bad: !ok}
	if n := b64.DecodedLen(len(seg)); cap(buf) < n {
		buf = make([]byte, n)
	}
	p.buf = buf[:cap(buf)]
}

// Buffer returns the decode buffer, for reuse.
func (p *Payload) Buffer() []byte { return p.buf }

// OK reports whether the payload decodes (it does for verified tokens;
// the answer is final once a lookup has gone through the whole payload).
func (p *Payload) OK() bool {
	for !p.bad && p.used < len(p.seg) {
		p.more()
	}
	return !p.bad
}

// more decodes the next chunk.
func (p *Payload) more() {
	step := max(firstChunk, p.used)
	end := min(len(p.seg), p.used+step)
	if end < len(p.seg) {
		end -= (end - p.used) % 4 // whole groups until the last chunk
	}
	out, err := decodeSegment(p.seg[p.used:end], p.buf[p.n:])
	if err != nil {
		p.bad = true
		return
	}
	p.n += len(out)
	p.used = end
}

func (p *Payload) complete() bool { return p.bad || p.used >= len(p.seg) }

// Claim returns the JSON text of the top-level claim name.
func (p *Payload) Claim(name string) (string, bool) {
	var out string
	found := false
	p.each(func(key, value string) bool {
		if keyEquals(key, name) {
			out, found = value, true
			return false
		}
		return true
	})
	return out, found
}

// Each calls fn with the name and JSON text of every top-level claim, in
// payload order, until fn returns false.
func (p *Payload) Each(fn func(name, value string) bool) {
	p.each(func(key, value string) bool {
		name := key[1 : len(key)-1]
		if strings.IndexByte(name, '\\') >= 0 {
			var err error
			if name, err = unescape([]byte(key)); err != nil {
				return true
			}
		}
		return fn(name, value)
	})
}

// keyEquals reports whether the JSON string literal key decodes to name.
func keyEquals(key, name string) bool {
	body := key[1 : len(key)-1]
	if strings.IndexByte(body, '\\') < 0 {
		return body == name
	}
	s, err := unescape([]byte(key))
	return err == nil && s == name
}

// each walks the members of the object, decoding more of the payload
// whenever a member runs past what is decoded: key is the name's string
// literal (with quotes), value the value's text.
func (p *Payload) each(fn func(key, value string) bool) {
	if p.n == 0 && !p.complete() {
		p.more()
	}
	i := -1 // where the next member starts; -1: before '{'
	for {
		s := aliasString(p.buf[:p.n])
		next, needMore := walkMembers(s, i, p.complete(), fn)
		if !needMore {
			return
		}
		i = next
		p.more()
	}
}

// walkMembers walks the members of the object s from i (-1: from the
// start). If s may be a prefix of the object (!final) and a member runs
// past its end, it returns needMore and where that member starts.
func walkMembers(s string, i int, final bool, fn func(key, value string) bool) (int, bool) {
	if i < 0 {
		i = skipWSString(s, 0)
		if i >= len(s) {
			return -1, !final
		}
		if s[i] != '{' {
			return 0, false
		}
		i++
	}
	for {
		start := i
		i = skipWSString(s, i)
		if i >= len(s) {
			return start, !final
		}
		if s[i] != '"' {
			return 0, false
		}
		kend := endOfString(s, i)
		if kend < 0 {
			return start, !final
		}
		key := s[i:kend]
		i = skipWSString(s, kend)
		if i >= len(s) {
			return start, !final
		}
		if s[i] != ':' {
			return 0, false
		}
		i = skipWSString(s, i+1)
		vend := endOfValue(s, i)
		if vend < 0 || vend >= len(s) && !final {
			// A value that reaches the end of a prefix may go on.
			return start, !final
		}
		if !fn(key, s[i:vend]) {
			return 0, false
		}
		i = skipWSString(s, vend)
		if i >= len(s) {
			return start, !final
		}
		if s[i] != ',' {
			return 0, false
		}
		i++
	}
}

func skipWSString(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index after the closing quote of the string
// literal at i, or -1.
func endOfString(s string, i int) int {
	j := i + 1
	for {
		k := strings.IndexByte(s[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		escaped := false
		for b := j - 1; b > i && s[b] == '\\'; b-- {
			escaped = !escaped
		}
		if !escaped {
			return j + 1
		}
		j++
	}
}

// endOfValue returns the index after the value at i, or -1 if it does not
// end in s.
func endOfValue(s string, i int) int {
	if i >= len(s) {
		return -1
	}
	switch s[i] {
	case '"':
		return endOfString(s, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				e := endOfString(s, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	for j := i; j < len(s); j++ {
		switch s[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
	}
	return len(s)
}
