package caddymodule

import (
	"strings"
	"testing"
)

// --issuer-format chooses which of a pool's key sets the sync publishes.
func TestSyncIssuerFormat(t *testing.T) {
	for _, tc := range []struct {
		format, jwksURL, want, err string
	}{
		{"", "", "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AAA/.well-known/jwks.json", ""},
		{"original", "", "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AAA/.well-known/jwks.json", ""},
		{"updated", "", "https://issuer-cognito-idp.us-east-1.amazonaws.com/us-east-1_AAA/.well-known/jwks.json", ""},
		{"any", "", "", `issuer format "any": must be original or updated`},
		{"updated", "https://keys.example/jwks.json", "", "give one of them"},
	} {
		f := syncFlags{userPool: "us-east-1_AAA", issuerFormat: tc.format, jwksURL: tc.jwksURL, parameter: "/p/jwks.json", timeout: 1}
		err := f.check()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.format, err, tc.err)
			}
			continue
		}
		if err != nil || f.jwksURL != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.format, f.jwksURL, err, tc.want)
		}
	}
}
