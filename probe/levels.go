package probe

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Level is an isolation level of osvm, as a component file's isolation key
// names it.
type Level string

// The isolation levels, weakest first.
const (
	LevelNone      Level = "none"      // a plain service with resource limits
	LevelProcess   Level = "process"   // systemd's sandboxing, Landlock and seccomp
	LevelContainer Level = "container" // a root file system of its own, with user, network and IPC namespaces
	LevelMicroVM   Level = "microvm"   // a Linux guest under KVM
	LevelUnikernel Level = "unikernel" // a Hermit unikernel under osvm's own KVM monitor
	LevelTEE       Level = "tee"       // a confidential guest: AMD SEV-SNP or Intel TDX
)

// AllLevels lists every isolation level, weakest first.
var AllLevels = []Level{LevelNone, LevelProcess, LevelContainer, LevelMicroVM, LevelUnikernel, LevelTEE}

// LevelStatus is whether a host can run components at one isolation level.
type LevelStatus struct {
	Level     Level `json:"level"`
	Available bool  `json:"available"`

	// Reasons are the problems that make the level unavailable, one each,
	// with what is missing and what an administrator can do about it.
	Reasons []string `json:"reasons,omitempty"`

	// Notes are caveats of an available level, such as reduced speed.
	Notes []string `json:"notes,omitempty"`
}

// Requirements of the levels.
const (
	// minLandlockABI is the first Landlock ABI with TCP bind and connect
	// rules (Linux 6.7), which the process level's network rules need.
	minLandlockABI = 4

	// minSystemdVersion is the oldest systemd that osvm supports (Debian
	// 12's). It has every unit property the container level uses:
	// RootDirectory=, PrivateUsers=, PrivateNetwork=, PrivateIPC= (systemd
	// 248) and ProtectHostname=.
	minSystemdVersion = 252
)

// containerControllers are the cgroup controllers that a component's
// resource limits (memory, cpus, tasks) need, on cgroup v1 or v2.
var containerControllers = []string{"cpu", "memory", "pids"}

// Levels returns the status of every isolation level of AllLevels, in that
// order, on a host with facts f. It reads nothing from the host.
func Levels(f *Facts) []LevelStatus {
	return []LevelStatus{
		{Level: LevelNone, Available: true},
		status(LevelProcess, processProblems(f), nil),
		status(LevelContainer, containerProblems(f), nil),
		status(LevelMicroVM, append([]string{"osvm does not implement the microvm level yet"}, kvmProblems(f)...), nil),
		status(LevelUnikernel, kvmProblems(f), kvmNotes(f)),
		status(LevelTEE, teeProblems(f), nil),
	}
}

func status(level Level, problems, notes []string) LevelStatus {
	if len(problems) > 0 {
		return LevelStatus{Level: level, Reasons: problems}
	}
	return LevelStatus{Level: level, Available: true, Notes: notes}
}

func processProblems(f *Facts) []string {
	var problems []string
	if p := seccompProblem(&f.Seccomp); p != "" {
		problems = append(problems, p)
	}
	if p := landlockProblem(&f.Landlock); p != "" {
		problems = append(problems, p)
	}
	return problems
}

