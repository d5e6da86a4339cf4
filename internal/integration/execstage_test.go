package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// processFields are the lines of /proc/PID/status that show what the
// command inherited from the program that confined it.
var processFields = regexp.MustCompile(`(?m)^(Cap\w+|NoNewPrivs|Seccomp|Seccomp_filters|SigIgn|SigBlk):\s*(\S+)$`)

// unitProcess returns the processFields of a running unit's main process.
func unitProcess(e *env, unit string) map[string]string {
	e.t.Helper()
	status := e.output("cat", "/proc/"+e.property(unit, "MainPID")+"/status")
	fields := map[string]string{}
	for _, m := range processFields.FindAllStringSubmatch(status, -1) {
		fields[m[1]] = m[2]
	}
	return fields
}

// restartThroughLauncher removes a component's exec record and restarts
// its unit, so that osvm-exec declines and osvm-launch confines the command
// in the same unit.
func restartThroughLauncher(e *env, component string) {
	e.t.Helper()
	unit := "osvm-" + component + ".service"
	e.shell("rm /run/osvm/components/" + component + "-????????????????.exec\nsystemctl restart " + unit)
	e.waitFor("osvm-exec to decline", func() (bool, string) {
		j := e.journal(unit)
		return strings.Contains(j, "osvm-launch applies the sandbox instead"), j
	})
}

// TestExecStageMatchesLauncherInUnit starts each component through
// osvm-exec, then through osvm-launch in the same unit, and compares what
// the command's process inherited from either.
func TestExecStageMatchesLauncherInUnit(t *testing.T) {
	e := newEnv(t)
	components := map[string]string{
		"plain":          "[exec]\ncommand = [\"/bin/sleep\", \"infinity\"]\n",
		"root":           "[exec]\ncommand = [\"/bin/sleep\", \"infinity\"]\nuser = \"root\"\n",
		"root-binder":    "[exec]\ncommand = [\"/bin/sleep\", \"infinity\"]\nuser = \"root\"\n[sandbox]\nnetwork = \"loopback\"\nbind_ports = [80]\ncapabilities = [\"CAP_NET_BIND_SERVICE\"]\n",
		"dynamic-binder": "[exec]\ncommand = [\"/bin/sleep\", \"infinity\"]\n[sandbox]\nnetwork = \"loopback\"\nbind_ports = [80]\ncapabilities = [\"CAP_NET_BIND_SERVICE\"]\n",
	}
	for name, text := range components {
		e.writeComponent(name, text)
	}
	for name := range components {
		t.Run(name, func(t *testing.T) {
			unit := "osvm-" + name + ".service"
			e.waitActive(unit)
			checkExecStage(t, e, unit)
			viaStage := unitProcess(e, unit)

			restartThroughLauncher(e, name)
			e.waitActive(unit)
			viaLauncher := unitProcess(e, unit)

			for field, want := range viaLauncher {
				if got := viaStage[field]; got != want {
					t.Errorf("%s: %s = %s through osvm-exec, %s through osvm-launch", unit, field, got, want)
				}
			}
		})
	}
}

// batteryResults returns the ATTEMPT and CONTROL lines of the runs of the
// escape battery in output, one string per run.
func batteryResults(output string) []string {
	var runs []string
	var current []string
	for _, line := range strings.Split(output, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "CONFINEMENT "):
			current = []string{line}
		case strings.HasPrefix(line, "ATTEMPT "), strings.HasPrefix(line, "CONTROL "):
			current = append(current, line)
		case line == "DONE":
			runs = append(runs, strings.Join(current, "\n"))
		}
	}
	return runs
}

