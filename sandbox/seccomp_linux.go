package sandbox

import (
	"fmt"
	"sort"
	"strings"
	"syscall"

	seccomp "github.com/seccomp/libseccomp-golang"
)

// CheckSyscallNames returns an error that lists every name that is not a
// system call of the native architecture in libseccomp's table.
func CheckSyscallNames(names []string) error {
	var unknown []string
	for _, name := range names {
		if _, err := nativeSyscall(name); err != nil {
			unknown = append(unknown, fmt.Sprintf("%q", name))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("unknown system call %s (names are as in syscalls(2), such as \"ptrace\" or \"openat\")", strings.Join(unknown, ", "))
	}
	return nil
}

func nativeSyscall(name string) (seccomp.ScmpSyscall, error) {
	arch, err := seccomp.GetNativeArch()
	if err != nil {
		return 0, err
	}
	call, err := seccomp.GetSyscallFromNameByArch(name, arch)
	if err != nil {
		return 0, err
	}
	// libseccomp returns negative pseudo numbers for calls that exist on
	// other architectures only.
	if call < 0 {
		return 0, fmt.Errorf("no system call %q on %s", name, arch)
	}
	return call, nil
}

// LoadSeccomp installs p as the seccomp filter of the calling process and
// every thread of it (libseccomp sets SECCOMP_FILTER_FLAG_TSYNC). Loading
// also sets no_new_privs, which seccomp(2) requires of an unprivileged
// caller. The filter stays across execve(2) and cannot be removed.
//
// Rules for system calls that the native architecture lacks are skipped:
// the built-in lists name calls of several architectures.
func LoadSeccomp(p *SeccompPolicy) error {
	filter, err := seccomp.NewFilter(action(p.DefaultAction, p.DefaultErrno))
	if err != nil {
		return fmt.Errorf("seccomp: create filter: %w", err)
	}
	defer filter.Release()

	// The filter matches the native system call table only, so every other
	// architecture kills the process (see SeccompPolicy).
	if err := filter.SetBadArchAction(seccomp.ActKillProcess); err != nil {
		return fmt.Errorf("seccomp: set the action for foreign architectures: %w", err)
	}

	for _, rule := range sortedRules(p.Rules) {
		call, err := nativeSyscall(rule.Syscall)
		if err != nil {
			continue
		}
		conditions, err := scmpConditions(rule.Conditions)
		if err != nil {
			return fmt.Errorf("seccomp: rule for %s: %w", rule.Syscall, err)
		}
		if len(conditions) == 0 {
			err = filter.AddRule(call, action(rule.Action, rule.Errno))
		} else {
			err = filter.AddRuleConditional(call, action(rule.Action, rule.Errno), conditions)
		}
		if err != nil {
			return fmt.Errorf("seccomp: add rule for %s: %w", rule.Syscall, err)
		}
	}

	if err := filter.Load(); err != nil {
		return fmt.Errorf("seccomp: load filter: %w", err)
	}
	return nil
}

// sortedRules puts unconditional rules first, so that a system call with
// both kinds gets its conditional rules checked against the unconditional
// one by libseccomp in a fixed order.
func sortedRules(rules []Rule) []Rule {
	sorted := append([]Rule(nil), rules...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return len(sorted[i].Conditions) == 0 && len(sorted[j].Conditions) > 0
	})
	return sorted
}

func action(a Action, errno syscall.Errno) seccomp.ScmpAction {
	if a == ActionAllow {
		return seccomp.ActAllow
	}
	return seccomp.ActErrno.SetReturnCode(int16(errno))
}

func scmpConditions(conditions []Condition) ([]seccomp.ScmpCondition, error) {
	var out []seccomp.ScmpCondition
	for _, c := range conditions {
		var (
			cond seccomp.ScmpCondition
			err  error
		)
		switch c.Op {
		case Equal:
			cond, err = seccomp.MakeCondition(c.Index, seccomp.CompareEqual, c.Value)
		case NotEqual:
			cond, err = seccomp.MakeCondition(c.Index, seccomp.CompareNotEqual, c.Value)
		case MaskedEqual:
			cond, err = seccomp.MakeCondition(c.Index, seccomp.CompareMaskedEqual, c.Mask, c.Value)
		default:
			err = fmt.Errorf("unknown comparison %d", c.Op)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, cond)
	}
	return out, nil
}
