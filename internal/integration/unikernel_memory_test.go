package integration

import (
	"bufio"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/osvm-project/osvm/internal/testenv"
	"github.com/osvm-project/osvm/internal/testguest"
)

// maxLauncherReadOnlyRss bounds the resident pages of osvm-launch's text
// and read-only data once the guest runs. Without their release, nearly
// all of both stay resident, 3.6 MiB. With it, about 0.7 MiB stay.
const maxLauncherReadOnlyRss = 1536 << 10

// TestUnikernelMonitorReleasesPages runs a guest that halts as a unit, so
// under the unit's /proc restrictions, system call filter and Landlock,
// and checks that its launcher has released the pages of its executable's
// read-only mappings and reported no problem with that.
func TestUnikernelMonitorReleasesPages(t *testing.T) {
	testenv.MustHaveKVM(t)
	e := newEnv(t)
	kernel, err := testguest.Build(e.bin, testguest.Variant{Interface: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.shell(`install -D -m 0644 ` + filepath.Base(kernel) + ` /var/lib/osvm-test/kernel
mkdir -p /var/lib/osvm-test/data /var/lib/osvm-test/ro`)

	e.writeComponent("idle", unikernelComponent("mode=halt"))
	e.waitActive("osvm-idle.service")
	e.waitFor("the guest to print its environment count", func() (bool, string) {
		j := e.journal("osvm-idle.service")
		return strings.Contains(j, "envc="), j
	})
	// The launcher releases the pages 0.25 s after setup, and checks
	// whether some came back 0.5 s later.
	time.Sleep(2 * time.Second)

	pid := e.property("osvm-idle.service", "MainPID")
	smaps := e.output("cat", "/proc/"+pid+"/smaps")
	readOnly, writable := launcherFileRss(t, smaps, "/usr/libexec/osvm/osvm-launch")
	t.Logf("osvm-launch's file pages resident: %d KiB read-only, %d KiB writable", readOnly>>10, writable>>10)
	if readOnly == 0 {
		t.Errorf("smaps of PID %s shows no resident read-only page of osvm-launch; is the path right?\n%s", pid, smaps)
	}
	if readOnly > maxLauncherReadOnlyRss {
		t.Errorf("osvm-launch's read-only mappings have %d KiB resident, want at most %d KiB", readOnly>>10, maxLauncherReadOnlyRss>>10)
	}
	if j := e.journal("osvm-idle.service"); strings.Contains(j, "warning:") {
		t.Errorf("the launcher reported a problem:\n%s", j)
	}
	if state := e.property("osvm-idle.service", "ActiveState"); state != "active" {
		t.Errorf("after the check: ActiveState = %s, want the guest still running", state)
	}
}

// launcherFileRss returns the Rss of the mappings of the file at path in
// the smaps text, those without and those with write permission apart.
func launcherFileRss(t *testing.T, smaps, path string) (readOnly, writable uint64) {
	t.Helper()
	var current, perms string
	scanner := bufio.NewScanner(strings.NewReader(smaps))
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") {
			current, perms = "", fields[1]
			if len(fields) >= 6 {
				current = strings.Join(fields[5:], " ")
			}
			continue
		}
		if fields[0] != "Rss:" || current != path {
			continue
		}
		kib, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			t.Fatalf("smaps line %q: %v", scanner.Text(), err)
		}
		if strings.Contains(perms, "w") {
			writable += kib << 10
		} else {
			readOnly += kib << 10
		}
	}
	return readOnly, writable
}
