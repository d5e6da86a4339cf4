package supervisor

import "time"

// debouncer turns bursts of file events into few reloads. The first event
// for a file after a quiet period is handled at once (the leading edge), so
// that a file moved into place starts its unit without delay. Further events
// within the window only mark the file dirty, and a dirty file is handled
// once more when the window ends (the trailing edge), by which time an
// editor's save has usually finished.
type debouncer struct {
	window time.Duration
	until  map[string]time.Time // end of the window per file
	dirty  map[string]bool
}

func newDebouncer(window time.Duration) *debouncer {
	return &debouncer{window: window, until: map[string]time.Time{}, dirty: map[string]bool{}}
}

// event records a change of file at now and reports whether to handle it at
// once.
func (d *debouncer) event(file string, now time.Time) bool {
	if end, ok := d.until[file]; ok && now.Before(end) {
		d.dirty[file] = true
		return false
	}
	d.until[file] = now.Add(d.window)
	return true
}

// retry marks file to be handled again when its window ends, such as
// after the leading edge found a half-written file.
func (d *debouncer) retry(file string) {
	if _, ok := d.until[file]; ok {
		d.dirty[file] = true
	}
}

// due returns the dirty files whose window ended by now and drops every
// file whose window ended.
func (d *debouncer) due(now time.Time) []string {
	var files []string
	for file, end := range d.until {
		if now.Before(end) {
			continue
		}
		if d.dirty[file] {
			files = append(files, file)
		}
		delete(d.until, file)
		delete(d.dirty, file)
	}
	return files
}

// next returns the end of the earliest open window.
func (d *debouncer) next() (time.Time, bool) {
	var earliest time.Time
	for _, end := range d.until {
		if earliest.IsZero() || end.Before(earliest) {
			earliest = end
		}
	}
	return earliest, !earliest.IsZero()
}
