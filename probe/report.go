package probe

import "slices"

// Report is the result of probing a host: what the probe found, and what
// follows for each isolation level.
type Report struct {
	Facts  Facts         `json:"facts"`
	Levels []LevelStatus `json:"levels"` // every level of AllLevels, weakest first
}

// NewReport returns the report of a host with facts f.
func NewReport(f Facts) *Report {
	return &Report{Facts: f, Levels: Levels(&f)}
}

// Status returns the status of level, or false when r has none for it.
func (r *Report) Status(level Level) (LevelStatus, bool) {
	for _, s := range r.Levels {
		if s.Level == level {
			return s, true
		}
	}
	return LevelStatus{}, false
}

// Strongest returns the strongest available isolation level. It is
// LevelNone when no stronger level is available.
func (r *Report) Strongest() Level {
	strongest := LevelNone
	for _, s := range r.Levels {
		if s.Available && slices.Index(AllLevels, s.Level) > slices.Index(AllLevels, strongest) {
			strongest = s.Level
		}
	}
	return strongest
}
