//go:build linux

package sdsandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osvm-project/osvm/internal/testenv"
)

//go:embed sandbox
var script []byte

// StateRoot is the folder where the script keeps one state folder per
// sandbox, named by its ID.
const StateRoot = "/run/osvm-sandbox"

// scriptDir is the folder where ScriptPath installs the embedded script.
// The leading dot keeps `list` of older copies of the script, which lists
// every folder that `*/` matches, from showing it as a sandbox that is down.
const scriptDir = StateRoot + "/.harness"

// bash runs the script. Passing the script to bash, rather than executing
// it, avoids ETXTBSY: exec fails with it while the file is open for writing,
// and a child that another goroutine forks during install holds the file
// open until that child calls exec.
const bash = "/bin/bash"

// idPattern matches the sandbox IDs that the script prints and accepts.
var idPattern = regexp.MustCompile(`^sb-[0-9]+-[0-9]+$`)

// upWaitDelay bounds how long Up waits for the script after its context is
// done and it got SIGTERM. The script's teardown takes at most about 5 s.
const upWaitDelay = 10 * time.Second

// Options configures a sandbox.
type Options struct {
	// Bind lists host folders to bind-mount read-write at the same path
	// inside. Empty binds the working directory, as `sandbox up` does
	// without DIR arguments.
	Bind []string

	// LogLevel is systemd's log level: emerg, alert, crit, err, warning,
	// notice, info or debug. Empty means warning. Use info to get
	// "Started UNIT" lines in the journal.
	LogLevel string
}

// Sandbox is a running private systemd. Its methods are safe for
// concurrent use.
type Sandbox struct {
	id         string
	script     string
	busAddress string

	mu   sync.Mutex
	down bool
}

// Error reports a failed run of the sandbox script or of a command inside a
// sandbox, with the output that explains it.
type Error struct {
	// Sandbox is the sandbox ID, or "" when `sandbox up` failed.
	Sandbox string
	// Args is the script's subcommand with its arguments, or the command
	// run inside the sandbox.
	Args []string
	// Output is the script's standard error, or the combined output of the
	// command run inside. When `up` fails, it contains the console log.
	Output []byte
	// Err is the underlying error, such as an *exec.ExitError, or the
	// context's error when the context ended first.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sdsandbox: ")
	if e.Sandbox != "" {
		fmt.Fprintf(&b, "in sandbox %s: ", e.Sandbox)
	}
	fmt.Fprintf(&b, "%s: %v", shellJoin(e.Args), e.Err)
	if output := bytes.TrimRight(e.Output, "\n"); len(output) > 0 {
		b.WriteString("\noutput:\n")
		b.Write(output)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// shellJoin joins args with spaces and quotes those that a shell would split.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, arg := range args {
		if arg == "" || strings.ContainsAny(arg, " \t\n\"'\\$`*?[]{}()<>|&;#~") {
			quoted[i] = "'" + strings.ReplaceAll(arg, "'", `'\''`) + "'"
		} else {
			quoted[i] = arg
		}
	}
	return strings.Join(quoted, " ")
}

var installMu sync.Mutex

// ScriptPath installs the embedded script, if it is not installed yet, and
// returns its path: a root-owned 0700 file under /run/osvm-sandbox/.harness
// whose name contains a hash of the script, so that different versions do
// not replace each other. It needs root.
func ScriptPath() (string, error) {
	sum := sha256.Sum256(script)
	path := filepath.Join(scriptDir, "sandbox-"+hex.EncodeToString(sum[:8]))

	installMu.Lock()
	defer installMu.Unlock()
	for _, dir := range []string{StateRoot, scriptDir} {
		if err := makeRootDir(dir); err != nil {
			return "", err
		}
	}
	if installed(path) {
		return path, nil
	}
	if err := install(path); err != nil {
		return "", fmt.Errorf("sdsandbox: install the sandbox script at %s: %w", path, err)
	}
	return path, nil
}

// makeRootDir creates dir with mode 0700 if it is missing and checks that
// only root can write to it, since the files in it are run as root.
func makeRootDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("sdsandbox: create %s (Up needs root): %w", dir, err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("sdsandbox: check %s: %w", dir, err)
	}
	stat, ok := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || !ok || stat.Uid != 0 || info.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("sdsandbox: %s must be a folder owned by root and writable only by root (found mode %v); remove it or fix its owner and mode", dir, info.Mode())
	}
	return nil
}

// installed reports whether path is a root-owned 0700 regular file that
// contains the embedded script.
func installed(path string) bool {
	info, err := os.Lstat(path)
	if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o700 {
		return false
	}
	if stat, ok := info.Sys().(*syscall.Stat_t); !ok || stat.Uid != 0 {
		return false
	}
	content, err := os.ReadFile(path)
	return err == nil && bytes.Equal(content, script)
}

// install writes the script to a temporary file next to path and renames it
// into place, so that a concurrent reader sees either no file or the whole
// script.
func install(path string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".sandbox-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o700); err != nil {
		return err
	}
	if _, err := f.Write(script); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Up boots a sandbox and returns when its systemd reports the state running
