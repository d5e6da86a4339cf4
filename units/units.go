package units

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
)

// Slice is the slice every component unit runs in.
const Slice = "osvm.slice"

// Prefix and Suffix frame a component name in its unit name. Nothing else
// on a host is expected to use the prefix.
const (
	Prefix = "osvm-"
	Suffix = ".service"
)

// Name returns the unit name of a component.
func Name(component string) string {
	return Prefix + component + Suffix
}

// ComponentName returns the component name in a unit name made by Name.
func ComponentName(unit string) (string, bool) {
	name, ok := strings.CutPrefix(unit, Prefix)
	if !ok {
		return "", false
	}
	name, ok = strings.CutSuffix(name, Suffix)
	if !ok || !config.ValidName(name) {
		return "", false
	}
	return name, true
}

// Unit is a transient unit ready to be started.
type Unit struct {
	Name       string
	Properties []sddbus.Property
}

// New returns the unit that runs plan p. launcher is the absolute path of
// osvm-launch and planPath the path p was written to.
func New(p *plan.Plan, planPath, launcher string) Unit {
	c := &p.Component
	description := c.Description
	if description == "" {
		description = "osvm component " + c.Name
	}

	props := []sddbus.Property{
		sddbus.PropDescription(description),
		sddbus.PropSlice(Slice),

		// Type=exec: the start job fails when execve of the launcher
		// fails, rather than succeeding and failing later (systemd.service(5)).
		sddbus.PropType("exec"),

		// The flag is systemd's "ignore failure" (the "-" prefix of
		// ExecStart=), whatever go-systemd calls its parameter: it must be
		// false, or a failing component counts as a success and is never
		// restarted.
		sddbus.PropExecStart([]string{launcher, planPath}, false),

		// The journal names the component, not the launcher that execs it.
		property("SyslogIdentifier", c.Name),
	}
	exec, user := c.Exec, c.User()
	if p.Level == config.IsolationContainer {
		exec, user = containerExec(c)
	}
	props = append(props, execProperties(&exec, user)...)
	resources := c.Resources
	switch {
	case p.Level == config.IsolationUnikernel:
		// The unit holds the guest's memory and the monitor's own.
		resources.MemoryMax += MonitorMemory
	case p.Level == config.IsolationContainer && resources.TasksMax > 0:
		// The component's limit is for its own processes.
		resources.TasksMax += ContainerLauncherTasks
	}
	props = append(props, resourceProperties(&resources)...)
	props = append(props, restartProperties(&c.Restart)...)
	switch p.Level {
	case config.IsolationProcess:
		props = append(props, Hardening()...)
		props = append(props, sandboxProperties(&c.Sandbox)...)
	case config.IsolationContainer:
		props = append(props, containerProperties(c)...)
	case config.IsolationUnikernel:
		props = append(props, unikernelProperties(c)...)
	}
	return Unit{Name: Name(c.Name), Properties: props}
}

func execProperties(e *config.Exec, user string) []sddbus.Property {
	var props []sddbus.Property
	if len(e.Environment) > 0 {
		var env []string
		for _, k := range slices.Sorted(maps.Keys(e.Environment)) {
			env = append(env, k+"="+e.Environment[k])
		}
		props = append(props, property("Environment", env))
	}
	if e.WorkingDirectory != "" {
		props = append(props, property("WorkingDirectory", e.WorkingDirectory))
	}
	if user != "" {
		props = append(props, property("User", user))
	} else {
		props = append(props, property("DynamicUser", true))
	}
	return props
}

func resourceProperties(r *config.Resources) []sddbus.Property {
	var props []sddbus.Property
	if r.MemoryMax > 0 {
		props = append(props, property("MemoryMax", r.MemoryMax))
	}
	if r.CPUs > 0 {
		// CPUQuota= is stored as CPU time per second of wall time:
		// 0.5 CPUs is 500000 microseconds per second.
		props = append(props, property("CPUQuotaPerSecUSec", uint64(r.CPUs*float64(time.Second/time.Microsecond))))
	}
	if r.TasksMax > 0 {
		props = append(props, property("TasksMax", r.TasksMax))
	}
	if r.IOWeight > 0 {
		props = append(props, property("IOWeight", r.IOWeight))
	}
	return props
}

func restartProperties(r *config.Restart) []sddbus.Property {
	return []sddbus.Property{
		property("Restart", string(r.Policy)),
		property("RestartUSec", microseconds(r.Delay)),
		property("StartLimitBurst", r.Burst),
		property("StartLimitIntervalUSec", microseconds(r.Interval)),
	}
}

