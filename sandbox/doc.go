// Package sandbox is the inner layer of isolation level "process": what
// osvm-launch applies to itself right before it executes a component's
// command, inside the outer layer of systemd's directives (package units).
//
// The policy is plain data, built by Build from a component's [sandbox]
// table: a Landlock ruleset (LandlockPolicy: file system paths with read,
// write and exec rights, TCP ports, scoping) and a seccomp filter
// (SeccompPolicy: a default action and rules with argument conditions).
// Tests inspect both without privileges. osvmd compiles the seccomp filter
// to a BPF program with libseccomp (CompilePlan) and stores it in the plan,
// and osvm-launch, built without cgo, loads it. osvmd also stores the paths
// the command needs to start (RecordStartup), which osvm-launch uses while
// the files they came from are unchanged (StartupFromPlan). Apply puts the
// policy into effect on the calling thread, which then executes the
// command, in the order the kernel needs: capabilities, no_new_privs,
// Landlock, seccomp.
//
// NewExecRecord resolves the same policy, for the running kernel's
// Landlock ABI and the current kind of each path, into an ExecRecord:
// the data that osvm-exec, a C program, applies in the same order without
// a Go runtime. The record holds every decision, so osvm-exec checks only
// that it still holds, and leaves the plan to osvm-launch when it does
// not.
//
// # Privileges
//
// None: Landlock and seccomp need only no_new_privs, which Apply sets.
// Dropping capabilities from the bounding set needs CAP_SETPCAP and is
// skipped without it. HideControlSockets needs CAP_SYS_ADMIN over a mount
// namespace of the caller's own.
//
// # Kernel and library versions
//
// Landlock ABI 4 (Linux 6.7) for the TCP rules, which every policy has;
// ABI 6 (Linux 6.12) adds scoping of abstract Unix sockets and signals
// where available. Compiling seccomp filters needs libseccomp (2.5.4 on
// Debian 12) and cgo; loading them needs neither.
//
// # Limitations
//
// Landlock up to ABI 7 does not control UDP, nor connect(2) to Unix
// sockets by path; the system bus and systemd's private socket are hidden
// by systemd's InaccessiblePaths= in a unit, and by HideControlSockets
// outside one. A rule on /proc/self covers only the launcher's own PID,
// which the command keeps, not its child processes.
package sandbox
