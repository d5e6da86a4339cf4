package sandbox

import (
	"github.com/osvm-project/osvm/internal/config"
)

// Policy is the whole inner sandbox of a component, as data.
type Policy struct {
	Landlock LandlockPolicy
	Seccomp  *SeccompPolicy
}

// Build returns the policy of a component at isolation level "process".
// startup holds the paths its command needs to start (see StartupPaths).
func Build(sb *config.Sandbox, startup []PathRule) (*Policy, error) {
	seccomp, err := SeccompFor(sb)
	if err != nil {
		return nil, err
	}
	return &Policy{Landlock: LandlockFor(sb, startup), Seccomp: seccomp}, nil
}

// LandlockFor returns the Landlock policy of a component's [sandbox] table.
// startup holds the paths its command needs to start (see StartupPaths).
// osvm-launch needs only this part of Build, because osvmd compiles the
// seccomp policy into the plan.
func LandlockFor(sb *config.Sandbox, startup []PathRule) LandlockPolicy {
	paths := append([]PathRule(nil), startup...)
	for _, p := range sb.ReadOnlyPaths {
		paths = append(paths, PathRule{Path: p, Access: AccessRead})
	}
	for _, p := range sb.ReadWritePaths {
		paths = append(paths, PathRule{Path: p, Access: AccessRead | AccessWrite})
	}
	for _, p := range sb.ExecPaths {
		paths = append(paths, PathRule{Path: p, Access: AccessRead | AccessExec})
	}

	return LandlockPolicy{
		Required:   sb.Landlock != config.LandlockBestEffort,
		MinABI:     max(ABINetwork, sb.LandlockMinABI),
		Paths:      mergePaths(paths),
		BindTCP:    sb.BindPorts,
		ConnectTCP: sb.ConnectPorts,
		Scoped:     true,
	}
}

// SeccompFor returns the seccomp policy of a component's [sandbox] table.
func SeccompFor(sb *config.Sandbox) (*SeccompPolicy, error) {
	return BuildSeccomp(Profile(sb.Syscalls), sb.AllowSyscalls, sb.DenySyscalls)
}
