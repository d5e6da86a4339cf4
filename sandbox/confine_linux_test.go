package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// confineChildEnv selects the test body that calls Confine in a
// re-executed test binary, because Confine cannot be undone.
const confineChildEnv = "OSVM_SANDBOX_CONFINE_CHILD"

// threadStatusFields are the lines of /proc/PID/task/TID/status that
// Confine changes.
var threadStatusFields = regexp.MustCompile(`(?m)^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs):\s*(\S+)$`)

// confineChild starts threads that stay idle, like a monitor's vCPU
// threads, calls Confine, and prints each thread's capability sets and
// no_new_privs before and after, one line per thread.
func confineChild() int {
	for range 4 {
		go func() {
			runtime.LockOSThread()
			select {}
		}()
	}
	for countThreads() < 5 {
		runtime.Gosched()
	}
	printThreads("before")
	policy := &LandlockPolicy{Paths: []PathRule{{Path: "/", Access: AccessRead}}}
	if err := Confine(policy); err != nil {
		fmt.Println("Confine:", err)
		return 1
	}
	printThreads("after")
	return 0
}

func countThreads() int {
	tasks, _ := filepath.Glob("/proc/self/task/*")
	return len(tasks)
}

func printThreads(when string) {
	tasks, _ := filepath.Glob("/proc/self/task/*")
	for _, task := range tasks {
		status, err := os.ReadFile(filepath.Join(task, "status"))
		if err != nil {
			fmt.Println(when, filepath.Base(task), "unreadable:", err)
			continue
		}
		line := when + " " + filepath.Base(task)
		for _, m := range threadStatusFields.FindAllStringSubmatch(string(status), -1) {
			line += " " + m[1] + "=" + m[2]
		}
		fmt.Println(line)
	}
}

// TestConfineEveryThread checks that Confine empties the capability sets
// and sets no_new_privs on every thread, not only the calling one. Run as
// root, the threads start with capabilities, so the test shows the drop.
func TestConfineEveryThread(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), confineChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}

	var after, withCapabilities int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
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
