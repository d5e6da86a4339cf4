//go:build linux

package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// InCI reports whether the tests run in CI, where the environment variable
// CI is "true". There a missing requirement fails the test instead of
// skipping it.
func InCI() bool {
	return os.Getenv("CI") == "true"
}

// missing reports a requirement that is not met: it skips t, or fails t in CI.
// requirement reads like "needs root (running as uid 1000)".
func missing(t testing.TB, requirement string) {
	t.Helper()
	if fail, message := decide(requirement, InCI()); fail {
		t.Fatal(message)
	} else {
		t.Skip(message)
	}
}

// decide returns whether a missing requirement fails the test, and the
// message to fail or skip it with.
func decide(requirement string, inCI bool) (fail bool, message string) {
	if inCI {
		return true, "CI=true, so a missing requirement fails instead of skipping: " + requirement
	}
	return false, "skipping: " + requirement
}

// HasRoot reports whether the process runs with effective uid 0.
func HasRoot() bool {
	return os.Geteuid() == 0
}

// MustHaveRoot skips t unless the process runs as root, or fails t in CI.
func MustHaveRoot(t testing.TB) {
	t.Helper()
	if problem := rootProblem(os.Geteuid()); problem != "" {
		missing(t, problem)
	}
}

// rootProblem returns why a process with effective uid euid is not root, or "".
func rootProblem(euid int) string {
	if euid == 0 {
		return ""
	}
	return fmt.Sprintf("needs root (running as uid %d)", euid)
}

// systemdBinary is the path from which internal/sdsandbox starts systemd.
const systemdBinary = "/lib/systemd/systemd"

// sandboxTools are the programs that internal/sdsandbox runs, besides bash
// and coreutils.
var sandboxTools = []string{
	"systemctl", "dbus-daemon", "unshare", "nsenter", "setpriv", "findmnt", "pgrep",
}

// systemdProblem returns why the systemd sandbox of internal/sdsandbox
// cannot run here, as a requirement phrase, or "" if it can. It does not ask
// for systemd to be PID 1: the sandbox starts its own.
func systemdProblem() string {
	if info, err := os.Stat(systemdBinary); err != nil {
		return fmt.Sprintf("needs systemd at %s (%v)", systemdBinary, err)
	} else if info.Mode()&0o111 == 0 {
		return fmt.Sprintf("needs systemd at %s to be executable (mode %v)", systemdBinary, info.Mode())
	}
	for _, tool := range sandboxTools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("needs %s for the systemd sandbox (%v)", tool, err)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return fmt.Sprintf("needs /proc/self/mounts to check the cgroup layout (%v)", err)
	}
	if !hasNamedSystemdHierarchy(mounts) {
		return "needs the cgroup v1 or hybrid layout for the systemd sandbox " +
			"(no name=systemd cgroup hierarchy at /sys/fs/cgroup/systemd in /proc/self/mounts)"
	}
	return ""
}

// hasNamedSystemdHierarchy reports whether mounts, in the format of
// /proc/self/mounts, has a cgroup v1 name=systemd hierarchy at
// /sys/fs/cgroup/systemd.
func hasNamedSystemdHierarchy(mounts []byte) bool {
	scanner := bufio.NewScanner(bytes.NewReader(mounts))
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 4 || fields[1] != "/sys/fs/cgroup/systemd" || fields[2] != "cgroup" {
			continue
		}
		for option := range strings.SplitSeq(fields[3], ",") {
			if option == "name=systemd" {
				return true
			}
		}
	}
	return false
}

// HasSystemd reports whether the systemd sandbox of internal/sdsandbox can
// run: systemd, D-Bus and the util-linux tools are installed and the cgroup
// layout is v1 or hybrid. It does not check for root; see HasRoot.
func HasSystemd() bool {
	return systemdProblem() == ""
}

// MustHaveSystemd skips t unless the systemd sandbox can run (see
// HasSystemd), or fails t in CI.
func MustHaveSystemd(t testing.TB) {
	t.Helper()
	if problem := systemdProblem(); problem != "" {
		missing(t, problem)
	}
}

// kvmGetAPIVersion is KVM_GET_API_VERSION, _IO(KVMIO, 0x00) in <linux/kvm.h>.
const kvmGetAPIVersion = 0xAE00

// kvmAPIVersion is the version of the stable KVM API, KVM_API_VERSION in
// <linux/kvm.h>.
const kvmAPIVersion = 12