// or degraded. The script gives up after 20 s. If ctx ends first, Up stops
// the script with SIGTERM. On failure the script tears the sandbox down, and
// the *Error contains its console log and, if systemd was running, its
// failed units and journal. Up needs root.
func Up(ctx context.Context, opts Options) (*Sandbox, error) {
	if uid := os.Geteuid(); uid != 0 {
		return nil, fmt.Errorf("sdsandbox: Up needs root (running as uid %d)", uid)
	}
	path, err := ScriptPath()
	if err != nil {
		return nil, err
	}

	args := []string{"up"}
	if opts.LogLevel != "" {
		args = append(args, "--log-level", opts.LogLevel)
	}
	args = append(args, "--")
	args = append(args, opts.Bind...)

	cmd := exec.CommandContext(ctx, bash, append([]string{path}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = upWaitDelay
	runErr := cmd.Run()
	id := strings.TrimSpace(stdout.String())

	if runErr != nil {
		if ctx.Err() != nil {
			runErr = fmt.Errorf("%w (%v)", context.Cause(ctx), runErr)
		}
		upErr := &Error{Args: args, Output: stderr.Bytes(), Err: runErr}
		if idPattern.MatchString(id) {
			// The sandbox booted, but the script was stopped before it exited.
			sb := &Sandbox{id: id, script: path}
			return nil, errors.Join(upErr, sb.Down())
		}
		return nil, upErr
	}
	if !idPattern.MatchString(id) {
		return nil, &Error{Args: args, Output: stderr.Bytes(),
			Err: fmt.Errorf("invalid output %q: expected a sandbox ID; look for sandboxes left behind with `%s list`", id, path)}
	}

	sb := &Sandbox{id: id, script: path}
	bus, err := sb.runScript("bus", id)
	if err != nil {
		return nil, errors.Join(err, sb.Down())
	}
	sb.busAddress = strings.TrimSpace(string(bus))
	return sb, nil
}

// runScript runs a script subcommand that returns quickly, such as bus or
// down, and returns its standard output.
func (s *Sandbox) runScript(args ...string) ([]byte, error) {
	cmd := exec.Command(bash, append([]string{s.script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &Error{Args: args, Output: stderr.Bytes(), Err: err}
	}
	return out, nil
}

// ID returns the sandbox's ID, such as "sb-4242-17846", which the script's
// run, bus and down subcommands take.
func (s *Sandbox) ID() string { return s.id }

// StateDir returns the folder where the script keeps the sandbox's state,
// including console.log. Down removes it.
func (s *Sandbox) StateDir() string { return filepath.Join(StateRoot, s.id) }

// BusAddress returns the D-Bus address of the sandbox's system bus for
// clients on the host: set DBUS_SYSTEM_BUS_ADDRESS to it, or pass it to
// dbus.Connect. Commands inside use the default address instead, and the
// script removes DBUS_SYSTEM_BUS_ADDRESS from their environment.
func (s *Sandbox) BusAddress() string { return s.busAddress }

// Command returns a command that runs name with args inside the sandbox, as
// root, in all of its namespaces, through `sandbox run`. The command starts
// in cmd.Dir, which must exist inside (see the package documentation). It
// is "/" unless the caller sets it, because the caller's own working
// directory may be a folder the sandbox hides, such as one under /tmp.
//
// NOTE: cancelling ctx kills nsenter on the host, not the command inside,
// which keeps running until it exits or Down stops the sandbox.
func (s *Sandbox) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bash, append([]string{s.script, "run", s.id, name}, args...)...)
	cmd.Dir = "/"
	return cmd
}

// Run runs name with args inside the sandbox, like Command, and returns its
// combined standard output and standard error. If the command fails, the
// *Error names the command and contains its output.
func (s *Sandbox) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := s.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
		return out, &Error{Sandbox: s.id, Args: append([]string{name}, args...), Output: out, Err: err}
	}
	return out, nil
}

// Down stops the sandbox: it kills every process inside and removes the
// sandbox's cgroups and state folder. It waits at most about 5 s for the
// killed processes to exit. Calling Down again after it succeeded does
// nothing. If Down fails, the state is kept, `sandbox list`
// shows the sandbox, and Down may be called again.
func (s *Sandbox) Down() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil
	}
	if _, err := s.runScript("down", s.id); err != nil {
		return err
	}
	s.down = true
	return nil
}

// Start boots a sandbox for t and registers Down with t.Cleanup. It skips t
// when the process is not root or the host lacks the tools the sandbox
// needs, and fails t instead when the environment variable CI is "true"
// (see package testenv). If Up fails, Start fails t with the error, which
// contains the sandbox's console log.
func Start(t testing.TB, opts Options) *Sandbox {
	t.Helper()
	testenv.MustHaveRoot(t)
	testenv.MustHaveSystemd(t)
	sb, err := Up(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Down(); err != nil {
			t.Errorf("stop the systemd sandbox: %v", err)
		}
	})
	return sb
}
