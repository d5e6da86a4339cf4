// Package sdsandbox boots a private systemd for integration tests and runs
// commands inside it, so tests can drive a real systemd, D-Bus and journald
// without changing the host.
//
// The work is done by the bash script "sandbox" in this folder, which the
// package embeds. The script starts systemd as PID 1 of new PID, mount,
// cgroup, network, UTS and IPC namespaces, on a copy-on-write overlay of
// the host root, with fresh /tmp, /var/tmp, /run, /dev and /var/log/journal
// and only a loopback network device. Folders listed in Options.Bind are
// bind-mounted read-write at the same path, so files written there are seen
// on the host. Shell users, such as `make demo`, run the script from the
// source tree:
//
//	id=$(internal/sdsandbox/sandbox up --log-level info "$PWD")
//	internal/sdsandbox/sandbox run "$id" systemctl status
//	internal/sdsandbox/sandbox down "$id"
//
// Go tests run from temporary build folders, so Up installs the embedded
// script as a root-owned 0700 file under /run/osvm-sandbox/.harness (see
// ScriptPath) and runs it from there.
//
// # Privileges
//
// Up, and so every test that uses a sandbox, needs root: the script creates
// cgroups under the caller's own cgroups, mounts file systems in its own
// mount namespace and writes its state under /run/osvm-sandbox. It also
// needs systemd 252 or a similar version at /lib/systemd/systemd, dbus,
// util-linux (unshare, nsenter, setpriv, findmnt) and the cgroup v1 or
// hybrid layout. [github.com/osvm-project/osvm/internal/testenv.MustHaveSystemd]
// checks for these.
//
// # Tests
//
// Start is the entry point for tests: it skips the test when the host
// lacks root or the tools above (or fails it in CI, see package testenv),
// boots a sandbox and registers Down with t.Cleanup. This package imports
// "testing" for Start. That costs nothing outside tests: since Go 1.13 the
// testing package registers its flags in testing.Init, not at import, and
// Go's own internal/testenv does the same. The package exists for tests, so
// a separate sdtest package would only add an import.
//
// # Limitations
//
//   - Linux only, and only hosts with a name=systemd cgroup v1 hierarchy at
//     /sys/fs/cgroup/systemd; on a cgroup v2-only host `up` fails.
//   - The script rejects binding / and folders that contain /dev, /proc,
//     /sys, /run, /tmp, /var/tmp or /etc/systemd/system, because it mounts
//     over or writes to those paths at boot.
//   - Commands run in "/" unless cmd.Dir names another folder, which must
//     exist inside: a bound folder, or a host folder outside /tmp, /var/tmp
//     and /run. Files under the host's /tmp, such as the binaries that
//     `go test` builds, are hidden inside unless their folder is bound.
//   - Cancelling the context of a Command kills nsenter on the host, but the
//     command inside keeps running until it exits or Down stops the sandbox.
//   - systemd has no console inside, so what it logs before journald starts
//     (roughly the first 100 ms of boot) is lost. The journal has the rest.
//   - All sandboxes share the host's kernel boot ID and machine ID.
//
// Up takes about 0.5 s and Down about 0.3 s on a 2-vCPU Firecracker VM with
// systemd 252 (measured by TestSandboxLifecycle).
package sdsandbox
