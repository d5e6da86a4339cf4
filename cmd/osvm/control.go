package main

import (
	"os"
	"os/exec"
	"strconv"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/units"
)

// control returns the subcommand that calls method with a component name.
func control(method string) func(args []string) error {
	return func(args []string) error {
		fs := newFlags(method)
		if err := parseFlags(fs, args, 1); err != nil {
			return err
		}
		return callSupervisor(method, nil, fs.Arg(0))
	}
}

func runReload(args []string) error {
	if err := parseFlags(newFlags("reload"), args, 0); err != nil {
		return err
	}
	return callSupervisor("Reload", nil)
}

// runLogs shows a component's journal with journalctl, which also shows
// osvmd's own messages about the component (see osvmd's logging).
func runLogs(args []string) error {
	fs := newFlags("logs")
	follow := fs.Bool("f", false, "follow the journal")
	lines := fs.Int("n", 50, "number of lines to show")
	if err := parseFlags(fs, args, 1); err != nil {
		return err
	}
	name := fs.Arg(0)
	if !config.ValidName(name) {
		return &usageError{"invalid component name " + strconv.Quote(name)}
	}
	journalctl, err := exec.LookPath("journalctl")
	if err != nil {
		return err
	}
	argv := []string{"journalctl", "--no-pager", "-u", units.Name(name), "-n", strconv.Itoa(*lines)}
	if *follow {
		argv = append(argv, "-f")
	}
	cmd := exec.Command(journalctl, argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		// journalctl printed its own message.
		return errReported
	}
	return nil
}
