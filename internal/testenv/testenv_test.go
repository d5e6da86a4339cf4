//go:build linux

package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecideSkipsOutsideCI(t *testing.T) {
	fail, message := decide("needs root (running as uid 1000)", false)
	if fail {
		t.Errorf("decide(..., inCI=false) fails the test, want a skip")
	}
	if want := "skipping: needs root (running as uid 1000)"; message != want {
		t.Errorf("message = %q, want %q", message, want)
	}
}

func TestDecideFailsInCI(t *testing.T) {
	fail, message := decide("needs root (running as uid 1000)", true)
	if !fail {
		t.Errorf("decide(..., inCI=true) skips the test, want a failure")
	}
	if !strings.Contains(message, "needs root (running as uid 1000)") {
		t.Errorf("message %q does not name the requirement", message)
	}
	if !strings.Contains(message, "CI=true") {
		t.Errorf("message %q does not say that CI turned the skip into a failure", message)
	}
}

func TestInCIOnlyForTrue(t *testing.T) {
	for value, want := range map[string]bool{"true": true, "": false, "1": false, "false": false, "TRUE": false} {
		t.Setenv("CI", value)
		if got := InCI(); got != want {
			t.Errorf("InCI() with CI=%q = %v, want %v", value, got, want)
		}
	}
}

// recorder is a testing.TB that records Skip and Fatal calls instead of
// stopping the goroutine, so the MustHave functions can be tested.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                          {}
func (r *recorder) Skip(args ...any)                 { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Skipf(format string, args ...any) { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatal(args ...any)                { r.failed = fmt.Sprint(args...) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestMissingSkipsOutsideCI(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{}
	missing(r, "needs a widget (none found)")
	if r.failed != "" {
		t.Errorf("missing failed the test outside CI: %q", r.failed)
	}
	if want := "skipping: needs a widget (none found)"; r.skipped != want {
		t.Errorf("skip message = %q, want %q", r.skipped, want)
	}
}

func TestMissingFailsInCI(t *testing.T) {
	t.Setenv("CI", "true")
	r := &recorder{}
	missing(r, "needs a widget (none found)")
	if r.skipped != "" {
		t.Errorf("missing skipped the test in CI: %q", r.skipped)
	}
	if !strings.Contains(r.failed, "needs a widget (none found)") {
		t.Errorf("failure message %q does not name the requirement", r.failed)
	}
}

func TestSkipMissingHardwareSkipsInCI(t *testing.T) {
	t.Setenv("CI", "true")
	r := &recorder{}
	SkipMissingHardware(r, "Intel TDX", "/sys/module/kvm_intel/parameters/tdx does not exist")
	if r.failed != "" {
		t.Errorf("SkipMissingHardware failed the test in CI: %q", r.failed)
	}
	for _, part := range []string{"Intel TDX", "/sys/module/kvm_intel/parameters/tdx does not exist"} {
		if !strings.Contains(r.skipped, part) {
			t.Errorf("skip message %q does not contain %q", r.skipped, part)
		}
	}
}

func TestRootProblem(t *testing.T) {
	if problem := rootProblem(0); problem != "" {
		t.Errorf("rootProblem(0) = %q, want \"\"", problem)
	}
	if problem, want := rootProblem(1000), "needs root (running as uid 1000)"; problem != want {
		t.Errorf("rootProblem(1000) = %q, want %q", problem, want)
	}
}

func TestHasNamedSystemdHierarchy(t *testing.T) {
	tests := []struct {
		name   string
		mounts string
		want   bool
	}{
		{
			name: "hybrid",
			mounts: "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n" +
				"cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0\n" +
				"cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n",
			want: true,
		},
		{
			name:   "v1 with xattr option first",
			mounts: "cgroup /sys/fs/cgroup/systemd cgroup rw,nosuid,xattr,name=systemd 0 0\n",
			want:   true,
		},
		{
			name:   "unified only",
			mounts: "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n",
			want:   false,
		},
		{
			name:   "named hierarchy elsewhere",
			mounts: "cgroup /mnt/systemd cgroup rw,name=systemd 0 0\n",
			want:   false,
		},
		{
			name:   "empty",
			mounts: "",
			want:   false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasNamedSystemdHierarchy([]byte(tt.mounts)); got != tt.want {
				t.Errorf("hasNamedSystemdHierarchy(%q) = %v, want %v", tt.mounts, got, tt.want)
			}
		})
	}
}

func TestEnabledParameter(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	if observed := enabledParameter(write("yes", "Y\n")); observed != "" {
		t.Errorf("enabledParameter(Y) = %q, want \"\"", observed)
	}
	if observed := enabledParameter(write("no", "N\n")); !strings.Contains(observed, `is "N"`) {
		t.Errorf("enabledParameter(N) = %q, want it to report the value N", observed)
	}
	absent := filepath.Join(dir, "absent")
	if observed := enabledParameter(absent); observed != absent+" does not exist" {
		t.Errorf("enabledParameter(absent) = %q, want %q", observed, absent+" does not exist")
	}
}

// TestReportsAgreeWithHost runs the real probes, so their messages can be
// read in -v output on any machine. It checks that Has and the message agree.
func TestReportsAgreeWithHost(t *testing.T) {
	for name, problem := range map[string]string{
		"systemd": systemdProblem(),
		"kvm":     kvmProblem(),
		"sev-snp": enabledParameter(sevSNPParameter),
		"tdx":     enabledParameter(tdxParameter),
	} {
		if problem == "" {
			t.Logf("%s: available", name)
		} else {
			t.Logf("%s: %s", name, problem)
		}
	}
	if HasSystemd() != (systemdProblem() == "") {
		t.Errorf("HasSystemd() = %v disagrees with systemdProblem() = %q", HasSystemd(), systemdProblem())
	}
	if HasKVM() != (kvmProblem() == "") {
		t.Errorf("HasKVM() = %v disagrees with kvmProblem() = %q", HasKVM(), kvmProblem())
	}
}
