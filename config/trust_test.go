package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestTrustIssuers: the "iss" values a trust accepts, primary first, for
// every issuer_format, with replicas, in the China partition, and for an
// OIDC issuer.
func TestTrustIssuers(t *testing.T) {
	const (
		orig    = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AAA"
		updated = "https://issuer-cognito-idp.us-east-1.amazonaws.com/us-east-1_AAA"
		west2   = "https://cognito-idp.us-west-2.amazonaws.com/us-east-1_AAA"
		euw1    = "https://cognito-idp.eu-west-1.amazonaws.com/us-east-1_AAA"
	)
	tests := []struct {
		name string
		t    Trust
		want []string // primary first
	}{
		{"pool, any (default)", Trust{Pool: "us-east-1_AAA"}, []string{orig, updated}},
		{"pool, any", Trust{Pool: "us-east-1_AAA", IssuerFormat: IssuerFormatAny}, []string{orig, updated}},
		{"pool, original", Trust{Pool: "us-east-1_AAA", IssuerFormat: IssuerFormatOriginal}, []string{orig}},
		{"pool, updated", Trust{Pool: "us-east-1_AAA", IssuerFormat: IssuerFormatUpdated}, []string{updated}},
		{"pool, replicas", Trust{Pool: "us-east-1_AAA", ReplicaRegions: []string{"us-west-2", "eu-west-1"}}, []string{orig, updated, west2, euw1}},
		{"pool, original + replica", Trust{Pool: "us-east-1_AAA", IssuerFormat: IssuerFormatOriginal, ReplicaRegions: []string{"us-west-2"}}, []string{orig, west2}},
		{"China partition", Trust{Pool: "cn-north-1_B"}, []string{
			"https://cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_B",
			"https://issuer-cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_B"}},
		{"OIDC issuer, exact", Trust{Issuer: "https://login.partner.example/"}, []string{"https://login.partner.example/"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.t.Issuers()
			var names []string
			for i, g := range got {
				names = append(names, g.Issuer)
				if g.Primary != (i == 0) {
					t.Errorf("issuer %d %s: primary %v, want %v", i, g.Issuer, g.Primary, i == 0)
				}
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("issuers %q, want %q", names, tc.want)
			}
			if p := tc.t.PrimaryIssuer(); p != tc.want[0] {
				t.Errorf("primary %s, want %s", p, tc.want[0])
			}
		})
	}
}

// TestTrustListShorthand: the shorthand is one trust; the list is copied.
func TestTrustListShorthand(t *testing.T) {
	a := Authorizer{UserPool: "us-east-1_AAA", Audience: []string{"c1"}, TokenUse: TokenUseAccess}
	got := a.TrustList()
	if len(got) != 1 || got[0].Pool != "us-east-1_AAA" || got[0].TokenUse != TokenUseAccess || !slices.Equal(got[0].Audience, []string{"c1"}) {
		t.Fatalf("shorthand trust list: %+v", got)
	}
	b := Authorizer{Trusts: []Trust{{Pool: "us-east-1_AAA", Audience: []string{"c1"}}}}
	list := b.TrustList()
	list[0].Pool = "changed"
	if b.Trusts[0].Pool != "us-east-1_AAA" {
		t.Fatal("TrustList shares its slice with the configuration")
	}
}

// TestValidateTrusts: every trust rule, each error naming the setting (as a
// *FieldError, so hosts can point at its line) and the value.
func TestValidateTrusts(t *testing.T) {
	pool := func(id string, mod ...func(*Trust)) Trust {
		tr := Trust{Pool: id, Audience: []string{"c1"}}
		for _, m := range mod {
			m(&tr)
		}
		return tr
	}
	tests := []struct {
		name      string
		a         Authorizer
		field     string // the FieldError's field; "" = valid
		trust     int
		errSubstr string
	}{
		{"two pools and an issuer", Authorizer{Trusts: []Trust{pool("us-east-1_AAA"), pool("eu-west-1_BBB"),
			{Issuer: "https://login.partner.example", Audience: []string{"api://orders"}}}}, "", 0, ""},
		{"replicas", Authorizer{Trusts: []Trust{pool("us-east-1_AAA", func(t *Trust) { t.ReplicaRegions = []string{"us-west-2"} })}}, "", 0, ""},
		{"no audience", Authorizer{Trusts: []Trust{{Pool: "us-east-1_AAA"}}}, "audience", 0, "audience"},
		{"same pool twice", Authorizer{Trusts: []Trust{pool("us-east-1_AAA"), pool("us-east-1_AAA")}}, "pool", 1, "listed twice"},
		{"same issuer twice", Authorizer{Trusts: []Trust{{Issuer: "https://a.example", Audience: []string{"x"}}, {Issuer: "https://a.example", Audience: []string{"y"}}}}, "issuer", 1, "listed twice"},
		{"issuer equal to a pool's derived form", Authorizer{Trusts: []Trust{pool("us-east-1_AAA"),
			{Issuer: "https://issuer-cognito-idp.us-east-1.amazonaws.com/us-east-1_AAA", Audience: []string{"x"}}}}, "issuer", 1, "accepts already"},
		{"replica region malformed", Authorizer{Trusts: []Trust{pool("us-east-1_AAA", func(t *Trust) { t.ReplicaRegions = []string{"Oregon"} })}}, "replica_regions", 0, "Oregon"},
		{"replica region is the pool's own", Authorizer{Trusts: []Trust{pool("us-east-1_AAA", func(t *Trust) { t.ReplicaRegions = []string{"us-east-1"} })}}, "replica_regions", 0, "us-east-1"},
		{"issuer_format unknown", Authorizer{Trusts: []Trust{pool("us-east-1_AAA", func(t *Trust) { t.IssuerFormat = "new" })}}, "issuer_format", 0, `"new"`},
		{"malformed pool id", Authorizer{Trusts: []Trust{pool("useast1_AAA")}}, "pool", 0, "useast1_AAA"},
		{"shorthand mixed with trusts", Authorizer{UserPool: "us-east-1_AAA", Trusts: []Trust{pool("eu-west-1_BBB")}}, "user_pool", -1, "cannot be mixed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.a
			a.SetDefaults()
			err := a.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid configuration refused: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err %v (%T), want a *FieldError", err, err)
			}
			if fe.Field != tc.field || fe.Trust != tc.trust || !strings.Contains(err.Error(), tc.errSubstr) {
				t.Fatalf("err %q on field %q of trust %d, want field %q of trust %d mentioning %q",
					err, fe.Field, fe.Trust, tc.field, tc.trust, tc.errSubstr)
			}
		})
	}
}
