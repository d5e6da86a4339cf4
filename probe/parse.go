package probe

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// parse turns what gather observed into Facts. It reads nothing from the
// host, so the tests run it on recorded observations.
func parse(o *observations) Facts {
	cpu := parseCPU(o)
	f := Facts{
		Kernel:         strings.TrimSpace(string(o.files[pathOSRelease].data)),
		EUID:           o.euid,
		CPU:            cpu,
		KVM:            parseKVM(o, &cpu),
		Landlock:       Landlock{ABI: o.landlockABI, Error: newProblem(o.landlockErr)},
		Seccomp:        parseSeccomp(o),
		Cgroups:        parseCgroups(o),
		UserNamespaces: parseUserNamespaces(o),
		Systemd:        parseSystemd(o),
		SEV:            parseSEV(o, &cpu),
		TDX:            parseTDX(o),
		HugePages:      parseHugePages(o),
	}
	return f
}

// CPUID leaves and bits the probe reads, from the Intel SDM volume 2A
// (CPUID) and AMD's APM volume 3 (appendix E).
const (
	leafVendor           = 0x00000000 // EAX: highest basic leaf; EBX, EDX, ECX: vendor
	leafFeatures         = 0x00000001
	leafHypervisor       = 0x40000000 // EBX, ECX, EDX: hypervisor signature, when ECX bit 31 of leaf 1 is set
	leafExtendedMax      = 0x80000000 // EAX: highest extended leaf
	leafExtendedFeatures = 0x80000001
	leafMemoryEncryption = 0x8000001F // AMD SME, SEV, SEV-ES and SEV-SNP

	bitVMX        = 1 << 5  // leaf 1 ECX
	bitHypervisor = 1 << 31 // leaf 1 ECX
	bitSVM        = 1 << 2  // leaf 0x80000001 ECX
	bitSEV        = 1 << 1  // leaf 0x8000001F EAX
	bitSEVES      = 1 << 3  // leaf 0x8000001F EAX
	bitSNP        = 1 << 4  // leaf 0x8000001F EAX
)

// cpuidLeaf returns the registers of leaf, or false when the CPU does not
// implement it or it was not read.
func cpuidLeaf(o *observations, leaf uint32) (cpuidRegisters, bool) {
	if !o.cpuidOK {
		return cpuidRegisters{}, false
	}
	regs, ok := o.cpuid[leaf]
	switch {
	case leaf < leafHypervisor:
		ok = ok && leaf <= o.cpuid[leafVendor].EAX
	case leaf >= leafExtendedMax:
		ok = ok && leaf <= o.cpuid[leafExtendedMax].EAX
	}
	// The hypervisor leaves (0x40000000 and up) have no limit that applies
	// to every hypervisor. gather reads them only when leaf 1 reports one.
	return regs, ok
}

