package probe

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FactLine is one line of a summary of Facts for people.
type FactLine struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Summary returns the facts as lines for people, one per subject, in the
// order of the fields of Facts. The JSON encoding of Facts has every
// detail.
func (f *Facts) Summary() []FactLine {
	return []FactLine{
		{"kernel", orUnknown(f.Kernel)},
		{"probed as", probedAs(f.EUID)},
		{"cpu", cpuSummary(&f.CPU)},
		{"kvm", kvmSummary(&f.KVM)},
		{kvmDevice, kvmDeviceSummary(&f.KVM)},
		{"landlock", landlockSummary(&f.Landlock)},
		{"seccomp", seccompSummary(&f.Seccomp)},
		{"cgroups", cgroupSummary(&f.Cgroups)},
		{"user namespaces", userNamespaceSummary(&f.UserNamespaces)},
		{"systemd", systemdSummary(&f.Systemd)},
		{"amd sev", sevSummary(&f.SEV, f.KVM.Modules)},
		{"intel tdx", tdxSummary(&f.TDX, f.KVM.Modules)},
		{"hugepages", hugePagesSummary(&f.HugePages)},
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func probedAs(euid int) string {
	if euid == 0 {
		return "uid 0 (root)"
	}
	return fmt.Sprintf("uid %d, not root: osvmd runs as root, so its access to %s and %s may differ", euid, kvmDevice, sevDevice)
}

func cpuSummary(c *CPU) string {
	parts := []string{orUnknown(c.Vendor)}
	if c.InVM {
		if c.Hypervisor != "" {
			parts = append(parts, fmt.Sprintf("virtual machine (hypervisor %s)", c.Hypervisor))
		} else {
			parts = append(parts, "virtual machine")
		}
	}
	switch {
	case c.VMX:
		parts = append(parts, "VMX")
	case c.SVM:
		parts = append(parts, "SVM")
	default:
		parts = append(parts, "no VMX or SVM")
	}
	if c.CPUInfoError != nil {
		parts = append(parts, c.CPUInfoError.Message)
	}
	return strings.Join(parts, ", ")
}

func kvmSummary(k *KVM) string {
	modules := "none"
	if len(k.Modules) > 0 {
		modules = strings.Join(k.Modules, ", ")
	}
	if k.Backend == BackendNone {
		return fmt.Sprintf("no KVM (modules: %s)", modules)
	}
	backend := "backend " + string(k.Backend)
	if k.EmulatedRing0 {
		backend += ", guest ring 0 emulated"
	}
	return fmt.Sprintf("%s (modules: %s)", backend, modules)
}

func kvmDeviceSummary(k *KVM) string {
	if !k.Exists {
		return k.StatError.String()
	}
	parts := []string{fmt.Sprintf("mode %s, owner %s, group %s", k.Mode, k.Owner, k.Group)}
	if !k.Opened {
		return strings.Join(append(parts, k.OpenError.String()), ", ")
	}
	parts = append(parts, "opened read-write")
	if k.APIVersionError != nil {
		parts = append(parts, k.APIVersionError.Message)
	} else {
		parts = append(parts, "API version "+strconv.Itoa(k.APIVersion))
	}
	parts = append(parts, "irqchip "+yesNo(k.IRQChip))
	if k.VMTypesKnown {
		parts = append(parts, "VM types "+strings.Join(k.VMTypes, " "))
	}
	if k.ExtensionError != nil {
		parts = append(parts, k.ExtensionError.Message)
	}
	return strings.Join(parts, ", ")
}

func landlockSummary(l *Landlock) string {
	if l.Error != nil {
		return "unavailable (" + l.Error.Message + ")"
	}
	return "ABI " + strconv.Itoa(l.ABI)
}

func seccompSummary(s *Seccomp) string {
	var parts []string
	if s.Filters {
		parts = append(parts, "filters, actions "+strings.Join(s.Actions, " "))
	} else {
		parts = append(parts, "no filters ("+s.ActionsError.String()+")")
	}
	switch {
	case s.ModeError != nil:
		parts = append(parts, s.ModeError.Message)
	case s.Mode == 2:
		parts = append(parts, "the probe already runs under a filter")
	}
	return strings.Join(parts, ", ")
}

func cgroupSummary(c *Cgroups) string {
	parts := []string{string(c.Mode)}
	if len(c.V1Controllers) > 0 {
		parts = append(parts, "v1 controllers "+strings.Join(c.V1Controllers, " "))
	}
	if len(c.V2Controllers) > 0 {
		parts = append(parts, "v2 controllers "+strings.Join(c.V2Controllers, " "))
	}
	if c.Error != nil {
		parts = append(parts, c.Error.Message)
	}
	return strings.Join(parts, ", ")
}

func userNamespaceSummary(u *UserNamespaces) string {
	if u.MaxError != nil {
		return "unavailable (" + u.MaxError.Message + ")"
	}
	parts := []string{"max " + strconv.Itoa(u.Max)}
	if u.UnprivilegedClone != nil && !*u.UnprivilegedClone {
		parts = append(parts, "only root may create them (kernel.unprivileged_userns_clone 0)")
	}
	if u.AppArmorRestricted != nil && *u.AppArmorRestricted {
		parts = append(parts, "AppArmor restricts unprivileged ones")
	}
	return strings.Join(parts, ", ")
}

func systemdSummary(s *Systemd) string {
	running := "not the running service manager"
	if s.Running {
		running = "running"
	}
	if s.Error != nil {
		return fmt.Sprintf("version unknown (%s), %s", s.Error.Message, running)
	}
	return fmt.Sprintf("%d (%s), %s", s.Version, s.FullVersion, running)
}

// parameterSummary returns "name Y", "name N" or "name absent".
func parameterSummary(name string, value *bool) string {
	switch {
	case value == nil:
		return name + " absent"
	case *value:
		return name + " Y"
	default:
		return name + " N"
	}
}

func sevSummary(s *SEV, modules []string) string {
	var parts []string
	if s.CPUIDLeaf {
		parts = append(parts, fmt.Sprintf("CPU SEV %s, SEV-ES %s, SNP %s", yesNo(s.CPUSEV), yesNo(s.CPUSEVES), yesNo(s.CPUSNP)))
	} else {
		parts = append(parts, "CPU has no CPUID 0x8000001F")
	}
	if slices.Contains(modules, "kvm_amd") {
		parts = append(parts, "kvm_amd parameters "+strings.Join([]string{
			parameterSummary("sev", s.KVMSEV),
			parameterSummary("sev_es", s.KVMSEVES),
			parameterSummary("sev_snp", s.KVMSNP),
		}, ", "))
	} else {
		parts = append(parts, "kvm_amd not loaded")
	}
	if s.Device {
		parts = append(parts, sevDevice+" read-write")
	} else {
		parts = append(parts, s.DeviceError.String())
	}
	return strings.Join(parts, ", ")
}

func tdxSummary(t *TDX, modules []string) string {
	var parts []string
	if slices.Contains(modules, "kvm_intel") {
		parts = append(parts, "kvm_intel parameter "+parameterSummary("tdx", t.KVMTDX))
	} else {
		parts = append(parts, "kvm_intel not loaded")
	}
	if t.Firmware {
		parts = append(parts, pathFirmwareTDX+" exists")
	}
	return strings.Join(parts, ", ")
}

func hugePagesSummary(h *HugePages) string {
	var parts []string
	if h.MeminfoError != nil {
		parts = append(parts, h.MeminfoError.Message)
	} else {
		parts = append(parts, fmt.Sprintf("%d pages of %d KiB reserved, %d free", h.Total, h.SizeKiB, h.Free))
	}
	if h.TransparentError != nil {
		parts = append(parts, h.TransparentError.Message)
	} else {
		parts = append(parts, "transparent "+h.Transparent)
	}
	return strings.Join(parts, ", ")
}
