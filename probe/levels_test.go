package probe

import (
	"reflect"
	"testing"
)

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

func problem(message, errno string) *Problem {
	return &Problem{Message: message, Errno: errno}
}

// capableFacts returns the facts of a host that offers every level except
// microvm: an AMD host with SEV-SNP, probed as root.
func capableFacts() Facts {
	return Facts{
		Kernel: "6.12.41",
		CPU:    CPU{Vendor: "AuthenticAMD", SVM: true, CPUID: true, MaxLeaf: 0x10, MaxExtendedLeaf: 0x80000028},
		KVM: KVM{
			Device: "/dev/kvm", Exists: true, Mode: "0660", Owner: "root", Group: "kvm", GroupAccess: true, Opened: true,
			APIVersion: 12, IRQChip: true, UserMemory: true, ImmediateExit: true,
			VMTypesKnown: true, VMTypes: []string{"default", "sev", "sev_es", "snp"},
			Modules: []string{"kvm", "kvm_amd"}, Backend: BackendSVM,
		},
		Landlock:       Landlock{ABI: 6},
		Seccomp:        Seccomp{Filters: true, Actions: []string{"kill_process", "kill_thread", "trap", "errno", "user_notif", "trace", "log", "allow"}},
		Cgroups:        Cgroups{Mode: CgroupUnified, V1Controllers: []string{}, V2Controllers: []string{"cpu", "io", "memory", "pids"}},
		UserNamespaces: UserNamespaces{Max: 63451},
		Systemd:        Systemd{Version: 257, FullVersion: "257.7-1", Source: "systemctl --version", Running: true},
		SEV: SEV{
			CPUIDLeaf: true, CPUSEV: true, CPUSEVES: true, CPUSNP: true,
			KVMSEV: yes(), KVMSEVES: yes(), KVMSNP: yes(), Device: true,
		},
		HugePages: HugePages{SizeKiB: 2048, Transparent: "madvise"},
	}
}

// intelFacts returns capableFacts on an Intel host with VT-x and no TDX.
func intelFacts() Facts {
	f := capableFacts()
	f.CPU = CPU{Vendor: "GenuineIntel", VMX: true, CPUID: true, MaxLeaf: 0x20, MaxExtendedLeaf: 0x80000008}
	f.KVM.Modules = []string{"kvm", "kvm_intel"}
	f.KVM.Backend = BackendVMX
	f.KVM.VMTypes = []string{"default"}
	f.SEV = SEV{DeviceError: problem("access /dev/sev: no such file or directory", "ENOENT")}
	return f
}

func TestLevelsCapableHost(t *testing.T) {
	f := capableFacts()
	want := []LevelStatus{
		available(LevelNone),
		available(LevelProcess),
		available(LevelContainer),
		unavailable(LevelMicroVM, microVMMissing),
		available(LevelUnikernel),
		available(LevelTEE),
	}
	if got := Levels(&f); !reflect.DeepEqual(got, want) {
		t.Errorf("Levels:\n got %#v\nwant %#v", got, want)
	}
}

