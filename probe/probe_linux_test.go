package probe

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/osvm-project/osvm/internal/testenv"
)

// The project's machines (development and CI alike) are Debian 12 virtual
// machines with Linux 6.18, whose KVM runs on PVM, with the cgroup hybrid
// layout and neither AMD SEV nor Intel TDX. Update these when the kind of
// machine changes.
const (
	thisMachineLandlockABI = 7
	thisMachineCgroupMode  = CgroupHybrid
)

// TestProbeThisHost runs the real probe and checks it against what the
// project's machines offer.
func TestProbeThisHost(t *testing.T) {
	testenv.MustHaveRoot(t)
	testenv.MustHaveKVM(t)

	report := Probe(t.Context())
	f := &report.Facts

	t.Run("kvm", func(t *testing.T) {
		if !f.KVM.Opened || f.KVM.APIVersion != kvmStableAPIVersion || !f.KVM.IRQChip {
			t.Errorf("KVM: opened %v (%v), API version %d, irqchip %v; want opened, 12, irqchip",
				f.KVM.Opened, f.KVM.OpenError, f.KVM.APIVersion, f.KVM.IRQChip)
		}
		if s, _ := report.Status(LevelUnikernel); !s.Available {
			t.Errorf("unikernel is unavailable: %q", s.Reasons)
		}
		if f.KVM.Backend == BackendPVM && !f.KVM.EmulatedRing0 {
			t.Error("backend pvm without EmulatedRing0")
		}
	})

	t.Run("landlock", func(t *testing.T) {
		if f.Landlock.ABI != thisMachineLandlockABI || f.Landlock.Error != nil {
			t.Errorf("Landlock ABI %d (%v), want %d", f.Landlock.ABI, f.Landlock.Error, thisMachineLandlockABI)
		}
	})

	t.Run("cgroups", func(t *testing.T) {
		if f.Cgroups.Mode != thisMachineCgroupMode {
			t.Errorf("cgroup mode %q, want %q", f.Cgroups.Mode, thisMachineCgroupMode)
		}
		if got, want := f.Cgroups.Mode, modeFromMounts(t); got != want {
			t.Errorf("cgroup mode %q, but /proc/self/mounts shows %q", got, want)
		}
		if !slices.Contains(f.Cgroups.V1Controllers, "memory") && !slices.Contains(f.Cgroups.V2Controllers, "memory") {
			t.Errorf("no memory controller in %q or %q", f.Cgroups.V1Controllers, f.Cgroups.V2Controllers)
		}
	})

	t.Run("tee", func(t *testing.T) {
		if testenv.HasSEVSNP() || testenv.HasTDX() {
			t.Skip("skipping: this host has SEV-SNP or TDX, so tee may be available")
		}
		s, _ := report.Status(LevelTEE)
		if s.Available {
			t.Fatal("tee is available on a host without SEV-SNP or TDX")
		}
		if len(s.Reasons) != 1 || !strings.HasPrefix(s.Reasons[0], "no AMD SEV-SNP (") || !strings.Contains(s.Reasons[0], ") and no Intel TDX (") {
			t.Errorf("tee reasons %q, want one naming both SEV-SNP and TDX", s.Reasons)
		}
		if f.SEV.CPUSNP || (f.SEV.KVMSNP != nil && *f.SEV.KVMSNP) {
			t.Errorf("SEV facts report SNP: %+v", f.SEV)
		}
		if f.TDX.KVMTDX != nil && *f.TDX.KVMTDX {
			t.Errorf("TDX facts report TDX: %+v", f.TDX)
		}
	})

	t.Run("other facts", func(t *testing.T) {
		if !f.Seccomp.Filters || f.Seccomp.ModeError != nil {
			t.Errorf("seccomp: %+v", f.Seccomp)
		}
		if f.Systemd.Version < minSystemdVersion {
			t.Errorf("systemd %d (%v), want %d or newer", f.Systemd.Version, f.Systemd.Error, minSystemdVersion)
		}
		if f.UserNamespaces.Max <= 0 {
			t.Errorf("user namespaces: %+v", f.UserNamespaces)
		}
		if f.HugePages.SizeKiB <= 0 || f.HugePages.Transparent == "" {
			t.Errorf("huge pages: %+v", f.HugePages)
		}
		if !f.CPU.CPUID || f.CPU.Vendor == "" {
			t.Errorf("CPU: %+v", f.CPU)
		}
		if release, err := os.ReadFile("/proc/sys/kernel/osrelease"); err != nil || f.Kernel != strings.TrimSpace(string(release)) {
			t.Errorf("kernel %q, /proc/sys/kernel/osrelease %q (%v)", f.Kernel, release, err)
		}
	})
}

