package supervisor

import (
	"slices"
	"testing"
	"time"
)

func TestDebouncer(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	d := newDebouncer(100 * time.Millisecond)

	if !d.event("a.toml", at(0)) {
		t.Fatal("first event was not handled at once")
	}
	if d.event("a.toml", at(10)) {
		t.Fatal("second event within the window was handled at once")
	}
	if !d.event("b.toml", at(20)) {
		t.Fatal("first event of another file was not handled at once")
	}
	if next, ok := d.next(); !ok || !next.Equal(at(100)) {
		t.Fatalf("next = %v, %v; want %v", next, ok, at(100))
	}
	if due := d.due(at(50)); len(due) != 0 {
		t.Fatalf("due before the window ended: %v", due)
	}
	if due := d.due(at(100)); !slices.Equal(due, []string{"a.toml"}) {
		t.Fatalf("due at the end of a's window = %v, want [a.toml]", due)
	}
	if due := d.due(at(120)); len(due) != 0 {
		t.Fatalf("b.toml had no second event but is due: %v", due)
	}
	if _, ok := d.next(); ok {
		t.Fatal("windows still open after both ended")
	}
	if !d.event("a.toml", at(300)) {
		t.Fatal("event after the window was not handled at once")
	}
	d.retry("a.toml")
	if due := d.due(at(400)); !slices.Equal(due, []string{"a.toml"}) {
		t.Fatalf("retried file not due at the trailing edge: %v", due)
	}
}
