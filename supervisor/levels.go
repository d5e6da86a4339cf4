package supervisor

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/probe"
)

// LevelStatus is whether an isolation level can run on this host, and the
// reason when it cannot.
type LevelStatus struct {
	Available bool
	Reason    string // what is missing, in words an administrator can act on
}

// RefusalError reports a component that cannot run at any level it
// accepts on this host.
type RefusalError struct {
	Component string
	Missing   []string // "level: reason" for each level that was considered
}

func (e *RefusalError) Error() string {
	return fmt.Sprintf("component %s not started: %s", e.Component, strings.Join(e.Missing, "; "))
}

// ImplementedLevels is the status of each level as far as this osvm goes:
// the levels it can run at all, before any host check. A host's report
// can only narrow it (see HostLevels).
func ImplementedLevels() map[config.Isolation]LevelStatus {
	notYet := func(level string) LevelStatus {
		return LevelStatus{Reason: "this version of osvm does not implement isolation level " + level + " yet"}
	}
	return map[config.Isolation]LevelStatus{
		config.IsolationNone:      {Available: true},
		config.IsolationProcess:   {Available: true},
		config.IsolationContainer: {Available: true},
		config.IsolationMicroVM:   notYet("microvm"),
		config.IsolationUnikernel: {Available: true},
		config.IsolationTEE:       notYet("tee"),
	}
}

// HostLevels narrows ImplementedLevels with a host's report from package
// probe: a level is available when osvm implements it and the host has
// what it needs.
func HostLevels(report *probe.Report) map[config.Isolation]LevelStatus {
	levels := ImplementedLevels()
	for _, host := range report.Levels {
		level := config.Isolation(host.Level)
		status, ok := levels[level]
		if !ok || host.Available {
			continue
		}
		// Both reasons count: what osvm lacks and what the host lacks.
		var reasons []string
		if !status.Available {
			reasons = append(reasons, status.Reason)
		}
		for _, r := range host.Reasons {
			if !strings.Contains(r, "osvm does not implement") {
				reasons = append(reasons, r)
			}
		}
		levels[level] = LevelStatus{Reason: strings.Join(reasons, "; ")}
	}
	return levels
}

// MarkUnimplemented turns the levels of a host report that this osvm does
// not implement into unavailable ones, with that reason first, so that a
// report shows what osvm can run here rather than what the host could.
func MarkUnimplemented(report *probe.Report) {
	implemented := ImplementedLevels()
	for i, host := range report.Levels {
		status := implemented[config.Isolation(host.Level)]
		if status.Available || slices.ContainsFunc(host.Reasons, func(r string) bool { return strings.Contains(r, "osvm does not implement") }) {
			continue
		}
		report.Levels[i].Available = false
		report.Levels[i].Reasons = append([]string{status.Reason}, host.Reasons...)
	}
}

// ChooseLevel is chooseLevel for other programs, such as osvm run.
func ChooseLevel(c *config.Component, host map[config.Isolation]LevelStatus) (config.Isolation, error) {
	return chooseLevel(c, host)
}

// chooseLevel returns the level component c runs at on a host whose levels
// are described by host: the level c names, or for "auto" the strongest
// level that both the host and c allow, never weaker than c's
// min_isolation. It never falls back silently: when no level qualifies the
// error names what each considered level lacks.
func chooseLevel(c *config.Component, host map[config.Isolation]LevelStatus) (config.Isolation, error) {
	// What a component can run at follows from what it runs: a command
	// runs at none, process or container; an image at unikernel or, in a
	// trusted execution environment, tee. Strongest first.
	possible := []config.Isolation{config.IsolationContainer, config.IsolationProcess, config.IsolationNone}
	if c.RunsImage() {
		possible = []config.Isolation{config.IsolationTEE, config.IsolationUnikernel}
	}

	candidates := possible
	if c.Isolation == config.IsolationAuto && !containerFits(c) {
		// A container maps its root to an unprivileged user and keeps
		// capabilities inside its own namespaces, so "auto" does not move
		// a component that runs as root or needs capabilities there.
		candidates = slices.DeleteFunc(slices.Clone(possible), func(l config.Isolation) bool { return l == config.IsolationContainer })
	}
	if c.Isolation != config.IsolationAuto {
		if !slices.Contains(possible, c.Isolation) {
			return "", &RefusalError{Component: c.Name, Missing: []string{fmt.Sprintf(
				"%s: not a level for this component (it can run at %s)", c.Isolation, joinLevels(possible))}}
		}
		candidates = []config.Isolation{c.Isolation}
	}

	var missing []string
	for _, level := range candidates {
		if c.MinIsolation != "" && level.Rank() < c.MinIsolation.Rank() {
			continue
		}
		status, ok := host[level]
		if ok && status.Available {
			return level, nil
		}
		reason := status.Reason
		if !ok || reason == "" {
			reason = "not available on this host"
		}
		missing = append(missing, fmt.Sprintf("%s: %s", level, reason))
	}
	if len(missing) == 0 {
		missing = append(missing, fmt.Sprintf("min_isolation %q is stronger than any level this component can run at (%s)", c.MinIsolation, joinLevels(possible)))
		// Say what the host lacks for the minimum itself, too.
		if status := host[c.MinIsolation]; !status.Available && status.Reason != "" {
			missing = append(missing, fmt.Sprintf("%s: %s", c.MinIsolation, status.Reason))
		}
	}
	return "", &RefusalError{Component: c.Name, Missing: missing}
}

func joinLevels(levels []config.Isolation) string {
	names := make([]string, len(levels))
	for i, l := range levels {
		names[i] = string(l)
	}
	return strings.Join(names, ", ")
}

// kvmForDynamicUser returns why a unit with a dynamic user cannot open
// /dev/kvm on this host, or nil when it can: such a unit reaches the device
// only through group kvm (SupplementaryGroups=kvm), so the device must
// belong to that group with read and write for it.
func kvmForDynamicUser() error {
	info, err := os.Stat("/dev/kvm")
	if err != nil {
		return fmt.Errorf("a dynamic user needs /dev/kvm: %w", err)
	}
	group, err := user.LookupGroup("kvm")
	if err != nil {
		return fmt.Errorf("a dynamic user reaches /dev/kvm through group kvm, which does not exist here: set [unikernel] user = \"root\", or create the group and give it /dev/kvm (udev rule, mode 0660)")
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || strconv.Itoa(int(st.Gid)) != group.Gid || info.Mode().Perm()&0o060 != 0o060 {
		return fmt.Errorf("a dynamic user reaches /dev/kvm through group kvm, but /dev/kvm is mode %#o, group ID %d: set [unikernel] user = \"root\", or give /dev/kvm group kvm and mode 0660 (Debian's and Fedora's udev default)", info.Mode().Perm(), st.Gid)
	}
	return nil
}

// containerFits reports whether a command component keeps its meaning at
// level container: it does not run as root and needs no capabilities,
// which a container would only grant inside its own namespaces.
func containerFits(c *config.Component) bool {
	user := c.Exec.User
	return user != "root" && user != "0" && len(c.Sandbox.Capabilities) == 0
}
