package policy

import (
	"context"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/authz"
)

func BenchmarkParts(b *testing.B) {
	toks := benchTokens(b, 1)
	a := newAuthorizer(b)
	c, _ := a.Authorize(context.Background(), toks[0])
	b.Run("authorize", func(b *testing.B) {
		for b.Loop() {
			a.Authorize(context.Background(), toks[0])
		}
	})
	var pl authz.Payload
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			c.Payload(&pl, pl.Buffer())
			pl.OK()
		}
	})
	b.Run("claim", func(b *testing.B) {
		for b.Loop() {
			c.Payload(&pl, pl.Buffer())
			pl.Claim("custom:tenant_id")
		}
	})
	b.Run("claim-last", func(b *testing.B) {
		for b.Loop() {
			c.Payload(&pl, pl.Buffer())
			pl.Claim("version")
		}
	})
	p := mustCompile(b, []string{tenantExpr})
	req := benchRequests(1)[0]
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			p.Check(c, req)
		}
	})
	p2 := mustCompile(b, []string{`request.path_segments[1] == "tenant-0"`})
	b.Run("check-noclaims", func(b *testing.B) {
		for b.Loop() {
			p2.Check(c, req)
		}
	})
	b.Logf("token %d bytes", len(toks[0]))
}
