package sandbox

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// childEnv selects a test body that runs in a re-executed test binary,
// because a seccomp filter cannot be removed from the process that loads
// it.
const childEnv = "OSVM_SANDBOX_TEST_CHILD"

func TestMain(m *testing.M) {
	if profile := os.Getenv(childEnv); profile != "" {
		os.Exit(seccompChild(Profile(profile)))
	}
	os.Exit(m.Run())
}

// seccompChild loads the default profile and reports what it denies, one
// line per probe, on standard output.
func seccompChild(profile Profile) int {
	policy, err := BuildSeccomp(profile, nil, nil)
	if err != nil {
		println(err.Error())
		return 1
	}
	program, err := CompileSeccomp(policy)
	if err != nil {
		println(err.Error())
		return 1
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		println(err.Error())
		return 1
	}
	if err := LoadSeccompProgram(program); err != nil {
		println(err.Error())
		return 1
	}
	report := func(name string, err error) {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			os.Stdout.WriteString(name + " " + unix.ErrnoName(errno) + "\n")
		} else {
			os.Stdout.WriteString(name + " allowed\n")
		}
	}
	report("mount", unix.Mount("none", "/nonexistent-osvm", "tmpfs", 0, ""))
	report("unshare", unix.Unshare(unix.CLONE_NEWUSER))
	var params [120]byte // struct io_uring_params
	_, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	report("io_uring_setup", errnoError(errno))
	_, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 262)
	report("mptcp", err)
	// TIOCSTI on a fresh pseudo-terminal, plainly and with the upper
	// half of the 64-bit argument set, which the kernel ignores.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err == nil {
		c := byte('x')
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, ptmx.Fd(), unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
		report("tiocsti", errnoError(errno))
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, ptmx.Fd(), 1<<32|unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
		report("tiocsti-high-bits", errnoError(errno))
		_, err = unix.IoctlGetTermios(int(ptmx.Fd()), unix.TCGETS)
		report("tcgets", err)
	}
	report("getpid", nil)
	return 0
}

func errnoError(errno syscall.Errno) error {
	if errno == 0 {
		return nil
	}
	return errno
}

func TestLoadSeccompProgram(t *testing.T) {
	for _, tt := range []struct {
		profile Profile
		want    []string
	}{
		{ProfileDefault, []string{"mount EPERM", "unshare EPERM", "io_uring_setup EPERM", "mptcp EPROTONOSUPPORT",
			"tiocsti EPERM", "tiocsti-high-bits EPERM", "tcgets allowed", "getpid allowed"}},
		{ProfileStrict, []string{"mount EPERM", "unshare EPERM", "io_uring_setup EPERM", "mptcp EPERM",
			"tiocsti EACCES", "tiocsti-high-bits EACCES", "tcgets allowed", "getpid allowed"}},
	} {
		t.Run(string(tt.profile), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+string(tt.profile))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			for _, want := range tt.want {
				if !strings.Contains(string(out), want+"\n") {
					t.Errorf("child output lacks %q:\n%s", want, out)
				}
			}
		})
	}

	// The parent, which loaded nothing, is not filtered.
	if status, _ := os.ReadFile("/proc/self/status"); strings.Contains(string(status), "Seccomp:\t2") {
		t.Error("the test process itself runs under a seccomp filter")
	}
}

func TestLoadSeccompProgramRejectsBadInput(t *testing.T) {
	for _, program := range [][]byte{nil, make([]byte, 7)} {
		if err := LoadSeccompProgram(program); err == nil {
			t.Errorf("LoadSeccompProgram(%d bytes) succeeded", len(program))
		}
	}
}
