package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osvm-project/osvm/internal/testenv"
	"github.com/osvm-project/osvm/internal/testguest"
)

// unikernelComponent boots the test kernel with args. It runs as root
// because /dev/kvm on this machine is 0600 root, not 0660 root:kvm as
// Debian's udev rules make it.
func unikernelComponent(args ...string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf(`isolation = "unikernel"
[unikernel]
image = "/var/lib/osvm-test/kernel"
cpus = 2
user = "root"
args = [%s]
mounts = [{ host = "/var/lib/osvm-test/data", guest = "/data", writable = true }, { host = "/var/lib/osvm-test/ro", guest = "/ro" }]
[restart]
policy = "no"
`, strings.Join(quoted, ", "))
}

func TestUnikernelUnit(t *testing.T) {
	testenv.MustHaveKVM(t)
	e := newEnv(t)
	kernel, err := testguest.Build(e.bin, testguest.Variant{Interface: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.shell(`install -D -m 0644 ` + filepath.Base(kernel) + ` /var/lib/osvm-test/kernel
mkdir -p /var/lib/osvm-test/data /var/lib/osvm-test/ro /var/lib/osvm-test/outside
echo "input file content" > /var/lib/osvm-test/data/input.txt
ln -s /var/lib/osvm-test/outside /var/lib/osvm-test/data/link`)

	t.Run("boots and exits with its code", func(t *testing.T) {
		e.writeComponent("guest", unikernelComponent("exit=42"))
		e.waitFor("the guest to exit", func() (bool, string) {
			j := e.journal("osvm-guest.service")
			return strings.Contains(j, "exiting with 42"), j
		})
		e.waitFor("the unit to end", func() (bool, string) {
			status := e.property("osvm-guest.service", "ExecMainStatus")
			return status == "42", "ExecMainStatus=" + status
		})
		j := e.journal("osvm-guest.service")
		for _, want := range []string{"hello from the test kernel, uhyve interface 1", "cpus online: 2", "read-only mount: open for writing returns -30"} {
			if !strings.Contains(j, want) {
				t.Errorf("journal lacks %q:\n%s", want, j)
			}
		}
		if out := e.output("cat", "/var/lib/osvm-test/data/output.txt"); out == "" {
			t.Error("the guest's file in the writable mount is empty")
		}
		if state := e.property("osvm-guest.service", "DeviceAllow"); !strings.Contains(state, "/dev/kvm rw") {
			t.Errorf("DeviceAllow = %q, want /dev/kvm rw", state)
		}
	})

	// The unit keeps MemoryDenyWriteExecute=yes: the monitor runs the
	// guest's SSE instructions from a memfd mapped read-only and
	// executable. On PVM hosts every SSE instruction of this mode goes
	// through it. The guest exits with 5 after its checks pass, so that
	// the failed unit stays loaded for the property checks.
	t.Run("SSE instructions complete inside the unit", func(t *testing.T) {
		e.writeComponent("sse", unikernelComponent("mode=sse", "exit=5"))
		e.waitFor("the guest to exit", func() (bool, string) {
			status := e.property("osvm-sse.service", "ExecMainStatus")
			return status == "5", "ExecMainStatus=" + status
		})
		if j := e.journal("osvm-sse.service"); !strings.Contains(j, "sse checks passed") {
			t.Errorf("journal lacks the guest's success line:\n%s", j)
		}
		if mdwe := e.property("osvm-sse.service", "MemoryDenyWriteExecute"); mdwe != "yes" {
			t.Errorf("MemoryDenyWriteExecute=%s, want yes", mdwe)
		}
	})

	t.Run("triple fault ends with a register dump", func(t *testing.T) {
		e.writeComponent("triple", unikernelComponent("mode=triple"))
		e.waitFor("the guest to fail", func() (bool, string) {
			status := e.property("osvm-triple.service", "ExecMainStatus")
			return status == "4", "ExecMainStatus=" + status
		})
		j := e.journal("osvm-triple.service")
		if !strings.Contains(j, "guest stopped") || !strings.Contains(j, "rip ") {
			t.Errorf("journal lacks the error and register dump:\n%s", j)
		}
	})

	t.Run("bad hypercall address ends with an error", func(t *testing.T) {
		e.writeComponent("badptr", unikernelComponent("mode=badptr"))
		e.waitFor("the guest to fail", func() (bool, string) {
			status := e.property("osvm-badptr.service", "ExecMainStatus")
			return status == "4", "ExecMainStatus=" + status
		})
		if j := e.journal("osvm-badptr.service"); !strings.Contains(j, "0xfffff000") {
			t.Errorf("journal does not name the bad address:\n%s", j)
		}
	})

	t.Run("malformed image is rejected", func(t *testing.T) {
		e.shell("head -c 4096 /dev/urandom > /var/lib/osvm-test/garbage")
		e.writeComponent("garbage", strings.Replace(unikernelComponent("exit=0"), "/var/lib/osvm-test/kernel", "/var/lib/osvm-test/garbage", 1))
		e.waitFor("the start to fail", func() (bool, string) {
			status := e.property("osvm-garbage.service", "ExecMainStatus")
			return status == "3", "ExecMainStatus=" + status
		})
		if j := e.journal("osvm-garbage.service"); !strings.Contains(j, "kernel image rejected") {
			t.Errorf("journal does not say why the image was rejected:\n%s", j)
		}
	})

	t.Run("endless loop stops with the unit", func(t *testing.T) {
		e.writeComponent("spin", unikernelComponent("mode=spin"))
		e.waitActive("osvm-spin.service")
		start := time.Now()
		e.output("systemctl", "stop", "osvm-spin.service")
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("systemctl stop took %v, want the guest to stop at SIGTERM", took)
		}
		if state := e.property("osvm-spin.service", "ActiveState"); state != "inactive" && state != "failed" {
			t.Errorf("after stop: ActiveState = %s", state)
		}
	})

	// No host file outside the mounts was touched.
	if _, err := os.Stat("/var/lib/osvm-test"); err == nil {
		t.Error("the test's files reached the host instead of the sandbox's overlay")
	}
}
