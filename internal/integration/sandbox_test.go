package integration

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// outcome lists the results an escape attempt may have: errno names for a
// denied call, "killed SYS" for a call that kills the process.
type outcome []string

var (
	fsDenied      = outcome{"EACCES", "EPERM", "EROFS", "ENOENT", "EXDEV"}
	syscallDenied = outcome{"EPERM"}
)

// escapeAttempts is every attempt of sandbox/testdata/escape.c with the
// results that count as denied.
var escapeAttempts = map[string]outcome{
	"create-file-in-root":     fsDenied,
	"create-file-in-etc":      fsDenied,
	"create-file-in-run":      fsDenied,
	"overwrite-plan":          fsDenied,
	"write-existing-file":     fsDenied,
	"read-outside":            fsDenied,
	"list-root-folder":        fsDenied,
	"mkdir-outside":           fsDenied,
	"create-through-symlink":  fsDenied,
	"hard-link-outside-file":  fsDenied,
	"rename-into-outside":     fsDenied,
	"write-proc-sys":          fsDenied,
	"open-dev-mem":            fsDenied,
	"open-dev-port":           fsDenied,
	"mknod-char-device":       fsDenied,
	"exec-unlisted-binary":    fsDenied,
	"chmod-setuid":            syscallDenied,
	"create-setgid-file":      syscallDenied,
	"io_uring_setup":          syscallDenied,
	"ptrace-traceme":          syscallDenied,
	"process_vm_readv":        syscallDenied,
	"mount-tmpfs":             syscallDenied,
	"umount":                  syscallDenied,
	"pivot_root":              syscallDenied,
	"chroot":                  syscallDenied,
	"unshare-user-namespace":  syscallDenied,
	"setns":                   syscallDenied,
	"clone-new-namespace":     syscallDenied,
	"bpf":                     syscallDenied,
	"perf_event_open":         syscallDenied,
	"userfaultfd":             syscallDenied,
	"keyctl":                  syscallDenied,
	"add_key":                 syscallDenied,
	"init_module":             syscallDenied,
	"finit_module":            syscallDenied,
	"kexec_load":              syscallDenied,
	"reboot":                  syscallDenied,
	"swapon":                  syscallDenied,
	"clock_settime":           syscallDenied,
	"adjtimex":                syscallDenied,
	"iopl":                    syscallDenied,
	"ioperm":                  syscallDenied,
	"open_by_handle_at":       syscallDenied,
	"mptcp-socket":            {"EPROTONOSUPPORT"},
	"tiocsti":                 {"EPERM", "ENOENT", "EACCES"},
	"i386-syscall-int80":      {"killed SYS"},
	"x32-syscall":             {"killed SYS"},
	"connect-system-bus":      {"EACCES", "ENOENT", "ECONNREFUSED"},
	"connect-systemd-private": {"EACCES", "ENOENT", "ECONNREFUSED"},
	"bind-unlisted-port":      {"EACCES", "EPERM"},
	"connect-unlisted-port":   {"EACCES", "EPERM"},
	"signal-pid-1":            syscallDenied,
}

var escapeControls = []string{"write-inside-read-write-path", "read-read-only-path", "bind-listed-port"}

var attemptLine = regexp.MustCompile(`^ATTEMPT (\S+) (?:denied (\S+)|killed (\S+)|(ESCAPED))$`)

