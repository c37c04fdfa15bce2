package config

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestIdentityHeadersIs: the allocation-free check answers exactly as
// NormalizeHeaderName followed by the prefix and name tests, for the
// fixed set alone and with configured claim headers.
func TestIdentityHeadersIs(t *testing.T) {
	names := []string{
		"X-Cognito-Sub", "x-cognito-sub", "X_COGNITO_SUB", "x_Cognito-Groups", "X-Cognito-", "X-Cognito", "X-Cognitox",
		"X-Cognito-Issuer", "X-User-Email", "x_user_email", "X-USER-EMAIL", "X-User-Emails", "Authorization", "", "x",
		"X-Cognİto-Sub", "X-\u212aognito-Sub", "X-User-\u212amail", "\xff\xfe", strings.Repeat("X-User-Email", 20),
		"X-Cognito-" + strings.Repeat("a", 200), strings.Repeat("a", 129),
		"X.cognito.groups", "x.Cognito_sub", "X.User.Email", "X-User.Email", "x\x00cognito-sub", "X-Cognito\x00", "\x00",
	}
	r := rand.New(rand.NewPCG(3, 4))
	const alphabet = "xX-_.cCoOgGnNiItTuUsSeErREMAILmail \x00\x7f\u0130\u212a"
	for range 5000 {
		var b strings.Builder
		for range r.IntN(20) {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		names = append(names, b.String(), "X-Cognito-"+b.String(), "x_user_"+b.String())
	}
	for _, configured := range [][]string{nil, {"X-User-Email", "x-tenant"}} {
		s := NewIdentityHeaders(configured...)
		want := map[string]bool{}
		for _, n := range identityHeaderNames {
			want[NormalizeHeaderName(n)] = true
		}
		for _, n := range configured {
			want[NormalizeHeaderName(n)] = true
		}
		for _, name := range names {
			n := NormalizeHeaderName(name)
			w := strings.HasPrefix(n, "x-cognito-") || want[n]
			if got := s.Is(name); got != w {
				t.Errorf("Is(%q) = %v, want %v (configured %q)", name, got, w, configured)
			}
		}
	}
	// The defaults are identity headers whatever is configured, and the
	// zero and nil sets know the prefixes.
	var zero IdentityHeaders
	var none *IdentityHeaders
	for _, r := range DefaultHeaders() {
		if !NewIdentityHeaders().Is(r.Header) || !zero.Is(r.Header) || !none.Is(r.Header) {
			t.Errorf("default header %s is not an identity header", r.Header)
		}
	}
}

func TestIdentityHeadersIsDoesNotAllocate(t *testing.T) {
	s := NewIdentityHeaders("X-User-Email", "X-Tenant")
	for _, name := range []string{"X-Cognito-Sub", "Accept-Encoding", "X_User_Email", "X-Forwarded-For", "User-Agent"} {
		if n := testing.AllocsPerRun(100, func() { s.Is(name) }); n != 0 {
			t.Errorf("Is(%q): %.0f allocations", name, n)
		}
	}
}

func TestForwardableValue(t *testing.T) {
	for v, want := range map[string]bool{
		"": true, "alice": true, "Alice Smith": true, "a\tb": true, "order/get.order openid": true, "é": true,
		" admin": false, "admin ": false, "\tadmin": false, "admin\t": false, " ": false, "\t": false,
		"a\r\nb": false, "a\nb": false, "a\x00": false, "a\x7f": false, "a\x1fb": false,
	} {
		if got := ForwardableValue(v); got != want {
			t.Errorf("ForwardableValue(%q) = %v, want %v", v, got, want)
		}
	}
}
