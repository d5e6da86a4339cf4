package probe

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// keyFacts are the facts that the level decisions turn on, for comparing
// recorded hosts in one line each.
type keyFacts struct {
	vendor        string
	inVM          bool
	kvmOpened     bool
	backend       Backend
	emulatedRing0 bool
	irqchip       bool
	landlockABI   int
	seccomp       bool
	cgroupMode    CgroupMode
	userNSMax     int
	systemd       int
	cpuSNP        bool
	kvmSNP        string // "Y", "N" or "absent"
	kvmTDX        string
}

func summarizeParameter(b *bool) string {
	switch {
	case b == nil:
		return "absent"
	case *b:
		return "Y"
	default:
		return "N"
	}
}

func keyFactsOf(f *Facts) keyFacts {
	return keyFacts{
		vendor:        f.CPU.Vendor,
		inVM:          f.CPU.InVM,
		kvmOpened:     f.KVM.Opened,
		backend:       f.KVM.Backend,
		emulatedRing0: f.KVM.EmulatedRing0,
		irqchip:       f.KVM.IRQChip,
		landlockABI:   f.Landlock.ABI,
		seccomp:       f.Seccomp.Filters,
		cgroupMode:    f.Cgroups.Mode,
		userNSMax:     f.UserNamespaces.Max,
		systemd:       f.Systemd.Version,
		cpuSNP:        f.SEV.CPUSNP,
		kvmSNP:        summarizeParameter(f.SEV.KVMSNP),
		kvmTDX:        summarizeParameter(f.TDX.KVMTDX),
	}
}

const (
	microVMMissing = "osvm does not implement the microvm level yet"
	pvmNote        = "reduced speed: guest ring 0 is emulated (KVM runs on PVM, kvm_pvm)"
	intelNoTEE     = "no AMD SEV-SNP (this GenuineIntel CPU does not implement CPUID 0x8000001F) and no Intel TDX (kvm_intel is not loaded)"
	intelOldTDX    = "no AMD SEV-SNP (this GenuineIntel CPU does not implement CPUID 0x8000001F) and no Intel TDX (kvm_intel has no tdx parameter: use Linux 6.16 or newer, built with CONFIG_KVM_INTEL_TDX)"
)

func available(level Level, notes ...string) LevelStatus {
	return LevelStatus{Level: level, Available: true, Notes: notes}
}

func unavailable(level Level, reasons ...string) LevelStatus {
	return LevelStatus{Level: level, Reasons: reasons}
}

// hostCase is what one recording under testdata/hosts must yield.
type hostCase struct {
	host      string // folder name
	facts     keyFacts
	levels    []LevelStatus
	strongest Level
}

