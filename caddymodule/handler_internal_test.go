package caddymodule

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/config"
)

// TestIsIdentityHeaderMatchesNormalize: the allocation-free check answers
// exactly as config.NormalizeHeaderName followed by the prefix and
// configured-name tests.
func TestIsIdentityHeaderMatchesNormalize(t *testing.T) {
	names := []string{
		"X-Cognito-Sub", "x-cognito-sub", "X_COGNITO_SUB", "x_Cognito-Groups", "X-Cognito-", "X-Cognito", "X-Cognitox",
		"X-User-Email", "x_user_email", "X-USER-EMAIL", "X-User-Emails", "Authorization", "", "x",
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
	for _, strip := range []map[string]bool{{}, {"x-user-email": true, "x-tenant": true}} {
		h := &Handler{strip: strip}
		for _, name := range names {
			n := config.NormalizeHeaderName(name)
			want := strings.HasPrefix(n, "x-cognito-") || strip[n]
			if got := h.isIdentityHeader(name); got != want {
				t.Errorf("isIdentityHeader(%q) = %v, want %v (strip %v)", name, got, want, strip)
			}
		}
	}
}
