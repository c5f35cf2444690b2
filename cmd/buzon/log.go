package main

import (
	"io"
	"log/slog"

	"github.com/buzon-mail/buzon/internal/config"
)

// newLogger makes the process logger: one line per event, key=value (or
// JSON), at the configured level.
func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
