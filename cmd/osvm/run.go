package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/launcher"
	"github.com/osvm-project/osvm/internal/plan"
	"github.com/osvm-project/osvm/probe"
	"github.com/osvm-project/osvm/sandbox"
	"github.com/osvm-project/osvm/supervisor"
)

// runRun runs one component in the foreground through the same plan and
// launcher a unit would use, without osvmd or systemd: the command's output
// goes to the terminal and its exit status becomes osvm's. systemd's own
// directives (user, resource limits, ProtectSystem=, the network namespace
// and the rest) do not apply, and osvm run prints which; the launcher's
// sandbox does.
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

	if ignored := systemdOnly(c); len(ignored) > 0 {
		fmt.Fprintf(os.Stderr, "osvm run: note: without systemd these settings do not apply: %s; only osvm-launch's own sandbox does\n", strings.Join(ignored, ", "))
	}

	cmd := exec.Command(launcher.Path(), planPath)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	for k, v := range c.Exec.Environment {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if level != config.IsolationContainer {
		// A container's working directory is inside its own root, which
		// osvm-launch changes to itself.
		cmd.Dir = c.Exec.WorkingDirectory
	}

	// Signals go to the component; osvm stays to remove the plan.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(signals)
	// If osvm dies, the launcher and its guest or container die with it.
	// The signal follows the thread that started the child, so that thread
	// stays this goroutine's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		for sig := range signals {
			cmd.Process.Signal(sig)
		}
	}()
	err = cmd.Wait()
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

// systemdOnly lists the settings of c that only the unit's systemd
// directives enforce, and so that osvm run cannot apply.
func systemdOnly(c *config.Component) []string {
	var keys []string
	if c.User() != "" {
		keys = append(keys, "user")
	}
	switch limits := c.Resources; {
	case !c.RunsImage() && limits != (config.Resources{}):
		keys = append(keys, "[resources]")
	case c.RunsImage():
		// memory is the guest's memory, which the monitor applies; the
		// vCPU count is [unikernel] cpus.
		limits.MemoryMax = 0
		if limits != (config.Resources{}) {
			keys = append(keys, "[resources] limits other than memory (the guest's vCPUs are [unikernel] cpus)")
		}
	}
	if c.Isolation != config.IsolationNone && !c.RunsImage() {
		keys = append(keys, "systemd's sandboxing directives (ProtectSystem=, RestrictAddressFamilies= and the rest)")
	}
	return keys
}
