package policy

// The cost of a route policy on the cached path (issue 12: the tenant
// expression adds at most 1 µs and 3 allocations). Run:
//
//	go test -run '^$' -bench . -benchmem ./authz/policy/
//
// BenchmarkAuthorizeCachedPolicy/none is authz's cached decision alone,
// /tenant the same decision followed by the tenant rule, and /added runs
// both in alternating slices and prints what the policy adds (policy-ns,
// policy-allocs). BenchmarkCheck is a rule alone.

import (
	"context"
	"fmt"
	"testing"
	"time"
)

const tenantExpr = `claims["custom:tenant_id"] == request.path_segments[1]`

// benchTokens signs n access tokens of distinct users and tenants, with
// the claims of a real Cognito access token plus a tenant.
func benchTokens(b *testing.B, n int) []string {
	toks := make([]string, n)
	for i := range toks {
		toks[i], _ = signedClaims(b, baseClaims(map[string]any{
			"sub":              fmt.Sprintf("%08x-bbbb-4ccc-8ddd-%012x", i, i),
			"username":         fmt.Sprintf("user-%08d@example.com", i),
			"origin_jti":       fmt.Sprintf("%08x-1111-4222-8333-%012x", i, i),
			"event_id":         fmt.Sprintf("%08x-4444-4555-8666-%012x", i, i),
			"jti":              fmt.Sprintf("%08x-7777-4888-8999-%012x", i, i),
			"version":          2,
			"custom:tenant_id": fmt.Sprintf("tenant-%d", i),
		}))
	}
	return toks
}

func benchRequests(n int) []*Request {
	reqs := make([]*Request, n)
	for i := range reqs {
		path := fmt.Sprintf("/t/tenant-%d/orders/42", i)
		reqs[i] = testRequest(func(r *Request) { r.Path, r.EscapedPath = path, path })
	}
	return reqs
}

func BenchmarkAuthorizeCachedPolicy(b *testing.B) {
	const n = 64
	toks := benchTokens(b, n)
	reqs := benchRequests(n)
	a := newAuthorizer(b)
	ctx := context.Background()
	for _, tok := range toks {
		if _, err := a.Authorize(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	p := mustCompile(b, []string{tenantExpr})
	none := func(i int) {
		if _, err := a.Authorize(ctx, toks[i%n]); err != nil {
			b.Fatal(err)
		}
	}
	tenant := func(i int) {
		c, err := a.Authorize(ctx, toks[i%n])
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Check(c, reqs[i%n]); err != nil {
			b.Fatal(err)
		}
	}
	var noneNs, tenantNs float64
	for _, bc := range []struct {
		name string
		run  func(int)
		ns   *float64
	}{{"none", none, &noneNs}, {"tenant", tenant, &tenantNs}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bc.run(i)
				i++
			}
			*bc.ns = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	// The two measured in alternating slices, so that both see the same
	// machine (a shared or busy one drifts between sub-benchmarks): the
	// difference is what the policy adds.
	b.Run("added", func(b *testing.B) {
		const slice = 256
		var tNone, tTenant time.Duration
		var runs int
		for b.Loop() {
			start := time.Now()
			for i := range slice {
				none(i)
			}
			mid := time.Now()
			for i := range slice {
				tenant(i)
			}
			tTenant += time.Since(mid)
			tNone += mid.Sub(start)
			runs += slice
		}
		allocs := testing.AllocsPerRun(100, func() { tenant(1) }) - testing.AllocsPerRun(100, func() { none(1) })
		b.ReportMetric(float64(tNone.Nanoseconds())/float64(runs), "none-ns")
		b.ReportMetric(float64(tTenant.Nanoseconds())/float64(runs), "tenant-ns")
		b.ReportMetric(float64((tTenant-tNone).Nanoseconds())/float64(runs), "policy-ns")
		b.ReportMetric(allocs, "policy-allocs")
	})
}

// BenchmarkCheck is one expression alone, on claims already verified.
func BenchmarkCheck(b *testing.B) {
	_, claims := signedPayload(b, []byte(evalPayload))
	req := testRequest(nil)
	for _, expr := range []string{
		tenantExpr,
		`request.method == "GET" || "admins" in groups`,
		`sets.contains(scopes, ["orders/read", "orders/write"])`,
		`now - timestamp(claims.auth_time) < duration("15m") && "mfa" in claims.amr`,
		`request.headers["x-tenant"] == claims["custom:tenant_id"]`,
	} {
		p := mustCompile(b, []string{expr})
		b.Run(expr, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Check(claims, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestTenantPolicyAllocations holds the allocation budget of the tenant
// rule (counts, not time: it is deterministic).
func TestTenantPolicyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items: allocation counts vary")
	}
	_, claims := signedPayload(t, []byte(evalPayload))
	p := mustCompile(t, []string{tenantExpr})
	req := testRequest(nil)
	if n := testing.AllocsPerRun(200, func() {
		if err := p.Check(claims, req); err != nil {
			t.Fatal(err)
		}
	}); n > 3 {
		t.Fatalf("tenant rule: %.0f allocations, want <= 3", n)
	}
}
