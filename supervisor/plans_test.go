package supervisor

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRemoveUnusedPlansTakesRecords checks that an exec record is removed
// and kept together with its plan.
func TestRemoveUnusedPlansTakesRecords(t *testing.T) {
	dir := t.TempDir()
	files := []string{
		"web-0000000000000001.json", "web-0000000000000001.exec",
		"web-0000000000000002.json", "web-0000000000000002.exec",
		"db-0000000000000003.json", "db-0000000000000003.exec",
		"notes.txt",
	}
	for _, name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := &Supervisor{cfg: Config{PlanDir: dir}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	s.removeUnusedPlans(func(file, component string) bool {
		return component != "web" || file == "web-0000000000000002.json"
	})

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{"db-0000000000000003.exec", "db-0000000000000003.json", "notes.txt", "web-0000000000000002.exec", "web-0000000000000002.json"}
	if !slices.Equal(left, want) {
		t.Errorf("left %q, want %q", left, want)
	}
}
