//go:build linux

package sdsandbox_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests run the script from the source tree and never boot a
// sandbox: --dry-run stops `up` after it checks its arguments, and the
// other subcommands here fail or return before they touch the host. They
// need no privileges.

// runSourceScript runs ./sandbox with args and returns its combined output
// and whether it exited with status 0.
func runSourceScript(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	out, err := exec.Command("/bin/bash", append([]string{"./sandbox"}, args...)...).CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run ./sandbox %s: %v", strings.Join(args, " "), err)
		}
	}
	return string(out), err == nil
}

func TestDryRunRejectsUnsafeBind(t *testing.T) {
	tests := []struct {
		dir, wantMessage string
	}{
		{"/", "cannot bind /: "},
		{"//", "cannot bind /: "},
		{"/usr/..", "cannot bind /: "},
		{"/tmp", "cannot bind /tmp: it contains /tmp"},
		{"/var", "cannot bind /var: it contains /var/tmp"},
		{"/var/tmp", "cannot bind /var/tmp: it contains /var/tmp"},
		{"/run", "cannot bind /run: it contains /run"},
		{"/dev", "cannot bind /dev: it contains /dev"},
		{"/proc", "cannot bind /proc: it contains /proc"},
		{"/sys", "cannot bind /sys: it contains /sys"},
		{"/etc", "cannot bind /etc: it contains /etc/systemd/system"},
		{"/etc/systemd", "cannot bind /etc/systemd: it contains /etc/systemd/system"},
		{"/nonexistent-osvm-folder", "cannot bind /nonexistent-osvm-folder: not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			out, ok := runSourceScript(t, "up", "--dry-run", tt.dir)
			if ok {
				t.Fatalf("up --dry-run %s succeeded, want it rejected; output:\n%s", tt.dir, out)
			}
			if !strings.Contains(out, tt.wantMessage) {
				t.Errorf("up --dry-run %s printed %q, want it to contain %q", tt.dir, out, tt.wantMessage)
			}
		})
	}
}

func TestDryRunAcceptsAndResolvesFolders(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	out, ok := runSourceScript(t, "up", "--dry-run", "--log-level=info", "--timeout", "5", link, "/usr")
	if !ok {
		t.Fatalf("up --dry-run %s /usr failed:\n%s", link, out)
	}
	if want := dir + "\n/usr\n"; out != want {
		t.Errorf("up --dry-run printed %q, want the resolved folders %q", out, want)
	}
}

func TestDryRunRejectsInvalidOptions(t *testing.T) {
	tests := [][]string{
		{"--log-level", "loud"},
		{"--log-level"},
		{"--timeout", "5s"},
		{"--no-such-option"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, ok := runSourceScript(t, append([]string{"up", "--dry-run"}, args...)...)
			if ok {
				t.Errorf("up --dry-run %s succeeded, want an error; output:\n%s", strings.Join(args, " "), out)
			}
		})
	}
}

func TestScriptRejectsInvalidID(t *testing.T) {
	for _, sub := range []string{"down", "run", "bus"} {
		t.Run(sub, func(t *testing.T) {
			args := []string{sub, "../.."}
			if sub == "run" {
				args = append(args, "true")
			}
			out, ok := runSourceScript(t, args...)
			if ok {
				t.Fatalf("%s ../.. succeeded, want an error; output:\n%s", sub, out)
			}
			if !strings.Contains(out, `invalid sandbox id "../.."`) {
				t.Errorf("%s ../.. printed %q, want an invalid sandbox id error", sub, out)
			}
		})
	}
}

func TestScriptDownUnknownIDSucceeds(t *testing.T) {
	if out, ok := runSourceScript(t, "down", "sb-1-1"); !ok {
		t.Errorf("down sb-1-1 failed, want success for an unknown id; output:\n%s", out)
	}
}

func TestScriptHelpListsSubcommands(t *testing.T) {
	out, ok := runSourceScript(t, "help")
	if !ok {
		t.Fatalf("help failed:\n%s", out)
	}
	for _, usage := range []string{
		"sandbox up [--log-level LEVEL] [--timeout SECONDS] [--dry-run] [DIR...]",
		"sandbox run ID CMD...",
		"sandbox bus ID",
		"sandbox down ID",
		"sandbox list",
	} {
		if !strings.Contains(out, usage) {
			t.Errorf("help does not contain %q; output:\n%s", usage, out)
		}
	}
	if _, ok := runSourceScript(t, "no-such-subcommand"); ok {
		t.Errorf("an unknown subcommand succeeded, want exit status 2")
	}
}
