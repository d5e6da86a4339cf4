package units

import (
	"path/filepath"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/osvm-project/osvm/internal/config"
)

// containerExec returns the [exec] settings and the user of a unit at level
// "container". The working directory is a path inside the container, which
// osvm-launch changes to after it switched the root, so the unit leaves
// WorkingDirectory= unset. The command is root inside the container, and the
// unit's user is the host user that this root maps to: "root" there would
// make the container's root the host's root, so it becomes a dynamic user.
// Component files with isolation = "container" cannot name root; this
// covers "auto".
func containerExec(c *config.Component) (config.Exec, string) {
	exec := c.Exec
	exec.WorkingDirectory = ""
	user := c.User()
	if user == "root" || user == "0" {
		user = ""
	}
	return exec, user
}

// ContainerLauncherTasks is added to a container's TasksMax=: the threads
// of the two osvm-launch processes that stay beside the command (stage 1
// and the container's PID 1). NOTE: each had 6 to 8 threads with Go 1.26 on
// a 2-CPU machine; the value leaves a margin but is not a bound.
const ContainerLauncherTasks = 24

// containerSyscalls are the system calls osvm-launch needs to set up a
// container, which systemd's filter of level "process" denies: mounting and
// pivot_root(2) (@mount), setting the container's host name, and dropping
// the capabilities of the container's PID 1 (capset). They come after the
// component's own deny_syscalls, so that these cannot stop the container
// from being built. osvm-launch's seccomp filter still denies them to the
// command.
var containerSyscalls = []string{"@mount", "sethostname", "capset"}

// containerProperties returns the directives of level "container": those
// of level "process" except the ones that forbid or break the user
// namespace that osvm-launch creates (systemd.exec(5)):
//
//   - RestrictNamespaces=yes forbids creating it.
//   - PrivateUsers=yes maps only root and the unit's user, and gives the
//     launcher a user namespace in which it cannot map a user to root.
//   - ProtectHostname=yes denies sethostname(2) with seccomp, even in the
//     container's own UTS namespace.
//
// ProcSubset=pid stays: it also keeps the mounts of ProtectKernelTunables=
// and ProtectKernelLogs= out of /proc, because the paths they cover are
// hidden. A mount on top of a path in /proc makes the kernel refuse to
// mount the container's own proc from a user namespace ("mount_too_revealing"
// in fs/namespace.c).
//
// osvm-launch runs as the unit's user and needs no capability to create a
// user namespace, so the unit's bounding set is empty. The component's
// capabilities apply inside the container's user namespace instead.
func containerProperties(c *config.Component) []sddbus.Property {
	var props []sddbus.Property
	for _, prop := range Hardening() {
		if prop.Name != "RestrictNamespaces" {
			props = append(props, prop)
		}
	}
	for _, prop := range sandboxProperties(&c.Sandbox) {
		switch prop.Name {
		case "PrivateUsers", "ProtectHostname", "ReadWritePaths", "CapabilityBoundingSet", "AmbientCapabilities":
			continue
		}
		props = append(props, prop)
	}
	props = append(props,
		property("CapabilityBoundingSet", uint64(0)),
		property("AmbientCapabilities", uint64(0)),
		property("PrivateIPC", true),
		property("SystemCallFilter", syscallFilter{AllowList: true, Names: containerSyscalls}),
	)

	// read_write_paths are paths inside the container; systemd applies
	// ReadWritePaths= before the root changes, so they need the rootfs in
	// front.
	if len(c.Sandbox.ReadWritePaths) > 0 {
		var paths []string
		for _, p := range c.Sandbox.ReadWritePaths {
			paths = append(paths, "-"+filepath.Join(c.Container.Rootfs, p))
		}
		props = append(props, property("ReadWritePaths", paths))
	}
	return props
}
