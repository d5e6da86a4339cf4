package config

import (
	"fmt"
	"strings"

	seccomp "github.com/seccomp/libseccomp-golang"
	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// isSyscallName reports whether name is a system call of the native
// architecture in libseccomp's table.
func isSyscallName(name string) bool {
	arch, err := seccomp.GetNativeArch()
	if err != nil {
		return false
	}
	call, err := seccomp.GetSyscallFromNameByArch(name, arch)
	// libseccomp returns negative pseudo numbers for calls that exist on
	// other architectures only.
	return err == nil && call >= 0
}

// capabilityName returns the canonical name of a capability ("CAP_SYS_TIME")
// given in any case, with or without the CAP_ prefix.
func capabilityName(name string) (string, error) {
	lower := strings.ToLower(name)
	if !strings.HasPrefix(lower, "cap_") {
		lower = "cap_" + lower
	}
	value, err := cap.FromName(lower)
	if err != nil {
		return "", fmt.Errorf("unknown capability %q (names are as in capabilities(7), such as \"CAP_NET_BIND_SERVICE\")", name)
	}
	return strings.ToUpper(value.String()), nil
}
