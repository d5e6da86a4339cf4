package sandbox

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
)

// execRecordMagic starts every exec record. Its last two digits are the
// layout's version, which osvm-exec checks.
const execRecordMagic = "OSVMEX02"

// RuleKind is the kind of object an ExecRule attaches to.
type RuleKind uint8

// The rule kinds, numbered as osvm-exec reads them.
const (
	RuleDir  RuleKind = 1 // a folder: the rights apply below it
	RuleFile RuleKind = 2 // any other file: file rights only
	RulePort RuleKind = 3 // a TCP port
)

// ExecRule is one Landlock rule with its rights resolved for one ABI.
type ExecRule struct {
	Kind RuleKind

	// Allowed holds LANDLOCK_ACCESS_FS_* rights for a path rule and
	// LANDLOCK_ACCESS_NET_* rights for a port rule (linux/landlock.h).
	Allowed uint64

	Path string // for RuleDir and RuleFile
	Port uint16 // for RulePort
}

// ExecRecord is the sandbox of a component at level "process" with every
// decision taken: the Landlock ruleset for the running kernel's ABI, the
// capabilities to keep and the compiled seccomp program. osvm-exec, a C
// program, applies it and executes the command without starting a Go
// runtime. It declines, and leaves the work to osvm-launch, when anything
// the record depends on has changed: a file in StartupFiles, the kind of a
// path in Rules, or a Landlock ABI older than LandlockABI.
type ExecRecord struct {
	Component, Source string

	// KernelABI is the Landlock ABI the kernel reported when the record
	// was made (KernelLandlock.Reported). osvm-exec declines the record on
	// a kernel that reports another.
	KernelABI int

	// LandlockABI is the ABI the handled rights belong to.
	LandlockABI int

	// HandledFS, HandledNet and Scoped are the ruleset's attributes
	// (struct landlock_ruleset_attr).
	HandledFS, HandledNet, Scoped uint64

	Rules []ExecRule

	// KeepCapabilities has bit v set for each capability v the bounding
	// set keeps.
	KeepCapabilities uint64

	// StartupFiles maps each file that decided the startup paths to its
	// state, as plan.Startup.Files does.
	StartupFiles map[string]string

	// ControlSockets are probed before anything else; osvm-exec declines
	// when it can connect to one of them.
	ControlSockets []string

	Argv           []string
	SeccompProgram []byte
}

// NewExecRecord returns the exec record of plan p for a kernel that offers
// kernel of Landlock. isDir reports whether a path is a folder, as stat(2)
// finds it now. It returns nil, with no error, for a plan that osvm-launch
// must run itself. Such plans are at a level other than "process", lack
// recorded startup paths or a seccomp program, or have a "best-effort"
// Landlock policy, for which go-landlock chooses what to apply. A kernel
// whose ABI the policy rejects gets no record either, so that osvm-launch
// reports that error.
func NewExecRecord(p *plan.Plan, kernel KernelLandlock, isDir func(path string) (bool, error)) (*ExecRecord, error) {
	if p.Level != config.IsolationProcess || p.Startup == nil || len(p.SeccompProgram) == 0 {
		return nil, nil
	}
	startup, err := parseStartupPaths(p.Startup)
	if err != nil {
		return nil, err
	}
	policy := LandlockFor(&p.Component.Sandbox, startup)
	if !policy.Required || policy.CheckABI(kernel.ABI) != nil {
		return nil, nil
	}
	keep, err := capabilitySet(p.Component.Sandbox.Capabilities)
	if err != nil {
		return nil, err
	}

	// The same configuration and rights that restrictThreadLandlock
	// passes to go-landlock.
	abi := min(kernel.ABI, maxKnownABI)
	cfg := abiConfig(abi)
	r := &ExecRecord{
		Component:        p.Component.Name,
		Source:           p.Source,
		KernelABI:        kernel.Reported,
		LandlockABI:      abi,
		HandledFS:        uint64(cfg.HandledAccessFS),
		HandledNet:       uint64(cfg.HandledAccessNet),
		Scoped:           uint64(cfg.Scoped),
		KeepCapabilities: keep,
		StartupFiles:     p.Startup.Files,
		ControlSockets:   ControlSockets,
		Argv:             p.Component.Exec.Command,
		SeccompProgram:   p.SeccompProgram,
	}
	for _, path := range policy.Paths {
		dir, err := isDir(path.Path)
		if err != nil {
			return nil, fmt.Errorf("landlock: rule for %s: %w", path.Path, err)
		}
		kind := RuleFile
		if dir {
			kind = RuleDir
		}
		r.Rules = append(r.Rules, ExecRule{Kind: kind, Path: path.Path, Allowed: uint64(fsRights(path.Access, dir, abi))})
	}
	for _, port := range policy.BindTCP {
		r.Rules = append(r.Rules, ExecRule{Kind: RulePort, Port: port, Allowed: ll.AccessNetBindTCP})
	}
	for _, port := range policy.ConnectTCP {
		r.Rules = append(r.Rules, ExecRule{Kind: RulePort, Port: port, Allowed: ll.AccessNetConnectTCP})
	}
	return r, nil
}

// parseStartupPaths returns the rules of a recorded startup, without
// checking its files.
func parseStartupPaths(startup *plan.Startup) ([]PathRule, error) {
	var rules []PathRule
	for _, path := range slices.Sorted(maps.Keys(startup.Paths)) {
		access, err := parseAccess(startup.Paths[path])
		if err != nil {
			return nil, fmt.Errorf("startup path %s: %w", path, err)
		}
		rules = append(rules, PathRule{Path: path, Access: access})
	}
	return rules, nil
}

// MarshalBinary encodes r in the layout osvm-exec reads: the magic, then
// the fields in the order of the struct. Integers are little-endian.
// Strings are a 32-bit length and their bytes, and lists and maps (sorted
// by key) a 32-bit count and their entries.
func (r *ExecRecord) MarshalBinary() ([]byte, error) {
	b := []byte(execRecordMagic)
	b = appendString(b, r.Component)
	b = appendString(b, r.Source)

	b = binary.LittleEndian.AppendUint32(b, uint32(r.KernelABI))
	b = binary.LittleEndian.AppendUint32(b, uint32(r.LandlockABI))
	b = binary.LittleEndian.AppendUint64(b, r.HandledFS)
	b = binary.LittleEndian.AppendUint64(b, r.HandledNet)
	b = binary.LittleEndian.AppendUint64(b, r.Scoped)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Rules)))
	for _, rule := range r.Rules {
		b = append(b, byte(rule.Kind))
		b = binary.LittleEndian.AppendUint64(b, rule.Allowed)
		if rule.Kind == RulePort {
			b = binary.LittleEndian.AppendUint64(b, uint64(rule.Port))
		} else {
			b = appendString(b, rule.Path)
		}
	}

	b = binary.LittleEndian.AppendUint64(b, r.KeepCapabilities)

	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.StartupFiles)))
	for _, path := range slices.Sorted(maps.Keys(r.StartupFiles)) {
		b = appendString(b, path)
		b = appendString(b, r.StartupFiles[path])
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.ControlSockets)))
	for _, path := range r.ControlSockets {
		b = appendString(b, path)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Argv)))
	for _, arg := range r.Argv {
		b = appendString(b, arg)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.SeccompProgram)))
	b = append(b, r.SeccompProgram...)
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