// registerString returns the ASCII text that CPUID stores in registers,
// such as the vendor "GenuineIntel" in EBX, EDX and ECX of leaf 0.
func registerString(registers ...uint32) string {
	b := make([]byte, 0, 4*len(registers))
	for _, r := range registers {
		b = append(b, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
	}
	return string(bytes.TrimRight(b, "\x00"))
}

func parseCPU(o *observations) CPU {
	var c CPU
	info := o.files[pathCPUInfo]
	vendor, flags, err := parseCPUInfo(info.data)
	if info.err != nil {
		err = info.err
	}
	c.CPUInfoError = newProblem(err)
	c.Vendor = vendor
	c.VMX = slices.Contains(flags, "vmx")
	c.SVM = slices.Contains(flags, "svm")
	c.InVM = slices.Contains(flags, "hypervisor")

	if !o.cpuidOK {
		return c
	}
	c.CPUID = true
	leaf0 := o.cpuid[leafVendor]
	c.MaxLeaf = leaf0.EAX
	c.Vendor = registerString(leaf0.EBX, leaf0.EDX, leaf0.ECX)
	c.MaxExtendedLeaf = o.cpuid[leafExtendedMax].EAX
	features, _ := cpuidLeaf(o, leafFeatures)
	if features.ECX&bitHypervisor != 0 {
		c.InVM = true
		if regs, ok := cpuidLeaf(o, leafHypervisor); ok {
			c.Hypervisor = registerString(regs.EBX, regs.ECX, regs.EDX)
		}
	}
	if c.CPUInfoError != nil {
		// Without the kernel's view, fall back to what the CPU reports.
		// The firmware may have disabled either feature.
		extended, _ := cpuidLeaf(o, leafExtendedFeatures)
		c.VMX = features.ECX&bitVMX != 0
		c.SVM = extended.ECX&bitSVM != 0
	}
	return c
}

// parseCPUInfo returns the vendor_id and the flags of the first processor
// in data, the contents of /proc/cpuinfo. Both are empty on architectures
// other than x86, whose cpuinfo has neither.
func parseCPUInfo(data []byte) (vendor string, flags []string, err error) {
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(nil, 1<<20) // the flags line of a recent CPU is over 1 KiB
	for scanner.Scan() {
		key, value, ok := strings.Cut(scanner.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "vendor_id":
			if vendor == "" {
				vendor = strings.TrimSpace(value)
			}
		case "flags":
			if flags == nil {
				flags = strings.Fields(value)
			}
		}
		if vendor != "" && flags != nil {
			break
		}
	}
	if err := scanner.Err(); err != nil {
		return vendor, flags, fmt.Errorf("read %s: %w", pathCPUInfo, err)
	}
	return vendor, flags, nil
}

// kvmModules maps the KVM modules the probe looks for to their folders.
var kvmModules = []struct{ name, path string }{
	{"kvm", pathModuleKVM},
	{"kvm_intel", pathModuleKVMIntel},
	{"kvm_amd", pathModuleKVMAMD},
	{"kvm_pvm", pathModuleKVMPVM},
}

func parseKVM(o *observations, cpu *CPU) KVM {
	k := KVM{Device: kvmDevice, Modules: []string{}, VMTypes: []string{}}
	for _, m := range kvmModules {
		if o.exists[m.path] == nil {
			k.Modules = append(k.Modules, m.name)
		}
	}

	ko := &o.kvm
	if ko.statErr != nil {
		k.StatError = newProblem(ko.statErr)
	} else {
		k.Exists = true
		k.Mode = fmt.Sprintf("%04o", ko.mode&0o7777)
		k.Owner, k.Group = ko.owner, ko.group
		k.GroupAccess = ko.mode&0o060 == 0o060
		if ko.openErr != nil {
			k.OpenError = newProblem(ko.openErr)
		} else {
			k.Opened = true
		}
	}

	if k.Opened {
		k.APIVersion = ko.apiVersion
		k.APIVersionError = newProblem(ko.apiVersionErr)
		for _, c := range kvmCapabilities {
			result := ko.extensions[c]
			if result.err != nil && k.ExtensionError == nil {
				k.ExtensionError = newProblem(fmt.Errorf("KVM_CHECK_EXTENSION %v: %w", c, result.err))
			}
			switch c {
			case kvmCapIRQChip:
				k.IRQChip = result.value > 0
			case kvmCapUserMemory:
				k.UserMemory = result.value > 0
			case kvmCapImmediateExit:
				k.ImmediateExit = result.value > 0
			case kvmCapVMTypes:
				// Every kernel with the capability lists the default VM
				// type, so 0 means the kernel lacks it.
				k.VMTypesKnown = result.value > 0
				k.VMTypes = vmTypeNames(result.value)
			}
		}
	}

	k.Backend, k.EmulatedRing0 = kvmBackend(k.Modules, cpu, k.Exists)
	return k
}

// vmTypeNames returns the names of the VM types in mask, a
// KVM_CAP_VM_TYPES result.
func vmTypeNames(mask int) []string {
	names := []string{}
	for bit := range 31 {
		if mask&(1<<bit) == 0 {
			continue
		}
		if bit < len(kvmVMTypeNames) {
			names = append(names, kvmVMTypeNames[bit])
		} else {
			names = append(names, fmt.Sprintf("type%d", bit))
		}
	}
	return names
}

// kvmBackend returns the KVM implementation that modules and cpu point to,
// and whether it emulates guest ring 0.
func kvmBackend(modules []string, cpu *CPU, devicePresent bool) (Backend, bool) {
	x86 := cpu.CPUID || cpu.Vendor != ""
	switch {
	case slices.Contains(modules, "kvm_intel") && cpu.VMX:
		return BackendVMX, false
	case slices.Contains(modules, "kvm_amd") && cpu.SVM:
		return BackendSVM, false
	case slices.Contains(modules, "kvm_pvm"):
		return BackendPVM, true
	case !devicePresent:
		return BackendNone, false
	case x86 && !cpu.VMX && !cpu.SVM:
		// An x86 KVM without VMX or SVM can only run guests in software,
		// as PVM does, even when its module has another name.
		return BackendOther, true
	default:
		return BackendOther, false
	}
}

// requiredSeccompActions are the filter actions that osvm's seccomp
// profiles use (package sandbox): allowed calls, calls that fail with an
// errno, and calls of other architectures, which kill the process.
var requiredSeccompActions = []string{"allow", "errno", "kill_process"}

func parseSeccomp(o *observations) Seccomp {
	s := Seccomp{Actions: []string{}, Mode: o.seccompMode, ModeError: newProblem(o.seccompErr)}
	actions := o.files[pathSeccompActions]
	if actions.err != nil {
		s.ActionsError = newProblem(actions.err)
		return s
	}
	s.Filters = true
	s.Actions = strings.Fields(string(actions.data))
	return s
}

func parseCgroups(o *observations) Cgroups {
	c := Cgroups{V1Controllers: []string{}, V2Controllers: []string{}}
	var v2Path string
	switch o.cgroupMode {
	case CgroupV1:
		c.Mode = CgroupV1
	case CgroupHybrid:
		c.Mode, v2Path = CgroupHybrid, pathHybridControllers
	case CgroupUnified:
		c.Mode, v2Path = CgroupUnified, pathUnifiedControllers
	default:
		c.Mode = CgroupUnavailable
		return c
	}

	var problems []error
	if c.Mode != CgroupUnified {
		file := o.files[pathProcCgroups]
		controllers, err := parseProcCgroups(file.data)
		if file.err != nil {
			err = file.err
		}
		if err != nil {
			problems = append(problems, err)
		}
		c.V1Controllers = controllers
	}
	if v2Path != "" {
		file := o.files[v2Path]
		if file.err != nil {
			problems = append(problems, file.err)
		} else {
			c.V2Controllers = parseControllers(file.data)
		}
	}
	c.Error = newProblem(errors.Join(problems...))
	return c
}

// parseProcCgroups returns the controllers that /proc/cgroups (data) lists
// as enabled and attached to a cgroup v1 hierarchy, sorted. Controllers of
// hierarchy 0 are in the v2 hierarchy or in none.
func parseProcCgroups(data []byte) ([]string, error) {
	controllers := []string{}
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; scanner.Scan(); line++ {
		text := scanner.Text()
		if strings.HasPrefix(text, "#") || strings.TrimSpace(text) == "" {
			continue
		}
		// subsys_name hierarchy num_cgroups enabled
		fields := strings.Fields(text)
		if len(fields) != 4 {
			return controllers, fmt.Errorf("parse %s line %d: %q has %d fields, want 4", pathProcCgroups, line, text, len(fields))
		}
		if fields[1] != "0" && fields[3] == "1" {
			controllers = append(controllers, fields[0])
		}
	}
	if err := scanner.Err(); err != nil {
		return controllers, fmt.Errorf("read %s: %w", pathProcCgroups, err)
	}
	slices.Sort(controllers)
	return controllers, nil
}

// parseControllers returns the controllers of a cgroup.controllers file,
// sorted.
func parseControllers(data []byte) []string {
	controllers := strings.Fields(string(data))
	slices.Sort(controllers)
	return controllers
}

func parseUserNamespaces(o *observations) UserNamespaces {
	var u UserNamespaces
	file := o.files[pathMaxUserNamespaces]
	if file.err != nil {
		u.MaxError = newProblem(file.err)
	} else if n, err := parseSysctlInt(pathMaxUserNamespaces, file.data); err != nil {
		u.MaxError = newProblem(err)
	} else {
		u.Max = n
	}
	u.UnprivilegedClone = parseOptionalSysctlBool(o.files[pathUnprivilegedUserNS], pathUnprivilegedUserNS)
	u.AppArmorRestricted = parseOptionalSysctlBool(o.files[pathAppArmorUserNS], pathAppArmorUserNS)
	return u
}

// parseSysctlInt parses the integer in data, a file under /proc/sys at path.
func parseSysctlInt(path string, data []byte) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return n, nil
}

