package osvmexec

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/osvm-project/osvm/internal/testenv"
	"github.com/osvm-project/osvm/sandbox"
)

var (
	launcherOnce sync.Once
	launcherDir  string
	launcherErr  error
)

// buildLauncher compiles the real osvm-launch, as make build does (without
// cgo), into a folder of its own and returns its path.
func buildLauncher(t *testing.T) string {
	t.Helper()
	testenv.MustHaveExecPath(t, "go")
	launcherOnce.Do(func() {
		launcherDir, launcherErr = os.MkdirTemp("", "osvm-launch-test-")
		if launcherErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", launcherDir+"/", "github.com/osvm-project/osvm/cmd/osvm-launch")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			launcherErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if launcherErr != nil {
		t.Fatalf("build osvm-launch: %v", launcherErr)
	}
	return filepath.Join(launcherDir, "osvm-launch")
}

// postureScript prints what the command inherits from the launcher that
// executed it. It uses only the shell's builtins.
const postureScript = `while read -r line; do
	case $line in Cap*|NoNewPrivs:*|Seccomp*|SigIgn:*|SigBlk:*) echo "$line" ;; esac
done < /proc/self/status
while read -r line; do
	case $line in "Max open files"*|"Max core"*) echo "$line" ;; esac
done < /proc/self/limits
for fd in /proc/self/fd/*; do echo "fd $fd"; done
echo "umask $(umask)"
export -p
echo inside > rw/new && echo "write inside: ok" || echo "write inside: denied"
echo outside > ro/new 2>/dev/null && echo "write outside: ALLOWED" || echo "write outside: denied"
echo outside > new 2>/dev/null && echo "write beside: ALLOWED" || echo "write beside: denied"`

// runLauncher runs program on the component's plan under "sh -c" with
// SIGPIPE ignored, as systemd starts a service (IgnoreSIGPIPE=yes), and
// returns the combined output.
func (c *component) runLauncher(t *testing.T, program string, env []string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `trap "" PIPE; exec "$0" "$1"`, program, c.planPath)
	cmd.Dir = c.dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", program, err, out)
	}
	return string(out)
}

// TestExecStageMatchesLauncher runs one plan through osvm-launch and
// through osvm-exec, outside a unit, and expects the command to see the
// same process: capability sets, no_new_privs, seccomp, signal
// dispositions, limits, open files, umask, environment, and the result
// of three writes under Landlock.
func TestExecStageMatchesLauncher(t *testing.T) {
	if reachable := sandbox.ReachableControlSockets(); len(reachable) > 0 {
		t.Skipf("skipping: %s is reachable, and osvm-launch would start in a mount namespace of its own", reachable[0])
	}
	launcher := buildLauncher(t)
	stage := buildStage(t)

	for _, extra := range []string{"", "capabilities = [\"CAP_NET_BIND_SERVICE\"]\n"} {
		c := newComponent(t, postureScript, extra)
		c.writeRecord(t, c.record(t))
		env := []string{"A=1", "A=2", "PATH=/usr/bin:/bin", "OSVM_LAUNCH_HIDDEN_STAGE=1"}

		viaLauncher := c.runLauncher(t, launcher, env)
		viaStage := c.runLauncher(t, stage, env)
		if viaLauncher != viaStage {
			t.Errorf("with %q the command sees a different process:\nosvm-launch:\n%s\nosvm-exec:\n%s", extra, viaLauncher, viaStage)
		}
		if strings.Contains(viaStage, "ALLOWED") {
			t.Errorf("osvm-exec allowed a write:\n%s", viaStage)
		}
	}
}

// TestExecStageMatchesLauncherWithoutErrata runs both launchers on a kernel
// that seems to lack Landlock's erratum 2 (the signal scoping fix of ABI
// 6). go-landlock then treats the kernel as ABI 5, which changes what
// osvm-launch does. The two must still agree: both run the command, or
// both refuse.
func TestExecStageMatchesLauncherWithoutErrata(t *testing.T) {
	if reachable := sandbox.ReachableControlSockets(); len(reachable) > 0 {
		t.Skipf("skipping: %s is reachable, and osvm-launch would start in a mount namespace of its own", reachable[0])
	}
	if abi := sandbox.LandlockABI(); abi < 6 {
		t.Skipf("skipping: the kernel's Landlock ABI is %d, and erratum 2 matters from ABI 6", abi)
	}
	launcher := buildLauncher(t)
	stage := buildStage(t)
	wrapper := filepath.Join(t.TempDir(), "without-errata")
	if out, err := exec.Command("cc", "-Wall", "-o", wrapper, "testdata/without-errata.c").CombinedOutput(); err != nil {
		t.Fatalf("build without-errata: %v\n%s", err, out)
	}

	c := newComponent(t, "echo ran", "")
	c.writeRecord(t, c.record(t))
	run := func(program string) (string, int) {
		cmd := exec.Command(wrapper, program, c.planPath)
		cmd.Dir = c.dir
		out, err := cmd.CombinedOutput()
		var exitErr *exec.ExitError
		switch {
		case errors.As(err, &exitErr):
			return string(out), exitErr.ExitCode()
		case err != nil:
			t.Fatalf("%s: %v", program, err)
		}
		return string(out), 0
	}
	launcherOut, launcherCode := run(launcher)
	stageOut, stageCode := run(stage)
	if launcherCode != stageCode {
		t.Errorf("osvm-launch exited with %d:\n%s\nosvm-exec exited with %d:\n%s", launcherCode, launcherOut, stageCode, stageOut)
	}
}
