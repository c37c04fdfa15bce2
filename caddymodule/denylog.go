package caddymodule

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-cognito/caddy-cognito/authz"
)

// The denial log. Denials come in floods (a scanner, a client retrying a
// stale token, an attack), so their log has one process-wide budget:
// denyLogPerSecond lines per second, whatever the number of handlers,
// routes and configs, and every denyLogReport a line counting those left
// out. Every value that comes from the request is cut to
// denyLogFieldBytes. The budget is one small value shared through a usage
// pool (a zap sampler per handler cost 452 KiB of counters each, and
// multiplied the volume by the number of routes).
const (
	denyLogPerSecond  = 20
	denyLogReport     = 10 * time.Second
	denyLogFieldBytes = 256
	denyBudgetKey     = "deny-log-budget"
)

// denyBudgets holds the one process-wide denyBudget while any handler uses
// it.
var denyBudgets = caddy.NewUsagePool()

// denyBudget lets denyLogPerSecond denial lines through per second (a
// fixed window: one atomic add per denial, no lock) and counts the others.
type denyBudget struct {
	perSecond  int64
	window     atomic.Int64 // the Unix second being counted
	used       atomic.Int64 // lines allowed in that second
	suppressed atomic.Int64 // lines refused since the last report
	log        *zap.Logger
	stop, done chan struct{}
}

func newDenyBudget(perSecond int64, every time.Duration, log *zap.Logger) *denyBudget {
	b := &denyBudget{perSecond: perSecond, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go b.report(every)
	return b
}

// acquireDenyBudget returns the shared budget; release it with
// denyBudgets.Delete(denyBudgetKey).
func acquireDenyBudget() (*denyBudget, error) {
	v, _, err := denyBudgets.LoadOrNew(denyBudgetKey, func() (caddy.Destructor, error) {
		return newDenyBudget(denyLogPerSecond, denyLogReport, zap.New(currentLogCore{}).Named("http.handlers.cognito_auth")), nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*denyBudget), nil
}

// allow reports whether one more denial line fits this second's budget.
func (b *denyBudget) allow(now time.Time) bool {
	sec := now.Unix()
	if w := b.window.Load(); w != sec {
		if b.window.CompareAndSwap(w, sec) {
			b.used.Store(0)
		}
	}
	if b.used.Add(1) <= b.perSecond {
		return true
	}
	b.suppressed.Add(1)
	return false
}

func (b *denyBudget) report(every time.Duration) {
	defer close(b.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			b.flush(every)
			return
		case <-t.C:
			b.flush(every)
		}
	}
}

// flush logs how many denial lines were left out, if any.
func (b *denyBudget) flush(every time.Duration) {
	if n := b.suppressed.Swap(0); n > 0 {
		b.log.Warn("denials suppressed from the log", zap.Int64("suppressed", n),
			zap.Duration("over", every), zap.Int64("budget_per_second", b.perSecond))
	}
}

// Destruct implements caddy.Destructor: the last handler is gone.
func (b *denyBudget) Destruct() error {
	close(b.stop)
	<-b.done
	return nil
}

// logDenial writes the denial's log line if the budget allows.
func (h *Handler) logDenial(r *http.Request, c *authz.Claims, e *authz.Error) {
	if !h.logger.Core().Enabled(zapcore.InfoLevel) {
		return // not logged anyway: neither counted against the budget
	}
	if h.denyBudget != nil && !h.denyBudget.allow(time.Now()) {
		return
	}
	ce := h.logger.Check(zapcore.InfoLevel, "request denied")
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, 10)
	fields = append(fields,
		zap.Int("status", e.Kind.Status()),
		zap.String("reason", e.Reason),
		zap.String("client_ip", clientIP(r)),
		zap.String("method", truncate(r.Method)),
		zap.String("uri", truncate(r.URL.Path)),
	)
	if e.Err != nil {
		fields = append(fields, zap.String("detail", truncate(e.Err.Error())))
	}
	if c != nil {
		fields = append(fields, zap.String("kid", truncate(c.KeyID)), zap.String("iss", truncate(c.Issuer)),
			zap.String("client_id", truncate(c.ClientID)), zap.String("sub", truncate(c.Subject)))
	}
	ce.Write(fields...)
}

// clientIP is the client address as Caddy determined it (behind trusted
// proxies, the forwarded one), else the connection's.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// truncate cuts s to denyLogFieldBytes at a character boundary, marking
// the cut.
func truncate(s string) string {
	if len(s) <= denyLogFieldBytes {
		return s
	}
	cut := denyLogFieldBytes - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
