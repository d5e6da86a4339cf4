package sandbox

import (
	"fmt"
	"slices"
	"syscall"
)

// Profile names the seccomp profile of a component: sandbox.syscalls.
type Profile string

const (
	// ProfileDefault allows every system call except the groups in
	// deniedGroups, which fail with EPERM.
	ProfileDefault Profile = "default"

	// ProfileStrict allows only strictAllowed and the component's
	// allow_syscalls; everything else fails with EPERM.
	ProfileStrict Profile = "strict"
)

// Action is the effect of a seccomp rule on a matching system call.
type Action int

const (
	ActionAllow Action = iota + 1
	ActionErrno        // fail with Rule.Errno
)

// Compare is the comparison a Condition applies to a system call argument.
type Compare int

const (
	Equal       Compare = iota + 1 // arg == Value
	NotEqual                       // arg != Value
	MaskedEqual                    // arg & Mask == Value
	Less                           // arg < Value
	Greater                        // arg > Value
)

// Condition compares one system call argument with a value.
type Condition struct {
	Index uint // argument number, from 0
	Op    Compare
	Value uint64
	Mask  uint64 // for MaskedEqual
}

// Rule is one seccomp rule.
type Rule struct {
	Syscall string
	Action  Action
	Errno   syscall.Errno // for ActionErrno

	// Conditions must all hold for the rule to match; empty matches every
	// call.
	Conditions []Condition
}

// SeccompPolicy is a seccomp filter as data: what the launcher loads right
// before it executes the component's command. Calls of every architecture
// other than the native one (such as i386 calls through int 0x80 on
// x86-64, or x32 calls) kill the process, because a filter written for one
// system call table does not apply to another.
type SeccompPolicy struct {
	DefaultAction Action
	DefaultErrno  syscall.Errno // for DefaultAction == ActionErrno
	Rules         []Rule
}

// namespaceFlagList holds the clone(2) flags that create namespaces. A
// process that makes a new user namespace gains capabilities in it, the
// first step of many kernel exploits.
var namespaceFlagList = []uint64{
	syscall.CLONE_NEWNS, syscall.CLONE_NEWUTS, syscall.CLONE_NEWIPC, syscall.CLONE_NEWUSER,
	syscall.CLONE_NEWPID, syscall.CLONE_NEWNET, syscall.CLONE_NEWCGROUP, cloneNewTime,
}

// cloneNewTime is CLONE_NEWTIME (linux/sched.h), missing from package
// syscall.
const cloneNewTime = 0x80

// modeArgument names a system call that sets file mode bits, and the
// number of its mode argument.
type modeArgument struct {
	name  string
	index uint
}

var modeArguments = []modeArgument{
	{"chmod", 1}, {"fchmod", 1}, {"fchmodat", 2},
	{"open", 2}, {"openat", 3}, {"creat", 1},
	{"mkdir", 1}, {"mkdirat", 2}, {"mknod", 1}, {"mknodat", 2},
}

// terminalInjection are the ioctl requests that write into a terminal's
// input queue: TIOCSTI and TIOCLINUX (asm-generic/ioctls.h).
var terminalInjection = []uint64{0x5412, 0x541c}

// ioctlAllowed returns the conditions of the strict profile's ioctl allow
// rules: every request below, between and above those in
// terminalInjection. The rule for requests above also matches the
// injection requests with some of the upper 32 bits set, which the kernel
// ignores; terminalInjectionRules(EACCES) catches those.
func ioctlAllowed() [][]Condition {
	sti, linux := terminalInjection[0], terminalInjection[1]
	allowed := [][]Condition{
		{{Index: 1, Op: Less, Value: sti}},
		{{Index: 1, Op: Greater, Value: linux}},
	}
	for request := sti + 1; request < linux; request++ {
		allowed = append(allowed, []Condition{{Index: 1, Op: Equal, Value: request}})
	}
	return allowed
}

// terminalInjectionRules deny the requests in terminalInjection in the
// default profile.
func terminalInjectionRules(errno syscall.Errno) []Rule {
	var rules []Rule
	for _, request := range terminalInjection {
		rules = append(rules, Rule{
			Syscall: "ioctl", Action: ActionErrno, Errno: errno,
			Conditions: []Condition{{Index: 1, Op: MaskedEqual, Mask: 0xffffffff, Value: request}},
		})
	}
	return rules
}

// ipprotoMPTCP is IPPROTO_MPTCP (linux/in.h).
const ipprotoMPTCP = 262

