package sandbox

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/osvm-project/osvm/internal/plan"
)

// ruleSet returns rules as a map from path to access, merged.
func ruleSet(rules []PathRule) map[string]Access {
	set := map[string]Access{}
	for _, r := range rules {
		set[r.Path] |= r.Access
	}
	return set
}

func TestRecordStartupMatchesSearch(t *testing.T) {
	searched, err := StartupPaths("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	recorded, err := RecordStartup("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	if recorded.Files["/bin/sh"] == "" {
		t.Errorf("the record lacks the state of /bin/sh: %v", recorded.Files)
	}
	if _, ok := recorded.Files["/etc/ld.so.conf"]; !ok {
		t.Errorf("the record lacks /etc/ld.so.conf: %v", recorded.Files)
	}

	frozen, ok := StartupFromPlan(recorded)
	if !ok {
		t.Fatalf("StartupFromPlan rejected a record of unchanged files: %v", recorded.Files)
	}
	if got, want := ruleSet(frozen), ruleSet(searched); !reflect.DeepEqual(got, want) {
		t.Errorf("StartupFromPlan = %v, want what StartupPaths finds: %v", got, want)
	}
}

func TestStartupFromPlanDetectsChanges(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	recorded, err := RecordStartup(script)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := StartupFromPlan(recorded); !ok {
		t.Fatal("StartupFromPlan rejected a record of unchanged files")
	}

	// A new interpreter line changes the size and the times.
	if err := os.WriteFile(script, []byte("#!/bin/bash\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok := StartupFromPlan(recorded); ok {
		t.Error("StartupFromPlan accepted a record after the script changed")
	}

	// A replaced file has another inode.
	recorded, err = RecordStartup(script)
	if err != nil {
		t.Fatal(err)
	}
	replacement := filepath.Join(dir, "replacement")
	if err := os.WriteFile(replacement, []byte("#!/bin/bash\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(replacement, script); err != nil {
		t.Fatal(err)
	}
	if _, ok := StartupFromPlan(recorded); ok {
		t.Error("StartupFromPlan accepted a record after the script was replaced")
	}

	// A removed file.
	recorded, err = RecordStartup(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(script); err != nil {
		t.Fatal(err)
	}
	if _, ok := StartupFromPlan(recorded); ok {
		t.Error("StartupFromPlan accepted a record after the script was removed")
	}
}

func TestStartupFromPlanDetectsNewFile(t *testing.T) {
	// A library that appears in a folder searched before the one where
	// the search found it changes what the command loads.
	missing := filepath.Join(t.TempDir(), "libc.so.6")
	recorded := &plan.Startup{
		Paths: map[string]string{"/bin/sh": "read+exec"},
		Files: map[string]string{missing: ""},
	}
	if _, ok := StartupFromPlan(recorded); !ok {
		t.Fatal("StartupFromPlan rejected a record whose missing file is still missing")
	}
	if err := os.WriteFile(missing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := StartupFromPlan(recorded); ok {
		t.Error("StartupFromPlan accepted a record after a missing file appeared")
	}
}

func TestStartupFromPlanRejectsEmptyRecords(t *testing.T) {
	if _, ok := StartupFromPlan(nil); ok {
		t.Error("StartupFromPlan accepted nil")
	}
	if _, ok := StartupFromPlan(&plan.Startup{Paths: map[string]string{"/bin/sh": "read+exec"}}); ok {
		t.Error("StartupFromPlan accepted a record without files")
	}
	invalid := &plan.Startup{
		Paths: map[string]string{"/bin/sh": "read+fly"},
		Files: map[string]string{"/bin/sh": currentFileState("/bin/sh")},
	}
	if _, ok := StartupFromPlan(invalid); ok {
		t.Error("StartupFromPlan accepted an invalid access")
	}
}

func TestParseAccess(t *testing.T) {
	for a := Access(0); a <= AccessRead|AccessWrite|AccessExec; a++ {
		got, err := parseAccess(a.String())
		if err != nil {
			t.Errorf("parseAccess(%q): %v", a.String(), err)
		}
		if got != a {
			t.Errorf("parseAccess(%q) = %v, want %v", a.String(), got, a)
		}
	}
	for _, text := range []string{"", "read+", "fly", "read+fly"} {
		if _, err := parseAccess(text); err == nil {
			t.Errorf("parseAccess(%q) succeeded", text)
		}
	}
}