func TestHosts(t *testing.T) {
	tests := []hostCase{
		{
			host: "pvm-debian12",
			facts: keyFacts{
				vendor: "GenuineIntel", inVM: true, kvmOpened: true, backend: BackendPVM, emulatedRing0: true, irqchip: true,
				landlockABI: 7, seccomp: true, cgroupMode: CgroupHybrid, userNSMax: 96369, systemd: 252,
				kvmSNP: "absent", kvmTDX: "absent",
			},
			levels: []LevelStatus{
				available(LevelNone),
				available(LevelProcess),
				available(LevelContainer),
				unavailable(LevelMicroVM, microVMMissing),
				available(LevelUnikernel, pvmNote),
				unavailable(LevelTEE, intelNoTEE),
			},
			strongest: LevelUnikernel,
		},
		{
			host: "vmx-ubuntu2404",
			facts: keyFacts{
				vendor: "GenuineIntel", kvmOpened: true, backend: BackendVMX, irqchip: true,
				landlockABI: 4, seccomp: true, cgroupMode: CgroupUnified, userNSMax: 1028393, systemd: 255,
				kvmSNP: "absent", kvmTDX: "absent",
			},
			levels: []LevelStatus{
				available(LevelNone),
				available(LevelProcess),
				unavailable(LevelContainer, "needs user namespaces created by unprivileged users, but kernel.apparmor_restrict_unprivileged_userns is 1: set it to 0, or give osvm-launch an AppArmor profile that allows userns"),
				unavailable(LevelMicroVM, microVMMissing),
				available(LevelUnikernel),
				unavailable(LevelTEE, intelOldTDX),
			},
			strongest: LevelUnikernel,
		},
		{
			host: "svm-snp-debian13",
			facts: keyFacts{
				vendor: "AuthenticAMD", kvmOpened: true, backend: BackendSVM, irqchip: true,
				landlockABI: 6, seccomp: true, cgroupMode: CgroupUnified, userNSMax: 1545063, systemd: 257,
				cpuSNP: true, kvmSNP: "Y", kvmTDX: "absent",
			},
			levels: []LevelStatus{
				available(LevelNone),
				available(LevelProcess),
				available(LevelContainer),
				unavailable(LevelMicroVM, microVMMissing),
				available(LevelUnikernel),
				available(LevelTEE),
			},
			strongest: LevelTEE,
		},
		{
			host: "tdx-ubuntu2510",
			facts: keyFacts{
				vendor: "GenuineIntel", kvmOpened: true, backend: BackendVMX, irqchip: true,
				landlockABI: 7, seccomp: true, cgroupMode: CgroupUnified, userNSMax: 2060433, systemd: 257,
				kvmSNP: "absent", kvmTDX: "Y",
			},
			levels: []LevelStatus{
				available(LevelNone),
				available(LevelProcess),
				unavailable(LevelContainer, "needs user namespaces created by unprivileged users, but kernel.apparmor_restrict_unprivileged_userns is 1: set it to 0, or give osvm-launch an AppArmor profile that allows userns"),
				unavailable(LevelMicroVM, microVMMissing),
				available(LevelUnikernel),
				available(LevelTEE),
			},
			strongest: LevelTEE,
		},
		{
			host: "cgroup2-fedora41",
			facts: keyFacts{
				vendor: "AuthenticAMD", kvmOpened: true, backend: BackendSVM, irqchip: true,
				landlockABI: 5, seccomp: true, cgroupMode: CgroupUnified, userNSMax: 123433, systemd: 256,
				kvmSNP: "N", kvmTDX: "absent",
			},
			levels: []LevelStatus{
				available(LevelNone),
				available(LevelProcess),
				available(LevelContainer),
				unavailable(LevelMicroVM, microVMMissing),
				available(LevelUnikernel),
				unavailable(LevelTEE, "no AMD SEV-SNP (CPUID 0x8000001F reports no SNP) and no Intel TDX (kvm_intel is not loaded)"),
			},
			strongest: LevelUnikernel,
		},
		{
			host: "no-landlock-rhel9",
			facts: keyFacts{
				vendor: "GenuineIntel", backend: BackendVMX,
				seccomp: true, cgroupMode: CgroupUnified, userNSMax: 63451, systemd: 252,
				kvmSNP: "absent", kvmTDX: "absent",
			},
			levels: []LevelStatus{
				available(LevelNone),
				unavailable(LevelProcess, "needs Landlock, but it is disabled (landlock_create_ruleset: operation not supported): add landlock to the lsm= kernel parameter and reboot"),
				available(LevelContainer),
				unavailable(LevelMicroVM, microVMMissing,
					"needs read-write access to /dev/kvm (open /dev/kvm: permission denied): add the user that runs osvmd to group kvm, or run osvmd as root"),
				unavailable(LevelUnikernel,
					"needs read-write access to /dev/kvm (open /dev/kvm: permission denied): add the user that runs osvmd to group kvm, or run osvmd as root"),
				unavailable(LevelTEE, intelOldTDX),
			},
			strongest: LevelContainer,
		},
		{
			host: "no-kvm-cloud-debian12",
			facts: keyFacts{
				vendor: "GenuineIntel", inVM: true, backend: BackendNone,
				landlockABI: 3, seccomp: true, cgroupMode: CgroupUnified, userNSMax: 15511, systemd: 252,
				kvmSNP: "absent", kvmTDX: "absent",
			},
			levels: []LevelStatus{
				available(LevelNone),
				unavailable(LevelProcess, "needs Landlock ABI 4 or newer for TCP port rules (Linux 6.7), but the kernel has ABI 3: upgrade the kernel"),
				available(LevelContainer),
				unavailable(LevelMicroVM, microVMMissing,
					"needs /dev/kvm, which does not exist: this host is a virtual machine whose CPU reports neither VMX nor SVM, so enable nested virtualization in its hypervisor or use a kernel with PVM (CONFIG_KVM_PVM)"),
				unavailable(LevelUnikernel,
					"needs /dev/kvm, which does not exist: this host is a virtual machine whose CPU reports neither VMX nor SVM, so enable nested virtualization in its hypervisor or use a kernel with PVM (CONFIG_KVM_PVM)"),
				unavailable(LevelTEE, intelNoTEE),
			},
			strongest: LevelContainer,
		},
	}

	recorded, err := filepath.Glob("testdata/hosts/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range recorded {
		if !slices.ContainsFunc(tests, func(tt hostCase) bool { return tt.host == filepath.Base(dir) }) {
			t.Errorf("%s has no case in TestHosts", dir)
		}
	}

	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			report := NewReport(parse(loadRecording(t, filepath.Join("testdata/hosts", tt.host))))
			if got := keyFactsOf(&report.Facts); got != tt.facts {
				t.Errorf("key facts:\n got %+v\nwant %+v", got, tt.facts)
			}
			if len(report.Levels) != len(tt.levels) {
				t.Fatalf("got %d levels, want %d", len(report.Levels), len(tt.levels))
			}
			for i, want := range tt.levels {
				if got := report.Levels[i]; !reflect.DeepEqual(got, want) {
					t.Errorf("level %s:\n got %#v\nwant %#v", want.Level, got, want)
				}
			}
			if got := report.Strongest(); got != tt.strongest {
				t.Errorf("Strongest() = %q, want %q", got, tt.strongest)
			}
		})
	}
}

