package login

import "testing"

func TestSafeRedirect(t *testing.T) {
	ok := []string{
		"/", "/app", "/app/page?x=1&y=2", "/a/b/c.html", "/search?q=a%20b", "/a%2Fb", "/%7Euser",
		"/path?next=//evil.example", // in the query it cannot move the host
	}
	for _, s := range ok {
		if got := SafeRedirect(s); got != s {
			t.Errorf("SafeRedirect(%q) = %q, want it kept", s, got)
		}
	}
	bad := []string{
		"", "app", "//evil.example", "//evil.example/path", "///evil.example", "https://evil.example",
		"http://evil.example/", "javascript:alert(1)", "/\\evil.example", "\\\\evil.example", "/\\/evil.example",
		"/%2Fevil.example", "/%2F%2Fevil.example", "/%5Cevil.example", "/%5C%5Cevil.example",
		"/%252F%252Fevil.example", "/%25252F%25252Fevil.example", "/%09/evil.example", "/\t/evil.example",
		"/\n/evil.example", "/\r\n/evil.example", "/%0d%0a/evil.example", "/ /evil.example", "/a b",
		"/\x00", "/%00", "/\x7f", "/é", "/a\\b", "/#frag", "/%zz", "/path?a=\\b",
		"/" + string(make([]byte, 3000)),
	}
	for _, s := range bad {
		if got := SafeRedirect(s); got != "/" {
			t.Errorf("SafeRedirect(%q) = %q, want /", s, got)
		}
	}
}

func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{"/", "//evil", "/\\evil", "/%2F%2Fevil", "/%09/evil", "/a?b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SafeRedirect(s)
		if got == "/" {
			return
		}
		if got != s || len(s) < 1 || s[0] != '/' {
			t.Fatalf("SafeRedirect(%q) = %q", s, got)
		}
		if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
			t.Fatalf("SafeRedirect(%q) kept a scheme-relative target", s)
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
				t.Fatalf("SafeRedirect(%q) kept byte %#x", s, c)
			}
		}
	})
}
