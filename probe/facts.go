package probe

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Facts are the findings of a probe of one host. Every field is plain
// data, so Facts can be compared, printed and encoded as JSON. Levels turns
// Facts into the availability of each isolation level.
type Facts struct {
	Kernel         string         `json:"kernel"` // release, as uname -r prints it
	EUID           int            `json:"euid"`   // effective uid of the probing process
	CPU            CPU            `json:"cpu"`
	KVM            KVM            `json:"kvm"`
	Landlock       Landlock       `json:"landlock"`
	Seccomp        Seccomp        `json:"seccomp"`
	Cgroups        Cgroups        `json:"cgroups"`
	UserNamespaces UserNamespaces `json:"user_namespaces"`
	Systemd        Systemd        `json:"systemd"`
	SEV            SEV            `json:"sev"`
	TDX            TDX            `json:"tdx"`
	HugePages      HugePages      `json:"hugepages"`
}

// Problem is an error that the probe met, kept as data.
type Problem struct {
	Message string `json:"message"`         // the error's text, such as "open /dev/kvm: permission denied"
	Errno   string `json:"errno,omitempty"` // the system error number's name, such as "EACCES", when there is one
}

// newProblem returns the Problem of err, or nil when err is nil.
func newProblem(err error) *Problem {
	if err == nil {
		return nil
	}
	p := &Problem{Message: err.Error()}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		p.Errno = unix.ErrnoName(errno)
		if p.Errno == "" {
			p.Errno = fmt.Sprintf("errno %d", int(errno))
		}
	}
	return p
}

// Is reports whether p wraps the system error number errno.
func (p *Problem) Is(errno syscall.Errno) bool {
	return p != nil && p.Errno != "" && p.Errno == unix.ErrnoName(errno)
}

// String returns p's message.
func (p *Problem) String() string {
	if p == nil {
		return ""
	}
	return p.Message
}

// CPU describes the processor: its vendor, hypervisor and virtualization
// features.
type CPU struct {
	Vendor     string `json:"vendor"`               // CPUID vendor, such as "GenuineIntel" or "AuthenticAMD"
	Hypervisor string `json:"hypervisor,omitempty"` // signature of the hypervisor this host runs under, such as "KVMKVMKVM"
	InVM       bool   `json:"in_vm"`                // the CPU reports a hypervisor: this host is a virtual machine

	// VMX and SVM are the vmx and svm flags of /proc/cpuinfo, or the CPUID
	// bits when it cannot be read. Linux 5.6 and newer clear vmx when the
	// firmware disabled VT-x.
	VMX bool `json:"vmx"`
	SVM bool `json:"svm"`

	CPUID           bool     `json:"cpuid"` // the probe could execute CPUID (amd64 only)
	MaxLeaf         uint32   `json:"max_leaf"`
	MaxExtendedLeaf uint32   `json:"max_extended_leaf"`
	CPUInfoError    *Problem `json:"cpuinfo_error,omitempty"`
}

// Backend is the kind of KVM implementation behind /dev/kvm.
type Backend string

// KVM backends.
const (
	BackendNone  Backend = ""      // no KVM
	BackendVMX   Backend = "vmx"   // kvm_intel on Intel VT-x
	BackendSVM   Backend = "svm"   // kvm_amd on AMD-V
	BackendPVM   Backend = "pvm"   // kvm_pvm, which runs guests without VMX or SVM
	BackendOther Backend = "other" // anything else
)

// KVM is the state of /dev/kvm and the KVM module behind it.
type KVM struct {
	Device      string   `json:"device"` // "/dev/kvm"
	Exists      bool     `json:"exists"`
	StatError   *Problem `json:"stat_error,omitempty"`
	Mode        string   `json:"mode,omitempty"`  // permission bits in octal, such as "0660"
	Owner       string   `json:"owner,omitempty"` // user that owns the device node
	Group       string   `json:"group,omitempty"` // group that owns the device node
	GroupAccess bool     `json:"group_access"`    // the group may open the device read-write
	Opened      bool     `json:"opened"`          // the probe opened it read-write
	OpenError   *Problem `json:"open_error,omitempty"`

	APIVersion      int      `json:"api_version"` // KVM_GET_API_VERSION
	APIVersionError *Problem `json:"api_version_error,omitempty"`

	// Results of KVM_CHECK_EXTENSION on /dev/kvm.
	IRQChip        bool     `json:"irqchip"`        // KVM_CAP_IRQCHIP: in-kernel interrupt controllers
	UserMemory     bool     `json:"user_memory"`    // KVM_CAP_USER_MEMORY
	ImmediateExit  bool     `json:"immediate_exit"` // KVM_CAP_IMMEDIATE_EXIT
	VMTypesKnown   bool     `json:"vm_types_known"` // KVM_CAP_VM_TYPES exists (Linux 6.8 and newer)
	VMTypes        []string `json:"vm_types"`       // VM types KVM_CAP_VM_TYPES lists, such as "default", "snp", "tdx"
	ExtensionError *Problem `json:"extension_error,omitempty"`

	Modules []string `json:"modules"` // which of kvm, kvm_intel, kvm_amd and kvm_pvm are in /sys/module
	Backend Backend  `json:"backend"`

	// EmulatedRing0 reports that guest ring 0 does not run natively: on
	// PVM every guest kernel-mode instruction goes through KVM's
	// instruction emulator, so kernels and unikernels run much slower.
	EmulatedRing0 bool `json:"emulated_ring0"`
}

