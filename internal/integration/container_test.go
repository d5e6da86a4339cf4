package integration

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/osvm-project/osvm/internal/testenv"
)

// containerRootfs is the root file system that the container tests build
// inside the sandbox from Debian's busybox-static. It has busybox, links to
// the applets the tests use, the folders the launcher mounts on, and a
// marker file that the host's root does not have.
const containerRootfs = "/var/lib/osvm-test/rootfs"

const rootfsMarker = "osvm-rootfs-marker"

func buildRootfs(t *testing.T, e *env) {
	t.Helper()
	testenv.MustHaveExecPath(t, "/bin/busybox")
	e.shell(`r=` + containerRootfs + `
mkdir -p $r/bin $r/proc $r/dev $r/tmp $r/etc
cp /bin/busybox $r/bin/busybox
for applet in sh ps ls cat id hostname tr cut tail sleep echo; do ln -s busybox $r/bin/$applet; done
touch $r/` + rootfsMarker)
}

// reportLine is a "key=value" line that the containers' scripts print.
var reportLine = regexp.MustCompile(`(?m)^([a-z0-9-]+)=(.*)$`)

// report returns the "key=value" lines of a unit's output.
func (e *env) report(unit string) map[string]string {
	e.t.Helper()
	values := map[string]string{}
	for _, m := range reportLine.FindAllStringSubmatch(e.output("journalctl", "--no-pager", "-o", "cat", "-u", unit), -1) {
		values[m[1]] = strings.TrimSpace(m[2])
	}
	return values
}

// waitForLine waits until a unit's output has a line equal to line.
func (e *env) waitForLine(unit, line string) {
	e.t.Helper()
	e.waitFor(unit+" to print "+line, func() (bool, string) {
		out := e.output("journalctl", "--no-pager", "-o", "cat", "-u", unit)
		return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `$`).MatchString(out), out
	})
}

// statusUID returns the real user ID on the Uid line of /proc/PID/status,
// in the sandbox's initial user namespace.
func (e *env) statusUID(pid string) string {
	e.t.Helper()
	status := e.output("cat", "/proc/"+pid+"/status")
	m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindStringSubmatch(status)
	if m == nil {
		e.t.Fatalf("no Uid line in /proc/%s/status:\n%s", pid, status)
	}
	return m[1]
}

// inspectScript prints what a container looks like from inside, then
// sleeps so that the test can look at it from outside. The inner sh exits
// before its child: the child becomes an orphan of PID 1, which must reap
// it, or it stays in the process list as a zombie.
const inspectScript = `echo "pid=$$"
echo "ppid=$PPID"
echo "init=$(tr '\0' ' ' < /proc/1/cmdline)"
sh -c 'cat /dev/null & exit 0'
sleep 1
for d in /proc/[0-9]*; do echo "process-${d#/proc/}=$(cat $d/comm)"; done
echo "uid-map=$(cat /proc/self/uid_map)"
echo "root=$(ls / | tr '\n' ' ')"
echo "interfaces=$(tail -n +3 /proc/self/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "hostname=$(hostname)"
echo "uid=$(id -u)"
echo "ready=yes"
exec sleep 600
`

