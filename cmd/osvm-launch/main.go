// Command osvm-launch is the ExecStart of every osvm component unit. It
// reads the component's plan, written by osvmd under /run/osvm/components,
// and replaces itself with the component's command.
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
// Exit status: the command's own status once it runs; 127 when the command
// cannot be executed; 3 when the sandbox cannot be applied; 2 for a usage
// error; 1 when the plan cannot be read.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

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
	// A missing command fails here, with exec's own status, rather than
	// in the sandbox's search for what the command needs.
	command := p.Component.Exec.Command[0]
	if _, err := os.Stat(command); err != nil {
		os.Exit(execFailed(p, err))
	}
	if p.Level == config.IsolationProcess {
		if err := confine(p); err != nil {
			fmt.Fprintf(os.Stderr, "osvm-launch: component %s: %v\n", p.Component.Name, err)
			os.Exit(exitSandbox)
		}
	}
	os.Exit(launch(p))
}

// confine applies the component's sandbox to this process.
func confine(p *plan.Plan) error {
	startup, err := sandbox.StartupPaths(p.Component.Exec.Command[0])
	if err != nil {
		return fmt.Errorf("find what %s needs to start: %w", p.Component.Exec.Command[0], err)
	}
	policy, err := sandbox.Build(&p.Component.Sandbox, startup)
	if err != nil {
		return err
	}

	// Landlock and the capability changes apply to every thread; still,
	// execve(2) must come from the thread that set them up last.
	runtime.LockOSThread()
	return sandbox.Apply(policy, p.Component.Sandbox.Capabilities)
}

// launch replaces the process with the component's command and returns an
// exit status only when that fails.
func launch(p *plan.Plan) int {
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