// TestLevelReasons changes one fact of a capable host at a time and checks
// the status of the one level that depends on it.
func TestLevelReasons(t *testing.T) {
	const (
		kvmAccessGroup = "needs read-write access to /dev/kvm (open /dev/kvm: permission denied): add the user that runs osvmd to group kvm, or run osvmd as root"
		kvmAccessRoot  = "needs read-write access to /dev/kvm (open /dev/kvm: permission denied): only root can open /dev/kvm (mode 0600, owner root, group root), so run osvmd as root, or give the device group kvm and mode 0660 with a udev rule and add osvmd's user to group kvm"
	)
	tests := []struct {
		name   string
		base   func() Facts
		change func(f *Facts)
		want   LevelStatus
	}{
		// process
		{
			name:   "kernel without seccomp",
			change: func(f *Facts) { f.Seccomp.ModeError = problem("prctl(PR_GET_SECCOMP): invalid argument", "EINVAL") },
			want:   unavailable(LevelProcess, "needs seccomp, but the kernel has none (prctl(PR_GET_SECCOMP): invalid argument): use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER"),
		},
		{
			name: "kernel without seccomp filters",
			change: func(f *Facts) {
				f.Seccomp = Seccomp{Actions: []string{}, ActionsError: problem("open /proc/sys/kernel/seccomp/actions_avail: no such file or directory", "ENOENT")}
			},
			want: unavailable(LevelProcess, "needs seccomp filters, but /proc/sys/kernel/seccomp/actions_avail does not exist: use a kernel built with CONFIG_SECCOMP_FILTER, Linux 4.14 or newer"),
		},
		{
			name: "unreadable seccomp actions",
			change: func(f *Facts) {
				f.Seccomp = Seccomp{Actions: []string{}, ActionsError: problem("open /proc/sys/kernel/seccomp/actions_avail: permission denied", "EACCES")}
			},
			want: unavailable(LevelProcess, "needs seccomp filters, but the probe could not read the actions the kernel offers (open /proc/sys/kernel/seccomp/actions_avail: permission denied)"),
		},
		{
			name:   "seccomp without kill_process",
			change: func(f *Facts) { f.Seccomp.Actions = []string{"kill", "trap", "errno", "trace", "allow"} },
			want:   unavailable(LevelProcess, "needs the seccomp filter actions allow, errno, kill_process, but /proc/sys/kernel/seccomp/actions_avail lacks kill_process: use Linux 4.14 or newer"),
		},
		{
			name:   "probe already under a seccomp filter",
			change: func(f *Facts) { f.Seccomp.Mode = 2 },
			want:   available(LevelProcess),
		},
		{
			name: "kernel without Landlock",
			change: func(f *Facts) {
				f.Landlock = Landlock{Error: problem("landlock_create_ruleset: function not implemented", "ENOSYS")}
			},
			want: unavailable(LevelProcess, "needs Landlock, but the kernel has no Landlock system calls (landlock_create_ruleset: function not implemented): use a kernel built with CONFIG_SECURITY_LANDLOCK, Linux 6.7 or newer"),
		},
		{
			name: "Landlock blocked by a seccomp filter",
			change: func(f *Facts) {
				f.Landlock = Landlock{Error: problem("landlock_create_ruleset: operation not permitted", "EPERM")}
			},
			want: unavailable(LevelProcess, "needs Landlock, but the probe could not query its ABI (landlock_create_ruleset: operation not permitted)"),
		},
		{
			name:   "Landlock ABI 3",
			change: func(f *Facts) { f.Landlock.ABI = 3 },
			want:   unavailable(LevelProcess, "needs Landlock ABI 4 or newer for TCP port rules (Linux 6.7), but the kernel has ABI 3: upgrade the kernel"),
		},
		{
			name:   "Landlock ABI 4",
			change: func(f *Facts) { f.Landlock.ABI = 4 },
			want:   available(LevelProcess),
		},
		{
			name: "no seccomp and no Landlock",
			change: func(f *Facts) {
				f.Seccomp.Actions = []string{"allow", "errno"}
				f.Landlock.ABI = 1
			},
			want: unavailable(LevelProcess,
				"needs the seccomp filter actions allow, errno, kill_process, but /proc/sys/kernel/seccomp/actions_avail lacks kill_process: use Linux 4.14 or newer",
				"needs Landlock ABI 4 or newer for TCP port rules (Linux 6.7), but the kernel has ABI 1: upgrade the kernel"),
		},

		// container
		{
			name:   "user namespaces disabled",
			change: func(f *Facts) { f.UserNamespaces.Max = 0 },
			want:   unavailable(LevelContainer, "needs user namespaces, but user.max_user_namespaces is 0: set it above 0 with sysctl, for example in /etc/sysctl.d/"),
		},
		{
			name: "kernel without user namespaces",
			change: func(f *Facts) {
				f.UserNamespaces = UserNamespaces{MaxError: problem("open /proc/sys/user/max_user_namespaces: no such file or directory", "ENOENT")}
			},
			want: unavailable(LevelContainer, "needs user namespaces, but /proc/sys/user/max_user_namespaces does not exist: use a kernel built with CONFIG_USER_NS"),
		},
		{
			name: "unprivileged user namespaces off",
			change: func(f *Facts) {
				f.UserNamespaces.UnprivilegedClone = no()
			},
			want: unavailable(LevelContainer, "needs user namespaces created by unprivileged users, but kernel.unprivileged_userns_clone is 0: set it to 1 with sysctl, for example in /etc/sysctl.d/"),
		},
		{
			name: "AppArmor restricts unprivileged user namespaces",
			change: func(f *Facts) {
				f.UserNamespaces.AppArmorRestricted = yes()
			},
			want: unavailable(LevelContainer, "needs user namespaces created by unprivileged users, but kernel.apparmor_restrict_unprivileged_userns is 1: set it to 0, or give osvm-launch an AppArmor profile that allows userns"),
		},
		{
			name: "no cgroups",
			change: func(f *Facts) {
				f.Cgroups = Cgroups{Mode: CgroupUnavailable, V1Controllers: []string{}, V2Controllers: []string{}}
			},
			want: unavailable(LevelContainer, "needs cgroups, but nothing is mounted at /sys/fs/cgroup: boot with systemd, which mounts them"),
		},
		{
			name: "no memory controller",
			change: func(f *Facts) {
				f.Cgroups.V2Controllers = []string{"cpu", "io", "pids"}
			},
			want: unavailable(LevelContainer, "needs the cgroup controllers cpu, memory, pids for resource limits, but the host lacks memory: use a kernel with these controllers and do not disable them with cgroup_disable="),
		},
		{
			name: "hybrid controllers count from both versions",
			change: func(f *Facts) {
				f.Cgroups = Cgroups{Mode: CgroupHybrid, V1Controllers: []string{"cpu", "memory", "pids"}, V2Controllers: []string{"hugetlb"}}
			},
			want: available(LevelContainer),
		},
		{
			name: "unreadable controllers",
			change: func(f *Facts) {
				f.Cgroups = Cgroups{Mode: CgroupUnified, V1Controllers: []string{}, V2Controllers: []string{},
					Error: problem("open /sys/fs/cgroup/cgroup.controllers: permission denied", "EACCES")}
			},
			want: unavailable(LevelContainer, "needs the cgroup controllers cpu, memory, pids for resource limits, but the host lacks cpu, memory, pids (open /sys/fs/cgroup/cgroup.controllers: permission denied): use a kernel with these controllers and do not disable them with cgroup_disable="),
		},
		{
			name:   "systemd 251",
			change: func(f *Facts) { f.Systemd.Version = 251 },
			want:   unavailable(LevelContainer, "needs systemd 252 or newer, but this host has systemd 251: upgrade systemd"),
		},
		{
			name: "systemd not found",
			change: func(f *Facts) {
				f.Systemd = Systemd{Error: &Problem{Message: `systemctl --version: exec: "systemctl": executable file not found in $PATH`}}
			},
			want: unavailable(LevelContainer, `needs systemd 252 or newer, but the probe found no systemd version (systemctl --version: exec: "systemctl": executable file not found in $PATH): install systemd`),
		},

		// unikernel
		{
			name: "no /dev/kvm on a VMX host",
			base: intelFacts,
			change: func(f *Facts) {
				f.KVM = KVM{Device: "/dev/kvm", StatError: problem("stat /dev/kvm: no such file or directory", "ENOENT")}
			},
			want: unavailable(LevelUnikernel, "needs /dev/kvm, which does not exist: load the kvm_intel module (modprobe kvm_intel)"),
		},
		{
			name: "no /dev/kvm on an SVM host",
			change: func(f *Facts) {
				f.KVM = KVM{Device: "/dev/kvm", StatError: problem("stat /dev/kvm: no such file or directory", "ENOENT")}
			},
			want: unavailable(LevelUnikernel, "needs /dev/kvm, which does not exist: load the kvm_amd module (modprobe kvm_amd)"),
		},
		{
			name: "no /dev/kvm, virtualization off in the firmware",
			base: intelFacts,
			change: func(f *Facts) {
				f.CPU.VMX = false
				f.KVM = KVM{Device: "/dev/kvm", StatError: problem("stat /dev/kvm: no such file or directory", "ENOENT")}
			},
			want: unavailable(LevelUnikernel, "needs /dev/kvm, which does not exist: the CPU reports neither VMX nor SVM, so enable virtualization (Intel VT-x or AMD-V) in the firmware settings"),
		},
		{
			name: "/dev/kvm not statable",
			change: func(f *Facts) {
				f.KVM = KVM{Device: "/dev/kvm", StatError: problem("stat /dev/kvm: permission denied", "EACCES")}
			},
			want: unavailable(LevelUnikernel, "needs /dev/kvm (stat /dev/kvm: permission denied)"),
		},
		{
			name: "not in group kvm",
			change: func(f *Facts) {
				f.KVM.Opened = false
				f.KVM.OpenError = problem("open /dev/kvm: permission denied", "EACCES")
			},
			want: unavailable(LevelUnikernel, kvmAccessGroup),
		},
		{
			name: "/dev/kvm only for root",
			change: func(f *Facts) {
				f.KVM.Opened, f.KVM.Mode, f.KVM.Group, f.KVM.GroupAccess = false, "0600", "root", false
				f.KVM.OpenError = problem("open /dev/kvm: permission denied", "EACCES")
			},
			want: unavailable(LevelUnikernel, kvmAccessRoot),
		},
		{
			name: "/dev/kvm group without write access",
			change: func(f *Facts) {
				f.KVM.Opened, f.KVM.Mode, f.KVM.GroupAccess = false, "0640", false
				f.KVM.OpenError = problem("open /dev/kvm: permission denied", "EACCES")
			},
			want: unavailable(LevelUnikernel, "needs read-write access to /dev/kvm (open /dev/kvm: permission denied): only root can open /dev/kvm (mode 0640, owner root, group kvm), so run osvmd as root, or give the device group kvm and mode 0660 with a udev rule and add osvmd's user to group kvm"),
		},
		{
			name: "/dev/kvm owned by another user",
			change: func(f *Facts) {
				f.KVM.Opened, f.KVM.Mode, f.KVM.Owner, f.KVM.Group, f.KVM.GroupAccess = false, "0600", "libvirt-qemu", "kvm", false
				f.KVM.OpenError = problem("open /dev/kvm: permission denied", "EACCES")
			},
			want: unavailable(LevelUnikernel, "needs read-write access to /dev/kvm (open /dev/kvm: permission denied): only root and user libvirt-qemu can open /dev/kvm (mode 0600, owner libvirt-qemu, group kvm), so run osvmd as root, or give the device group kvm and mode 0660 with a udev rule and add osvmd's user to group kvm"),
		},
		{
			name: "/dev/kvm open to everyone but denied",
			change: func(f *Facts) {
				f.KVM.Opened, f.KVM.Mode = false, "0666"
				f.KVM.OpenError = problem("open /dev/kvm: permission denied", "EACCES")
			},
			want: unavailable(LevelUnikernel, "needs read-write access to /dev/kvm (open /dev/kvm: permission denied): its mode 0666 lets everyone open it, so a security module (AppArmor, SELinux) or the device cgroup of the process denies access: check the audit log"),
		},
		{
			name: "operation not permitted on /dev/kvm",
			change: func(f *Facts) {
				f.KVM.Opened = false
				f.KVM.OpenError = problem("open /dev/kvm: operation not permitted", "EPERM")
			},
			want: unavailable(LevelUnikernel, "needs read-write access to /dev/kvm (open /dev/kvm: operation not permitted): add the user that runs osvmd to group kvm, or run osvmd as root"),
		},
		{
			name: "no KVM module behind /dev/kvm",
			base: intelFacts,
			change: func(f *Facts) {
				f.KVM.Opened = false
				f.KVM.OpenError = problem("open /dev/kvm: no such device or address", "ENXIO")
			},
			want: unavailable(LevelUnikernel, "needs a working /dev/kvm, but no KVM module backs it (open /dev/kvm: no such device or address): load the kvm_intel module (modprobe kvm_intel)"),
		},
		{
			name: "other open error",
			change: func(f *Facts) {
				f.KVM.Opened = false
				f.KVM.OpenError = problem("open /dev/kvm: too many open files", "EMFILE")
			},
			want: unavailable(LevelUnikernel, "needs read-write access to /dev/kvm (open /dev/kvm: too many open files)"),
		},
		{
			name:   "KVM API version 11",
			change: func(f *Facts) { f.KVM.APIVersion = 11 },
			want:   unavailable(LevelUnikernel, "needs KVM API version 12, but /dev/kvm reports 11"),
		},
		{
			name: "KVM_GET_API_VERSION fails",
			change: func(f *Facts) {
				f.KVM.APIVersion, f.KVM.APIVersionError = 0, problem("KVM_GET_API_VERSION: inappropriate ioctl for device", "ENOTTY")
			},
			want: unavailable(LevelUnikernel, "needs KVM_GET_API_VERSION on /dev/kvm to work (KVM_GET_API_VERSION: inappropriate ioctl for device)"),
		},
		{
			name:   "no in-kernel irqchip",
			change: func(f *Facts) { f.KVM.IRQChip = false },
			want:   unavailable(LevelUnikernel, "needs an in-kernel interrupt controller (KVM_CAP_IRQCHIP), which this KVM lacks"),
		},
		{
			name: "KVM older than Linux 4.11",
			change: func(f *Facts) {
				f.KVM.ImmediateExit = false
				f.KVM.IRQChip = false
			},
			want: unavailable(LevelUnikernel,
				"needs KVM_CAP_IMMEDIATE_EXIT, which this KVM lacks: use Linux 4.11 or newer",
				"needs an in-kernel interrupt controller (KVM_CAP_IRQCHIP), which this KVM lacks"),
		},
		{
			name: "KVM_CHECK_EXTENSION fails",
			change: func(f *Facts) {
				f.KVM.IRQChip, f.KVM.UserMemory, f.KVM.ImmediateExit = false, false, false
				f.KVM.ExtensionError = problem("KVM_CHECK_EXTENSION KVM_CAP_IRQCHIP: KVM_CHECK_EXTENSION: inappropriate ioctl for device", "ENOTTY")
			},
			want: unavailable(LevelUnikernel,
				"needs KVM_CHECK_EXTENSION on /dev/kvm to work (KVM_CHECK_EXTENSION KVM_CAP_IRQCHIP: KVM_CHECK_EXTENSION: inappropriate ioctl for device)",
				"needs KVM_CAP_USER_MEMORY, which this KVM lacks",
				"needs KVM_CAP_IMMEDIATE_EXIT, which this KVM lacks: use Linux 4.11 or newer",
				"needs an in-kernel interrupt controller (KVM_CAP_IRQCHIP), which this KVM lacks"),
		},
		{
			name: "PVM",
			base: intelFacts,
			change: func(f *Facts) {
				f.CPU.VMX, f.CPU.InVM = false, true
				f.KVM.Modules, f.KVM.Backend, f.KVM.EmulatedRing0 = []string{"kvm", "kvm_pvm"}, BackendPVM, true
			},
			want: available(LevelUnikernel, "reduced speed: guest ring 0 is emulated (KVM runs on PVM, kvm_pvm)"),
		},
		{
			name: "software KVM of another name",
			base: intelFacts,
			change: func(f *Facts) {
				f.CPU.VMX = false
				f.KVM.Modules, f.KVM.Backend, f.KVM.EmulatedRing0 = []string{"kvm"}, BackendOther, true
			},
			want: available(LevelUnikernel, "reduced speed: guest ring 0 is emulated (KVM works although the CPU reports neither VMX nor SVM, so it runs guests in software as PVM does)"),
		},

		// microvm
		{
			name: "microvm lists KVM problems too",
			change: func(f *Facts) {
				f.KVM.IRQChip = false
			},
			want: unavailable(LevelMicroVM, microVMMissing, "needs an in-kernel interrupt controller (KVM_CAP_IRQCHIP), which this KVM lacks"),
		},

		// tee
		{
			name:   "SNP host without usable KVM",
			change: func(f *Facts) { f.KVM.IRQChip = false },
			want:   unavailable(LevelTEE, "needs an in-kernel interrupt controller (KVM_CAP_IRQCHIP), which this KVM lacks"),
		},
		{
			name:   "SNP off in kvm_amd",
			change: func(f *Facts) { f.SEV.KVMSNP = no() },
			want:   unavailable(LevelTEE, "no AMD SEV-SNP (kvm_amd's sev_snp parameter is N: enable SEV-SNP and SNP memory coverage in the firmware settings, and load kvm_amd with sev_snp=1) and no Intel TDX (kvm_intel is not loaded)"),
		},
		{
			name:   "kvm_amd without sev_snp",
			change: func(f *Facts) { f.SEV.KVMSNP = nil },
			want:   unavailable(LevelTEE, "no AMD SEV-SNP (kvm_amd has no sev_snp parameter: use Linux 6.11 or newer, built with CONFIG_KVM_AMD_SEV) and no Intel TDX (kvm_intel is not loaded)"),
		},
		{
			name:   "kvm_amd not loaded",
			change: func(f *Facts) { f.KVM.Modules = []string{"kvm"} },
			want:   unavailable(LevelTEE, "no AMD SEV-SNP (kvm_amd is not loaded) and no Intel TDX (kvm_intel is not loaded)"),
		},
		{
			name:   "CPU without SNP",
			change: func(f *Facts) { f.SEV.CPUSNP = false },
			want:   unavailable(LevelTEE, "no AMD SEV-SNP (CPUID 0x8000001F reports no SNP) and no Intel TDX (kvm_intel is not loaded)"),
		},
		{
			name:   "KVM does not offer SNP guests",
			change: func(f *Facts) { f.KVM.VMTypes = []string{"default", "sev", "sev_es"} },
			want:   unavailable(LevelTEE, "no AMD SEV-SNP (KVM_CAP_VM_TYPES does not list SNP guests) and no Intel TDX (kvm_intel is not loaded)"),
		},
		{
			name: "kernel without KVM_CAP_VM_TYPES trusts the parameter",
			change: func(f *Facts) {
				f.KVM.VMTypesKnown, f.KVM.VMTypes = false, []string{}
			},
			want: available(LevelTEE),
		},
		{
			name: "no /dev/sev",
			change: func(f *Facts) {
				f.SEV.Device, f.SEV.DeviceError = false, problem("access /dev/sev: no such file or directory", "ENOENT")
			},
			want: unavailable(LevelTEE, "no AMD SEV-SNP (/dev/sev does not exist: load the ccp module (modprobe ccp)) and no Intel TDX (kvm_intel is not loaded)"),
		},
		{
			name: "no access to /dev/sev",
			change: func(f *Facts) {
				f.SEV.Device, f.SEV.DeviceError = false, problem("access /dev/sev: permission denied", "EACCES")
			},
			want: unavailable(LevelTEE, "no AMD SEV-SNP (needs read-write access to /dev/sev (access /dev/sev: permission denied): run osvmd as root) and no Intel TDX (kvm_intel is not loaded)"),
		},
		{
			name:   "no CPUID",
			change: func(f *Facts) { f.CPU.CPUID = false },
			want:   unavailable(LevelTEE, "no AMD SEV-SNP (the probe cannot execute CPUID on this architecture) and no Intel TDX (kvm_intel is not loaded)"),
		},
		{
			name: "TDX host",
			base: intelFacts,
			change: func(f *Facts) {
				f.TDX.KVMTDX = yes()
				f.KVM.VMTypes = []string{"default", "tdx"}
			},
			want: available(LevelTEE),
		},
		{
			name:   "TDX off in kvm_intel",
			base:   intelFacts,
			change: func(f *Facts) { f.TDX.KVMTDX = no() },
			want:   unavailable(LevelTEE, "no AMD SEV-SNP (this GenuineIntel CPU does not implement CPUID 0x8000001F) and no Intel TDX (kvm_intel's tdx parameter is N: enable TDX in the firmware settings and boot with kvm_intel.tdx=1)"),
		},
		{
			name:   "KVM does not offer TDX guests",
			base:   intelFacts,
			change: func(f *Facts) { f.TDX.KVMTDX = yes() },
			want:   unavailable(LevelTEE, "no AMD SEV-SNP (this GenuineIntel CPU does not implement CPUID 0x8000001F) and no Intel TDX (KVM_CAP_VM_TYPES does not list TDX guests)"),
		},
		{
			name: "TDX host without /dev/kvm access",
			base: intelFacts,
			change: func(f *Facts) {
				f.TDX.KVMTDX = yes()
				f.KVM.VMTypes = []string{"default", "tdx"}
				f.KVM.Opened = false
				f.KVM.OpenError = problem("open /dev/kvm: permission denied", "EACCES")
			},
			want: unavailable(LevelTEE, kvmAccessGroup),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := capableFacts
			if tt.base != nil {
				base = tt.base
			}
			f := base()
			tt.change(&f)
			for _, got := range Levels(&f) {
				if got.Level == tt.want.Level && !reflect.DeepEqual(got, tt.want) {
					t.Errorf("\n got %#v\nwant %#v", got, tt.want)
				}
			}
		})
	}
}

