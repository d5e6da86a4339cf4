// Command osvm is the command-line client of osvm. It validates component
// files offline and talks to osvmd over the system bus
// (org.osvm.Supervisor1) for everything else.
//
// Usage:
//
//	osvm validate FILE...
//	osvm run FILE
//	osvm image inspect [--json] IMAGE
//	osvm doctor [--json]
//	osvm list [--json]
//	osvm status [--json] NAME
//	osvm start|stop|restart NAME
//	osvm reload
//	osvm logs [-f] [-n LINES] NAME
//
// Exit status: 0 on success, 1 when the operation or a file failed, 2 for a
// usage error. osvm run exits with the component's own status.
package main

import (
	"errors"
	"fmt"
	"os"
)

const (
	exitFailure = 1
	exitUsage   = 2
)

// command is one subcommand.
type command struct {
	usage string
	help  string
	run   func(args []string) error
}

var commands = map[string]command{
	"validate": {"validate FILE...", "check component files without osvmd", runValidate},
	"list":     {"list [--json]", "list components and the state of their units", runList},
	"status":   {"status [--json] NAME", "show a component's file, plan and unit", runStatus},
	"start":    {"start NAME", "start a component", control("Start")},
	"stop":     {"stop NAME", "stop a component until it is started again", control("Stop")},
	"restart":  {"restart NAME", "restart a component", control("Restart")},
	"reload":   {"reload", "make osvmd read the configuration folder again", runReload},
	"logs":     {"logs [-f] [-n LINES] NAME", "show a component's journal", runLogs},
	"run":      {"run FILE", "run one component in the foreground, without osvmd", runRun},
	"image":    {"image inspect [--json] IMAGE", "show what the unikernel loader sees in a Hermit image", runImage},
	"doctor":   {"doctor [--json]", "show which isolation levels this host offers, and why not", runDoctor},
}

var order = []string{"validate", "run", "image", "doctor", "list", "status", "start", "stop", "restart", "reload", "logs"}

// usageError is a mistake in the command line.
type usageError struct{ message string }

func (e *usageError) Error() string { return e.message }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: osvm COMMAND [ARGUMENTS]")
	fmt.Fprintln(os.Stderr)
	for _, name := range order {
		fmt.Fprintf(os.Stderr, "  osvm %-28s %s\n", commands[name].usage, commands[name].help)
	}
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(exitUsage)
		}
		return
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "osvm: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(exitUsage)
	}
	err := cmd.run(os.Args[2:])
	var ue *usageError
	var status *exitStatus
	switch {
	case err == nil:
	case errors.As(err, &status):
		os.Exit(status.code)
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "osvm %s: %v\nusage: osvm %s\n", os.Args[1], err, cmd.usage)
		os.Exit(exitUsage)
	case errors.Is(err, errReported):
		os.Exit(exitFailure)
	default:
		fmt.Fprintf(os.Stderr, "osvm %s: %v\n", os.Args[1], err)
		os.Exit(exitFailure)
	}
}

// errReported means the command already printed its problems.
var errReported = errors.New("problems reported")
