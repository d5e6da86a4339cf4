package probe

import "strconv"

// Files whose contents the probe reads. Parsing of each is in parse.go.
const (
	pathOSRelease            = "/proc/sys/kernel/osrelease"
	pathCPUInfo              = "/proc/cpuinfo"
	pathMeminfo              = "/proc/meminfo"
	pathTransparentHugePages = "/sys/kernel/mm/transparent_hugepage/enabled"
	pathSeccompActions       = "/proc/sys/kernel/seccomp/actions_avail"
	pathProcCgroups          = "/proc/cgroups"
	pathUnifiedControllers   = "/sys/fs/cgroup/cgroup.controllers"         // cgroup v2 only
	pathHybridControllers    = "/sys/fs/cgroup/unified/cgroup.controllers" // hybrid layout
	pathMaxUserNamespaces    = "/proc/sys/user/max_user_namespaces"
	pathUnprivilegedUserNS   = "/proc/sys/kernel/unprivileged_userns_clone"             // Debian and Ubuntu kernels only
	pathAppArmorUserNS       = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns" // Ubuntu 23.10 and newer
	pathSEVParameter         = "/sys/module/kvm_amd/parameters/sev"
	pathSEVESParameter       = "/sys/module/kvm_amd/parameters/sev_es"
	pathSNPParameter         = "/sys/module/kvm_amd/parameters/sev_snp"
	pathTDXParameter         = "/sys/module/kvm_intel/parameters/tdx"
)

// filesRead lists every file that gather reads, in order.
var filesRead = []string{
	pathOSRelease,
	pathCPUInfo,
	pathMeminfo,
	pathTransparentHugePages,
	pathSeccompActions,
	pathProcCgroups,
	pathUnifiedControllers,
	pathHybridControllers,
	pathMaxUserNamespaces,
	pathUnprivilegedUserNS,
	pathAppArmorUserNS,
	pathSEVParameter,
	pathSEVESParameter,
	pathSNPParameter,
	pathTDXParameter,
}

// Paths whose existence the probe checks.
const (
	pathModuleKVM      = "/sys/module/kvm"
	pathModuleKVMIntel = "/sys/module/kvm_intel"
	pathModuleKVMAMD   = "/sys/module/kvm_amd"
	pathModuleKVMPVM   = "/sys/module/kvm_pvm"
	pathFirmwareTDX    = "/sys/firmware/tdx"   // Intel's TDX host kernels; mainline Linux has no such folder
	pathSystemdRunning = "/run/systemd/system" // exists when systemd is the service manager (sd_booted(3))
)

// pathsChecked lists every path that gather stats, in order.
var pathsChecked = []string{
	pathModuleKVM,
	pathModuleKVMIntel,
	pathModuleKVMAMD,
	pathModuleKVMPVM,
	pathFirmwareTDX,
	pathSystemdRunning,
}

// Devices the probe checks.
const (
	kvmDevice = "/dev/kvm"
	sevDevice = "/dev/sev"
)

// systemdVersionCommands are tried in order until one prints a version.
// systemctl is on PATH wherever systemd is installed. The service
// manager's own binary is /lib/systemd/systemd on Debian and
// /usr/lib/systemd/systemd on distributions that merged /usr earlier.
var systemdVersionCommands = [][]string{
	{"systemctl", "--version"},
	{"/lib/systemd/systemd", "--version"},
	{"/usr/lib/systemd/systemd", "--version"},
}

// observations is everything the probe reads from the host, before any
// interpretation: file contents, system call results, CPUID registers and
// command output. gather fills it from the running kernel, and the tests
// fill it from recordings under testdata/hosts. parse turns it into Facts
// without any further access to the host.
type observations struct {
	euid int

	files  map[string]fileResult // every path of filesRead
	exists map[string]error      // stat result of every path of pathsChecked

	cpuid   map[uint32]cpuidRegisters // leaf (subleaf 0) to registers
	cpuidOK bool                      // false where the CPUID instruction does not exist

	kvm kvmObservation

	sevDeviceAccess error // access(2) of /dev/sev for reading and writing

	landlockABI int
	landlockErr error

	seccompMode int // prctl(PR_GET_SECCOMP) of the probing process
	seccompErr  error

	cgroupMode CgroupMode // github.com/containerd/cgroups/v3 Mode, converted

	systemd []commandResult // the commands of systemdVersionCommands that ran, in order
}

// fileResult is the outcome of reading one file.
type fileResult struct {
	data []byte
	err  error
}

// commandResult is the outcome of running one command.
type commandResult struct {
	command string // the command line, such as "systemctl --version"
	output  []byte // standard output
	err     error
}

// cpuidRegisters are the registers that one CPUID leaf returns.
type cpuidRegisters struct {
	EAX, EBX, ECX, EDX uint32
}

// kvmObservation is the raw state of /dev/kvm: its node, the open and the
// ioctl results.
type kvmObservation struct {
	statErr error

	mode  uint32 // permission bits of the device node
	owner string // user name, or the numeric uid when it has no name
	group string // group name, or the numeric gid when it has no name

	openErr error // opening the device read-write

	apiVersion    int
	apiVersionErr error

	// extensions holds the KVM_CHECK_EXTENSION result of each capability
	// in kvmCapabilities.
	extensions map[kvmCapability]extensionResult
}

// extensionResult is the outcome of one KVM_CHECK_EXTENSION.
type extensionResult struct {
	value int
	err   error
}

// kvmCapability is a KVM_CAP_* number of Linux include/uapi/linux/kvm.h.
type kvmCapability int

// The capabilities the probe checks on /dev/kvm.
const (
	kvmCapIRQChip       kvmCapability = 0   // in-kernel PIC, IOAPIC and local APIC
	kvmCapUserMemory    kvmCapability = 3   // guest memory in the VMM's own mappings
	kvmCapImmediateExit kvmCapability = 136 // kvm_run.immediate_exit, Linux 4.11
	kvmCapVMTypes       kvmCapability = 235 // bit mask of KVM_X86_*_VM types, Linux 6.8
)

// kvmCapabilities lists the capabilities gather checks, in order.
var kvmCapabilities = []kvmCapability{kvmCapIRQChip, kvmCapUserMemory, kvmCapImmediateExit, kvmCapVMTypes}

// String returns the kernel's name for c, such as "KVM_CAP_IRQCHIP".
func (c kvmCapability) String() string {
	switch c {
	case kvmCapIRQChip:
		return "KVM_CAP_IRQCHIP"
	case kvmCapUserMemory:
		return "KVM_CAP_USER_MEMORY"
	case kvmCapImmediateExit:
		return "KVM_CAP_IMMEDIATE_EXIT"
	case kvmCapVMTypes:
		return "KVM_CAP_VM_TYPES"
	}
	return "KVM_CAP(" + strconv.Itoa(int(c)) + ")"
}

// kvmVMTypeNames names the bits of KVM_CAP_VM_TYPES, the KVM_X86_*_VM
// values of Linux arch/x86/include/uapi/asm/kvm.h (Linux 6.16).
var kvmVMTypeNames = []string{
	0: "default",
	1: "sw_protected",
	2: "sev",
	3: "sev_es",
	4: "snp",
	5: "tdx",
}

// The KVM API version that every kernel since Linux 2.6.22 reports.
const kvmStableAPIVersion = 12