func TestLevelsOrder(t *testing.T) {
	f := capableFacts()
	got := Levels(&f)
	if len(got) != len(AllLevels) {
		t.Fatalf("Levels returned %d statuses, want %d", len(got), len(AllLevels))
	}
	for i, level := range AllLevels {
		if got[i].Level != level {
			t.Errorf("status %d is for %q, want %q", i, got[i].Level, level)
		}
	}
}

func TestLevelNoneAlwaysAvailable(t *testing.T) {
	var f Facts // nothing known
	status := Levels(&f)[0]
	if status.Level != LevelNone || !status.Available {
		t.Errorf("level none on a host with no facts: %+v", status)
	}
}

func TestReportStatusAndStrongest(t *testing.T) {
	r := &Report{Levels: []LevelStatus{
		available(LevelUnikernel),
		available(LevelNone),
		unavailable(LevelTEE, "x"),
	}}
	if got := r.Strongest(); got != LevelUnikernel {
		t.Errorf("Strongest() = %q, want unikernel whatever the order of Levels", got)
	}
	if s, ok := r.Status(LevelTEE); !ok || s.Available {
		t.Errorf("Status(tee) = %+v, %v, want an unavailable status", s, ok)
	}
	if _, ok := r.Status(LevelContainer); ok {
		t.Error("Status(container) found a status that the report lacks")
	}
	if got := (&Report{}).Strongest(); got != LevelNone {
		t.Errorf("Strongest() of an empty report = %q, want none", got)
	}
}
