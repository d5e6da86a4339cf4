package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
	"github.com/osvm-project/osvm/sandbox"
)

// A component at level "container" runs through three processes, all of
// them osvm-launch until the last executes the command:
//
//  1. the unit's process (MainPID), as the unit's user on the host. It
//     starts stage 2 in new user, mount, PID, IPC, UTS and cgroup
//     namespaces (and network, for network = "none"), with root inside
//     mapped to its own user outside, then waits and passes signals on.
//  2. PID 1 of the new PID namespace ("init"). It builds the container's
//     root, switches to it, starts stage 3 and reaps every process of the
//     namespace until the command exits.
//  3. the first child of PID 1 ("exec"). It applies the component's sandbox
//     and executes the command, which keeps its PID. The threads of PID 1
//     take the PIDs right after 1, so that PID is not 2.
//
// Stage 2 stays outside the sandbox of stage 3 and holds capabilities in
// the container until stage 3 has started. It is not dumpable, so that the
// command cannot ptrace it or open its /proc/1/mem.

// containerStage names the stage of a run of osvm-launch for a plan at level
// "container"; it is unset in the unit's own process.
const containerStage = "OSVM_LAUNCH_CONTAINER_STAGE"

// Values of containerStage.
const (
	stageInit = "init" // stage 2
	stageExec = "exec" // stage 3
)

// statusFD is the file descriptor of the pipe on which stage 2 reports the
// command's wait status to stage 1, and the plan file's descriptor in
// stage 3.
const statusFD = 3

// overflowID is the user and group "nobody" (65534 on Debian and Fedora),
// which the container's root maps to when osvm-launch runs as root.
const overflowID = 65534

// runContainer runs a plan at level "container" in the stage this process
// is, and returns the exit status.
func runContainer(p *plan.Plan) int {
	switch stage := os.Getenv(containerStage); stage {
	case "":
		return startContainer(p)
	case stageInit:
		return containerInit(p)
	case stageExec:
		return containerExec(p)
	default:
		return containerFailed(p, "unknown %s=%q", containerStage, stage)
	}
}

func containerFailed(p *plan.Plan, format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "osvm-launch: component %s: container: "+format+"\n", append([]any{p.Component.Name}, args...)...)
	return exitSandbox
}

// startContainer is stage 1: it starts stage 2 in the container's
// namespaces and returns the command's exit status. When the command was
// killed by SIGHUP, SIGINT, SIGTERM or SIGKILL, this process dies by the same
// signal, so that systemd records the command's end as it does at level
// "process".
func startContainer(p *plan.Plan) int {
	if rootfs := p.Component.Container.Rootfs; rootfs != "" {
		info, err := os.Stat(rootfs)
		switch {
		case errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) && underHiddenHome(rootfs):
			return containerFailed(p, "rootfs: %v (units do not see /home, /root and /run/user, which ProtectHome=yes hides: put the rootfs elsewhere, such as /var/lib/osvm)", err)
		case err != nil:
			return containerFailed(p, "rootfs: %v", err)
		case !info.IsDir():
			return containerFailed(p, "rootfs %s is not a folder", rootfs)
		}

		// The configuration rejects "/" by its text; a symbolic link to
		// it is caught here, before any mount.
		if resolved, err := filepath.EvalSymlinks(rootfs); err == nil && resolved == "/" {
			return containerFailed(p, "rootfs %s leads to the host's root folder: give a folder of its own, or leave rootfs out for the host's root read-only", rootfs)
		}
	}

	// Root inside maps to this process's user outside, an unprivileged user
	// in a unit. Run by root, it maps to nobody instead, which needs
	// CAP_SETUID and CAP_SETGID, and the supplementary groups (root's group
	// among them) go first.
	outsideUID, outsideGID := os.Getuid(), os.Getgid()
	var credential *syscall.Credential
	if outsideUID == 0 {
		outsideUID, outsideGID = overflowID, overflowID
		if err := syscall.Setgroups(nil); err != nil {
			return containerFailed(p, "drop supplementary groups before mapping root to nobody: %v", err)
		}
		// Root's own IDs are not mapped in the new namespace: become its
		// root, which is nobody outside. setgroups(2) stays denied there.
		// Other users are root of the namespace already, and a unit's
		// system call filter denies setuid(2).
		credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}

	statusRead, statusWrite, err := os.Pipe()
	if err != nil {
		return containerFailed(p, "%v", err)
	}
	defer statusRead.Close()

	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = withStage(os.Environ(), stageInit)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{statusWrite} // statusFD
	flags := uintptr(syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
		syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWCGROUP)
	if p.Component.Sandbox.Network == config.NetworkNone {
		flags |= syscall.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  flags,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: outsideUID, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: outsideGID, Size: 1}},
		Credential:  credential,

		// Stage 2 dies with this process. The signal is sent when the
		// thread that started it ends, so that thread stays locked.
		Pdeathsig: syscall.SIGKILL,
	}

	runtime.LockOSThread()
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, forwardedSignals...)
	if err := cmd.Start(); err != nil {
		statusWrite.Close()
		return containerFailed(p, "start in new namespaces: %v", err)
	}
	statusWrite.Close()
	go func() {
		for sig := range signals {
			cmd.Process.Signal(sig)
		}
	}()

	waitErr := cmd.Wait()
	signal.Stop(signals)

	// Stage 2 writes the command's wait status before it exits; without
	// it (stage 2 failed or was killed) stage 2's own status counts.
	report, _ := io.ReadAll(statusRead)
	if status, err := strconv.ParseUint(string(bytes.TrimSpace(report)), 10, 32); err == nil {
		ws := syscall.WaitStatus(status)
		if ws.Signaled() {
			return dieBySignal(ws.Signal())
		}
		return ws.ExitStatus()
	}
	var exitErr *exec.ExitError
	switch {
	case waitErr == nil:
		return 0
	case errors.As(waitErr, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exitErr.ExitCode()
	default:
		return containerFailed(p, "%v", waitErr)
	}
}