// TestHostSummary checks the people's summary of the recorded development
// machine line by line.
func TestHostSummary(t *testing.T) {
	facts := parse(loadRecording(t, "testdata/hosts/pvm-debian12"))
	want := []FactLine{
		{"kernel", "6.18.44-fc-v1252"},
		{"probed as", "uid 0 (root)"},
		{"cpu", "GenuineIntel, virtual machine (hypervisor KVMKVMKVM), no VMX or SVM"},
		{"kvm", "backend pvm, guest ring 0 emulated (modules: kvm, kvm_pvm)"},
		{"/dev/kvm", "mode 0600, owner root, group root, opened read-write, API version 12, irqchip yes, VM types default"},
		{"landlock", "ABI 7"},
		{"seccomp", "filters, actions kill_process kill_thread trap errno user_notif trace log allow"},
		{"cgroups", "hybrid, v1 controllers blkio cpu cpuacct cpuset devices freezer memory pids, v2 controllers hugetlb"},
		{"user namespaces", "max 96369"},
		{"systemd", "252 (252.38-1~deb12u1), not the running service manager"},
		{"amd sev", "CPU has no CPUID 0x8000001F, kvm_amd not loaded, access /dev/sev: no such file or directory"},
		{"intel tdx", "kvm_intel not loaded"},
		{"hugepages", "0 pages of 2048 KiB reserved, 0 free, transparent madvise"},
	}
	got := facts.Summary()
	if len(got) != len(want) {
		t.Fatalf("Summary() has %d lines, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}

func TestHostSummaryOthers(t *testing.T) {
	tests := []struct {
		host, name, want string
	}{
		{"svm-snp-debian13", "amd sev", "CPU SEV yes, SEV-ES yes, SNP yes, kvm_amd parameters sev Y, sev_es Y, sev_snp Y, /dev/sev read-write"},
		{"svm-snp-debian13", "/dev/kvm", "mode 0660, owner root, group kvm, opened read-write, API version 12, irqchip yes, VM types default sev sev_es snp"},
		{"tdx-ubuntu2510", "intel tdx", "kvm_intel parameter tdx Y"},
		{"tdx-ubuntu2510", "user namespaces", "max 2060433, AppArmor restricts unprivileged ones"},
		{"no-landlock-rhel9", "probed as", "uid 1000, not root: osvmd runs as root, so its access to /dev/kvm and /dev/sev may differ"},
		{"no-landlock-rhel9", "/dev/kvm", "mode 0660, owner root, group kvm, open /dev/kvm: permission denied"},
		{"no-landlock-rhel9", "landlock", "unavailable (landlock_create_ruleset: operation not supported)"},
		{"no-landlock-rhel9", "hugepages", "16 pages of 1048576 KiB reserved, 16 free, transparent always"},
		{"no-kvm-cloud-debian12", "kvm", "no KVM (modules: none)"},
		{"no-kvm-cloud-debian12", "/dev/kvm", "stat /dev/kvm: no such file or directory"},
		{"no-kvm-cloud-debian12", "systemd", "252 (252.33-1~deb12u1), running"},
		{"cgroup2-fedora41", "cgroups", "unified, v2 controllers cpu cpuset hugetlb io memory misc pids rdma"},
		{"cgroup2-fedora41", "amd sev", "CPU SEV no, SEV-ES no, SNP no, kvm_amd parameters sev N, sev_es N, sev_snp N, access /dev/sev: no such file or directory"},
		{"vmx-ubuntu2404", "cpu", "GenuineIntel, VMX"},
	}
	for _, tt := range tests {
		facts := parse(loadRecording(t, filepath.Join("testdata/hosts", tt.host)))
		found := false
		for _, line := range facts.Summary() {
			if line.Name != tt.name {
				continue
			}
			found = true
			if line.Value != tt.want {
				t.Errorf("%s %s:\n got %q\nwant %q", tt.host, tt.name, line.Value, tt.want)
			}
		}
		if !found {
			t.Errorf("%s: Summary() has no %q line", tt.host, tt.name)
		}
	}
}

// TestHostSystemdFallback checks that a host without systemctl on PATH
// takes its version from the service manager's binary.
func TestHostSystemdFallback(t *testing.T) {
	facts := parse(loadRecording(t, "testdata/hosts/no-kvm-cloud-debian12"))
	if got, want := facts.Systemd.Source, "/lib/systemd/systemd --version"; got != want {
		t.Errorf("Systemd.Source = %q, want %q", got, want)
	}
	if facts.Systemd.Error != nil {
		t.Errorf("Systemd.Error = %v, want nil after a working fallback", facts.Systemd.Error)
	}
}