// TestEscapeBatteryLauncherInUnit runs the escape battery in one unit
// through osvm-exec, then, after osvm-exec declines, through osvm-launch,
// and expects the same result from every attempt.
func TestEscapeBatteryLauncherInUnit(t *testing.T) {
	e := newEnv(t)
	e.shell(`install -D -m 0755 escape /usr/local/libexec/osvm-escape
echo read-only > /etc/osvm-escape-ro`)
	for _, user := range []struct{ name, line string }{{"dynamic", ""}, {"root", `user = "root"`}} {
		t.Run(user.name, func(t *testing.T) {
			name := "diff-" + user.name
			unit := "osvm-" + name + ".service"
			rwDir := "/var/lib/" + name
			e.shell("mkdir -m 1777 " + rwDir)

			// systemd runs the battery again after the delay, in which the
			// test removes the exec record.
			text := strings.Replace(escapeComponent(rwDir, user.line), `policy = "no"`, "policy = \"always\"\ndelay = \"3s\"", 1)
			e.writeComponent(name, text)
			runsDone := func(n int) func() (bool, string) {
				return func() (bool, string) {
					out := e.output("journalctl", "--no-pager", "-o", "cat", "-u", unit)
					return len(batteryResults(out)) >= n || strings.Contains(out, "UNCONFINED"), out
				}
			}
			e.waitFor("the battery through osvm-exec", runsDone(1))
			checkNoDecline(t, e, unit)
			e.shell("rm -rf " + rwDir + "/* /run/osvm/components/" + name + "-????????????????.exec")
			e.waitFor("the battery through osvm-launch", runsDone(2))
			e.writeComponent(name, strings.Replace(text, `policy = "always"`, `policy = "no"`, 1))

			out := e.output("journalctl", "--no-pager", "-o", "cat", "-u", unit)
			if !strings.Contains(out, "osvm-launch applies the sandbox instead") {
				t.Fatalf("osvm-exec did not decline the second run:\n%s", out)
			}
			runs := batteryResults(out)
			if len(runs) < 2 {
				t.Fatalf("%d complete runs of the battery, want 2:\n%s", len(runs), out)
			}
			for i, run := range runs[:2] {
				checkEscapeReport(t, run+"\nDONE")
				if i > 0 && run != runs[0] {
					t.Errorf("the battery's results differ:\nosvm-exec:\n%s\nosvm-launch:\n%s", runs[0], run)
				}
			}
		})
	}
}

// probeResults returns the PROBE lines of each run of testdata/probe.c in
// output, one string per run.
func probeResults(output string) []string {
	var runs []string
	var current []string
	for _, line := range strings.Split(output, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "PROBE "):
			current = append(current, line)
		case line == "PROBED":
			runs = append(runs, strings.Join(current, "\n"))
			current = nil
		}
	}
	return runs
}

// probeCase is a component that runs testdata/probe.c, and the results
// that count as expected for each attempt.
type probeCase struct {
	name    string
	user    string             // the [exec] line, if any
	sandbox string             // the [sandbox] table's lines
	want    map[string]outcome // by probe argument, with RW for the read-write folder
}

var (
	// ProtectSystem=strict makes the file system read-only below
	// Landlock, and RestrictAddressFamilies= denies TCP sockets with
	// network "none".
	writeDenied = outcome{"EACCES", "EROFS"}
	tcpDenied   = outcome{"EACCES", "EAFNOSUPPORT"}
	allowed     = outcome{"ok"}
)

