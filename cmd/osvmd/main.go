// Command osvmd is the osvm supervisor: it watches a folder of component
// files and runs each component as a transient systemd unit,
// osvm-NAME.service in osvm.slice. It is meant to run as the systemd service
// osvmd.service (Type=notify, with a watchdog).
//
// Usage:
//
//	osvmd [--config-dir DIR] [--launcher PATH] [--log-level LEVEL]
//
// SIGHUP reads the whole folder again. SIGTERM stops osvmd and leaves the
// components running; a new osvmd adopts them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/osvm-project/osvm/internal/launcher"
	"github.com/osvm-project/osvm/probe"
	"github.com/osvm-project/osvm/supervisor"
)

func main() {
	configDir := flag.String("config-dir", "/etc/osvm", "folder of component files (NAME.toml)")
	runtimeDir := flag.String("runtime-dir", "/run/osvm", "folder for plans and other runtime state")
	launcherPath := flag.String("launcher", "", "absolute path of osvm-launch (default: next to osvmd, else "+launcher.Packaged+")")
	debounce := flag.Duration("debounce", 100*time.Millisecond, "time to gather a burst of file events into one reload")
	level := flag.String("log-level", "info", "minimum level logged: debug, info, warn or error")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "osvmd: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}

	log, err := newLogger(*level)
	if err != nil {
		fmt.Fprintf(os.Stderr, "osvmd: %v\n", err)
		os.Exit(2)
	}
	if *launcherPath == "" {
		*launcherPath = launcher.Path()
	}
	err = run(log, supervisor.Config{
		ConfigDir:  *configDir,
		RuntimeDir: *runtimeDir,
		Launcher:   *launcherPath,
		ExecStage:  launcher.ExecStage(*launcherPath),
		Debounce:   *debounce,
		HostReport: probeHost(log),
		Logger:     log,
	})
	if err != nil {
		log.Error("osvmd failed", "error", err)
		daemon.SdNotify(false, "ERRNO=1")
		os.Exit(1)
	}
}

func run(log *slog.Logger, cfg supervisor.Config) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	systemd, err := sddbus.NewWithContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to systemd: %w", err)
	}
	defer systemd.Close()

	bus, err := dbus.ConnectSystemBus()
	if err != nil {
		return fmt.Errorf("connect to the system bus: %w", err)
	}
	defer bus.Close()

	cfg.Ready = func() {
		log.Info("osvmd ready", "config_dir", cfg.ConfigDir, "launcher", cfg.Launcher, "exec_stage", cfg.ExecStage)
		daemon.SdNotify(false, daemon.SdNotifyReady)
	}
	cfg.StateChanged = func(name, active, sub string) {
		if err := supervisor.EmitComponentChanged(bus, name, active, sub); err != nil {
			log.Warn("sending ComponentChanged failed", "component", name, "error", err)
		}
	}
	s, err := supervisor.New(cfg, systemd)
	if err != nil {
		return err
	}
	if err := supervisor.ExportAPI(bus, s); err != nil {
		return err
	}

	go reloadOnHangup(ctx, log, s)
	go feedWatchdog(ctx, log, s)

	err = s.Run(ctx)
	daemon.SdNotify(false, daemon.SdNotifyStopping)
	if err == nil || errors.Is(err, context.Canceled) {
		log.Info("osvmd stopping; components keep running")
		return nil
	}
	return err
}

func reloadOnHangup(ctx context.Context, log *slog.Logger, s *supervisor.Supervisor) {
	hangup := make(chan os.Signal, 1)
	signal.Notify(hangup, syscall.SIGHUP)
	defer signal.Stop(hangup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hangup:
			log.Info("reloading the configuration folder (SIGHUP)")
			daemon.SdNotify(false, daemon.SdNotifyReloading)
			if err := s.Reload(ctx); err != nil {
				log.Error("reload failed", "error", err)
			}
			daemon.SdNotify(false, daemon.SdNotifyReady)
		}
	}
}

// feedWatchdog notifies systemd that osvmd is alive, at half the interval of
// WatchdogSec=, but only while the supervisor's loop shows signs of life:
// a stuck loop stops the pings and systemd restarts osvmd.
func feedWatchdog(ctx context.Context, log *slog.Logger, s *supervisor.Supervisor) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if !s.Alive(interval / 2) {
				log.Error("supervisor loop is not responding; withholding the watchdog ping")
				continue
			}
			daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		}
	}
}

// probeHost probes the host once and logs the report: one line per
// isolation level, with the reason a level is missing.
func probeHost(log *slog.Logger) *probe.Report {
	report := probe.Probe(context.Background())
	supervisor.MarkUnimplemented(report)
	for _, level := range report.Levels {
		if level.Available {
			log.Info("isolation level available", "level", string(level.Level), "notes", strings.Join(level.Notes, "; "))
		} else {
			log.Info("isolation level unavailable", "level", string(level.Level), "reason", strings.Join(level.Reasons, "; "))
		}
	}
	return report
}
