package sandbox

import (
	"slices"
	"syscall"
	"testing"
)

func rulesFor(p *SeccompPolicy, name string) []Rule {
	var rules []Rule
	for _, r := range p.Rules {
		if r.Syscall == name {
			rules = append(rules, r)
		}
	}
	return rules
}

func TestDefaultProfileDeniesEscapeGroups(t *testing.T) {
	p, err := BuildSeccomp(ProfileDefault, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != ActionAllow {
		t.Fatalf("DefaultAction = %v, want allow", p.DefaultAction)
	}
	for _, name := range []string{
		"io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv", "process_vm_writev",
		"mount", "umount2", "pivot_root", "unshare", "setns", "bpf", "perf_event_open", "userfaultfd",
		"keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module", "kexec_load",
		"kexec_file_load", "reboot", "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime",
		"adjtimex", "iopl", "ioperm", "open_by_handle_at",
	} {
		rules := rulesFor(p, name)
		if len(rules) != 1 || rules[0].Action != ActionErrno || rules[0].Errno != syscall.EPERM || len(rules[0].Conditions) != 0 {
			t.Errorf("%s: rules %+v, want one unconditional EPERM", name, rules)
		}
	}
}

func TestDefaultProfileCloneAndSockets(t *testing.T) {
	p, _ := BuildSeccomp(ProfileDefault, nil, nil)

	clone := rulesFor(p, "clone")
	var flags uint64
	for _, r := range clone {
		if r.Errno != syscall.EPERM || len(r.Conditions) != 1 || r.Conditions[0].Op != MaskedEqual || r.Conditions[0].Index != 0 {
			t.Errorf("clone rule %+v, want EPERM on a masked flag of argument 0", r)
			continue
		}
		flags |= r.Conditions[0].Mask
	}
	want := uint64(syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUSER |
		syscall.CLONE_NEWPID | syscall.CLONE_NEWNET | syscall.CLONE_NEWCGROUP | cloneNewTime)
	if flags != want {
		t.Errorf("clone rules cover flags %#x, want every namespace flag %#x", flags, want)
	}

	if r := rulesFor(p, "clone3"); len(r) != 1 || r[0].Errno != syscall.ENOSYS {
		t.Errorf("clone3 rules %+v, want ENOSYS so that the C library falls back to clone", r)
	}

	socket := rulesFor(p, "socket")
	if len(socket) != 1 || socket[0].Errno != syscall.EPROTONOSUPPORT ||
		socket[0].Conditions[0] != (Condition{Index: 2, Op: Equal, Value: ipprotoMPTCP}) {
		t.Errorf("socket rules %+v, want EPROTONOSUPPORT for protocol IPPROTO_MPTCP", socket)
	}
}

func TestAllowAndDenyOverrides(t *testing.T) {
	p, _ := BuildSeccomp(ProfileDefault, []string{"ptrace", "clone"}, []string{"ioctl"})
	if r := rulesFor(p, "ptrace"); len(r) != 0 {
		t.Errorf("ptrace still denied after allow_syscalls: %+v", r)
	}
	if r := rulesFor(p, "clone"); len(r) != 0 {
		t.Errorf("clone still restricted after allow_syscalls: %+v", r)
	}
	if r := rulesFor(p, "ioctl"); !slices.ContainsFunc(r, func(r Rule) bool { return len(r.Conditions) == 0 && r.Errno == syscall.EPERM }) {
		t.Errorf("ioctl rules %+v, want an unconditional EPERM from deny_syscalls", r)
	}
	if r := rulesFor(p, "bpf"); len(r) != 1 {
		t.Errorf("bpf rules %+v: an allow of other calls changed the rest", r)
	}
}

func TestStrictProfile(t *testing.T) {
	p, err := BuildSeccomp(ProfileStrict, []string{"ptrace"}, []string{"ioctl"})
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != ActionErrno || p.DefaultErrno != syscall.EPERM {
		t.Fatalf("default %v/%v, want EPERM", p.DefaultAction, p.DefaultErrno)
	}
	allowed := map[string]bool{}
	for _, r := range p.Rules {
		if r.Action == ActionAllow {
			allowed[r.Syscall] = true
		}
	}
	for _, name := range []string{"read", "write", "execve", "exit_group", "mmap", "ptrace"} {
		if !allowed[name] {
			t.Errorf("strict profile does not allow %s", name)
		}
	}
	for _, name := range []string{"ioctl", "mount", "bpf", "io_uring_setup", "unshare", "kexec_load"} {
		if allowed[name] {
			t.Errorf("strict profile allows %s", name)
		}
	}
	if r := rulesFor(p, "socket"); len(r) != 1 || r[0].Conditions[0].Op != NotEqual {
		t.Errorf("socket rules %+v, want an allow for protocols other than MPTCP only", r)
	}
}

func TestDeniedListsHaveKnownNames(t *testing.T) {
	for _, list := range [][]string{DeniedSyscalls(), strictAllowed} {
		for _, name := range list {
			if slices.Contains(list[:slices.Index(list, name)], name) {
				t.Errorf("%s listed twice", name)
			}
		}
	}
	if _, err := BuildSeccomp("lenient", nil, nil); err == nil {
		t.Error("unknown profile accepted")
	}
}
