// Package osvmexec tests osvm-exec, the C program beside it: it builds the
// program with cmd/osvm-exec/build and runs it on plans and exec records
// that osvmd's own code writes. The confined commands are child processes,
// so the tests need no privileges; as root they also check the capability
// bounding set.
package osvmexec

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
	"github.com/osvm-project/osvm/internal/testenv"
	"github.com/osvm-project/osvm/sandbox"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// TestMain removes the build folders after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{buildDir, launcherDir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// fakeLauncher replaces osvm-launch beside osvm-exec. Its output shows that
// osvm-exec declined, and whether it had changed the process by then.
const fakeLauncher = `#!/bin/sh
echo "osvm-launch $*"
grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status
`

// buildStage compiles osvm-exec once, with a fake osvm-launch beside it,
// and returns the program's path. A compiler warning fails the test.
func buildStage(t *testing.T) string {
	t.Helper()
	testenv.MustHaveExecPath(t, "cc")
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "osvm-exec-test-")
		if buildErr != nil {
			return
		}
		var out []byte
		out, buildErr = exec.Command("./build", filepath.Join(buildDir, "osvm-exec")).CombinedOutput()
		if buildErr == nil && len(out) > 0 {
			buildErr = errWarnings(out)
		}
		if buildErr == nil {
			buildErr = os.WriteFile(filepath.Join(buildDir, "osvm-launch"), []byte(fakeLauncher), 0o755)
		}
	})
	if buildErr != nil {
		t.Fatalf("build osvm-exec: %v", buildErr)
	}
	return filepath.Join(buildDir, "osvm-exec")
}

type errWarnings []byte

func (e errWarnings) Error() string { return "the compiler printed warnings:\n" + string(e) }

// component holds the files of one test component: its folder, which the
// sandbox grants as read_write_paths/rw and read_only_paths/ro, and its
// plan.
type component struct {
	dir      string
	plan     *plan.Plan
	planPath string
}