// modeFromMounts returns the cgroup layout that /proc/self/mounts shows,
// independently of github.com/containerd/cgroups/v3.
func modeFromMounts(t *testing.T) CgroupMode {
	t.Helper()
	file, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	types := map[string]string{}
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) >= 3 {
			types[fields[1]] = fields[2] // a later mount hides an earlier one
		}
	}
	switch {
	case types["/sys/fs/cgroup"] == "cgroup2":
		return CgroupUnified
	case types["/sys/fs/cgroup"] == "" && types["/sys/fs/cgroup/unified"] == "":
		return CgroupUnavailable
	case types["/sys/fs/cgroup/unified"] == "cgroup2":
		return CgroupHybrid
	default:
		return CgroupV1
	}
}

func TestSystemdVersionCommand(t *testing.T) {
	testenv.MustHaveExecPath(t, "systemctl")
	runs := systemdVersion(t.Context())
	if len(runs) == 0 || runs[0].err != nil {
		t.Fatalf("systemctl --version: %+v", runs)
	}
	if _, _, err := parseSystemdVersion(runs[0].output); err != nil {
		t.Error(err)
	}
	if len(runs) != 1 {
		t.Errorf("ran %d commands after systemctl succeeded, want 1", len(runs))
	}
}

func TestRunCommandErrors(t *testing.T) {
	missing := runCommand(t.Context(), []string{"/nonexistent/osvm-probe-test"})
	if missing.err == nil || !strings.Contains(missing.err.Error(), "/nonexistent/osvm-probe-test") {
		t.Errorf("missing program: error %v, want one naming the program", missing.err)
	}

	testenv.MustHaveExecPath(t, "sh")
	failing := runCommand(t.Context(), []string{"sh", "-c", "echo partial; echo broken install >&2; exit 3"})
	if failing.err == nil || !strings.Contains(failing.err.Error(), "exit status 3: broken install") {
		t.Errorf("failing program: error %v, want its status and standard error", failing.err)
	}
	if failing.command != "sh -c echo partial; echo broken install >&2; exit 3" {
		t.Errorf("command = %q", failing.command)
	}
}

func TestAccessReadWrite(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/device"
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := accessReadWrite(path); err != nil {
		t.Errorf("accessReadWrite of a file the test owns: %v", err)
	}
	err := accessReadWrite(dir + "/missing")
	if p := newProblem(err); !p.Is(syscall.ENOENT) || !strings.HasPrefix(p.Message, "access "+dir+"/missing") {
		t.Errorf("accessReadWrite of a missing file: %v", err)
	}
}

func TestObserveKVMMissingDevice(t *testing.T) {
	o := observeKVM(t.TempDir() + "/kvm")
	if p := newProblem(o.statErr); !p.Is(syscall.ENOENT) {
		t.Errorf("statErr = %v, want ENOENT", o.statErr)
	}
	if o.openErr != nil || o.extensions != nil {
		t.Errorf("observeKVM went on after a failed stat: %+v", o)
	}
}

