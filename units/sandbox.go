package units

import (
	"strings"
	"syscall"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"kernel.org/pub/linux/libs/security/libcap/cap"

	"github.com/osvm-project/osvm/internal/config"
)

// sandboxProperties returns the systemd directives that follow from a
// component's [sandbox] table at isolation level "process". They duplicate
// part of what the launcher applies itself, so the unit stays confined even
// where the launcher's layer fails, and systemd-analyze security rates the
// unit by them.
func sandboxProperties(sb *config.Sandbox) []sddbus.Property {
	capabilities := capabilityMask(sb.Capabilities)
	props := []sddbus.Property{
		property("CapabilityBoundingSet", capabilities),
		property("AmbientCapabilities", capabilities),
		property("ProtectClock", true),
		property("ProtectHostname", true),
		property("ProtectProc", "invisible"),
		property("ProcSubset", "pid"),
		property("RestrictRealtime", true),
		property("RemoveIPC", true),
		property("KeyringMode", "private"),
		property("UMask", uint32(0o077)),
		property("DevicePolicy", "closed"),

		// The launcher's seccomp filter is the main one; systemd's is a
		// second layer: the system calls of ordinary services, without
		// the privileged and resource-control groups, and the component's
		// own additions last so that they win. Denied calls fail with
		// EPERM instead of killing the process.
		property("SystemCallFilter", syscallFilter{AllowList: true, Names: []string{"@system-service"}}),
		property("SystemCallFilter", syscallFilter{AllowList: false, Names: []string{"@privileged", "@resources"}}),

		// The launcher, osvm-exec or osvm-launch, sets up Landlock and its
		// own seccomp filter inside the unit, after systemd's filter is in
		// place; @system-service
		// lacks these calls in systemd 252. Without seccomp(2), libseccomp
		// falls back to prctl(2) and cannot kill foreign architectures.
		property("SystemCallFilter", syscallFilter{AllowList: true, Names: launcherSyscalls}),
		property("SystemCallErrorNumber", int32(syscall.EPERM)),
	}
	if len(sb.Capabilities) == 0 {
		// PrivateUsers= runs the command in a user namespace of its own,
		// and a capability there acts only on resources that namespace
		// owns (user_namespaces(7)): a kept CAP_NET_BIND_SERVICE could not
		// bind a port below 1024 in the host's network namespace. So a
		// component that keeps capabilities runs without it.
		props = append(props, property("PrivateUsers", true))
	}
	if len(sb.ReadWritePaths) > 0 {
		// ProtectSystem=strict makes every path read-only, below Landlock.
		// A "-" ignores a missing path here; the launcher then reports it.
		var paths []string
		for _, p := range sb.ReadWritePaths {
			paths = append(paths, "-"+p)
		}
		props = append(props, property("ReadWritePaths", paths))
	}
	if len(sb.AllowSyscalls) > 0 {
		props = append(props, property("SystemCallFilter", syscallFilter{AllowList: true, Names: sb.AllowSyscalls}))
	}
	if len(sb.DenySyscalls) > 0 {
		props = append(props, property("SystemCallFilter", syscallFilter{AllowList: false, Names: sb.DenySyscalls}))
	}
	if !sb.AllowJIT {
		props = append(props, property("MemoryDenyWriteExecute", true))
	}
	return append(props, networkProperties(sb.Network)...)
}

// launcherSyscalls are the calls osvm-exec and osvm-launch need beyond
// @system-service.
var launcherSyscalls = []string{"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "seccomp"}

// syscallFilter is the D-Bus form (bas) of SystemCallFilter= and
// RestrictAddressFamilies=: whether Names is an allow list, and the names.
type syscallFilter struct {
	AllowList bool
	Names     []string
}

// ipAddress is the D-Bus form (iayu) of one IPAddressAllow= or
// IPAddressDeny= entry: address family, address bytes, prefix length.
type ipAddress struct {
	Family int32
	Bytes  []byte
	Prefix uint32
}

var (
	anyIPv4      = ipAddress{syscall.AF_INET, make([]byte, 4), 0}
	anyIPv6      = ipAddress{syscall.AF_INET6, make([]byte, 16), 0}
	loopbackIPv4 = ipAddress{syscall.AF_INET, []byte{127, 0, 0, 0}, 8}
	loopbackIPv6 = ipAddress{syscall.AF_INET6, append(make([]byte, 15), 1), 128}
)

func networkProperties(network config.Network) []sddbus.Property {
	switch network {
	case config.NetworkNone:
		return []sddbus.Property{
			property("PrivateNetwork", true),
			property("RestrictAddressFamilies", syscallFilter{AllowList: true, Names: []string{"AF_UNIX"}}),
			property("IPAddressDeny", []ipAddress{anyIPv4, anyIPv6}),
		}
	case config.NetworkLoopback:
		return []sddbus.Property{
			property("RestrictAddressFamilies", syscallFilter{AllowList: true, Names: []string{"AF_UNIX", "AF_INET", "AF_INET6"}}),
			property("IPAddressDeny", []ipAddress{anyIPv4, anyIPv6}),
			property("IPAddressAllow", []ipAddress{loopbackIPv4, loopbackIPv6}),
		}
	default:
		return []sddbus.Property{
			property("RestrictAddressFamilies", syscallFilter{AllowList: true, Names: []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}}),
		}
	}
}

// capabilityMask returns the bit mask systemd expects for
// CapabilityBoundingSet= and AmbientCapabilities=. Names were validated
// when the component file was read.
func capabilityMask(names []string) uint64 {
	var mask uint64
	for _, name := range names {
		if v, err := cap.FromName(strings.ToLower(name)); err == nil {
			mask |= 1 << uint(v)
		}
	}
	return mask
}