// parseOptionalSysctlBool returns whether the integer in file is not 0, or
// nil when file could not be read or parsed.
func parseOptionalSysctlBool(file fileResult, path string) *bool {
	if file.err != nil {
		return nil
	}
	n, err := parseSysctlInt(path, file.data)
	if err != nil {
		return nil
	}
	value := n != 0
	return &value
}

func parseSystemd(o *observations) Systemd {
	s := Systemd{Running: o.exists[pathSystemdRunning] == nil}
	var problems []string
	for _, run := range o.systemd {
		if run.err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", run.command, run.err))
			continue
		}
		version, full, err := parseSystemdVersion(run.output)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", run.command, err))
			continue
		}
		s.Version, s.FullVersion, s.Source = version, full, run.command
		return s
	}
	if len(problems) == 0 {
		problems = append(problems, "no command ran")
	}
	s.Error = &Problem{Message: strings.Join(problems, "; ")}
	return s
}

// parseSystemdVersion parses the first line of systemctl --version, such as
// "systemd 252 (252.38-1~deb12u1)", into 252 and "252.38-1~deb12u1".
// Development builds print versions such as "258~rc1"; their number is 258.
func parseSystemdVersion(output []byte) (version int, full string, err error) {
	first, _, _ := strings.Cut(string(output), "\n")
	first = strings.TrimSpace(first)
	name, rest, ok := strings.Cut(first, " ")
	if !ok || name != "systemd" {
		return 0, "", fmt.Errorf("unexpected first line %q, want one such as \"systemd 252 (252.38-1~deb12u1)\"", first)
	}
	number, detail, _ := strings.Cut(strings.TrimSpace(rest), " ")
	digits := number
	if i := strings.IndexFunc(number, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = number[:i]
	}
	version, err = strconv.Atoi(digits)
	if err != nil || version <= 0 {
		return 0, "", fmt.Errorf("unexpected first line %q: %q is not a version number", first, number)
	}
	full = number
	if detail = strings.TrimSpace(detail); strings.HasPrefix(detail, "(") && strings.HasSuffix(detail, ")") {
		full = detail[1 : len(detail)-1]
	}
	return version, full, nil
}

