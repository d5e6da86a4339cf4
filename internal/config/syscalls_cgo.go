//go:build cgo

package config

import seccomp "github.com/seccomp/libseccomp-golang"

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