func seccompProblem(s *Seccomp) string {
	switch {
	case s.ModeError.Is(unix.EINVAL):
		return fmt.Sprintf("needs seccomp, but the kernel has none (%v): use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER", s.ModeError)
	case s.ActionsError.Is(unix.ENOENT):
		return fmt.Sprintf("needs seccomp filters, but %s does not exist: use a kernel built with CONFIG_SECCOMP_FILTER, Linux 4.14 or newer", pathSeccompActions)
	case s.ActionsError != nil:
		return fmt.Sprintf("needs seccomp filters, but the probe could not read the actions the kernel offers (%v)", s.ActionsError)
	}
	var missing []string
	for _, action := range requiredSeccompActions {
		if !slices.Contains(s.Actions, action) {
			missing = append(missing, action)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("needs the seccomp filter actions %s, but %s lacks %s: use Linux 4.14 or newer",
			strings.Join(requiredSeccompActions, ", "), pathSeccompActions, strings.Join(missing, ", "))
	}
	return ""
}

func landlockProblem(l *Landlock) string {
	switch {
	case l.Error.Is(unix.ENOSYS):
		return fmt.Sprintf("needs Landlock, but the kernel has no Landlock system calls (%v): use a kernel built with CONFIG_SECURITY_LANDLOCK, Linux 6.7 or newer", l.Error)
	case l.Error.Is(unix.EOPNOTSUPP):
		return fmt.Sprintf("needs Landlock, but it is disabled (%v): add landlock to the lsm= kernel parameter and reboot", l.Error)
	case l.Error != nil:
		return fmt.Sprintf("needs Landlock, but the probe could not query its ABI (%v)", l.Error)
	case l.ABI < minLandlockABI:
		return fmt.Sprintf("needs Landlock ABI %d or newer for TCP port rules (Linux 6.7), but the kernel has ABI %d: upgrade the kernel", minLandlockABI, l.ABI)
	}
	return ""
}

func containerProblems(f *Facts) []string {
	var problems []string
	if p := userNamespaceProblem(&f.UserNamespaces); p != "" {
		problems = append(problems, p)
	}
	if p := cgroupProblem(&f.Cgroups); p != "" {
		problems = append(problems, p)
	}
	if p := systemdProblem(&f.Systemd); p != "" {
		problems = append(problems, p)
	}
	return problems
}

func userNamespaceProblem(u *UserNamespaces) string {
	switch {
	case u.MaxError.Is(unix.ENOENT):
		return fmt.Sprintf("needs user namespaces, but %s does not exist: use a kernel built with CONFIG_USER_NS", pathMaxUserNamespaces)
	case u.MaxError != nil:
		return fmt.Sprintf("needs user namespaces, but the probe could not read their limit (%v)", u.MaxError)
	case u.Max <= 0:
		return fmt.Sprintf("needs user namespaces, but user.max_user_namespaces is %d: set it above 0 with sysctl, for example in /etc/sysctl.d/", u.Max)

	// osvm-launch creates a container's user namespace as the unit's
	// unprivileged user, so the distributions' limits on that apply.
	case u.UnprivilegedClone != nil && !*u.UnprivilegedClone:
		return "needs user namespaces created by unprivileged users, but kernel.unprivileged_userns_clone is 0: set it to 1 with sysctl, for example in /etc/sysctl.d/"
	case u.AppArmorRestricted != nil && *u.AppArmorRestricted:
		return "needs user namespaces created by unprivileged users, but kernel.apparmor_restrict_unprivileged_userns is 1: set it to 0, or give osvm-launch an AppArmor profile that allows userns"
	}
	return ""
}

func cgroupProblem(c *Cgroups) string {
	if c.Mode == CgroupUnavailable {
		return "needs cgroups, but nothing is mounted at /sys/fs/cgroup: boot with systemd, which mounts them"
	}
	var missing []string
	for _, controller := range containerControllers {
		if !slices.Contains(c.V1Controllers, controller) && !slices.Contains(c.V2Controllers, controller) {
			missing = append(missing, controller)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	detail := ""
	if c.Error != nil {
		detail = fmt.Sprintf(" (%v)", c.Error)
	}
	return fmt.Sprintf("needs the cgroup controllers %s for resource limits, but the host lacks %s%s: use a kernel with these controllers and do not disable them with cgroup_disable=",
		strings.Join(containerControllers, ", "), strings.Join(missing, ", "), detail)
}

func systemdProblem(s *Systemd) string {
	switch {
	case s.Error != nil:
		return fmt.Sprintf("needs systemd %d or newer, but the probe found no systemd version (%v): install systemd", minSystemdVersion, s.Error)
	case s.Version < minSystemdVersion:
		return fmt.Sprintf("needs systemd %d or newer, but this host has systemd %d: upgrade systemd", minSystemdVersion, s.Version)
	}
	return ""
}

// kvmProblems returns why osvm's KVM monitor cannot run guests on the
// host, which the microvm, unikernel and tee levels all need.
func kvmProblems(f *Facts) []string {
	k := &f.KVM
	switch {
	case k.StatError.Is(unix.ENOENT):
		return []string{fmt.Sprintf("needs %s, which does not exist: %s", k.Device, enableKVMAdvice(f))}
	case k.StatError != nil:
		return []string{fmt.Sprintf("needs %s (%v)", k.Device, k.StatError)}
	case k.OpenError.Is(unix.EACCES) || k.OpenError.Is(unix.EPERM):
		return []string{fmt.Sprintf("needs read-write access to %s (%v): %s", k.Device, k.OpenError, kvmAccessAdvice(k))}
	case k.OpenError.Is(unix.ENXIO) || k.OpenError.Is(unix.ENODEV):
		return []string{fmt.Sprintf("needs a working %s, but no KVM module backs it (%v): %s", k.Device, k.OpenError, enableKVMAdvice(f))}
	case k.OpenError != nil:
		return []string{fmt.Sprintf("needs read-write access to %s (%v)", k.Device, k.OpenError)}
	case k.APIVersionError != nil:
		return []string{fmt.Sprintf("needs KVM_GET_API_VERSION on %s to work (%v)", k.Device, k.APIVersionError)}
	case k.APIVersion != kvmStableAPIVersion:
		return []string{fmt.Sprintf("needs KVM API version %d, but %s reports %d", kvmStableAPIVersion, k.Device, k.APIVersion)}
	}

	var problems []string
	if k.ExtensionError != nil {
		problems = append(problems, fmt.Sprintf("needs KVM_CHECK_EXTENSION on %s to work (%v)", k.Device, k.ExtensionError))
	}
	if !k.UserMemory {
		problems = append(problems, "needs KVM_CAP_USER_MEMORY, which this KVM lacks")
	}
	if !k.ImmediateExit {
		problems = append(problems, "needs KVM_CAP_IMMEDIATE_EXIT, which this KVM lacks: use Linux 4.11 or newer")
	}
	if !k.IRQChip {
		problems = append(problems, "needs an in-kernel interrupt controller (KVM_CAP_IRQCHIP), which this KVM lacks")
	}
	return problems
}

// enableKVMAdvice returns what to do on a host without a usable KVM module.
func enableKVMAdvice(f *Facts) string {
	switch {
	case f.CPU.VMX:
		return "load the kvm_intel module (modprobe kvm_intel)"
	case f.CPU.SVM:
		return "load the kvm_amd module (modprobe kvm_amd)"
	case f.CPU.InVM:
		return "this host is a virtual machine whose CPU reports neither VMX nor SVM, so enable nested virtualization in its hypervisor or use a kernel with PVM (CONFIG_KVM_PVM)"
	case f.CPU.CPUID || f.CPU.Vendor != "":
		return "the CPU reports neither VMX nor SVM, so enable virtualization (Intel VT-x or AMD-V) in the firmware settings"
	default:
		return "load the KVM module for this CPU"
	}
}

// kvmAccessAdvice returns how to give osvmd read-write access to /dev/kvm.
func kvmAccessAdvice(k *KVM) string {
	mode, _ := strconv.ParseUint(k.Mode, 8, 32)
	switch {
	case mode&0o006 == 0o006:
		return fmt.Sprintf("its mode %s lets everyone open it, so a security module (AppArmor, SELinux) or the device cgroup of the process denies access: check the audit log", k.Mode)
	case k.GroupAccess && k.Group != "" && k.Group != "root" && k.Group != "0":
		return fmt.Sprintf("add the user that runs osvmd to group %s, or run osvmd as root", k.Group)
	}
	who := "root"
	if k.Owner != "" && k.Owner != "root" && k.Owner != "0" {
		who = "root and user " + k.Owner
	}
	return fmt.Sprintf("only %s can open %s (mode %s, owner %s, group %s), so run osvmd as root, or give the device group kvm and mode 0660 with a udev rule and add osvmd's user to group kvm",
		who, k.Device, k.Mode, k.Owner, k.Group)
}

// kvmNotes returns the caveats of running guests on the host's KVM.
func kvmNotes(f *Facts) []string {
	if !f.KVM.EmulatedRing0 {
		return nil
	}
	switch f.KVM.Backend {
	case BackendPVM:
		return []string{"reduced speed: guest ring 0 is emulated (KVM runs on PVM, kvm_pvm)"}
	default:
		return []string{"reduced speed: guest ring 0 is emulated (KVM works although the CPU reports neither VMX nor SVM, so it runs guests in software as PVM does)"}
	}
}

func teeProblems(f *Facts) []string {
	snp, tdx := snpProblem(f), tdxProblem(f)
	if snp != "" && tdx != "" {
		return []string{fmt.Sprintf("no AMD SEV-SNP (%s) and no Intel TDX (%s)", snp, tdx)}
	}
	return kvmProblems(f)
}

// snpProblem returns why the host cannot run AMD SEV-SNP guests, or "".
func snpProblem(f *Facts) string {
	s := &f.SEV
	switch {
	case !f.CPU.CPUID:
		return "the probe cannot execute CPUID on this architecture"
	case !s.CPUIDLeaf:
		return fmt.Sprintf("this %s CPU does not implement CPUID 0x8000001F", cpuName(&f.CPU))
	case !s.CPUSNP:
		return "CPUID 0x8000001F reports no SNP"
	case !slices.Contains(f.KVM.Modules, "kvm_amd"):
		return "kvm_amd is not loaded"
	case s.KVMSNP == nil:
		return "kvm_amd has no sev_snp parameter: use Linux 6.11 or newer, built with CONFIG_KVM_AMD_SEV"
	case !*s.KVMSNP:
		return "kvm_amd's sev_snp parameter is N: enable SEV-SNP and SNP memory coverage in the firmware settings, and load kvm_amd with sev_snp=1"
	case f.KVM.VMTypesKnown && !slices.Contains(f.KVM.VMTypes, "snp"):
		return "KVM_CAP_VM_TYPES does not list SNP guests"
	case s.DeviceError.Is(unix.ENOENT):
		return fmt.Sprintf("%s does not exist: load the ccp module (modprobe ccp)", sevDevice)
	case s.DeviceError != nil:
		return fmt.Sprintf("needs read-write access to %s (%v): run osvmd as root", sevDevice, s.DeviceError)
	}
	return ""
}

// tdxProblem returns why the host cannot run Intel TDX guests, or "".
func tdxProblem(f *Facts) string {
	t := &f.TDX
	switch {
	case !slices.Contains(f.KVM.Modules, "kvm_intel"):
		return "kvm_intel is not loaded"
	case t.KVMTDX == nil:
		return "kvm_intel has no tdx parameter: use Linux 6.16 or newer, built with CONFIG_KVM_INTEL_TDX"
	case !*t.KVMTDX:
		return "kvm_intel's tdx parameter is N: enable TDX in the firmware settings and boot with kvm_intel.tdx=1"
	case f.KVM.VMTypesKnown && !slices.Contains(f.KVM.VMTypes, "tdx"):
		return "KVM_CAP_VM_TYPES does not list TDX guests"
	}
	return ""
}

// cpuName returns the CPU's vendor for messages.
func cpuName(c *CPU) string {
	if c.Vendor == "" {
		return "unknown"
	}
	return c.Vendor
}
