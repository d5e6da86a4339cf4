package sandbox

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpfInstructionSize is the size of struct sock_filter (linux/filter.h).
const bpfInstructionSize = 8

// LoadSeccompProgram installs a program made by CompileSeccomp as the
// seccomp filter of every thread of the calling process
// (SECCOMP_FILTER_FLAG_TSYNC, seccomp(2)). The caller must have set
// no_new_privs. The filter stays across execve(2) and cannot be removed.
func LoadSeccompProgram(program []byte) error {
	return loadSeccomp(program, unix.SECCOMP_FILTER_FLAG_TSYNC)
}

// loadThreadSeccomp installs program as the seccomp filter of the calling
// thread alone, as seccomp(2) does without SECCOMP_FILTER_FLAG_TSYNC. The
// caller must have set no_new_privs on that thread and must call execve(2)
// from it.
func loadThreadSeccomp(program []byte) error {
	return loadSeccomp(program, 0)
}

func loadSeccomp(program []byte, flags uintptr) error {
	if len(program) == 0 || len(program)%bpfInstructionSize != 0 || len(program)/bpfInstructionSize > 0xffff {
		return fmt.Errorf("seccomp: invalid program of %d bytes (rewrite the plan: restart the unit)", len(program))
	}
	// The kernel reads the instructions during the call; they live in
	// program, which stays reachable until the call returns.
	prog := unix.SockFprog{
		Len:    uint16(len(program) / bpfInstructionSize),
		Filter: (*unix.SockFilter)(unsafe.Pointer(&program[0])),
	}
	thread, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		flags, uintptr(unsafe.Pointer(&prog)))
	switch {
	case errno != 0:
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	case thread != 0:
		// With TSYNC, a positive result names a thread that could not take
		// the filter; then no thread has it.
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): thread %d could not be synchronized", thread)
	}
	return nil
}