// Hardening returns the sandboxing directives of isolation level "process".
// Each is described in systemd.exec(5).
func Hardening() []sddbus.Property {
	return []sddbus.Property{
		property("NoNewPrivileges", true),
		property("ProtectSystem", "strict"),
		property("ProtectHome", "yes"),
		property("PrivateTmp", true),
		property("PrivateDevices", true),
		property("ProtectKernelTunables", true),
		property("ProtectKernelModules", true),
		property("ProtectKernelLogs", true),
		property("ProtectControlGroups", true),

		// RestrictNamespaces= travels as the set of namespace types the unit
		// may create; the empty set is RestrictNamespaces=yes.
		property("RestrictNamespaces", uint64(0)),
		property("RestrictSUIDSGID", true),
		property("LockPersonality", true),
		property("SystemCallArchitectures", []string{"native"}),

		// A component that reaches PID 1, directly or through the system
		// bus, could ask for a new unit without these restrictions. The "-"
		// prefix ignores paths missing on the host.
		property("InaccessiblePaths", []string{"-" + systemBusFolder, "-" + systemdPrivateSocket}),
	}
}

const (
	systemBusFolder      = "/run/dbus"
	systemdPrivateSocket = "/run/systemd/private"
)

func property(name string, value any) sddbus.Property {
	return sddbus.Property{Name: name, Value: dbus.MakeVariant(value)}
}

func microseconds(d time.Duration) uint64 {
	return uint64(d / time.Microsecond)
}

// DropIn returns the runtime drop-in that osvmd writes next to a
// component's transient unit, or "" when the unit needs none. It repeats
// RestrictNamespaces=yes, which systemd 252 loses from transient units at a
// daemon-reload.
func DropIn(p *plan.Plan) string {
	if p.Level != config.IsolationProcess && p.Level != config.IsolationUnikernel {
		return ""
	}
	return "# Written by osvmd for component " + p.Component.Name + "; removed with the component.\n" +
		"[Service]\nRestrictNamespaces=yes\n"
}

// unikernelProperties returns the directives of level "unikernel": the
// hardening of level "process" with /dev/kvm as the only device, since the
// launcher is the virtual machine monitor, and no network.
func unikernelProperties(c *config.Component) []sddbus.Property {
	var props []sddbus.Property
	for _, prop := range Hardening() {
		if prop.Name != "PrivateDevices" {
			props = append(props, prop)
		}
	}
	sb := config.Sandbox{Network: config.NetworkNone}
	for _, prop := range sandboxProperties(&sb) {
		if prop.Name != "DevicePolicy" {
			props = append(props, prop)
		}
	}
	props = append(props,
		property("DevicePolicy", "closed"),
		property("DeviceAllow", []deviceAllow{{Path: "/dev/kvm", Access: "rw"}}),
	)
	var writable []string
	for _, m := range c.Unikernel.Mounts {
		if m.Writable {
			writable = append(writable, "-"+m.Host)
		}
	}
	if len(writable) > 0 {
		// ProtectSystem=strict makes every path read-only, below Landlock.
		props = append(props, property("ReadWritePaths", writable))
	}
	// The Go runtime makes per-processor caches and threads for GOMAXPROCS
	// processors, by default one per host CPU. The monitor runs Go code on
	// its vCPU threads, so it needs no more, and the smaller setting keeps
	// about 0.25 MiB less resident (docs/benchmarks.md). The guest's own
	// environment comes from [unikernel] environment, not from this one.
	props = append(props, property("Environment", []string{fmt.Sprintf("GOMAXPROCS=%d", max(1, c.Unikernel.CPUs))}))
	if c.User() == "" {
		// Debian's and Fedora's udev rules give /dev/kvm to group kvm
		// (mode 0660); a dynamic user needs that group to open it.
		props = append(props, property("SupplementaryGroups", []string{"kvm"}))
	}
	return props
}

// MonitorMemory is added to a unikernel's guest memory for the unit's
// MemoryMax=: room for osvm-launch's own memory as the virtual machine
// monitor. NOTE: an estimate with a wide margin; the monitor's measured
// overhead belongs in docs/benchmarks.md.
const MonitorMemory = 32 << 20

// deviceAllow is the D-Bus form (ss) of one DeviceAllow= entry.
type deviceAllow struct {
	Path   string
	Access string
}