// forwardedSignals are passed on from stage 1 to stage 2 and from stage 2
// to the command. systemd sends its stop signal to every process of the
// unit anyway; forwarding covers runs outside a unit.
var forwardedSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}

// dieBySignal ends this process with sig when the Go runtime lets it die by
// that signal, and otherwise returns the shell's status for it, 128+sig.
func dieBySignal(sig syscall.Signal) int {
	switch sig {
	case syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL:
		// Without a handler of the program, the runtime resets these to
		// the default action and raises them again.
		signal.Reset(sig)
		syscall.Kill(os.Getpid(), sig)
		select {}
	}
	return 128 + int(sig)
}

// withStage returns env with containerStage set to stage.
func withStage(env []string, stage string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, containerStage+"=") {
			out = append(out, kv)
		}
	}
	return append(out, containerStage+"="+stage)
}

// inContainerNamespace reports whether this process is in a user namespace
// that maps a single user, as stage 1 creates it. It keeps a stray
// OSVM_LAUNCH_CONTAINER_STAGE from making osvm-launch mount anything in
// the host's namespaces.
func inContainerNamespace() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 1 {
		return false
	}
	fields := strings.Fields(lines[0])
	return len(fields) == 3 && fields[0] == "0" && fields[2] == "1"
}

// containerInit is stage 2, PID 1 of the container's PID namespace.
func containerInit(p *plan.Plan) int {
	if os.Getpid() != 1 || !inContainerNamespace() {
		return containerFailed(p, "%s=%s outside a new PID and user namespace", containerStage, stageInit)
	}
	status := os.NewFile(statusFD, "status")
	unix.CloseOnExec(statusFD)

	// Stage 1 started this process as /proc/self/exe, so ps(1) would call
	// it "exe".
	os.WriteFile("/proc/self/comm", []byte("osvm-launch"), 0)

	// The plan stays open for stage 3, which cannot reach its path once the
	// root has changed.
	planFile, err := os.Open(os.Args[1])
	if err != nil {
		return containerFailed(p, "%v", err)
	}

	if p.Component.Sandbox.Network == config.NetworkNone {
		// The new network namespace has only a loopback device, down.
		if err := loopbackUp(); err != nil {
			return containerFailed(p, "%v", err)
		}
	}
	if err := unix.Sethostname([]byte(p.Component.Name)); err != nil {
		return containerFailed(p, "set the host name: %v", err)
	}
	if err := switchRoot(p); err != nil {
		return containerFailed(p, "%v", err)
	}

	// From here on, stage 3 and the command run beside this process: it
	// must not be dumpable, so that they cannot ptrace it or write its
	// memory through /proc/1/mem.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return containerFailed(p, "prctl(PR_SET_DUMPABLE): %v", err)
	}

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, forwardedSignals...)
	env := withStage(os.Environ(), stageExec)
	child, err := os.StartProcess("/proc/self/exe", []string{os.Args[0], fmt.Sprintf("/proc/self/fd/%d", statusFD)}, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr, planFile}, // the plan at statusFD
	})
	if err != nil {
		return containerFailed(p, "start the command's process: %v", err)
	}
	planFile.Close()
	pid := child.Pid
	child.Release()

	// This process only waits and forwards signals from now on.
	if err := dropAllCapabilities(); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return containerFailed(p, "drop the capabilities of PID 1: %v", err)
	}
	go func() {
		for sig := range signals {
			unix.Kill(pid, sig.(syscall.Signal))
		}
	}()

	ws := reapUntil(pid)
	fmt.Fprintf(status, "%d\n", uint32(ws))
	status.Close()
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// reapUntil waits for every child process, the orphans that the PID
// namespace hands to its PID 1 among them, until pid exits, and returns
// pid's wait status. When PID 1 exits the kernel kills the rest of the
// namespace.
func reapUntil(pid int) unix.WaitStatus {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			// Wait4 fails only without children (ECHILD), and pid stays
			// a child until it is reaped here.
			fmt.Fprintf(os.Stderr, "osvm-launch: wait for the command: %v\n", err)
			return unix.WaitStatus(exitSandbox << 8)
		case got == pid:
			return ws
		}
	}
}

