package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"
)

// commandTimeout bounds each version command, so that a hung binary cannot
// stall the probe.
const commandTimeout = 5 * time.Second

// Probe examines the host it runs on and returns what it found, with the
// isolation levels that follow. It changes nothing on the host: it reads
// files under /proc and /sys, executes CPUID, opens /dev/kvm read-write for
// a few ioctls, checks access to /dev/sev, and runs systemctl --version.
// ctx bounds the commands it runs.
//
// Problems that the probe meets are facts, such as Facts.KVM.OpenError, so
// Probe always returns a report. Run as root, it gets the results that
// osvmd gets.
func Probe(ctx context.Context) *Report {
	return NewReport(parse(gather(ctx)))
}

// gather reads everything that parse interprets.
func gather(ctx context.Context) *observations {
	o := &observations{
		euid:   os.Geteuid(),
		files:  map[string]fileResult{},
		exists: map[string]error{},
	}
	for _, path := range filesRead {
		data, err := os.ReadFile(path)
		o.files[path] = fileResult{data: data, err: err}
	}
	for _, path := range pathsChecked {
		_, err := os.Stat(path)
		o.exists[path] = err
	}
	o.cpuid, o.cpuidOK = readCPUID()
	o.kvm = observeKVM(kvmDevice)
	o.sevDeviceAccess = accessReadWrite(sevDevice)
	o.landlockABI, o.landlockErr = landlockABI()
	o.seccompMode, o.seccompErr = seccompMode()
	o.cgroupMode = cgroupMode(cgroups.Mode())
	o.systemd = systemdVersion(ctx)
	return o
}

// cgroupMode converts a layout of github.com/containerd/cgroups/v3.
func cgroupMode(mode cgroups.CGMode) CgroupMode {
	switch mode {
	case cgroups.Legacy:
		return CgroupV1
	case cgroups.Hybrid:
		return CgroupHybrid
	case cgroups.Unified:
		return CgroupUnified
	default:
		return CgroupUnavailable
	}
}

// KVM ioctl numbers, _IO(KVMIO, n) with KVMIO = 0xAE, from Linux
// include/uapi/linux/kvm.h.
const (
	kvmGetAPIVersion  = 0xAE00
	kvmCheckExtension = 0xAE03
)

// observeKVM stats the KVM device at path, opens it read-write, and
// queries its API version and capabilities.
func observeKVM(path string) kvmObservation {
	var o kvmObservation
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		o.statErr = &os.PathError{Op: "stat", Path: path, Err: err}
		return o
	}
	o.mode = st.Mode & 0o7777
	o.owner = userName(st.Uid)
	o.group = groupName(st.Gid)

	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		o.openErr = &os.PathError{Op: "open", Path: path, Err: err}
		return o
	}
	defer unix.Close(fd)

	o.apiVersion, o.apiVersionErr = ioctlValue(fd, kvmGetAPIVersion, 0, "KVM_GET_API_VERSION")
	o.extensions = map[kvmCapability]extensionResult{}
	for _, c := range kvmCapabilities {
		value, err := ioctlValue(fd, kvmCheckExtension, uintptr(c), "KVM_CHECK_EXTENSION")
		o.extensions[c] = extensionResult{value: value, err: err}
	}
	return o
}

// ioctlValue issues an ioctl that returns a value, naming it in the error.
func ioctlValue(fd int, request, arg uintptr, name string) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), request, arg)
	if errno != 0 {
		return 0, os.NewSyscallError(name, errno)
	}
	return int(r), nil
}

// userName returns the name of uid, or the number when it has none.
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return id
}

// groupName returns the name of gid, or the number when it has none.
func groupName(gid uint32) string {
	id := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(id); err == nil {
		return g.Name
	}
	return id
}

// accessReadWrite checks, with the effective ids, whether the process may
// open path for reading and writing. It does not open the file, so a
// device's open handler never runs.
func accessReadWrite(path string) error {
	if err := unix.Faccessat(unix.AT_FDCWD, path, unix.R_OK|unix.W_OK, unix.AT_EACCESS); err != nil {
		return &os.PathError{Op: "access", Path: path, Err: err}
	}
	return nil
}

// landlockABI returns the kernel's Landlock ABI version
// (landlock_create_ruleset with LANDLOCK_CREATE_RULESET_VERSION, Linux
// 5.13). The error wraps ENOSYS when the kernel has no Landlock and
// EOPNOTSUPP when it is disabled at boot.
func landlockABI() (int, error) {
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0, os.NewSyscallError("landlock_create_ruleset", errno)
	}
	return int(abi), nil
}

// seccompMode returns the seccomp mode of the calling thread: 0 when it
// has none, 2 when seccomp filters already apply to it. The error wraps
// EINVAL when the kernel has no seccomp.
func seccompMode() (int, error) {
	mode, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	if err != nil {
		return 0, os.NewSyscallError("prctl(PR_GET_SECCOMP)", err)
	}
	return mode, nil
}

// systemdVersion runs the commands of systemdVersionCommands until one
// succeeds, and returns each run.
func systemdVersion(ctx context.Context) []commandResult {
	var runs []commandResult
	for _, argv := range systemdVersionCommands {
		run := runCommand(ctx, argv)
		runs = append(runs, run)
		if run.err == nil {
			if _, _, err := parseSystemdVersion(run.output); err == nil {
				break
			}
		}
	}
	return runs
}

// runCommand runs argv with a timeout and returns its standard output.
// The error includes the command's standard error, which usually
// explains the failure.
func runCommand(ctx context.Context, argv []string) commandResult {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	output, err := cmd.Output()
	if err != nil {
		if message := strings.TrimSpace(stderr.String()); message != "" {
			err = fmt.Errorf("%w: %s", err, message)
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (timed out after %v)", err, commandTimeout)
		}
	}
	return commandResult{command: strings.Join(argv, " "), output: output, err: err}
}