// Landlock is the kernel's Landlock support.
type Landlock struct {
	ABI   int      `json:"abi"` // landlock_create_ruleset(LANDLOCK_CREATE_RULESET_VERSION), 0 when unavailable
	Error *Problem `json:"error,omitempty"`
}

// Seccomp is the kernel's seccomp support.
type Seccomp struct {
	Filters      bool     `json:"filters"` // the kernel has seccomp filters: the probe read actions_avail
	Actions      []string `json:"actions"` // filter return actions the kernel offers, from actions_avail
	ActionsError *Problem `json:"actions_error,omitempty"`
	Mode         int      `json:"mode"` // prctl(PR_GET_SECCOMP) of the probe: 0 none, 2 filtered already
	ModeError    *Problem `json:"mode_error,omitempty"`
}

// CgroupMode is the layout of the cgroup hierarchies.
type CgroupMode string

// Cgroup layouts, as github.com/containerd/cgroups/v3 Mode reports them.
const (
	CgroupUnavailable CgroupMode = "unavailable" // nothing at /sys/fs/cgroup
	CgroupV1          CgroupMode = "v1"          // cgroup v1 hierarchies only
	CgroupHybrid      CgroupMode = "hybrid"      // v1 controllers, and an empty v2 hierarchy at /sys/fs/cgroup/unified
	CgroupUnified     CgroupMode = "unified"     // cgroup v2 only
)

// Cgroups is the cgroup layout and the controllers it offers.
type Cgroups struct {
	Mode          CgroupMode `json:"mode"`
	V1Controllers []string   `json:"v1_controllers"` // enabled and mounted, from /proc/cgroups
	V2Controllers []string   `json:"v2_controllers"` // from cgroup.controllers of the v2 hierarchy
	Error         *Problem   `json:"error,omitempty"`
}

// UserNamespaces is the kernel's user namespace support.
type UserNamespaces struct {
	Max      int      `json:"max"` // user.max_user_namespaces; 0 disables user namespaces
	MaxError *Problem `json:"max_error,omitempty"`

	// UnprivilegedClone is kernel.unprivileged_userns_clone of Debian and
	// Ubuntu kernels, nil where the kernel lacks it. false stops users
	// other than root from creating user namespaces.
	UnprivilegedClone *bool `json:"unprivileged_clone"`

	// AppArmorRestricted is kernel.apparmor_restrict_unprivileged_userns
	// of Ubuntu kernels, nil where the kernel lacks it. true confines
	// unprivileged user namespaces to AppArmor profiles that allow them.
	AppArmorRestricted *bool `json:"apparmor_restricted"`
}

// Systemd is the installed systemd.
type Systemd struct {
	Version     int      `json:"version"`      // such as 252; 0 when unknown
	FullVersion string   `json:"full_version"` // the package version in parentheses, such as "252.38-1~deb12u1"
	Source      string   `json:"source"`       // the command that printed the version
	Error       *Problem `json:"error,omitempty"`
	Running     bool     `json:"running"` // systemd is the service manager (/run/systemd/system exists)
}

// SEV is the state of AMD Secure Encrypted Virtualization.
type SEV struct {
	// CPUIDLeaf reports that the CPU implements CPUID leaf 0x8000001F,
	// whose EAX bits 1, 3 and 4 are CPUSEV, CPUSEVES and CPUSNP.
	CPUIDLeaf bool `json:"cpuid_leaf"`
	CPUSEV    bool `json:"cpu_sev"`
	CPUSEVES  bool `json:"cpu_sev_es"`
	CPUSNP    bool `json:"cpu_snp"`

	// The kvm_amd parameters sev, sev_es and sev_snp: nil when kvm_amd
	// or the parameter does not exist. KVM sets each one to false at load
	// time when the CPU, the firmware or the kernel lacks support.
	KVMSEV   *bool `json:"kvm_sev"`
	KVMSEVES *bool `json:"kvm_sev_es"`
	KVMSNP   *bool `json:"kvm_snp"`

	Device      bool     `json:"device"`                 // /dev/sev, the AMD Secure Processor, is readable and writable
	DeviceError *Problem `json:"device_error,omitempty"` // why not
}

// TDX is the state of Intel Trust Domain Extensions.
type TDX struct {
	// KVMTDX is the kvm_intel parameter tdx: nil when kvm_intel or the
	// parameter does not exist (before Linux 6.16, or built without
	// CONFIG_KVM_INTEL_TDX). It is false unless the host booted with
	// kvm_intel.tdx=1 and the TDX module initialized.
	KVMTDX *bool `json:"kvm_tdx"`

	// Firmware reports /sys/firmware/tdx, which Intel's TDX host kernels
	// create once the TDX module is loaded. Mainline Linux has no such
	// folder, so its absence proves nothing.
	Firmware bool `json:"firmware"`
}

// HugePages is the huge page configuration.
type HugePages struct {
	Total        int      `json:"total"`    // HugePages_Total: reserved huge pages of the default size
	Free         int      `json:"free"`     // HugePages_Free
	SizeKiB      int      `json:"size_kib"` // Hugepagesize
	MeminfoError *Problem `json:"meminfo_error,omitempty"`

	// Transparent is the selected mode of transparent huge pages:
	// "always", "madvise" or "never", "" when unknown.
	Transparent      string   `json:"transparent"`
	TransparentError *Problem `json:"transparent_error,omitempty"`
}