// checkEscapeReport checks the output of one run of the escape battery.
func checkEscapeReport(t *testing.T, output string) {
	t.Helper()
	if !strings.Contains(output, "CONFINEMENT seccomp=1 no_new_privs=1 no_capabilities=1 landlock=1") {
		t.Fatalf("the battery did not find itself confined:\n%s", output)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(output, "\n") {
		line = strings.TrimSpace(line)
		if m := attemptLine.FindStringSubmatch(line); m != nil {
			name := m[1]
			seen[name] = true
			want, known := escapeAttempts[name]
			switch {
			case !known:
				t.Errorf("attempt %s is not in the test's table", name)
			case m[4] != "":
				t.Errorf("attempt %s ESCAPED", name)
			case m[2] != "" && !slices.Contains(want, m[2]):
				t.Errorf("attempt %s denied with %s, want one of %v", name, m[2], want)
			case m[3] != "" && !slices.Contains(want, "killed "+m[3]):
				t.Errorf("attempt %s killed by SIG%s, want one of %v", name, m[3], want)
			}
		}
		if name, ok := strings.CutPrefix(line, "CONTROL "); ok && !strings.HasSuffix(name, " ok") {
			t.Errorf("control failed: %s", line)
		}
	}
	for name := range escapeAttempts {
		if !seen[name] {
			t.Errorf("attempt %s missing from the output", name)
		}
	}
	for _, control := range escapeControls {
		if !strings.Contains(output, "CONTROL "+control+" ok") {
			t.Errorf("control %s did not succeed", control)
		}
	}
	if !strings.Contains(output, "DONE") {
		t.Errorf("the battery did not finish:\n%s", output)
	}
}

// escapeComponent returns a component that runs the battery with a
// read-write folder of its own.
func escapeComponent(rwDir, user string) string {
	text := fmt.Sprintf(`[exec]
command = ["/usr/local/libexec/osvm-escape", %q, "/etc/osvm-escape-ro", "8081", "8082"]
%s
[sandbox]
network = "loopback"
bind_ports = [8081]
read_write_paths = [%q]
read_only_paths = ["/etc/osvm-escape-ro"]
[restart]
policy = "no"
`, rwDir, user, rwDir)
	return text
}

func TestEscapeBattery(t *testing.T) {
	e := newEnv(t)
	e.shell(`install -D -m 0755 escape /usr/local/libexec/osvm-escape
echo read-only > /etc/osvm-escape-ro`)
	if n := len(escapeAttempts); n < 25 {
		t.Fatalf("only %d attempts", n)
	}

	for _, user := range []struct{ name, line, setpriv string }{
		{"dynamic", "", "setpriv --reuid=65534 --regid=65534 --clear-groups"},
		{"root", `user = "root"`, ""},
	} {
		name := "escape-" + user.name
		unitDir, aloneDir := "/var/lib/"+name+"-unit", "/var/lib/"+name+"-alone"
		e.shell(fmt.Sprintf("mkdir -m 1777 %s %s", unitDir, aloneDir))

		t.Run("unit as "+user.name, func(t *testing.T) {
			e.writeComponent(name, escapeComponent(unitDir, user.line))
			e.waitFor("the battery to finish", func() (bool, string) {
				out := e.output("journalctl", "--no-pager", "-o", "cat", "-u", "osvm-"+name+".service")
				return strings.Contains(out, "DONE") || strings.Contains(out, "UNCONFINED"), out
			})
			checkEscapeReport(t, e.output("journalctl", "--no-pager", "-o", "cat", "-u", "osvm-"+name+".service"))
			checkNoDecline(t, e, "osvm-"+name+".service")
		})

		// The same plan through osvm-launch alone, outside any unit.
		t.Run("osvm-launch alone as "+user.name, func(t *testing.T) {
			e.writeComponent(name+"-alone", escapeComponent(aloneDir, user.line))
			// osvmd runs the component's unit too; let it finish before the
			// folder is emptied for the run outside a unit.
			e.waitFor("the unit's run to finish", func() (bool, string) {
				out := e.output("journalctl", "--no-pager", "-o", "cat", "-u", "osvm-"+name+"-alone.service")
				return strings.Contains(out, "DONE") || strings.Contains(out, "UNCONFINED"), out
			})
			e.shell("rm -rf " + aloneDir + "/*")
			out := e.shell(user.setpriv + " /usr/libexec/osvm/osvm-launch /run/osvm/components/" + name + "-alone-*.json 2>&1")
			checkEscapeReport(t, out)
		})
	}
}

func TestProcessPosture(t *testing.T) {
	e := newEnv(t)
	e.writeComponent("plain", "[exec]\ncommand = [\"/bin/sleep\", \"infinity\"]\n")
	e.writeComponent("binder", `[exec]
command = ["/bin/sleep", "infinity"]
user = "root"
[sandbox]
network = "loopback"
bind_ports = [80]
capabilities = ["CAP_NET_BIND_SERVICE"]
`)
	e.waitActive("osvm-plain.service")
	e.waitActive("osvm-binder.service")
	init := e.shell("readlink /proc/1/ns/mnt /proc/1/ns/net /proc/1/ns/user /proc/1/ns/pid")

	// CAP_NET_BIND_SERVICE is bit 10. Root gets named capabilities through
	// the bounding set; the ambient set matters only for other users.
	// A component that keeps capabilities stays in the host's user
	// namespace, where they act on the host's network.
	tests := []struct {
		unit       string
		sets       map[string]string // capability sets as /proc prints them
		ownNetwork bool
		ownUsers   bool
	}{
		{"osvm-plain.service", map[string]string{"CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "CapEff": "0000000000000000", "CapPrm": "0000000000000000"}, true, true},
		{"osvm-binder.service", map[string]string{"CapBnd": "0000000000000400", "CapAmb": "0000000000000400", "CapEff": "0000000000000400", "CapPrm": "0000000000000400"}, false, false},
	}
	for _, tt := range tests {
		checkExecStage(t, e, tt.unit)
		pid := e.property(tt.unit, "MainPID")
		status := e.output("cat", "/proc/"+pid+"/status")
		field := func(name string) string {
			m := regexp.MustCompile(`(?m)^` + name + `:\s*(\S+)$`).FindStringSubmatch(status)
			if m == nil {
				return ""
			}
			return m[1]
		}
		if got := field("NoNewPrivs"); got != "1" {
			t.Errorf("%s: NoNewPrivs = %q, want 1", tt.unit, got)
		}
		if got := field("Seccomp"); got != "2" {
			t.Errorf("%s: Seccomp = %q, want 2 (filter mode)", tt.unit, got)
		}
		// systemd's filters and osvm-launch's own, at least one each.
		if n, _ := strconv.Atoi(field("Seccomp_filters")); n < 2 {
			t.Errorf("%s: Seccomp_filters = %q, want at least 2", tt.unit, field("Seccomp_filters"))
		}
		for set, want := range tt.sets {
			if got := field(set); got != want {
				t.Errorf("%s: %s = %q, want %s", tt.unit, set, got, want)
			}
		}

		ns := e.shell("readlink /proc/" + pid + "/ns/mnt /proc/" + pid + "/ns/net /proc/" + pid + "/ns/user /proc/" + pid + "/ns/pid")
		initNS, unitNS := strings.Fields(init), strings.Fields(ns)
		if unitNS[0] == initNS[0] {
			t.Errorf("%s shares PID 1's mount namespace", tt.unit)
		}
		if (unitNS[1] != initNS[1]) != tt.ownNetwork {
			t.Errorf("%s: own network namespace = %v, want %v", tt.unit, unitNS[1] != initNS[1], tt.ownNetwork)
		}
		if (unitNS[2] != initNS[2]) != tt.ownUsers {
			t.Errorf("%s: own user namespace = %v, want %v", tt.unit, unitNS[2] != initNS[2], tt.ownUsers)
		}
		if unitNS[3] != initNS[3] {
			t.Errorf("%s has its own PID namespace, which isolation level process does not ask for", tt.unit)
		}
	}

	// systemd's own rating of the sandbox, from 0 (best) to 10. The target
	// is for a component with default settings; the one running as root
	// with a capability and a network is only reported.
	for _, unit := range []string{"osvm-plain.service", "osvm-binder.service"} {
		out := e.output("systemd-analyze", "security", "--no-pager", unit)
		m := exposureLevel.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no exposure level in:\n%s", out)
		}
		score, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("systemd-analyze security %s: %.1f", unit, score)
		if unit == "osvm-plain.service" && score > 1.0 {
			t.Errorf("%s: exposure %.1f, want at most 1.0", unit, score)
		}
	}
}

// checkExecStage fails t unless the running unit was started by
// osvm-exec, as osvmd starts every component at level "process" whose
// sandbox it resolved in advance, and osvm-exec applied the sandbox itself.
func checkExecStage(t *testing.T, e *env, unit string) {
	t.Helper()
	if start := e.property(unit, "ExecStart"); !strings.Contains(start, "path=/usr/libexec/osvm/osvm-exec ") {
		t.Errorf("%s: ExecStart = %s, want osvm-exec", unit, start)
	}
	checkNoDecline(t, e, unit)
}

// checkNoDecline fails t when osvmd wrote no exec record for the unit's
// component, which means the unit ran osvm-launch, or when osvm-exec
// declined the record: it prints the reason to the unit's journal then.
func checkNoDecline(t *testing.T, e *env, unit string) {
	t.Helper()
	component := strings.TrimSuffix(strings.TrimPrefix(unit, "osvm-"), ".service")
	e.shell("ls /run/osvm/components/" + component + "-????????????????.exec")
	if j := e.journal(unit); strings.Contains(j, "osvm-exec: ") {
		t.Errorf("%s: osvm-exec declined its plan:\n%s", unit, j)
	}
}

func TestLandlockABIRequired(t *testing.T) {
	e := newEnv(t)
	e.writeComponent("future", "[exec]\ncommand = [\"/bin/sleep\", \"infinity\"]\n[sandbox]\nlandlock_min_abi = 99\n[restart]\npolicy = \"no\"\n")
	e.waitFor("the refusal in the journal", func() (bool, string) {
		j := e.journal("osvm-future.service")
		return strings.Contains(j, "needs ABI 99"), j
	})
	j := e.journal("osvm-future.service")
	if !strings.Contains(j, "Landlock ABI is ") {
		t.Errorf("the refusal does not name the kernel's ABI:\n%s", j)
	}
	if strings.Contains(j, "sleep infinity") {
		t.Errorf("the command ran:\n%s", j)
	}
}

func TestMinimumIsolationRefused(t *testing.T) {
	e := newEnv(t)
	e.writeComponent("secret", "isolation = \"auto\"\nmin_isolation = \"tee\"\n[exec]\ncommand = [\"/bin/sleep\", \"infinity\"]\n")
	e.waitFor("the refusal in the journal", func() (bool, string) {
		j := e.journal("osvm-secret.service")
		return strings.Contains(j, "refusing to start component") && strings.Contains(j, "tee: "), j
	})
	if state := e.property("osvm-secret.service", "LoadState"); state != "not-found" {
		t.Errorf("a unit exists for the refused component (LoadState=%s)", state)
	}
	status := e.output("osvm", "status", "secret")
	if !strings.Contains(status, "Refused:") || !strings.Contains(status, "tee: ") {
		t.Errorf("osvm status does not show the refusal:\n%s", status)
	}
	// The refusal names the hardware this machine lacks.
	if !strings.Contains(status, "SEV-SNP") || !strings.Contains(status, "TDX") {
		t.Errorf("the refusal does not name SEV-SNP and TDX:\n%s", status)
	}
	if list := e.output("osvm", "list"); !strings.Contains(list, "refused") {
		t.Errorf("osvm list does not show the refusal:\n%s", list)
	}
}