func TestContainerRootfs(t *testing.T) {
	e := newEnv(t)
	buildRootfs(t, e)
	e.writeComponent("box", fmt.Sprintf(`isolation = "container"
[container]
rootfs = %q
[exec]
command = ["/bin/sh", "-c", '''
%s''']
[sandbox]
read_only_paths = ["/"]
`, containerRootfs, inspectScript))
	unit := "osvm-box.service"
	e.waitActive(unit)
	e.waitForLine(unit, "ready=yes")
	inside := e.report(unit)
	t.Logf("seen from inside: %v", inside)

	// PID 1 is the launcher, which started the command. The launcher's
	// threads take the PIDs right after 1, so the command's PID is small
	// but not 2.
	if got := inside["ppid"]; got != "1" {
		t.Errorf("the command's parent is PID %s, want 1", got)
	}
	if got := inside["init"]; !strings.Contains(got, "osvm-launch") {
		t.Errorf("/proc/1/cmdline = %q, want osvm-launch", got)
	}

	// Only the launcher and the command exist in the PID namespace.
	processes := map[string]string{}
	for key, comm := range inside {
		if pid, ok := strings.CutPrefix(key, "process-"); ok {
			processes[pid] = comm
		}
	}
	want := map[string]string{"1": "osvm-launch", inside["pid"]: "sh"}
	if fmt.Sprint(processes) != fmt.Sprint(want) {
		t.Errorf("processes seen inside = %v, want only %v", processes, want)
	}

	// Root inside is an unprivileged user outside.
	mapping := strings.Fields(inside["uid-map"])
	if len(mapping) != 3 || mapping[0] != "0" || mapping[2] != "1" {
		t.Fatalf("uid_map = %q, want one line mapping 0 to one outside user", inside["uid-map"])
	}
	outsideUID := mapping[1]
	if outsideUID == "0" {
		t.Errorf("root inside maps to root outside")
	}
	if got := inside["uid"]; got != "0" {
		t.Errorf("id -u inside = %s, want 0", got)
	}

	// The root is the rootfs, not the host's root.
	root := strings.Fields(inside["root"])
	if !slices.Contains(root, rootfsMarker) {
		t.Errorf("ls / = %v, want the rootfs with %s", root, rootfsMarker)
	}
	for _, hostOnly := range []string{"usr", "var", "run"} {
		if slices.Contains(root, hostOnly) {
			t.Errorf("ls / = %v shows the host's %s", root, hostOnly)
		}
	}

	if got := inside["interfaces"]; got != "lo" {
		t.Errorf("network interfaces inside = %q, want only lo", got)
	}
	if got := inside["hostname"]; got != "box" {
		t.Errorf("hostname inside = %q, want the component's name", got)
	}

	// Seen from outside, every process of the unit runs as that user: the
	// launcher (MainPID), the container's PID 1 and the command.
	mainPID := e.property(unit, "MainPID")
	if got := e.statusUID(mainPID); got != outsideUID {
		t.Errorf("MainPID %s runs as uid %s, want %s as in uid_map", mainPID, got, outsideUID)
	}
	pids := strings.Fields(e.shell(`cg=$(systemctl show -p ControlGroup --value osvm-box.service)
cat /sys/fs/cgroup/unified$cg/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup/systemd$cg/cgroup.procs`))
	if len(pids) != 3 {
		t.Errorf("the unit has processes %v, want 3: the launcher, the container's PID 1 and the command", pids)
	}
	for _, pid := range pids {
		if got := e.statusUID(pid); got != outsideUID {
			t.Errorf("process %s of the unit runs as uid %s, want %s", pid, got, outsideUID)
		}
	}

	// These directives would forbid or break the launcher's user namespace.
	for property, want := range map[string]string{"RestrictNamespaces": "no", "PrivateUsers": "no", "ProtectHostname": "no", "PrivateNetwork": "yes", "ProcSubset": "pid"} {
		if got := e.property(unit, property); got != want {
			t.Errorf("%s = %s, want %s", property, got, want)
		}
	}

	// systemd's SIGTERM ends the command, and the launcher ends by the same
	// signal: a clean stop, as at level process.
	e.output("osvm", "stop", "box")
	e.waitFor("the unit to stop", func() (bool, string) {
		state := e.property(unit, "ActiveState")
		return state == "inactive" || state == "failed", "ActiveState=" + state
	})
	e.waitFor("systemd's message about the stop", func() (bool, string) {
		j := e.journal(unit)
		return strings.Contains(j, "Deactivated successfully") || strings.Contains(j, "Failed with result"), j
	})
	if j := e.journal(unit); strings.Contains(j, "Failed with result") {
		t.Errorf("osvm stop left the unit failed:\n%s", j)
	}
}

func TestContainerAutoLevel(t *testing.T) {
	e := newEnv(t)
	e.writeComponent("auto", `isolation = "auto"
[exec]
command = ["/bin/sh", "-c", "echo started=yes; exec /bin/sleep 600"]
[sandbox]
exec_paths = ["/usr/bin/sleep"]
`)
	unit := "osvm-auto.service"
	e.waitActive(unit)
	e.waitForLine(unit, "started=yes")

	if plan := e.shell("cat /run/osvm/components/auto-*.json"); !regexp.MustCompile(`"level":\s*"container"`).MatchString(plan) {
		t.Errorf("the plan's level is not container:\n%s", plan)
	}
	status := e.output("osvm", "status", "auto")
	if !regexp.MustCompile(`(?m)^\s*Isolation:\s*container\s*$`).MatchString(status) {
		t.Errorf("osvm status does not show isolation container:\n%s", status)
	}
	if uid := e.statusUID(e.property(unit, "MainPID")); uid == "0" {
		t.Errorf("the unit's launcher runs as root")
	}
}

