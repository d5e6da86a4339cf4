package probe

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestParseSystemdVersion(t *testing.T) {
	tests := []struct {
		output      string
		wantVersion int
		wantFull    string
		wantErr     string
	}{
		{"systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT default-hierarchy=unified\n", 252, "252.38-1~deb12u1", ""},
		{"systemd 245 (245.4-4ubuntu3.24)\n", 245, "245.4-4ubuntu3.24", ""},
		{"systemd 256 (256.11-1.fc41)\n", 256, "256.11-1.fc41", ""},
		{"systemd 239 (239-82.el8_10.2)\n", 239, "239-82.el8_10.2", ""},
		{"systemd 219\n+PAM +AUDIT\n", 219, "219", ""},
		{"systemd 258~rc1 (258~rc1-1)\n", 258, "258~rc1-1", ""},
		{"  systemd 257 (257.4-1-arch)  \n", 257, "257.4-1-arch", ""},
		{"", 0, "", `unexpected first line ""`},
		{"Systemd 252 (252.1)\n", 0, "", `unexpected first line "Systemd 252 (252.1)"`},
		{"udevadm 252\n", 0, "", `unexpected first line "udevadm 252"`},
		{"systemd abc (x)\n", 0, "", `"abc" is not a version number`},
		{"systemd\n", 0, "", `unexpected first line "systemd"`},
	}
	for _, tt := range tests {
		version, full, err := parseSystemdVersion([]byte(tt.output))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseSystemdVersion(%q) error = %v, want one containing %q", tt.output, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseSystemdVersion(%q): %v", tt.output, err)
			continue
		}
		if version != tt.wantVersion || full != tt.wantFull {
			t.Errorf("parseSystemdVersion(%q) = %d, %q, want %d, %q", tt.output, version, full, tt.wantVersion, tt.wantFull)
		}
	}
}

func TestParseCPUInfo(t *testing.T) {
	tests := []struct {
		name       string
		data       string
		wantVendor string
		wantFlags  []string
		wantErr    bool
	}{
		{
			name:       "two processors",
			data:       "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu svm sev_snp\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu svm\n",
			wantVendor: "AuthenticAMD",
			wantFlags:  []string{"fpu", "svm", "sev_snp"},
		},
		{
			name:       "vmx flags line is not the flags line",
			data:       "vendor_id\t: GenuineIntel\nflags\t\t: fpu vmx\nvmx flags\t: vnmi preemption_timer\n",
			wantVendor: "GenuineIntel",
			wantFlags:  []string{"fpu", "vmx"},
		},
		{
			name:      "no flags line, as on arm64",
			data:      "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n",
			wantFlags: nil,
		},
	}
	for _, tt := range tests {
		vendor, flags, err := parseCPUInfo([]byte(tt.data))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: error = %v, want error %v", tt.name, err, tt.wantErr)
		}
		if vendor != tt.wantVendor {
			t.Errorf("%s: vendor = %q, want %q", tt.name, vendor, tt.wantVendor)
		}
		if !reflect.DeepEqual(flags, tt.wantFlags) {
			t.Errorf("%s: flags = %q, want %q", tt.name, flags, tt.wantFlags)
		}
	}
}

func TestParseProcCgroups(t *testing.T) {
	hybrid := "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\ncpu\t1\t1\t1\nmemory\t4\t205\t1\nnet_cls\t0\t11\t1\nhugetlb\t0\t11\t1\npids\t8\t11\t1\nrdma\t9\t1\t0\n"
	got, err := parseProcCgroups([]byte(hybrid))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cpu", "cpuset", "memory", "pids"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hybrid: got %q, want %q (hierarchy 0 and disabled controllers left out)", got, want)
	}

	unified := "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t0\t120\t1\nmemory\t0\t120\t1\n"
	got, err = parseProcCgroups([]byte(unified))
	if err != nil || len(got) != 0 {
		t.Errorf("unified: got %q, %v, want no controllers", got, err)
	}

	if _, err := parseProcCgroups([]byte("#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu 1 1\n")); err == nil ||
		!strings.Contains(err.Error(), "line 2") {
		t.Errorf("malformed line: error = %v, want one naming line 2", err)
	}
}

