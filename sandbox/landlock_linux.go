package sandbox

import (
	"fmt"
	"os"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// maxKnownABI is the newest Landlock ABI whose rights this package grants.
const maxKnownABI = 7

// KernelLandlock is the Landlock support of the running kernel.
type KernelLandlock struct {
	// Reported is the ABI version the kernel reports
	// (landlock_create_ruleset(2) with LANDLOCK_CREATE_RULESET_VERSION),
	// 0 when it has no Landlock or it is disabled.
	Reported int

	// ABI is the version this package builds rulesets for: Reported, or
	// lower where go-landlock refuses the rights of Reported on this
	// kernel. go-landlock v0.11 counts a kernel that reports ABI 6 or
	// later as ABI 5 unless the kernel also reports the fix for Landlock
	// erratum 2.
	ABI int
}

// DetectLandlock returns the Landlock support of the running kernel.
func DetectLandlock() KernelLandlock {
	reported, err := ll.LandlockGetABIVersion()
	if err != nil || reported <= 0 {
		return KernelLandlock{}
	}
	newest := min(reported, maxKnownABI)
	for abi := newest; abi >= 1; abi-- {
		fd, _, err := abiConfig(abi).NewRulesetFD()
		if err != nil {
			continue
		}
		if fd >= 0 {
			unix.Close(fd)
		}
		if abi == newest {
			// A kernel newer than this package keeps its own number, so
			// that a component's landlock_min_abi compares with it.
			return KernelLandlock{Reported: reported, ABI: reported}
		}
		return KernelLandlock{Reported: reported, ABI: abi}
	}
	return KernelLandlock{Reported: reported}
}

// LandlockABI returns the Landlock ABI version this package builds
// rulesets for on the running kernel (KernelLandlock.ABI), or 0 without
// Landlock.
func LandlockABI() int {
	return DetectLandlock().ABI
}

// ApplyLandlock restricts the calling process, all its threads and every
// process it executes to p. It fails with an *ABIError when p is required
// and the kernel's ABI is too old, before restricting anything.
func ApplyLandlock(p *LandlockPolicy) error {
	cfg, rules, err := landlockRuleset(p)
	if err != nil {
		return err
	}
	if err := cfg.Restrict(rules...); err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	return nil
}

// restrictThreadLandlock restricts the calling thread alone, and the
// program it executes, to p. Without LANDLOCK_RESTRICT_SELF_TSYNC,
// landlock_restrict_self(2) "enables enforcing this ruleset on the calling
// thread". The caller must hold its OS thread locked, must have set
// no_new_privs on it, and must call execve(2) from it. It fails like
// ApplyLandlock.
func restrictThreadLandlock(p *LandlockPolicy) error {
	cfg, rules, err := landlockRuleset(p)
	if err != nil {
		return err
	}
	fd, flags, err := cfg.NewRulesetFD(rules...)
	if err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	if fd < 0 {
		// A best-effort policy on a kernel without Landlock enforces
		// nothing.
		return nil
	}
	defer unix.Close(fd)
	if err := ll.LandlockRestrictSelf(fd, flags); err != nil {
		return fmt.Errorf("landlock_restrict_self: %w", err)
	}
	return nil
}

// landlockRuleset returns the go-landlock configuration and rules of p for
// the running kernel. It fails with an *ABIError when p is required and the
// kernel's ABI is too old.
func landlockRuleset(p *LandlockPolicy) (landlock.Config, []landlock.Rule, error) {
	abi := LandlockABI()
	if err := p.CheckABI(abi); err != nil {
		return landlock.Config{}, nil, err
	}

	var cfg landlock.Config
	if p.Required {
		// A strict configuration of the kernel's own ABI applies every
		// right the kernel has; MinABI is already checked.
		cfg = abiConfig(min(abi, maxKnownABI))
	} else {
		cfg = abiConfig(maxKnownABI).BestEffort()
	}

	rules, err := landlockRules(p, min(abi, maxKnownABI))
	if err != nil {
		return landlock.Config{}, nil, err
	}
	return cfg, rules, nil
}

func abiConfig(abi int) landlock.Config {
	configs := []landlock.Config{landlock.V1, landlock.V1, landlock.V2, landlock.V3, landlock.V4, landlock.V5, landlock.V6, landlock.V7}
	return configs[max(1, min(abi, len(configs)-1))]
}

// landlockRules turns p into go-landlock rules with the rights of ABI abi.
// A path must exist, because the rule attaches to its inode.
func landlockRules(p *LandlockPolicy, abi int) ([]landlock.Rule, error) {
	var rules []landlock.Rule
	for _, path := range p.Paths {
		info, err := os.Stat(path.Path)
		if err != nil {
			return nil, fmt.Errorf("landlock: rule for %s: %w", path.Path, err)
		}
		rules = append(rules, landlock.PathAccess(fsRights(path.Access, info.IsDir(), abi), path.Path))
	}
	for _, port := range p.BindTCP {
		rules = append(rules, landlock.BindTCP(port))
	}
	for _, port := range p.ConnectTCP {
		rules = append(rules, landlock.ConnectTCP(port))
	}
	return rules, nil
}

// fsRights maps an Access to Landlock's file system rights available at ABI
// abi. Rights on folders cover everything below them; a file takes only
// the rights that apply to files.
func fsRights(a Access, dir bool, abi int) landlock.AccessFSSet {
	var rights landlock.AccessFSSet
	if a&AccessRead != 0 {
		rights |= ll.AccessFSReadFile
		if dir {
			rights |= ll.AccessFSReadDir
		}
	}
	if a&AccessExec != 0 {
		rights |= ll.AccessFSExecute
	}
	if a&AccessWrite != 0 {
		rights |= ll.AccessFSWriteFile
		if abi >= 3 {
			rights |= ll.AccessFSTruncate
		}
		if dir {
			rights |= ll.AccessFSRemoveDir | ll.AccessFSRemoveFile | ll.AccessFSMakeDir |
				ll.AccessFSMakeReg | ll.AccessFSMakeSock | ll.AccessFSMakeFifo | ll.AccessFSMakeSym
			if abi >= 2 {
				rights |= ll.AccessFSRefer
			}
		}
	}
	return rights
}
