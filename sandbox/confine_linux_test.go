package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osvm-project/osvm/internal/testenv"
)

// TestConfineEveryThread checks that Confine empties the capability sets
// and sets no_new_privs on every thread, not only the calling one. It runs
// testdata/confine built without cgo, as osvm-launch is, and with cgo,
// because psx has an implementation for each. Run as root, the threads
// start with capabilities, so the test shows the drop.
func TestConfineEveryThread(t *testing.T) {
	testenv.MustHaveExecPath(t, "go")
	for _, cgo := range []string{"0", "1"} {
		t.Run("CGO_ENABLED="+cgo, func(t *testing.T) {
			program := filepath.Join(t.TempDir(), "confine")
			build := exec.Command("go", "build", "-o", program, "./testdata/confine")
			build.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build testdata/confine: %v\n%s", err, out)
			}
			out, err := exec.Command(program).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", program, err, out)
			}
			checkConfinedThreads(t, string(out))
		})
	}
}

// checkConfinedThreads checks the output of testdata/confine.
func checkConfinedThreads(t *testing.T, out string) {
	t.Helper()
	var after, withCapabilities int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			t.Fatalf("unexpected line %q in:\n%s", line, out)
		}
		switch fields[0] {
		case "before":
			if strings.Contains(line, "CapEff=") && !strings.Contains(line, "CapEff=0000000000000000") {
				withCapabilities++
			}
		case "after":
			after++
			for _, want := range []string{"CapInh=0000000000000000", "CapPrm=0000000000000000", "CapEff=0000000000000000", "CapAmb=0000000000000000", "NoNewPrivs=1"} {
				if !strings.Contains(line, want) {
					t.Errorf("thread %s after Confine lacks %s: %s", fields[1], want, line)
				}
			}
		default:
			t.Fatalf("unexpected line %q in:\n%s", line, out)
		}
	}
	if after < 5 {
		t.Errorf("%d threads after Confine, want at least 5:\n%s", after, out)
	}
	if os.Geteuid() == 0 && withCapabilities < 5 {
		t.Errorf("as root, %d threads had capabilities before Confine, want at least 5:\n%s", withCapabilities, out)
	}
}
