package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
	"github.com/osvm-project/osvm/probe"
	"github.com/osvm-project/osvm/sandbox"
	"github.com/osvm-project/osvm/supervisor"
)

// defaultLauncher is where the packages install osvm-launch.
const defaultLauncher = "/usr/libexec/osvm/osvm-launch"

// runRun runs one component in the foreground through the same plan and
// launcher a unit would use, without osvmd or systemd: the command's output
// goes to the terminal and its exit status becomes osvm's. systemd's own
// directives (resource limits, ProtectSystem= and the rest) do not apply;
// the launcher's sandbox does.
func runRun(args []string) error {
	fs := newFlags("run")
	if err := parseFlags(fs, args, 1); err != nil {
		return err
	}
	path := fs.Arg(0)
	c, err := config.Load(path)
	if err != nil {
		for _, problem := range config.Errors(err) {
			fmt.Fprintln(os.Stderr, problem)
		}
		if len(config.Errors(err)) == 0 {
			fmt.Fprintln(os.Stderr, err)
		}
		return errReported
	}
	level, err := supervisor.ChooseLevel(c, supervisor.HostLevels(probe.Probe(context.Background())))
	if err != nil {
		return err
	}
	p, err := plan.New(c, level, path)
	if err != nil {
		return err
	}
	if err := sandbox.CompilePlan(p); err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "osvm-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	planPath, err := plan.Write(dir, p)
	if err != nil {
		return err
	}

	cmd := exec.Command(findLauncher(), planPath)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	for k, v := range c.Exec.Environment {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = c.Exec.WorkingDirectory
	err = cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			return &exitStatus{128 + int(status.Signal())}
		}
		return &exitStatus{exitErr.ExitCode()}
	}
	return err
}

// exitStatus carries a component's exit status out of osvm run.
type exitStatus struct{ code int }

func (e *exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// findLauncher prefers an osvm-launch next to this executable, so that a
// build in bin/ runs with its own launcher, and falls back to the packaged
// path.
func findLauncher() string {
	if self, err := os.Executable(); err == nil {
		candidate := filepath.Join(filepath.Dir(self), "osvm-launch")
		if _, err := os.Stat(candidate); err == nil {
			return candidate
		}
	}
	return defaultLauncher
}