func TestParseControllers(t *testing.T) {
	got := parseControllers([]byte("memory cpu pids\n"))
	if want := []string{"cpu", "memory", "pids"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := parseControllers([]byte("\n")); len(got) != 0 {
		t.Errorf("empty file: got %q, want none", got)
	}
}

func TestParseMeminfo(t *testing.T) {
	data := "MemTotal:       24576000 kB\nHugePages_Total:      16\nHugePages_Free:       12\nHugePages_Rsvd:        0\nHugepagesize:    1048576 kB\n"
	total, free, size, err := parseMeminfo([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if total != 16 || free != 12 || size != 1048576 {
		t.Errorf("got total %d, free %d, size %d KiB, want 16, 12, 1048576", total, free, size)
	}

	errorCases := map[string]string{
		"missing size":   "HugePages_Total: 0\nHugePages_Free: 0\n",
		"not a number":   "HugePages_Total: x\nHugePages_Free: 0\nHugepagesize: 2048 kB\n",
		"unit not kB":    "HugePages_Total: 0\nHugePages_Free: 0\nHugepagesize: 2 MB\n",
		"empty value":    "HugePages_Total:\nHugePages_Free: 0\nHugepagesize: 2048 kB\n",
		"no huge at all": "MemTotal: 1 kB\n",
	}
	for name, data := range errorCases {
		if _, _, _, err := parseMeminfo([]byte(data)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseSelected(t *testing.T) {
	tests := []struct {
		data, want string
	}{
		{"always [madvise] never\n", "madvise"},
		{"[always] madvise never\n", "always"},
		{"always madvise [never]\n", "never"},
		{"always inherit madvise [never]\n", "never"},
	}
	for _, tt := range tests {
		got, err := parseSelected(pathTransparentHugePages, []byte(tt.data))
		if err != nil || got != tt.want {
			t.Errorf("parseSelected(%q) = %q, %v, want %q", tt.data, got, err, tt.want)
		}
	}
	if _, err := parseSelected(pathTransparentHugePages, []byte("always madvise never\n")); err == nil {
		t.Error("no bracketed choice: no error")
	}
	if _, err := parseSelected(pathTransparentHugePages, []byte("[]\n")); err == nil {
		t.Error("empty brackets: no error")
	}
}

func TestParseBoolParameter(t *testing.T) {
	tests := []struct {
		data string
		want bool
	}{
		{"Y\n", true}, {"N\n", false}, {"y", true}, {"n", false}, {"1\n", true}, {"0\n", false},
	}
	for _, tt := range tests {
		got, err := parseBoolParameter([]byte(tt.data))
		if err != nil || got != tt.want {
			t.Errorf("parseBoolParameter(%q) = %v, %v, want %v", tt.data, got, err, tt.want)
		}
	}
	if _, err := parseBoolParameter([]byte("maybe\n")); err == nil {
		t.Error(`parseBoolParameter("maybe") has no error`)
	}
}

func TestRegisterString(t *testing.T) {
	if got := registerString(0x756e6547, 0x49656e69, 0x6c65746e); got != "GenuineIntel" {
		t.Errorf("leaf 0 of an Intel CPU = %q, want GenuineIntel", got)
	}
	if got := registerString(0x4b4d564b, 0x564b4d56, 0x0000004d); got != "KVMKVMKVM" {
		t.Errorf("KVM's signature = %q, want KVMKVMKVM without the trailing NULs", got)
	}
}

func TestVMTypeNames(t *testing.T) {
	tests := []struct {
		mask int
		want []string
	}{
		{0, []string{}},
		{1, []string{"default"}},
		{0b100001, []string{"default", "tdx"}},
		{0b11101, []string{"default", "sev", "sev_es", "snp"}},
		{1 | 1<<7, []string{"default", "type7"}},
	}
	for _, tt := range tests {
		if got := vmTypeNames(tt.mask); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("vmTypeNames(%#b) = %q, want %q", tt.mask, got, tt.want)
		}
	}
}

func TestKVMBackend(t *testing.T) {
	intel := CPU{Vendor: "GenuineIntel", CPUID: true, VMX: true}
	amd := CPU{Vendor: "AuthenticAMD", CPUID: true, SVM: true}
	noVirtualization := CPU{Vendor: "GenuineIntel", CPUID: true, InVM: true}
	arm := CPU{}
	tests := []struct {
		name         string
		modules      []string
		cpu          CPU
		device       bool
		wantBackend  Backend
		wantEmulated bool
	}{
		{"kvm_intel on VMX", []string{"kvm", "kvm_intel"}, intel, true, BackendVMX, false},
		{"kvm_amd on SVM", []string{"kvm", "kvm_amd"}, amd, true, BackendSVM, false},
		{"kvm_pvm built in", []string{"kvm", "kvm_pvm"}, noVirtualization, true, BackendPVM, true},
		{"kvm_pvm next to kvm_intel on VMX", []string{"kvm", "kvm_intel", "kvm_pvm"}, intel, true, BackendVMX, false},
		{"kvm_intel without VMX falls to PVM", []string{"kvm", "kvm_intel", "kvm_pvm"}, noVirtualization, true, BackendPVM, true},
		{"unnamed module without VMX or SVM", []string{"kvm"}, noVirtualization, true, BackendOther, true},
		{"no device, no module", nil, noVirtualization, false, BackendNone, false},
		{"arm64 KVM", []string{"kvm"}, arm, true, BackendOther, false},
	}
	for _, tt := range tests {
		backend, emulated := kvmBackend(tt.modules, &tt.cpu, tt.device)
		if backend != tt.wantBackend || emulated != tt.wantEmulated {
			t.Errorf("%s: kvmBackend = %q, %v, want %q, %v", tt.name, backend, emulated, tt.wantBackend, tt.wantEmulated)
		}
	}
}

func TestNewProblem(t *testing.T) {
	if newProblem(nil) != nil {
		t.Error("newProblem(nil) is not nil")
	}

	p := newProblem(&fs.PathError{Op: "open", Path: "/dev/kvm", Err: syscall.EACCES})
	if p.Message != "open /dev/kvm: permission denied" || p.Errno != "EACCES" {
		t.Errorf("newProblem(EACCES) = %+v", p)
	}
	if !p.Is(syscall.EACCES) || p.Is(syscall.EPERM) {
		t.Errorf("Is on EACCES: got Is(EACCES) %v, Is(EPERM) %v", p.Is(syscall.EACCES), p.Is(syscall.EPERM))
	}

	landlock := newProblem(os.NewSyscallError("landlock_create_ruleset", syscall.EOPNOTSUPP))
	if !landlock.Is(syscall.EOPNOTSUPP) || !landlock.Is(syscall.ENOTSUP) {
		t.Errorf("EOPNOTSUPP problem %+v does not match EOPNOTSUPP and ENOTSUP, which are one number on Linux", landlock)
	}

	plain := newProblem(errors.New("exec: \"systemctl\": executable file not found in $PATH"))
	if plain.Errno != "" || plain.Is(syscall.ENOENT) {
		t.Errorf("an error without an errno gave %+v", plain)
	}

	var none *Problem
	if none.Is(syscall.ENOENT) || none.String() != "" {
		t.Error("a nil *Problem matches an errno or has text")
	}
}

// observationsWith returns observations of a host with nothing but the
// given files, for parse functions that read only files.
func observationsWith(files map[string]string) *observations {
	o := &observations{files: map[string]fileResult{}, exists: map[string]error{}}
	for _, path := range filesRead {
		o.files[path] = fileResult{err: &fs.PathError{Op: "open", Path: path, Err: syscall.ENOENT}}
	}
	for path, content := range files {
		o.files[path] = fileResult{data: []byte(content)}
	}
	for _, path := range pathsChecked {
		o.exists[path] = &fs.PathError{Op: "stat", Path: path, Err: syscall.ENOENT}
	}
	return o
}

func TestParseCgroupsModes(t *testing.T) {
	procCgroups := "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nmemory\t2\t1\t1\npids\t3\t1\t1\nhugetlb\t0\t1\t1\n"
	tests := []struct {
		name   string
		mode   CgroupMode
		files  map[string]string
		want   Cgroups
		errSub string
	}{
		{
			name:  "v1",
			mode:  CgroupV1,
			files: map[string]string{pathProcCgroups: procCgroups},
			want:  Cgroups{Mode: CgroupV1, V1Controllers: []string{"cpu", "memory", "pids"}, V2Controllers: []string{}},
		},
		{
			name:  "hybrid",
			mode:  CgroupHybrid,
			files: map[string]string{pathProcCgroups: procCgroups, pathHybridControllers: "hugetlb\n"},
			want:  Cgroups{Mode: CgroupHybrid, V1Controllers: []string{"cpu", "memory", "pids"}, V2Controllers: []string{"hugetlb"}},
		},
		{
			name:  "unified ignores /proc/cgroups",
			mode:  CgroupUnified,
			files: map[string]string{pathProcCgroups: "garbage", pathUnifiedControllers: "pids memory cpu\n"},
			want:  Cgroups{Mode: CgroupUnified, V1Controllers: []string{}, V2Controllers: []string{"cpu", "memory", "pids"}},
		},
		{
			name: "unavailable",
			mode: CgroupUnavailable,
			want: Cgroups{Mode: CgroupUnavailable, V1Controllers: []string{}, V2Controllers: []string{}},
		},
		{
			name:   "unified without cgroup.controllers",
			mode:   CgroupUnified,
			want:   Cgroups{Mode: CgroupUnified, V1Controllers: []string{}, V2Controllers: []string{}},
			errSub: "open /sys/fs/cgroup/cgroup.controllers: no such file or directory",
		},
	}
	for _, tt := range tests {
		o := observationsWith(tt.files)
		o.cgroupMode = tt.mode
		got := parseCgroups(o)
		gotErr := got.Error
		got.Error = nil
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
		switch {
		case tt.errSub == "" && gotErr != nil:
			t.Errorf("%s: error %v, want none", tt.name, gotErr)
		case tt.errSub != "" && (gotErr == nil || !strings.Contains(gotErr.Message, tt.errSub)):
			t.Errorf("%s: error %v, want one containing %q", tt.name, gotErr, tt.errSub)
		}
	}
}

func TestParseUserNamespaces(t *testing.T) {
	o := observationsWith(map[string]string{
		pathMaxUserNamespaces:  "0\n",
		pathUnprivilegedUserNS: "0\n",
		pathAppArmorUserNS:     "1\n",
	})
	u := parseUserNamespaces(o)
	if u.Max != 0 || u.MaxError != nil {
		t.Errorf("Max = %d, %v, want 0 without error", u.Max, u.MaxError)
	}
	if u.UnprivilegedClone == nil || *u.UnprivilegedClone {
		t.Errorf("UnprivilegedClone = %v, want false", u.UnprivilegedClone)
	}
	if u.AppArmorRestricted == nil || !*u.AppArmorRestricted {
		t.Errorf("AppArmorRestricted = %v, want true", u.AppArmorRestricted)
	}

	u = parseUserNamespaces(observationsWith(nil))
	if !u.MaxError.Is(syscall.ENOENT) || u.UnprivilegedClone != nil || u.AppArmorRestricted != nil {
		t.Errorf("kernel without user namespaces: got %+v", u)
	}

	u = parseUserNamespaces(observationsWith(map[string]string{pathMaxUserNamespaces: "lots\n"}))
	if u.MaxError == nil || !strings.Contains(u.MaxError.Message, pathMaxUserNamespaces) {
		t.Errorf("unparsable limit: MaxError = %v, want one naming %s", u.MaxError, pathMaxUserNamespaces)
	}
}

func TestParseSystemdAllFail(t *testing.T) {
	o := observationsWith(nil)
	o.systemd = []commandResult{
		{command: "systemctl --version", err: errors.New(`exec: "systemctl": executable file not found in $PATH`)},
		{command: "/lib/systemd/systemd --version", output: []byte("garbage\n")},
		{command: "/usr/lib/systemd/systemd --version", err: errors.New("fork/exec /usr/lib/systemd/systemd: no such file or directory")},
	}
	s := parseSystemd(o)
	if s.Version != 0 || s.Error == nil {
		t.Fatalf("got version %d, error %v, want 0 and an error", s.Version, s.Error)
	}
	for _, command := range []string{"systemctl --version: exec", "/lib/systemd/systemd --version: unexpected first line", "/usr/lib/systemd/systemd --version: fork/exec"} {
		if !strings.Contains(s.Error.Message, command) {
			t.Errorf("error %q does not contain %q", s.Error.Message, command)
		}
	}
}

func TestCPUIDLeafLimits(t *testing.T) {
	o := &observations{cpuidOK: true, cpuid: map[uint32]cpuidRegisters{
		leafVendor:           {EAX: 0x0d},
		leafFeatures:         {ECX: bitHypervisor},
		leafHypervisor:       {EBX: 0x4b4d564b},
		leafExtendedMax:      {EAX: 0x80000008},
		leafMemoryEncryption: {EAX: bitSNP}, // stale: beyond the extended limit
	}}
	if _, ok := cpuidLeaf(o, leafFeatures); !ok {
		t.Error("leaf 1 is within the basic limit but was not found")
	}
	if _, ok := cpuidLeaf(o, leafMemoryEncryption); ok {
		t.Error("leaf 0x8000001F is beyond the extended limit 0x80000008 but was returned")
	}
	if _, ok := cpuidLeaf(o, leafHypervisor); !ok {
		t.Error("leaf 0x40000000 was read but not returned")
	}
	if _, ok := cpuidLeaf(o, 0x07); ok {
		t.Error("leaf 7 was never read but was returned")
	}
	o.cpuidOK = false
	if _, ok := cpuidLeaf(o, leafVendor); ok {
		t.Error("a host without CPUID returned leaf 0")
	}
}

func TestParseCPUFallsBackToCPUID(t *testing.T) {
	o := observationsWith(nil) // no /proc/cpuinfo
	o.cpuidOK = true
	o.cpuid = map[uint32]cpuidRegisters{
		leafVendor:           {EAX: 0x10, EBX: 0x68747541, EDX: 0x69746e65, ECX: 0x444d4163},
		leafFeatures:         {},
		leafExtendedMax:      {EAX: 0x80000028},
		leafExtendedFeatures: {ECX: bitSVM},
	}
	c := parseCPU(o)
	if c.Vendor != "AuthenticAMD" || !c.SVM || c.VMX || c.CPUInfoError == nil {
		t.Errorf("got %+v, want AuthenticAMD with SVM from CPUID and the cpuinfo error kept", c)
	}
}
