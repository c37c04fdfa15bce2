package authz

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// payloadClaims is Claims over a token with the given payload (the
// signature is not checked here: Payload only reads).
func payloadClaims(payload string) *Claims {
	return &Claims{token: "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"}
}

// checkPayload compares Payload's reading of payload with scanObject's.
func checkPayload(t *testing.T, payload string, p *Payload) {
	t.Helper()
	members, err := scanObject([]byte(payload), nil)
	if err != nil {
		return // not a payload a verified token can have
	}
	c := payloadClaims(payload)
	c.Payload(p, p.Buffer())
	var got []string
	p.Each(func(name, value string) bool {
		got = append(got, name+"="+value)
		return true
	})
	if !p.OK() {
		t.Fatalf("%q: not OK", payload)
	}
	var want []string
	for _, m := range members {
		want = append(want, m.key+"="+string(m.raw))
	}
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Fatalf("%q:\n got %q\nwant %q", payload, got, want)
	}
	for _, m := range members {
		c.Payload(p, p.Buffer())
		v, ok := p.Claim(m.key)
		if !ok || v != string(m.raw) {
			t.Fatalf("%q: Claim(%q) = %q, %v; want %s", payload, m.key, v, ok, m.raw)
		}
	}
	c.Payload(p, p.Buffer())
	if _, ok := p.Claim("no such claim"); ok {
		t.Fatalf("%q: found a claim that is not there", payload)
	}
}

func TestPayloadMatchesScanner(t *testing.T) {
	long := strings.Repeat("x", 700)
	var many strings.Builder
	many.WriteString("{")
	for i := range 150 {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `"claim%d":%d`, i, i*1001)
	}
	many.WriteString("}")
	var p Payload
	for _, payload := range []string{
		`{}`,
		` { } `,
		`{"a":1}`,
		`{"a":-1.5e3,"b":true,"c":false,"d":null}`,
		`{"iss":"x","aud":["a","b"],"nested":{"k":[1,{"x":"]}"}],"q":"\"}"},"n":12}`,
		`{"esc\"aped":"va\\lue\"","\u0041":"\u00e9\\","tail":"` + long + `"}`,
		"{\n\t\"a\" : \"b\" ,\r\n \"c\":[ ] , \"d\" : { } }",
		`{"big":"` + long + `","after":[` + strings.Repeat(`"s",`, 200) + `"t"],"last":123456}`,
		`{"x":"` + strings.Repeat(`\\`, 300) + `","y":"` + strings.Repeat(`\"`, 300) + `"}`,
		many.String(),
	} {
		checkPayload(t, payload, &p)
	}
}

func TestPayloadBadSegment(t *testing.T) {
	var p Payload
	for _, tok := range []string{"", "a", "a.b", "a.!!!!.c", "a.e.c"} {
		(&Claims{token: tok}).Payload(&p, nil)
		if _, ok := p.Claim("a"); ok {
			t.Errorf("%q: found a claim", tok)
		}
		if p.OK() {
			t.Errorf("%q: OK", tok)
		}
	}
}

// FuzzPayload: for every payload the strict scanner accepts (every payload
// a verified token can have), Payload reads the same claims.
func FuzzPayload(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":"b\"c","d":[1,2,{"e":"]"}]}`, `{"x":{"y":{"z":null}},"w":-0.5e-3}`} {
		f.Add(s)
	}
	var p Payload
	f.Fuzz(func(t *testing.T, payload string) {
		checkPayload(t, payload, &p)
		// Whatever the bytes, reading never panics.
		c := payloadClaims(payload)
		c.Payload(&p, p.Buffer())
		p.Each(func(string, string) bool { return true })
		c.Payload(&p, p.Buffer())
		p.Claim("a")
	})
}