// hostRootScript checks a container without rootfs: the host's root,
// read-only apart from the read_write_paths.
const hostRootScript = `echo "root-mount=$(/bin/busybox grep ' / ' /proc/self/mounts)"
if echo x > /etc/osvm-container-probe; then echo etc-write=succeeded; else echo etc-write=failed; fi
if echo inside > /var/lib/osvm-test/rw/out; then echo rw-write=succeeded; else echo rw-write=failed; fi
if echo x > /tmp/probe; then echo tmp-write=succeeded; else echo tmp-write=failed; fi
echo "marker=$(/bin/busybox ls /` + rootfsMarker + ` 2>&1)"
echo done=yes
exit 7
`

func TestContainerHostRoot(t *testing.T) {
	e := newEnv(t)
	e.shell("mkdir -p -m 1777 /var/lib/osvm-test/rw")
	e.writeComponent("hostroot", fmt.Sprintf(`isolation = "container"
[exec]
command = ["/bin/busybox", "sh", "-c", '''
%s''']
[sandbox]
read_only_paths = ["/"]
read_write_paths = ["/var/lib/osvm-test/rw", "/tmp"]
[restart]
policy = "no"
`, hostRootScript))
	unit := "osvm-hostroot.service"
	e.waitForLine(unit, "done=yes")
	inside := e.report(unit)
	journal := e.output("journalctl", "--no-pager", "-o", "cat", "-u", unit)

	mount := strings.Fields(inside["root-mount"])
	if len(mount) < 4 || !strings.HasPrefix(mount[3]+",", "ro,") {
		t.Errorf("the root mount inside is %q, want it read-only", inside["root-mount"])
	}
	if got := inside["etc-write"]; got != "failed" {
		t.Errorf("writing /etc inside %s", got)
	}
	if !strings.Contains(journal, "Read-only file system") && !strings.Contains(journal, "Permission denied") {
		t.Errorf("the failed write does not say EROFS or EACCES:\n%s", journal)
	}
	if got := e.shell("ls /etc/osvm-container-probe 2>&1 || true"); !strings.Contains(got, "No such file") {
		t.Errorf("the container wrote /etc/osvm-container-probe: %s", got)
	}
	if got := inside["rw-write"]; got != "succeeded" {
		t.Errorf("writing a read_write_paths folder %s:\n%s", got, journal)
	}
	if got := strings.TrimSpace(e.output("cat", "/var/lib/osvm-test/rw/out")); got != "inside" {
		t.Errorf("the file written inside reads %q outside, want inside", got)
	}
	if got := inside["tmp-write"]; got != "succeeded" {
		t.Errorf("writing /tmp inside %s", got)
	}
	// The command's exit status becomes the unit's.
	e.waitFor("the unit to end", func() (bool, string) {
		state := e.property(unit, "ActiveState")
		return state == "failed" || state == "inactive", "ActiveState=" + state
	})
	if got := e.property(unit, "ExecMainStatus"); got != "7" {
		t.Errorf("ExecMainStatus = %s, want the command's 7\n%s", got, journal)
	}
}

// The escape battery of level process, run at level container on the
// host's root: every attempt must still fail.
func TestContainerEscapeBattery(t *testing.T) {
	e := newEnv(t)
	e.shell(`install -D -m 0755 escape /usr/local/libexec/osvm-escape
echo read-only > /etc/osvm-escape-ro
mkdir -m 1777 /var/lib/escape-container`)
	e.writeComponent("escape-container", "isolation = \"container\"\n"+escapeComponent("/var/lib/escape-container", ""))
	unit := "osvm-escape-container.service"
	e.waitFor("the battery to finish", func() (bool, string) {
		out := e.output("journalctl", "--no-pager", "-o", "cat", "-u", unit)
		return strings.Contains(out, "DONE") || strings.Contains(out, "UNCONFINED") || strings.Contains(out, "osvm-launch:"), out
	})
	output := e.output("journalctl", "--no-pager", "-o", "cat", "-u", unit)
	checkEscapeReport(t, output)
	if t.Failed() {
		t.Logf("the battery's output:\n%s", output)
	}
}