func parseSEV(o *observations, cpu *CPU) SEV {
	var s SEV
	if regs, ok := cpuidLeaf(o, leafMemoryEncryption); ok && cpu.CPUID {
		s.CPUIDLeaf = true
		s.CPUSEV = regs.EAX&bitSEV != 0
		s.CPUSEVES = regs.EAX&bitSEVES != 0
		s.CPUSNP = regs.EAX&bitSNP != 0
	}
	s.KVMSEV = parseOptionalParameter(o.files[pathSEVParameter])
	s.KVMSEVES = parseOptionalParameter(o.files[pathSEVESParameter])
	s.KVMSNP = parseOptionalParameter(o.files[pathSNPParameter])
	s.DeviceError = newProblem(o.sevDeviceAccess)
	s.Device = o.sevDeviceAccess == nil
	return s
}

func parseTDX(o *observations) TDX {
	return TDX{
		KVMTDX:   parseOptionalParameter(o.files[pathTDXParameter]),
		Firmware: o.exists[pathFirmwareTDX] == nil,
	}
}

// parseOptionalParameter returns the boolean value of file, a module
// parameter, or nil when it could not be read or is not a boolean.
func parseOptionalParameter(file fileResult) *bool {
	if file.err != nil {
		return nil
	}
	value, err := parseBoolParameter(file.data)
	if err != nil {
		return nil
	}
	return &value
}

