package sandbox

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"unsafe"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"
	"kernel.org/pub/linux/libs/security/libcap/psx"
)

// Apply confines the calling thread to the Landlock policy and the seccomp
// program, in the order the kernel needs, so that the program it executes
// next runs confined. It keeps only the capabilities named in keep (such
// as "CAP_NET_BIND_SERVICE"). Nothing of it can be undone. Apply locks the
// calling goroutine to its OS thread for good, and the caller must call
// execve(2) (syscall.Exec) from the same goroutine right after, in a
// process that runs nothing else.
//
// Every step applies to the calling thread only, and the program inherits
// them from the thread that calls execve(2), because execve(2) destroys
// "all threads other than the calling thread". The launcher's other
// threads stay unconfined until then, but they run only the Go runtime.
// Restricting one thread spares the signal round trip to every thread
// that all-thread Landlock and TSYNC need.
//
// seccompProgram is a SeccompPolicy compiled by CompileSeccomp.
func Apply(landlock *LandlockPolicy, seccompProgram []byte, keep []string) error {
	runtime.LockOSThread()

	// Capabilities first, while the thread may still hold CAP_SETPCAP:
	// an empty bounding set means even uid 0 gets no capabilities from
	// execve(2) (capabilities(7), "Transformation of capabilities during
	// execve()").
	if err := dropCapabilities(keep); err != nil {
		return err
	}

	// no_new_privs: landlock_restrict_self(2) and seccomp(2) require it of
	// a caller without CAP_SYS_ADMIN, and it makes execve(2) ignore setuid
	// bits and file capabilities. prctl(2) sets it on the calling thread.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}

	// Landlock before seccomp, because the seccomp filter may deny the
	// system calls that set up Landlock.
	if err := restrictThreadLandlock(landlock); err != nil {
		return err
	}

	return loadThreadSeccomp(seccompProgram)
}

// Confine confines every thread of the calling process for good, without
// a seccomp filter: it empties the capability sets, sets no_new_privs and
// applies the Landlock policy. The virtual machine monitor of level
// "unikernel" uses it once it has opened /dev/kvm and loaded the image,
// when its vCPU threads already run. Capability sets and no_new_privs are
// attributes of each thread, so the calls run on all threads (package
// psx, which go-landlock uses as well). The caller must not have changed
// the credentials of single threads before, because Confine looks at the
// calling thread's to decide whether capset(2) is needed.
func Confine(landlock *LandlockPolicy) error {
	// The permitted set bounds what a thread can make effective, so a
	// thread with empty sets cannot raise a capability again
	// (capabilities(7)). The monitor never executes a program, so the
	// bounding set, which applies at execve(2), can stay.
	if _, _, errno := psx.Syscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_CAP_AMBIENT_CLEAR_ALL) on every thread: %w", errno)
	}
	// The threads share the credentials they started with, because
	// nothing before Confine changes them per thread. When this one holds
	// no capability, no thread does, and capset(2) is skipped: a unit's
	// SystemCallFilter= denies it (@privileged).
	if hasPermitted() {
		// Heap values, because the kernel reads them while psx runs the
		// call on other threads, and the Go runtime may move a
		// goroutine's stack.
		header := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		data := new([2]unix.CapUserData)
		_, _, errno := psx.Syscall3(unix.SYS_CAPSET, uintptr(unsafe.Pointer(header)), uintptr(unsafe.Pointer(&data[0])), 0)
		runtime.KeepAlive(header)
		runtime.KeepAlive(data)
		if errno != 0 {
			return fmt.Errorf("capset on every thread: %w", errno)
		}
	}

	if _, _, errno := psx.Syscall6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS) on every thread: %w", errno)
	}
	return ApplyLandlock(landlock)
}

// dropCapabilities removes every capability not in keep from the calling
// thread's ambient and bounding sets. A kept capability stays in the
// ambient set, where the unit's AmbientCapabilities= put it for a user
// other than root. Both sets are attributes of the thread, and only the
// thread that calls execve(2) passes them on, so the caller must hold its
// OS thread locked until then. Without CAP_SETPCAP (a process not run by
// root) the bounding set cannot change, but such a process cannot gain
// capabilities either once no_new_privs is set, so it is left alone.
func dropCapabilities(keep []string) error {
	keepMask, err := capabilitySet(keep)
	if err != nil {
		return err
	}
	for v := 0; v <= unix.CAP_LAST_CAP; v++ {
		// PR_CAP_AMBIENT_IS_SET fails with EINVAL for a capability the
		// running kernel does not know.
		inSet, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(v), 0, 0)
		if err != nil || inSet == 0 || keepMask&(1<<v) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_LOWER, uintptr(v), 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_CAP_AMBIENT_LOWER, %s): %w", capabilityName(cap.Value(v)), err)
		}
	}
	if !hasEffective(unix.CAP_SETPCAP) {
		return nil
	}
	for v := 0; v <= unix.CAP_LAST_CAP; v++ {
		if keepMask&(1<<v) != 0 {
			continue
		}
		// Each PR_CAPBSET_DROP commits new credentials, even for a
		// capability the bounding set lacks (cap_prctl_drop in Linux's
		// security/commoncap.c), and a unit's CapabilityBoundingSet= has
		// already removed most of them. PR_CAPBSET_READ changes nothing.
		// It fails with EINVAL for a capability the running kernel does
		// not know, and then PR_CAPBSET_DROP below does too.
		if inSet, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(v), 0, 0, 0); err == nil && inSet == 0 {
			continue
		}
		// EINVAL means the running kernel has fewer capabilities than
		// CAP_LAST_CAP of these headers.
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(v), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("prctl(PR_CAPBSET_DROP, %s): %w", capabilityName(cap.Value(v)), err)
		}
	}
	return nil
}

// hasPermitted reports whether the calling thread has any capability in
// its permitted or inheritable set. It reports true when capget(2) fails,
// so that the caller tries to drop them.
func hasPermitted() bool {
	header := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&header, &data[0]); err != nil {
		return true
	}
	for _, d := range data {
		if d.Permitted != 0 || d.Inheritable != 0 {
			return true
		}
	}
	return false
}

// hasEffective reports whether the calling thread has capability c in its
// effective set.
func hasEffective(c int) bool {
	header := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&header, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0
}

// capabilitySet returns the capabilities named in names (such as
// "CAP_NET_BIND_SERVICE") as a bit mask, bit v for capability v.
func capabilitySet(names []string) (uint64, error) {
	var set uint64
	for _, name := range names {
		v, err := cap.FromName(strings.ToLower(name))
		if err != nil {
			return 0, fmt.Errorf("invalid capability %q in the plan: %w (rewrite the plan: restart the unit)", name, err)
		}
		set |= 1 << v
	}
	return set, nil
}

// capabilityName returns the name of v as the configuration writes it:
// "CAP_NET_BIND_SERVICE".
func capabilityName(v cap.Value) string {
	return strings.ToUpper(v.String())
}