// runProbes starts each component through osvm-exec, then through
// osvm-launch in the same unit, and checks each attempt's result in both
// runs.
func runProbes(t *testing.T, cases []probeCase) {
	e := newEnv(t)
	probe := filepath.Join(e.bin, "probe")
	if out, err := exec.Command("gcc", "-static", "-O1", "-Wall", "-o", probe, "testdata/probe.c").CombinedOutput(); err != nil {
		t.Fatalf("build the probe: %v\n%s", err, out)
	}
	e.shell("install -D -m 0755 probe /usr/local/libexec/osvm-probe")

	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			name := "probe-" + tt.name
			unit := "osvm-" + name + ".service"
			rwDir := "/var/lib/" + name
			e.shell("mkdir -m 1777 " + rwDir)
			var attempts []string
			for attempt := range tt.want {
				attempts = append(attempts, strconv.Quote(strings.ReplaceAll(attempt, "RW", rwDir)))
			}
			slices.Sort(attempts)
			e.writeComponent(name, fmt.Sprintf("[exec]\ncommand = [\"/usr/local/libexec/osvm-probe\", %s]\n%s\n[sandbox]\nread_write_paths = [%q]\n%s",
				strings.Join(attempts, ", "), tt.user, rwDir, tt.sandbox))

			runsDone := func(n int) func() (bool, string) {
				return func() (bool, string) {
					out := e.output("journalctl", "--no-pager", "-o", "cat", "-u", unit)
					return len(probeResults(out)) >= n || strings.Contains(out, "UNCONFINED"), out
				}
			}
			e.waitFor("the probe through osvm-exec", runsDone(1))
			checkExecStage(t, e, unit)
			restartThroughLauncher(e, name)
			e.waitFor("the probe through osvm-launch", runsDone(2))

			out := e.output("journalctl", "--no-pager", "-o", "cat", "-u", unit)
			runs := probeResults(out)
			if len(runs) < 2 {
				t.Fatalf("%d complete runs of the probe, want 2:\n%s", len(runs), out)
			}
			for i, launcher := range []string{"osvm-exec", "osvm-launch"} {
				for _, line := range strings.Split(runs[i], "\n") {
					fields := strings.Fields(line) // PROBE ATTEMPT RESULT
					attempt := strings.ReplaceAll(fields[1], rwDir, "RW")
					if want := tt.want[attempt]; !slices.Contains(want, fields[2]) {
						t.Errorf("%s through %s: %s, want %v", fields[1], launcher, fields[2], want)
					}
				}
			}
			if runs[0] != runs[1] {
				t.Errorf("the probe's results differ:\nosvm-exec:\n%s\nosvm-launch:\n%s", runs[0], runs[1])
			}
		})
	}
}

// TestExecStageConfinesProbe checks writes, binds and connects of
// components as root and as a dynamic user, with networks "none" and
// "loopback".
func TestExecStageConfinesProbe(t *testing.T) {
	runProbes(t, []probeCase{
		{"root-none", `user = "root"`, "", map[string]outcome{
			"write:RW/file":             allowed,
			"write:/etc/osvm-probe":     writeDenied,
			"write:/var/lib/osvm-probe": writeDenied,
			"bind:8081":                 tcpDenied,
			"connect:8081":              tcpDenied,
		}},
		{"root-loopback", `user = "root"`, "network = \"loopback\"\nbind_ports = [8081]\ncapabilities = [\"CAP_NET_BIND_SERVICE\"]\n", map[string]outcome{
			"write:RW/file":         allowed,
			"write:/etc/osvm-probe": writeDenied,
			"bind:8081":             allowed,
			"bind:8082":             tcpDenied,
			"connect:8081":          tcpDenied,
		}},
		{"dynamic-loopback", "", "network = \"loopback\"\nbind_ports = [8081]\nconnect_ports = [8082]\n", map[string]outcome{
			"write:RW/file":             allowed,
			"write:/var/lib/osvm-probe": writeDenied,
			"bind:8081":                 allowed,
			"bind:8083":                 tcpDenied,
			"connect:8082":              allowed,
			"connect:8083":              tcpDenied,
		}},
	})
}

// TestNamedCapabilityBindsPort checks that a component with
// CAP_NET_BIND_SERVICE in [sandbox] capabilities can bind a listed port
// below 1024, as docs/components.md promises, as root and as a dynamic
// user.
func TestNamedCapabilityBindsPort(t *testing.T) {
	binder := "network = \"loopback\"\nbind_ports = [80]\ncapabilities = [\"CAP_NET_BIND_SERVICE\"]\n"
	runProbes(t, []probeCase{
		{"root-binder", `user = "root"`, binder, map[string]outcome{"bind:80": allowed, "bind:81": tcpDenied}},
		{"dynamic-binder", "", binder, map[string]outcome{"bind:80": allowed, "bind:81": tcpDenied}},
	})
}
