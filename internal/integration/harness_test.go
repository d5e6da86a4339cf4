package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osvm-project/osvm/internal/sdsandbox"
)

// waitTimeout bounds every wait for a state change. Changes take tens of
// milliseconds; the bound is for slow CI machines.
const waitTimeout = 30 * time.Second

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// TestMain removes the shared build folder after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// build compiles the four programs once per test run and copies the
// packaging files next to them, so that the sandbox needs only this folder.
func build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			buildErr = err
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "osvm-integration-")
		if buildErr != nil {
			return
		}
		// As make build does: osvm-launch without cgo.
		cmd := exec.Command("go", "build", "-o", buildDir+"/", "./cmd/osvmd", "./cmd/osvm")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		cmd = exec.Command("go", "build", "-o", buildDir+"/", "./cmd/osvm-launch")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build osvm-launch: %v\n%s", err, out)
			return
		}
		if out, err := exec.Command(filepath.Join(root, "cmd/osvm-exec/build"), filepath.Join(buildDir, "osvm-exec")).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build osvm-exec: %v\n%s", err, out)
			return
		}
		// The escape battery is a static C program, so that it needs no
		// library paths in the sandbox and can make 32-bit system calls.
		cmd = exec.Command("gcc", "-static", "-O1", "-Wall", "-o", filepath.Join(buildDir, "escape"), filepath.Join(root, "sandbox/testdata/escape.c"))
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build the escape battery: %v\n%s", err, out)
			return
		}
		cmd = exec.Command("cp", "-r", filepath.Join(root, "packaging"), filepath.Join(root, "examples"), buildDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("copy packaging files: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// env is a systemd sandbox with osvmd running on a configuration folder
// that the test writes to from the host.
type env struct {
	t         testing.TB
	sb        *sdsandbox.Sandbox
	bin       string // build folder, bound into the sandbox
	configDir string // osvmd's --config-dir, bound into the sandbox
}

func newEnv(t testing.TB) *env {
	t.Helper()
	bin := build(t)
	configDir := t.TempDir()
	sb := sdsandbox.Start(t, sdsandbox.Options{Bind: []string{bin, configDir}, LogLevel: "info"})
	e := &env{t: t, sb: sb, bin: bin, configDir: configDir}
	t.Cleanup(func() {
		if t.Failed() {
			// t.Context is already cancelled during cleanup.
			out, _ := e.command(context.Background(), "journalctl", "--no-pager", "-u", "osvmd", "-n", "60").CombinedOutput()
			t.Logf("osvmd's journal:\n%s", out)
		}
	})

	e.shell(`packaging/install-files .
mkdir -p /etc/systemd/system/osvmd.service.d
cat > /etc/systemd/system/osvmd.service.d/test.conf <<EOF
[Service]
ExecStart=
ExecStart=/usr/sbin/osvmd --config-dir ` + configDir + ` --log-level debug
EOF
busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
systemctl daemon-reload
systemctl start osvmd`)
	return e
}

// command returns a command run inside the sandbox from the build folder.
func (e *env) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := e.sb.Command(ctx, name, args...)
	cmd.Dir = e.bin
	return cmd
}

// output runs a command inside the sandbox and returns its combined output,
// failing the test when it fails.
func (e *env) output(name string, args ...string) string {
	e.t.Helper()
	out, err := e.command(e.t.Context(), name, args...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// shell runs a shell script inside the sandbox.
func (e *env) shell(script string) string {
	e.t.Helper()
	return e.output("sh", "-ec", script)
}

// property returns a unit property as systemctl show prints its value.
func (e *env) property(unit, name string) string {
	e.t.Helper()
	return strings.TrimSpace(e.output("systemctl", "show", "--value", "-p", name, unit))
}

// writeComponent writes a component file the way configuration tools do:
// to a temporary name, then renamed into place.
func (e *env) writeComponent(name, text string) {
	e.t.Helper()
	tmp := filepath.Join(e.configDir, "."+name+".toml.tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.configDir, name+".toml")); err != nil {
		e.t.Fatal(err)
	}
}

// waitFor polls check until it returns true, and fails the test with the
// last description check returned when waitTimeout passes.
func (e *env) waitFor(what string, check func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, last := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s; last seen: %s", waitTimeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitActive waits until a unit is active and returns its invocation ID.
func (e *env) waitActive(unit string) string {
	e.t.Helper()
	e.waitFor(unit+" to be active", func() (bool, string) {
		state := e.property(unit, "ActiveState")
		return state == "active", "ActiveState=" + state
	})
	return e.property(unit, "InvocationID")
}

// journal returns the journal lines of a unit, including osvmd's messages
// about it.
func (e *env) journal(unit string) string {
	e.t.Helper()
	return e.output("journalctl", "--no-pager", "-u", unit)
}