// deniedGroups are the system calls the default profile denies, by group.
// Each group is a way out of a sandbox or into the kernel's attack surface.
var deniedGroups = []struct {
	name     string
	syscalls []string
}{
	// io_uring performs reads, writes and socket calls without passing
	// through the system call filter.
	{"io_uring", []string{"io_uring_setup", "io_uring_enter", "io_uring_register"}},
	{"ptrace", []string{"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "kcmp", "pidfd_getfd"}},
	{"mount", []string{"mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr"}},
	{"namespaces", []string{"unshare", "setns"}},
	{"bpf", []string{"bpf"}},
	{"perf", []string{"perf_event_open"}},
	{"userfaultfd", []string{"userfaultfd"}},
	{"keyring", []string{"keyctl", "add_key", "request_key"}},
	{"modules", []string{"init_module", "finit_module", "delete_module"}},
	{"reboot", []string{"kexec_load", "kexec_file_load", "reboot"}},
	{"swap", []string{"swapon", "swapoff"}},
	{"clock", []string{"settimeofday", "clock_settime", "clock_adjtime", "adjtimex"}},
	{"raw-io", []string{"iopl", "ioperm"}},
	{"file-handles", []string{"open_by_handle_at", "name_to_handle_at"}},
	{"obsolete", []string{"acct", "quotactl", "quotactl_fd", "lookup_dcookie", "vhangup", "uselib", "ustat", "sysfs", "_sysctl", "nfsservctl", "syslog"}},
}

// DeniedSyscalls returns the system calls the default profile denies
// outright, without argument conditions.
func DeniedSyscalls() []string {
	var names []string
	for _, g := range deniedGroups {
		names = append(names, g.syscalls...)
	}
	return names
}

// strictAllowed is the allow list of the strict profile: the calls a
// statically or dynamically linked program needs to start, allocate memory,
// use threads, files, sockets and signals, and exit. A program that needs
// more names them in allow_syscalls.
var strictAllowed = []string{
	// Process start and exit.
	"execve", "execveat", "exit", "exit_group", "arch_prctl", "set_tid_address", "set_robust_list",
	"rseq", "prctl", "getrandom", "uname", "prlimit64", "getrlimit", "setrlimit",
	// Memory.
	"brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "msync", "mincore", "mlock", "munlock",
	// Files.
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
	"open", "openat", "openat2", "close", "close_range", "lseek", "fstat", "stat", "lstat", "newfstatat", "statx",
	"access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents64", "getcwd", "chdir", "fchdir",
	"fcntl", "dup", "dup2", "dup3", "pipe", "pipe2", "ioctl", "fsync", "fdatasync", "ftruncate", "truncate",
	"mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat",
	"symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "fchown", "fchownat", "chown", "lchown", "umask",
	"utimensat", "futimesat", "fadvise64", "fallocate", "statfs", "fstatfs", "flock", "sendfile",
	"copy_file_range", "splice", "tee", "memfd_create", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	// Threads and synchronization.
	"clone", "clone3", "futex", "futex_waitv", "sched_yield", "sched_getaffinity", "sched_setaffinity",
	"gettid", "getpid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid",
	"getresgid", "getpgrp", "getpgid", "getsid", "setsid", "setpgid", "membarrier",
	// Signals, time and waiting.
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend", "rt_sigtimedwait",
	"rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "kill", "tgkill", "tkill", "pidfd_open",
	"pidfd_send_signal", "wait4", "waitid", "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres",
	"gettimeofday", "time", "times", "getrusage", "getitimer", "setitimer", "alarm", "pause",
	"timerfd_create", "timerfd_settime", "timerfd_gettime", "timer_create", "timer_settime",
	"timer_gettime", "timer_delete", "signalfd4", "eventfd2",
	// Polling.
	"poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
	"epoll_pwait2",
	// Sockets; which addresses they reach is Landlock's and systemd's job.
	"socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
	"sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "setsockopt", "getsockopt",
	// Landlock, for programs that sandbox themselves further.
	"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
}

// BuildSeccomp returns the filter of a profile. allow removes system calls
// from the default profile's deny list, or adds them to the strict
// profile's allow list; deny adds system calls to the deny list of either.
// Names must be valid system call names of the native architecture (see
// CheckSyscallNames).
func BuildSeccomp(profile Profile, allow, deny []string) (*SeccompPolicy, error) {
	eperm := syscall.EPERM
	p := &SeccompPolicy{}
	switch profile {
	case ProfileDefault, "":
		p.DefaultAction = ActionAllow
		for _, name := range DeniedSyscalls() {
			if !slices.Contains(allow, name) {
				p.Rules = append(p.Rules, Rule{Syscall: name, Action: ActionErrno, Errno: eperm})
			}
		}
		if !slices.Contains(allow, "clone") {
			// clone with a namespace flag fails; plain clone (threads,
			// fork) passes. clone3 passes its flags in memory, which a
			// filter cannot read, so it fails with ENOSYS and the C
			// library falls back to clone.
			for _, flag := range namespaceFlagList {
				p.Rules = append(p.Rules, Rule{
					Syscall: "clone", Action: ActionErrno, Errno: eperm,
					Conditions: []Condition{{Index: 0, Op: MaskedEqual, Mask: flag, Value: flag}},
				})
			}
		}
		// Files with setuid or setgid bits fail, as under systemd's
		// RestrictSUIDSGID=, so that a later exec outside the sandbox
		// cannot gain this component's identity.
		for _, call := range modeArguments {
			for _, bit := range []uint64{syscall.S_ISUID, syscall.S_ISGID} {
				p.Rules = append(p.Rules, Rule{
					Syscall: call.name, Action: ActionErrno, Errno: eperm,
					Conditions: []Condition{{Index: call.index, Op: MaskedEqual, Mask: bit, Value: bit}},
				})
			}
		}
		// Pushing bytes into a terminal's input (TIOCSTI) or TIOCLINUX's
		// equivalents would let a component type commands into the shell
		// that started it, outside every sandbox (the kernel's
		// dev.tty.legacy_tiocsti, Linux 6.2, turns TIOCSTI off host-wide;
		// Debian 12 lacks it). The request number is 32 bits wide, so the
		// upper half of the argument is masked off as the kernel does.
		p.Rules = append(p.Rules, terminalInjectionRules(eperm)...)
		if !slices.Contains(allow, "clone3") {
			p.Rules = append(p.Rules, Rule{Syscall: "clone3", Action: ActionErrno, Errno: syscall.ENOSYS})
		}
	case ProfileStrict:
		p.DefaultAction, p.DefaultErrno = ActionErrno, eperm
		for _, name := range slices.Concat(strictAllowed, allow) {
			if slices.Contains(deny, name) || hasRule(p.Rules, name) {
				continue
			}
			rule := Rule{Syscall: name, Action: ActionAllow}
			if name == "socket" {
				rule.Conditions = []Condition{notMPTCP}
			}
			if name == "ioctl" {
				// Every request but the terminal injection ones, which
				// then fail with the default EPERM (see terminalInjection).
				for _, conditions := range ioctlAllowed() {
					p.Rules = append(p.Rules, Rule{Syscall: name, Action: ActionAllow, Conditions: conditions})
				}
				// EACCES, because libseccomp rejects a rule whose action
				// equals the default action, EPERM.
				p.Rules = append(p.Rules, terminalInjectionRules(syscall.EACCES)...)
				continue
			}
			if i := slices.IndexFunc(modeArguments, func(m modeArgument) bool { return m.name == name }); i >= 0 {
				rule.Conditions = []Condition{{Index: modeArguments[i].index, Op: MaskedEqual, Mask: syscall.S_ISUID | syscall.S_ISGID, Value: 0}}
			}
			p.Rules = append(p.Rules, rule)
		}
		return p, nil
	default:
		return nil, fmt.Errorf("unknown seccomp profile %q (valid: %q, %q)", profile, ProfileDefault, ProfileStrict)
	}

	// Multipath TCP sockets escape Landlock's TCP rules. They fail with
	// EPROTONOSUPPORT, the error of a kernel without MPTCP, so programs
	// that try MPTCP first (Go 1.24 and later) fall back to TCP.
	p.Rules = append(p.Rules, Rule{
		Syscall: "socket", Action: ActionErrno, Errno: syscall.EPROTONOSUPPORT,
		Conditions: []Condition{{Index: 2, Op: Equal, Value: ipprotoMPTCP}},
	})
	for _, name := range deny {
		if !hasRule(p.Rules, name) {
			p.Rules = append(p.Rules, Rule{Syscall: name, Action: ActionErrno, Errno: eperm})
		}
	}
	return p, nil
}

// notMPTCP matches socket(2) calls whose protocol is not IPPROTO_MPTCP. The
// strict profile allows only those, so that MPTCP sockets fail with the
// default EPERM.
var notMPTCP = Condition{Index: 2, Op: NotEqual, Value: ipprotoMPTCP}

func hasRule(rules []Rule, name string) bool {
	return slices.ContainsFunc(rules, func(r Rule) bool { return r.Syscall == name && len(r.Conditions) == 0 })
}