func TestObserveKVMNotKVM(t *testing.T) {
	// /dev/null opens read-write but fails every KVM ioctl.
	o := observeKVM("/dev/null")
	if o.statErr != nil || o.openErr != nil {
		t.Fatalf("stat or open of /dev/null failed: %v, %v", o.statErr, o.openErr)
	}
	if o.apiVersionErr == nil || !strings.HasPrefix(o.apiVersionErr.Error(), "KVM_GET_API_VERSION: ") {
		t.Errorf("apiVersionErr = %v, want a named ioctl error", o.apiVersionErr)
	}
	f := Facts{KVM: parseKVM(&observations{kvm: o, exists: map[string]error{}}, &CPU{}), CPU: CPU{}}
	f.KVM.Device = "/dev/null"
	if problems := kvmProblems(&f); len(problems) != 1 || !strings.HasPrefix(problems[0], "needs KVM_GET_API_VERSION on /dev/null to work (") {
		t.Errorf("kvmProblems = %q", problems)
	}
}

// unprivilegedUID is the uid that TestProbeUnprivileged runs the probe as:
// the user nobody on Debian.
const unprivilegedUID = 65534

// TestProbeUnprivileged runs the real probe as a user other than root,
// who cannot open /dev/kvm on the project's machines (mode 0600), and
// checks that the report gives the reason instead of failing.
func TestProbeUnprivileged(t *testing.T) {
	testenv.MustHaveRoot(t)
	testenv.MustHaveKVM(t)

	// The test binary and t.TempDir sit in folders only root may enter,
	// so run a copy from a folder that everyone may read.
	dir, err := os.MkdirTemp("", "osvm-probe-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(dir, "probe.test")
	copyExecutable(t, binary)

	cmd := exec.CommandContext(t.Context(), binary, "-test.run=^TestHelperProbe$")
	cmd.Env = append(os.Environ(), "OSVM_PROBE_HELPER=1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: unprivilegedUID, Gid: unprivilegedUID}}
	output, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe as uid %d: %v\n%s", unprivilegedUID, err, output)
	}
	start := strings.Index(string(output), "{")
	if start < 0 {
		t.Fatalf("no report in the helper's output:\n%s", output)
	}
	var report Report
	if err := json.NewDecoder(strings.NewReader(string(output[start:]))).Decode(&report); err != nil {
		t.Fatalf("decode the helper's report: %v\n%s", err, output)
	}

	f := &report.Facts
	if f.EUID != unprivilegedUID {
		t.Errorf("EUID = %d, want %d", f.EUID, unprivilegedUID)
	}
	if f.KVM.Opened || !f.KVM.OpenError.Is(syscall.EACCES) {
		t.Errorf("KVM opened %v, open error %v, want EACCES", f.KVM.Opened, f.KVM.OpenError)
	}
	s, _ := report.Status(LevelUnikernel)
	if s.Available || len(s.Reasons) != 1 || !strings.HasPrefix(s.Reasons[0], "needs read-write access to /dev/kvm (open /dev/kvm: permission denied): ") {
		t.Errorf("unikernel status %+v, want one reason about access to /dev/kvm", s)
	}
	if f.Landlock.Error != nil || f.Cgroups.Error != nil || f.Systemd.Error != nil {
		t.Errorf("a probe without root failed where root is not needed: Landlock %v, cgroups %v, systemd %v",
			f.Landlock.Error, f.Cgroups.Error, f.Systemd.Error)
	}
}

// TestHelperProbe prints the probe's report as JSON for
// TestProbeUnprivileged. It does nothing in a normal test run.
func TestHelperProbe(t *testing.T) {
	if os.Getenv("OSVM_PROBE_HELPER") != "1" {
		return
	}
	if err := json.NewEncoder(os.Stdout).Encode(Probe(t.Context())); err != nil {
		t.Fatal(err)
	}
}

// copyExecutable copies the running test binary to path, mode 0755.
func copyExecutable(t *testing.T, path string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
