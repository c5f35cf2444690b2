package clienttest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

// Logger returns a logger for a server under test: it writes records at
// level and above to t's log, and calls onBug for any record that
// carries a stack, which the servers log only for a recovered panic (a
// bug must not hide behind an error reply). A nil onBug fails t.
func Logger(t testing.TB, level slog.Level, onBug func(msg string)) *slog.Logger {
	if onBug == nil {
		onBug = func(msg string) { t.Errorf("server bug: %s", msg) }
	}
	text := slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level})
	return slog.New(&bugHandler{Handler: text, onBug: onBug})
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// bugHandler calls onBug for the records that carry a stack.
type bugHandler struct {
	slog.Handler
	onBug func(msg string)
}

func (h *bugHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "stack" {
			h.onBug(r.Message)
			return false
		}
		return true
	})
	return h.Handler.Handle(ctx, r)
}

func (h *bugHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &bugHandler{Handler: h.Handler.WithAttrs(attrs), onBug: h.onBug}
}

func (h *bugHandler) WithGroup(name string) slog.Handler {
	return &bugHandler{Handler: h.Handler.WithGroup(name), onBug: h.onBug}
}
