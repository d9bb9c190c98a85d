package observe

import (
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns a JSON logger writing to w at level ("debug", "info", "warn" or "error";
// anything else means info), tagged with the function's name.
func NewLogger(w io.Writer, level, function string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})).With("function", function, "version", Version)
}
