package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap/zapcore"
)

// currentLogCore writes each entry through Caddy's default logger as it is
// when the entry is written. Keyrings outlive the config that created them;
// a logger captured at creation would keep writing where an old config
// pointed (or nowhere) after a reload moves the logs.
type currentLogCore struct{ fields []zapcore.Field }

func (c currentLogCore) core() zapcore.Core { return caddy.Log().Core().With(c.fields) }

func (c currentLogCore) Enabled(l zapcore.Level) bool { return caddy.Log().Core().Enabled(l) }

func (c currentLogCore) With(f []zapcore.Field) zapcore.Core {
	return currentLogCore{fields: append(c.fields[:len(c.fields):len(c.fields)], f...)}
}

func (c currentLogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return c.core().Check(e, ce)
}

func (c currentLogCore) Write(e zapcore.Entry, f []zapcore.Field) error { return c.core().Write(e, f) }

func (c currentLogCore) Sync() error { return caddy.Log().Core().Sync() }

var _ zapcore.Core = currentLogCore{}
