//go:build linux

package sdsandbox_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/osvm-project/osvm/internal/sdsandbox"
	"github.com/osvm-project/osvm/internal/testenv"
)

// mustHaveSandbox skips or, in CI, fails t unless a sandbox can boot here.
func mustHaveSandbox(t *testing.T) {
	t.Helper()
	testenv.MustHaveRoot(t)
	testenv.MustHaveSystemd(t)
}

// TestSandboxLifecycle boots a sandbox, checks what the tests built on it
// rely on, stops it and checks that nothing is left.
func TestSandboxLifecycle(t *testing.T) {
	mustHaveSandbox(t)
	ctx := t.Context()

	bound := t.TempDir()
	preexisting := filepath.Join(bound, "preexisting")
	if err := os.WriteFile(preexisting, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// systemd-tmpfiles empties /tmp at boot, so the marker shows whether the
	// sandbox reached the host's /tmp.
	marker, err := os.CreateTemp("/tmp", "osvm-sdsandbox-marker-*")
	if err != nil {
		t.Fatal(err)
	}
	marker.Close()
	t.Cleanup(func() { os.Remove(marker.Name()) })

	start := time.Now()
	sb, err := sdsandbox.Up(ctx, sdsandbox.Options{Bind: []string{bound}})
	upTime := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Down(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("Up took %v (sandbox %s)", upTime, sb.ID())

	// is-system-running exits with status 1 for degraded, so check the state
	// it prints and report the error only for other states.
	out, err := sb.Run(ctx, "systemctl", "is-system-running")
	if state := strings.TrimSpace(string(out)); state != "running" && state != "degraded" {
		t.Errorf("systemctl is-system-running = %q, want running or degraded (error: %v)", state, err)
	}

	if _, err := sb.Run(ctx, "systemd-run", "--unit=probe", "/bin/sleep", "30"); err != nil {
		t.Fatal(err)
	}
	out, err = sb.Run(ctx, "systemctl", "is-active", "probe.service")
	if state := strings.TrimSpace(string(out)); err != nil || state != "active" {
		t.Errorf("systemctl is-active probe.service = %q, %v; want active", state, err)
	}

	writtenInside := filepath.Join(bound, "written-inside")
	if _, err := sb.Run(ctx, "sh", "-c", `echo inside > "$1"`, "sh", writtenInside); err != nil {
		t.Fatal(err)
	}
	if content, err := os.ReadFile(writtenInside); err != nil || string(content) != "inside\n" {
		t.Errorf("host reads %s = %q, %v; want \"inside\\n\" written in the sandbox", writtenInside, content, err)
	}
	if content, err := os.ReadFile(preexisting); err != nil || string(content) != "host\n" {
		t.Errorf("host reads %s = %q, %v after boot; want the file the host wrote before Up", preexisting, content, err)
	}
	if out, err := sb.Run(ctx, "cat", preexisting); err != nil || string(out) != "host\n" {
		t.Errorf("sandbox reads %s = %q, %v; want the file the host wrote", preexisting, out, err)
	}

	checkHostBus(t, sb)

	if _, err := os.Stat(marker.Name()); err != nil {
		t.Errorf("marker in the host's /tmp is gone while the sandbox runs: %v", err)
	}
	if out, err := sb.Run(ctx, "test", "-e", marker.Name()); err == nil {
		t.Errorf("sandbox sees the host's %s, want a fresh /tmp inside (output: %q)", marker.Name(), out)
	}

	cgroups := sandboxCgroups(t, sb.ID())
	if len(cgroups) == 0 {
		t.Errorf("found no cgroup named %s under the test's own cgroups", sb.ID())
	}

	start = time.Now()
	if err := sb.Down(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Down took %v", time.Since(start))

	if _, err := os.Stat(sb.StateDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state folder %s after Down: %v, want it removed", sb.StateDir(), err)
	}
	if listed := listSandboxes(t); strings.Contains(listed, sb.ID()) {
		t.Errorf("sandbox list shows %s after Down:\n%s", sb.ID(), listed)
	}
	for _, dir := range cgroups {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s after Down: %v, want it removed", dir, err)
		}
	}
	if _, err := os.Stat(marker.Name()); err != nil {
		t.Errorf("marker in the host's /tmp is gone after Down: %v", err)
	}
	if err := sb.Down(); err != nil {
		t.Errorf("second Down: %v, want nil", err)
	}
	if out, err := sb.Run(ctx, "true"); err == nil {
		t.Errorf("Run after Down succeeded, want an error (output: %q)", out)
	}
}

// checkHostBus calls systemd inside sb over the bus address that host
// clients use.
func checkHostBus(t *testing.T, sb *sdsandbox.Sandbox) {
	t.Helper()
	conn, err := dbus.Connect(sb.BusAddress())
	if err != nil {
		t.Errorf("connect to the sandbox's system bus at %s: %v", sb.BusAddress(), err)
		return
	}
	defer conn.Close()
	version, err := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1").
		GetProperty("org.freedesktop.systemd1.Manager.Version")
	if err != nil {
		t.Errorf("get systemd's Version over %s: %v", sb.BusAddress(), err)
		return
	}
	t.Logf("systemd in the sandbox answers over D-Bus: version %v", version.Value())
}

// sandboxCgroups returns the cgroup folders named id under the test
// process's own cgroup in each hierarchy, where the script creates them.
func sandboxCgroups(t *testing.T, id string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var dirs []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		// Lines read hierarchy-ID:controllers:path, such as
		// "4:memory:/user.slice" or "0::/" for cgroup v2.
		fields := strings.SplitN(scanner.Text(), ":", 3)
		if len(fields) != 3 {
			continue
		}
		mount := strings.TrimPrefix(fields[1], "name=")
		if fields[0] == "0" {
			mount = "unified"
		}
		dir := filepath.Join("/sys/fs/cgroup", mount, fields[2], id)
		if _, err := os.Stat(dir); err == nil {
			dirs = append(dirs, dir)
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return dirs
}

// listSandboxes returns the output of `sandbox list`.
func listSandboxes(t *testing.T) string {
	t.Helper()
	path, err := sdsandbox.ScriptPath()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/bash", path, "list").CombinedOutput()
	if err != nil {
		t.Fatalf("sandbox list: %v\n%s", err, out)
	}
	return string(out)
}

// TestStartLogLevelInfo checks that LogLevel "info" puts "Started UNIT"
// lines in the journal, which tests of osvm's units look for.
func TestStartLogLevelInfo(t *testing.T) {
	sb := sdsandbox.Start(t, sdsandbox.Options{Bind: []string{t.TempDir()}, LogLevel: "info"})
	ctx := t.Context()

	if _, err := sb.Run(ctx, "systemd-run", "--wait", "--unit=hello", "/bin/true"); err != nil {
		t.Fatal(err)
	}
	var journal []byte
	for range 50 {
		var err error
		journal, err = sb.Run(ctx, "journalctl", "--no-pager", "--unit=hello.service")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(journal), "Started hello.service") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("journal of hello.service has no \"Started hello.service\" line after 5 s:\n%s", journal)
}

// TestUpCancelLeavesNothing stops Up while systemd boots and checks that the
// script tore the half-booted sandbox down.
func TestUpCancelLeavesNothing(t *testing.T) {
	mustHaveSandbox(t)
	// Up takes about 0.5 s, so 150 ms lands inside the boot.
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()

	sb, err := sdsandbox.Up(ctx, sdsandbox.Options{Bind: []string{t.TempDir()}})
	if err == nil {
		sb.Down()
		t.Fatalf("Up booted %s within 150 ms, so the test cannot cancel it during boot", sb.ID())
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Up error = %v, want one that wraps context.DeadlineExceeded", err)
	}
	var upErr *sdsandbox.Error
	if !errors.As(err, &upErr) {
		t.Fatalf("Up error = %v, want an *sdsandbox.Error", err)
	}
	removed := regexp.MustCompile(`up failed; removed (sb-[0-9]+-[0-9]+)`).FindSubmatch(upErr.Output)
	if removed == nil {
		t.Fatalf("script output does not report the removed sandbox:\n%s", upErr.Output)
	}
	id := string(removed[1])
	if _, err := os.Stat(filepath.Join(sdsandbox.StateRoot, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state folder of %s after the cancelled Up: %v, want it removed", id, err)
	}
	if dirs := sandboxCgroups(t, id); len(dirs) != 0 {
		t.Errorf("cgroups of %s after the cancelled Up: %v, want none", id, dirs)
	}
}

func TestErrorNamesCommandAndOutput(t *testing.T) {
	sb := sdsandbox.Start(t, sdsandbox.Options{Bind: []string{t.TempDir()}})
	_, err := sb.Run(t.Context(), "sh", "-c", "echo broken >&2; exit 3")
	if err == nil {
		t.Fatal("Run of a failing command returned nil error")
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("Run error = %v, want it to wrap an *exec.ExitError with code 3", err)
	}
	message := err.Error()
	for _, part := range []string{sb.ID(), "sh -c 'echo broken >&2; exit 3'", "exit status 3", "broken"} {
		if !strings.Contains(message, part) {
			t.Errorf("error message does not contain %q:\n%s", part, message)
		}
	}
}