// parseBoolParameter parses a module parameter under /sys/module. Bool
// parameters read Y or N. Integer ones, such as kvm_amd's sev in older
// kernels, read 1 or 0.
func parseBoolParameter(data []byte) (bool, error) {
	switch v := strings.TrimSpace(string(data)); v {
	case "Y", "y", "1":
		return true, nil
	case "N", "n", "0":
		return false, nil
	default:
		return false, fmt.Errorf("module parameter is %q, want Y, N, 1 or 0", v)
	}
}

func parseHugePages(o *observations) HugePages {
	var h HugePages
	meminfo := o.files[pathMeminfo]
	if meminfo.err != nil {
		h.MeminfoError = newProblem(meminfo.err)
	} else {
		var err error
		h.Total, h.Free, h.SizeKiB, err = parseMeminfo(meminfo.data)
		h.MeminfoError = newProblem(err)
	}
	thp := o.files[pathTransparentHugePages]
	if thp.err != nil {
		h.TransparentError = newProblem(thp.err)
	} else {
		var err error
		h.Transparent, err = parseSelected(pathTransparentHugePages, thp.data)
		h.TransparentError = newProblem(err)
	}
	return h
}

// parseMeminfo returns HugePages_Total, HugePages_Free and Hugepagesize
// (in KiB) from data, the contents of /proc/meminfo.
func parseMeminfo(data []byte) (total, free, sizeKiB int, err error) {
	want := map[string]*int{"HugePages_Total": &total, "HugePages_Free": &free, "Hugepagesize": &sizeKiB}
	found := map[string]bool{}
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		key, value, ok := strings.Cut(scanner.Text(), ":")
		target, wanted := want[key]
		if !ok || !wanted {
			continue
		}
		// "HugePages_Total:       0" or "Hugepagesize:       2048 kB"
		fields := strings.Fields(value)
		if len(fields) == 0 || (len(fields) == 2 && fields[1] != "kB") || len(fields) > 2 {
			return 0, 0, 0, fmt.Errorf("parse %s: unexpected %s value %q", pathMeminfo, key, value)
		}
		n, err := strconv.Atoi(fields[0])
		if err != nil {
			return 0, 0, 0, fmt.Errorf("parse %s: %s: %w", pathMeminfo, key, err)
		}
		*target = n
		found[key] = true
	}
	if err := scanner.Err(); err != nil {
		return 0, 0, 0, fmt.Errorf("read %s: %w", pathMeminfo, err)
	}
	for _, key := range []string{"HugePages_Total", "HugePages_Free", "Hugepagesize"} {
		if !found[key] {
			return 0, 0, 0, fmt.Errorf("parse %s: no %s line (the kernel may lack CONFIG_HUGETLBFS)", pathMeminfo, key)
		}
	}
	return total, free, sizeKiB, nil
}

// parseSelected returns the bracketed choice of a sysfs setting such as
// "always [madvise] never".
func parseSelected(path string, data []byte) (string, error) {
	for _, choice := range strings.Fields(string(data)) {
		if len(choice) > 2 && strings.HasPrefix(choice, "[") && strings.HasSuffix(choice, "]") {
			return choice[1 : len(choice)-1], nil
		}
	}
	return "", fmt.Errorf("parse %s: no [selected] value in %q", path, strings.TrimSpace(string(data)))
}