// loopbackUp brings up the loopback device of a new network namespace.
// The ioctl goes through a Unix socket, because a unit with network
// "none" may create no other kind (RestrictAddressFamilies=AF_UNIX).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: SIOCSIFFLAGS: %w", err)
	}
	return nil
}

// dropAllCapabilities empties every capability set of every thread and
// sets no_new_privs, so that even an execve(2) as root of the namespace
// gains nothing.
func dropAllCapabilities() error {
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		// EINVAL: the kernel has fewer capabilities than these headers.
		if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); errno != 0 && errno != unix.EINVAL {
			return fmt.Errorf("prctl(PR_CAPBSET_DROP, %d): %w", c, errno)
		}
	}
	if _, _, errno := syscall.AllThreadsSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %w", errno)
	}
	header := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptrOf(&header), uintptrOf(&data[0]), 0); errno != 0 {
		return fmt.Errorf("capset: %w", errno)
	}
	if _, _, errno := syscall.AllThreadsSyscall6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", errno)
	}
	return nil
}

// containerExec is stage 3: it applies the sandbox and executes the
// command, inside the container's root.
func containerExec(p *plan.Plan) int {
	if os.Getppid() != 1 || os.Getpid() == 1 || !inContainerNamespace() {
		return containerFailed(p, "%s=%s outside a container's PID 1", containerStage, stageExec)
	}
	unix.CloseOnExec(statusFD)
	os.Unsetenv(containerStage)

	// A missing command fails here, with exec's own status, rather than
	// in the sandbox's search for what the command needs.
	if _, err := os.Stat(p.Component.Exec.Command[0]); err != nil {
		return execFailed(p, err)
	}
	dir := p.Component.Exec.WorkingDirectory
	if dir == "" {
		dir = "/"
	}
	if err := os.Chdir(dir); err != nil {
		return containerFailed(p, "working directory: %v", err)
	}
	if err := confine(p, sandbox.ReachableControlSockets()); err != nil {
		fmt.Fprintf(os.Stderr, "osvm-launch: component %s: %v\n", p.Component.Name, err)
		return exitSandbox
	}
	return launch(p)
}

// underHiddenHome reports whether path lies below a folder that
// ProtectHome=yes hides from units.
func underHiddenHome(path string) bool {
	for _, hidden := range []string{"/home", "/root", "/run/user"} {
		if path == hidden || strings.HasPrefix(path, hidden+"/") {
			return true
		}
	}
	return false
}
