package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	slogjournal "github.com/systemd/slog-journal"
)

// newLogger logs to the journal with structured fields when stderr is
// connected to it (systemd sets JOURNAL_STREAM; see systemd.exec(5)), and
// as text on stderr otherwise.
//
// In the journal, the attribute "component" becomes COMPONENT= and "unit"
// becomes UNIT= and OBJECT_SYSTEMD_UNIT=. journalctl -u osvm-web.service
// matches OBJECT_SYSTEMD_UNIT= of messages from root processes, so osvmd's
// messages about a component appear among the component's own lines.
func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", level)
	}
	if !stderrIsJournal() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
	}
	handler, err := slogjournal.NewHandler(&slogjournal.Options{
		Level: l,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			a.Key = journalKey(a.Key)
			return a
		},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to the journal: %w", err)
	}
	return slog.New(journalHandler{Handler: handler}), nil
}

// journalKey turns an attribute key into a journal field name, which may
// hold only A-Z, 0-9 and '_'.
func journalKey(key string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			return r
		}
		return '_'
	}, key)
}

// journalHandler prepares records for the journal. journalctl shows only
// MESSAGE= by default, so the attributes are appended to the message text as
// key=value pairs, as slog's text handler writes them; they also stay
// separate fields for journalctl -o verbose and field matches. A record with
// a unit also gets OBJECT_SYSTEMD_UNIT=.
type journalHandler struct {
	slog.Handler
	attrs []slog.Attr // from WithAttrs, for the message text
}

func (h journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return journalHandler{
		Handler: h.Handler.WithAttrs(withObjectUnit(attrs)),
		attrs:   append(slices.Clip(h.attrs), attrs...),
	}
}

func (h journalHandler) WithGroup(name string) slog.Handler {
	return journalHandler{Handler: h.Handler.WithGroup(name), attrs: h.attrs}
}

func (h journalHandler) Handle(ctx context.Context, r slog.Record) error {
	var text strings.Builder
	text.WriteString(r.Message)
	var own []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		own = append(own, a)
		return true
	})
	for _, a := range append(slices.Clip(h.attrs), own...) {
		value := a.Value.String()
		if value == "" || strings.ContainsAny(value, " \t\n\"=") {
			value = strconv.Quote(value)
		}
		text.WriteString(" " + a.Key + "=" + value)
	}

	out := slog.NewRecord(r.Time, r.Level, text.String(), r.PC)
	out.AddAttrs(withObjectUnit(own)...)
	return h.Handler.Handle(ctx, out)
}

// withObjectUnit adds OBJECT_SYSTEMD_UNIT= next to a "unit" attribute.
func withObjectUnit(attrs []slog.Attr) []slog.Attr {
	for _, a := range attrs {
		if a.Key == "unit" {
			return append(slices.Clip(attrs), slog.String("OBJECT_SYSTEMD_UNIT", a.Value.String()))
		}
	}
	return attrs
}

// stderrIsJournal compares JOURNAL_STREAM, "DEVICE:INODE", with stderr.
func stderrIsJournal() bool {
	stream := os.Getenv("JOURNAL_STREAM")
	if stream == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(2, &st); err != nil {
		return false
	}
	return stream == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
