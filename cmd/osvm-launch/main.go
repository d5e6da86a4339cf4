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
// Exit status: the command's own status once it runs; 127 when the command
// cannot be executed; 2 for a usage error; 1 when the plan cannot be read.
package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/osvm-project/osvm/internal/plan"
)

const (
	exitPlan     = 1
	exitUsage    = 2
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
	os.Exit(launch(p))
}

// launch replaces the process with the component's command and returns an
// exit status only when that fails.
func launch(p *plan.Plan) int {
	command := p.Component.Exec.Command
	err := syscall.Exec(command[0], command, os.Environ())
	fmt.Fprintf(os.Stderr, "osvm-launch: component %s: exec %s: %v\n", p.Component.Name, command[0], err)
	if errors.Is(err, syscall.ENOENT) {
		fmt.Fprintf(os.Stderr, "osvm-launch: install %s or correct exec.command in %s\n", command[0], p.Source)
	}
	return exitNotFound
}