// newComponent writes the plan of a component at level "process" that
// runs script with /bin/sh, with extra appended to its [sandbox] table,
// and returns it without an exec record.
func newComponent(t *testing.T, script, extra string) *component {
	t.Helper()
	testenv.MustHaveLandlock(t, sandbox.ABINetwork)
	dir := t.TempDir()
	for _, sub := range []string{"rw", "ro", "plans"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ro", "file"), []byte("read-only\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	source := filepath.Join(dir, "web.toml")
	text := "isolation = \"process\"\n" +
		"[exec]\ncommand = [\"/bin/sh\", \"-c\", '''" + script + "'''" + "]\n" +
		"[sandbox]\nread_write_paths = [" + quote(filepath.Join(dir, "rw")) + "]\n" +
		"read_only_paths = [" + quote(filepath.Join(dir, "ro")) + "]\n" + extra
	c, err := config.Parse(source, []byte(text))
	if err != nil {
		t.Fatalf("config.Parse:\n%s\n%v", text, err)
	}

	p, err := plan.New(c, config.IsolationProcess, source)
	if err != nil {
		t.Fatal(err)
	}
	if err := sandbox.CompilePlan(p); err != nil {
		t.Fatal(err)
	}
	if p.Startup == nil {
		t.Fatal("CompilePlan recorded no startup paths for /bin/sh")
	}
	p.IgnoreSIGPIPE = true // as osvmd writes plans

	planPath, err := plan.Write(filepath.Join(dir, "plans"), p)
	if err != nil {
		t.Fatal(err)
	}
	return &component{dir: dir, plan: p, planPath: planPath}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// record returns the component's exec record as osvmd makes it.
func (c *component) record(t *testing.T) *sandbox.ExecRecord {
	t.Helper()
	r, err := sandbox.NewExecRecord(c.plan, sandbox.DetectLandlock(), isDir)
	if err != nil {
		t.Fatal(err)
	}
	if r == nil {
		t.Fatal("NewExecRecord returned no record for a default process component")
	}
	return r
}

func (c *component) writeRecord(t *testing.T, r *sandbox.ExecRecord) {
	t.Helper()
	data, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.WriteExecRecord(c.planPath, data); err != nil {
		t.Fatal(err)
	}
}

// run runs osvm-exec on the component's plan and returns its combined
// output and exit status.
func (c *component) run(t *testing.T) (string, int) {
	t.Helper()
	cmd := exec.Command(buildStage(t), c.planPath)
	cmd.Dir = c.dir
	out, err := cmd.CombinedOutput()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("run osvm-exec: %v", err)
	}
	return string(out), code
}

func isDir(path string) (bool, error) {
	info, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return info.IsDir(), nil
}

// statusField returns a field of /proc/PID/status as the command printed
// it, or "" when the output lacks it.
func statusField(out, name string) string {
	m := regexp.MustCompile(`(?m)^` + name + `:\s*(\S+)`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// confinedScript writes inside and outside the allowed paths and prints
// the fields of its status that show the sandbox. It uses only the
// shell's builtins, because the sandbox lets it execute nothing else.
const confinedScript = `echo inside > rw/new && echo "write inside: ok"
echo outside > ro/new 2>/dev/null && echo "write outside: ALLOWED" || echo "write outside: denied"
echo outside > new 2>/dev/null && echo "write beside: ALLOWED" || echo "write beside: denied"
read line < ro/file && echo "$line"
while read -r line; do
	case $line in NoNewPrivs:*|Seccomp*|CapBnd:*|CapAmb:*) echo "$line" ;; esac
done < /proc/self/status`

func TestExecStageConfinesCommand(t *testing.T) {
	c := newComponent(t, confinedScript, "")
	c.writeRecord(t, c.record(t))

	out, code := c.run(t)
	if code != 0 {
		t.Fatalf("osvm-exec exited with %d:\n%s", code, out)
	}
	if strings.Contains(out, "osvm-launch") {
		t.Fatalf("osvm-exec declined a current record:\n%s", out)
	}
	for _, want := range []string{"write inside: ok", "write outside: denied", "write beside: denied", "read-only"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if data, err := os.ReadFile(filepath.Join(c.dir, "rw", "new")); err != nil || string(data) != "inside\n" {
		t.Errorf("rw/new = %q, %v; want the command's write", data, err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "new")); err == nil {
		t.Error("the command created a file outside its paths")
	}
	if got := statusField(out, "NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs = %q, want 1", got)
	}
	if got := statusField(out, "Seccomp"); got != "2" {
		t.Errorf("Seccomp = %q, want 2 (filter mode)", got)
	}
	if got := statusField(out, "Seccomp_filters"); got != "1" {
		t.Errorf("Seccomp_filters = %q, want 1", got)
	}
	if got := statusField(out, "CapAmb"); got != "0000000000000000" {
		t.Errorf("CapAmb = %q, want empty", got)
	}
	if testenv.HasRoot() {
		if got := statusField(out, "CapBnd"); got != "0000000000000000" {
			t.Errorf("CapBnd = %q, want empty as root", got)
		}
	}
}

func TestExecStagePassesEnvironment(t *testing.T) {
	c := newComponent(t, `echo "A=$A"; echo "stage=${OSVM_LAUNCH_HIDDEN_STAGE-unset}"`, "")
	c.writeRecord(t, c.record(t))

	cmd := exec.Command(buildStage(t), c.planPath)
	cmd.Dir = c.dir
	cmd.Env = []string{"A=1", "OSVM_LAUNCH_HIDDEN_STAGE=1", "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("osvm-exec: %v\n%s", err, out)
	}
	// osvm-launch removes its own marker variable before it executes the
	// command, and so must osvm-exec.
	if want := "A=1\nstage=unset\n"; string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

func TestExecStageKeepsNamedCapabilities(t *testing.T) {
	if !testenv.HasRoot() {
		t.Skip("skipping: only root has capabilities to keep")
	}
	c := newComponent(t, confinedScript, "capabilities = [\"CAP_NET_BIND_SERVICE\"]\n")
	c.writeRecord(t, c.record(t))

	out, code := c.run(t)
	if code != 0 {
		t.Fatalf("osvm-exec exited with %d:\n%s", code, out)
	}
	// CAP_NET_BIND_SERVICE is capability 10 (linux/capability.h).
	if got := statusField(out, "CapBnd"); got != "0000000000000400" {
		t.Errorf("CapBnd = %q, want only CAP_NET_BIND_SERVICE (0000000000000400)", got)
	}
}

// TestExecStageDeclines checks that osvm-exec leaves every plan whose
// record does not apply to osvm-launch, before it changes anything.
func TestExecStageDeclines(t *testing.T) {
	tests := []struct {
		name   string
		reason string // in the message osvm-exec prints
		setup  func(t *testing.T, c *component)
	}{
		{"record missing", ".exec: No such file or directory", func(t *testing.T, c *component) {}},
		{"startup file changed", "ld.so.conf changed after osvmd wrote the plan", func(t *testing.T, c *component) {
			r := c.record(t)
			marker := filepath.Join(c.dir, "ld.so.conf")
			if err := os.WriteFile(marker, []byte("/opt/lib\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			r.StartupFiles[marker] = "" // recorded as missing
			c.writeRecord(t, r)
		}},
		{"rule path gone", "/ro: No such file or directory", func(t *testing.T, c *component) {
			c.writeRecord(t, c.record(t))
			if err := os.RemoveAll(filepath.Join(c.dir, "ro")); err != nil {
				t.Fatal(err)
			}
		}},
		{"rule path now a file", "/rw: no longer a folder", func(t *testing.T, c *component) {
			c.writeRecord(t, c.record(t))
			rw := filepath.Join(c.dir, "rw")
			if err := os.Remove(rw); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(rw, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"record made on a kernel with another Landlock ABI", "the record was made with ABI 1000", func(t *testing.T, c *component) {
			r := c.record(t)
			r.KernelABI = 1000
			c.writeRecord(t, r)
		}},
		{"command missing", "/missing: No such file or directory", func(t *testing.T, c *component) {
			r := c.record(t)
			r.Argv = []string{filepath.Join(c.dir, "missing")}
			c.writeRecord(t, r)
		}},
		{"control socket reachable", "/bus is reachable", func(t *testing.T, c *component) {
			r := c.record(t)
			r.ControlSockets = []string{listenUnix(t, filepath.Join(c.dir, "bus"))}
			c.writeRecord(t, r)
		}},
		{"wrong magic", "invalid exec record", func(t *testing.T, c *component) {
			data := marshal(t, c.record(t))
			data[0] = 'X'
			writeRaw(t, c, data)
		}},
		{"trailing byte", "invalid exec record", func(t *testing.T, c *component) {
			writeRaw(t, c, append(marshal(t, c.record(t)), 0))
		}},
		{"seccomp program not whole instructions", "invalid exec record", func(t *testing.T, c *component) {
			r := c.record(t)
			r.SeccompProgram = r.SeccompProgram[:len(r.SeccompProgram)-1]
			c.writeRecord(t, r)
		}},
		{"NUL in an argument", "invalid exec record", func(t *testing.T, c *component) {
			r := c.record(t)
			r.Argv = append(r.Argv, "a\x00b")
			c.writeRecord(t, r)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newComponent(t, confinedScript, "")
			tt.setup(t, c)
			out, code := c.run(t)
			checkDeclined(t, c, out, code)
			if !strings.Contains(out, tt.reason) {
				t.Errorf("output lacks the reason %q:\n%s", tt.reason, out)
			}
		})
	}
}

// TestExecStageDeclinesTruncatedRecord cuts a record at every length: each
// must send the plan to osvm-launch, and none may crash osvm-exec.
func TestExecStageDeclinesTruncatedRecord(t *testing.T) {
	c := newComponent(t, confinedScript, "")
	data := marshal(t, c.record(t))
	for n := range len(data) {
		writeRaw(t, c, data[:n])
		out, code := c.run(t)
		if code != 0 || !strings.Contains(out, "\nosvm-launch "+c.planPath+"\n") {
			t.Fatalf("record cut to %d of %d bytes: exit %d, output:\n%s", n, len(data), code, out)
		}
	}
}

func TestExecStageExecFailure(t *testing.T) {
	c := newComponent(t, confinedScript, "")
	r := c.record(t)

	// A file that exists but is not executable passes every check, so
	// osvm-exec confines itself and then fails to execute it.
	notExecutable := filepath.Join(c.dir, "ro", "file")
	r.Argv = []string{notExecutable}
	c.writeRecord(t, r)

	out, code := c.run(t)
	if code != 127 {
		t.Errorf("exit status %d, want 127", code)
	}
	want := "osvm-exec: component web: exec " + notExecutable + ": permission denied"
	if !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

func TestExecStageUsage(t *testing.T) {
	out, err := exec.Command(buildStage(t)).CombinedOutput()
	exitErr, ok := err.(*exec.ExitError)
	if !ok || exitErr.ExitCode() != 2 {
		t.Errorf("without a plan: %v, want exit status 2", err)
	}
	if !bytes.Contains(out, []byte("usage: osvm-exec PLAN")) {
		t.Errorf("without a plan, output %q lacks the usage", out)
	}
}

// checkDeclined fails t unless osvm-exec printed why it declined and ran
// osvm-launch with the plan, with the no_new_privs flag and seccomp mode
// of the test itself.
func checkDeclined(t *testing.T, c *component, out string, code int) {
	t.Helper()
	message, launched, _ := strings.Cut(out, "\n")
	if code != 0 || !strings.HasPrefix(message, "osvm-exec: "+c.planPath+": ") ||
		!strings.HasSuffix(message, "; osvm-launch applies the sandbox instead") ||
		!strings.HasPrefix(launched, "osvm-launch "+c.planPath+"\n") {
		t.Fatalf("exit %d, output:\n%s\nwant the reason, then osvm-launch run with the plan", code, out)
	}
	own, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"NoNewPrivs", "Seccomp"} {
		if got, want := statusField(out, field), statusField(string(own), field); got != want {
			t.Errorf("osvm-launch ran with %s %q, want %q as in the test: osvm-exec changed the process before it declined", field, got, want)
		}
	}
}

// listenUnix listens on a Unix socket at path until the test ends and
// returns path.
func listenUnix(t *testing.T, path string) string {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return path
}

func marshal(t *testing.T, r *sandbox.ExecRecord) []byte {
	t.Helper()
	data, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeRaw(t *testing.T, c *component, data []byte) {
	t.Helper()
	if err := os.WriteFile(plan.ExecRecordPath(c.planPath), data, 0o644); err != nil {
		t.Fatal(err)
	}
}
