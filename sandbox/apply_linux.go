package sandbox

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// Apply confines the calling process to p, in the order the kernel needs.
// It keeps only the capabilities named in keep (such as
// "CAP_NET_BIND_SERVICE"). Nothing of it can be undone: call it right
// before execve(2), in a process that runs nothing else.
func Apply(p *Policy, keep []string) error {
	// Capabilities first, while the process may still hold CAP_SETPCAP:
	// an empty bounding set means even uid 0 gets no capabilities from
	// execve(2) (capabilities(7), "Transformation of capabilities during
	// execve()").
	if err := dropCapabilities(keep); err != nil {
		return err
	}

	// no_new_privs: landlock_restrict_self(2) and seccomp(2) require it of
	// a caller without CAP_SYS_ADMIN, and it makes execve(2) ignore setuid
	// bits and file capabilities (prctl(2), PR_SET_NO_NEW_PRIVS).
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}

	// Landlock before seccomp, because the seccomp filter may deny the
	// system calls that set up Landlock.
	if err := ApplyLandlock(&p.Landlock); err != nil {
		return err
	}

	return LoadSeccomp(p.Seccomp)
}

// dropCapabilities removes every capability not in keep from the bounding
// set and clears the ambient set. Without CAP_SETPCAP (any process not run
// by root) the bounding set cannot change, but such a process cannot gain
// capabilities either once no_new_privs is set, so it is left alone.
func dropCapabilities(keep []string) error {
	setpcap, err := cap.GetProc().GetFlag(cap.Effective, cap.SETPCAP)
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	if err := cap.ResetAmbient(); err != nil && setpcap {
		return fmt.Errorf("clear the ambient capability set: %w", err)
	}
	if !setpcap {
		return nil
	}

	var drop []cap.Value
	for v := cap.Value(0); v < cap.MaxBits(); v++ {
		if !slices.Contains(keep, capabilityName(v)) {
			drop = append(drop, v)
		}
	}
	if err := cap.DropBound(drop...); err != nil {
		return fmt.Errorf("drop capabilities from the bounding set: %w", err)
	}
	return nil
}

// capabilityName returns the name of v as the configuration writes it:
// "CAP_NET_BIND_SERVICE".
func capabilityName(v cap.Value) string {
	return strings.ToUpper(v.String())
}