// kvmProblem returns why KVM cannot be used, or "" if it can.
func kvmProblem() string {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Sprintf("needs read-write access to /dev/kvm (open /dev/kvm: %v)", err)
	}
	defer unix.Close(fd)
	version, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	if err != nil {
		return fmt.Sprintf("needs a working /dev/kvm (KVM_GET_API_VERSION: %v)", err)
	}
	if version != kvmAPIVersion {
		return fmt.Sprintf("needs KVM API version %d (/dev/kvm reports %d)", kvmAPIVersion, version)
	}
	return ""
}

// HasKVM reports whether /dev/kvm opens read-write and its
// KVM_GET_API_VERSION ioctl returns the stable API version.
func HasKVM() bool {
	return kvmProblem() == ""
}

// MustHaveKVM skips t unless KVM is usable (see HasKVM), or fails t in CI.
func MustHaveKVM(t testing.TB) {
	t.Helper()
	if problem := kvmProblem(); problem != "" {
		missing(t, problem)
	}
}

// MustHaveExecPath skips t unless file is an executable in PATH (or, if file
// contains a slash, at that path), or fails t in CI.
func MustHaveExecPath(t testing.TB, file string) {
	t.Helper()
	if _, err := exec.LookPath(file); err != nil {
		missing(t, fmt.Sprintf("needs %s (%v)", file, err))
	}
}

// MustHaveLandlock skips t unless the kernel's Landlock ABI is at least
// abi, or fails t in CI.
func MustHaveLandlock(t testing.TB, abi int) {
	t.Helper()
	have, err := ll.LandlockGetABIVersion()
	if err != nil {
		missing(t, fmt.Sprintf("needs Landlock ABI %d (Landlock is unavailable: %v)", abi, err))
	} else if have < abi {
		missing(t, fmt.Sprintf("needs Landlock ABI %d (the kernel has ABI %d)", abi, have))
	}
}

// SkipMissingHardware skips t, even in CI, because the machine lacks
// hardware. observed describes what the test found, for example
// "/sys/module/kvm_amd/parameters/sev_snp is N". Use it only for hardware
// that CI's machine does not have; a missing package or file there must fail
// the test, so use MustHaveX for those.
func SkipMissingHardware(t testing.TB, hardware, observed string) {
	t.Helper()
	t.Skipf("skipping: needs %s (%s); missing hardware skips even in CI", hardware, observed)
}

// Module parameters that read Y when KVM can run confidential guests:
// sev_snp in arch/x86/kvm/svm/sev.c and tdx in arch/x86/kvm/vmx
// (Linux 6.16). KVM clears each one at load time when the CPU, firmware or
// kernel lacks support. tdx is off unless the host boots with
// kvm_intel.tdx=1.
const (
	sevSNPParameter = "/sys/module/kvm_amd/parameters/sev_snp"
	tdxParameter    = "/sys/module/kvm_intel/parameters/tdx"
)

// enabledParameter returns "" if the kernel module parameter file at path
// reads Y, or else what it observed.
func enabledParameter(path string) string {
	value, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return path + " does not exist"
	}
	if err != nil {
		return err.Error()
	}
	if v := strings.TrimSpace(string(value)); v != "Y" {
		return fmt.Sprintf("%s is %q", path, v)
	}
	return ""
}

// HasSEVSNP reports whether KVM can run AMD SEV-SNP guests on this host.
func HasSEVSNP() bool {
	return enabledParameter(sevSNPParameter) == ""
}

// MustHaveSEVSNP skips t, even in CI, unless KVM can run AMD SEV-SNP guests.
func MustHaveSEVSNP(t testing.TB) {
	t.Helper()
	if observed := enabledParameter(sevSNPParameter); observed != "" {
		SkipMissingHardware(t, "AMD SEV-SNP host support in KVM", observed)
	}
}

// HasTDX reports whether KVM can run Intel TDX guests on this host.
func HasTDX() bool {
	return enabledParameter(tdxParameter) == ""
}

// MustHaveTDX skips t, even in CI, unless KVM can run Intel TDX guests.
func MustHaveTDX(t testing.TB) {
	t.Helper()
	if observed := enabledParameter(tdxParameter); observed != "" {
		SkipMissingHardware(t, "Intel TDX host support in KVM", observed)
	}
}

// HermitImagesDir returns the folder that OSVM_HERMIT_IMAGES names, which
// holds uhyve's prebuilt x86_64 Hermit images (hello_world, hello_c,
// rusty_demo, from the data/ folder of the hermit-os/uhyve repository). It
// skips t, even in CI, when the variable is empty: the images are not in
// this repository, and CI has no way to fetch them.
func HermitImagesDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("OSVM_HERMIT_IMAGES")
	if dir == "" {
		t.Skip("skipping: set OSVM_HERMIT_IMAGES to a folder with uhyve's prebuilt x86_64 Hermit images (hello_world, hello_c, rusty_demo)")
	}
	return dir
}
