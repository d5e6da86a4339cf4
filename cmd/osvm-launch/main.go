// Command osvm-launch is the ExecStart of every osvm component unit. It
// reads the component's plan, written by osvmd under /run/osvm/components,
// and replaces itself with the component's command, or at level
// "container" starts the command in a container and waits for it.
//
// Usage:
//
//	osvm-launch PLAN
//
// The unit's properties have already applied the user, environment, working
// directory, resource limits and systemd's sandboxing when osvm-launch
// starts. osvm-launch trusts only the plan, never the component's TOML file,
// so an edit of that file cannot change a running unit.
//
// At isolation level "process", osvm-launch first confines itself with the
// component's sandbox (package sandbox): capabilities, no_new_privs,
// Landlock, then seccomp, and the command inherits all of it.
//
// At level "container", osvm-launch starts itself again in new namespaces
// as the container's PID 1, which builds the container's root and starts
// a third run of itself that applies the sandbox and executes the command
// (see container_linux.go).
//
// Exit status: the command's own status once it runs; 127 when the command
// cannot be executed; 3 when the sandbox or the container cannot be set
// up; 2 for a usage error; 1 when the plan cannot be read.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
	"github.com/osvm-project/osvm/sandbox"
)

const (
	exitPlan     = 1
	exitUsage    = 2
	exitSandbox  = 3
	exitNotFound = 127
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: osvm-launch PLAN")
		os.Exit(exitUsage)
	}
	p, err := plan.Read(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "osvm-launch: %v\n", err)
		os.Exit(exitPlan)
	}
	switch p.Level {
	case config.IsolationUnikernel:
		os.Exit(bootUnikernel(p))
	case config.IsolationContainer:
		os.Exit(runContainer(p))
	case config.IsolationNone, config.IsolationProcess:
	default:
		// Never run a command with less isolation than its plan names.
		fmt.Fprintf(os.Stderr, "osvm-launch: component %s: isolation level %q is not supported by this osvm-launch\n", p.Component.Name, p.Level)
		os.Exit(exitSandbox)
	}

	// A missing command fails here, with exec's own status, rather than
	// in the sandbox's search for what the command needs.
	command := p.Component.Exec.Command[0]
	if _, err := os.Stat(command); err != nil {
		os.Exit(execFailed(p, err))
	}
	if p.Level == config.IsolationProcess {
		// Outside a unit nothing hides PID 1's sockets: run again in a
		// mount namespace of its own, which confine fills in.
		reachable := sandbox.ReachableControlSockets()
		if os.Getenv(hiddenStage) == "" && len(reachable) > 0 {
			os.Exit(runHidden())
		}
		if err := confine(p, reachable); err != nil {
			fmt.Fprintf(os.Stderr, "osvm-launch: component %s: %v\n", p.Component.Name, err)
			os.Exit(exitSandbox)
		}
	}
	os.Exit(launch(p))
}

// confine applies the component's sandbox to this thread, which must then
// execute the command. reachable lists the control sockets this process
// can connect to (sandbox.ReachableControlSockets).
func confine(p *plan.Plan, reachable []string) error {
	if len(reachable) > 0 {
		if os.Getenv(hiddenStage) == "" {
			return fmt.Errorf("%s is reachable, and a component must not reach PID 1's sockets", reachable[0])
		}
		if err := sandbox.HideControlSockets(reachable); err != nil {
			return err
		}
	}
	os.Unsetenv(hiddenStage)

	// osvmd has found what the command needs to start when it wrote the
	// plan. Search again only when a file that decided it has changed.
	startup, ok := sandbox.StartupFromPlan(p.Startup)
	if !ok {
		var err error
		startup, err = sandbox.StartupPaths(p.Component.Exec.Command[0])
		if err != nil {
			return fmt.Errorf("find what %s needs to start: %w", p.Component.Exec.Command[0], err)
		}
	}
	policy := sandbox.LandlockFor(&p.Component.Sandbox, startup)

	// Apply confines only this goroutine's thread, and launch executes the
	// command from the same goroutine.
	return sandbox.Apply(&policy, p.SeccompProgram, p.Component.Sandbox.Capabilities)
}

// launch replaces the process with the component's command and returns an
// exit status only when that fails.
func launch(p *plan.Plan) int {
	if p.IgnoreSIGPIPE {
		// execve(2) keeps an ignored signal ignored (signal(7)).
		signal.Ignore(syscall.SIGPIPE)
	}
	command := p.Component.Exec.Command
	err := syscall.Exec(command[0], command, os.Environ())
	return execFailed(p, err)
}

// execFailed reports why the command could not be executed and returns the
// exit status for it.
func execFailed(p *plan.Plan, err error) int {
	command := p.Component.Exec.Command[0]
	if pathErr, ok := err.(*os.PathError); ok {
		err = pathErr.Err
	}
	fmt.Fprintf(os.Stderr, "osvm-launch: component %s: exec %s: %v\n", p.Component.Name, command, err)
	if errors.Is(err, syscall.ENOENT) {
		fmt.Fprintf(os.Stderr, "osvm-launch: install %s or correct exec.command in %s\n", command, p.Source)
	}
	return exitNotFound
}

// hiddenStage marks the second run of osvm-launch, inside the namespaces
// that runHidden creates.
const hiddenStage = "OSVM_LAUNCH_HIDDEN_STAGE"

// runHidden runs osvm-launch again in a new mount namespace, and for a
// caller other than root also in a user namespace that maps only the
// caller's own user and group (user_namespaces(7)), so that the second run
// may mount over PID 1's sockets. The Go runtime is multi-threaded, which
// unshare(CLONE_NEWUSER) forbids, so a new process is the way in. This
// process stays to forward signals and returns the second run's exit
// status.
func runHidden() int {
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), hiddenStage+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	if uid, gid := os.Getuid(), os.Getgid(); uid != 0 {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}

		// execve(2) as a user other than 0 clears the capabilities the new
		// user namespace grants, unless they are ambient. The second run
		// needs these two to mount and to drop capabilities; Apply clears
		// the ambient set again before the component runs.
		cmd.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_SETPCAP}
	}

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "osvm-launch: start in a mount namespace of its own: %v\n", err)
		return exitSandbox
	}
	go func() {
		for sig := range signals {
			cmd.Process.Signal(sig)
		}
	}()

	err := cmd.Wait()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			return 128 + int(status.Signal())
		}
		return exitErr.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "osvm-launch: %v\n", err)
		return exitSandbox
	}
}
