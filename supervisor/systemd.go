package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/osvm-project/osvm/internal/plan"
	"github.com/osvm-project/osvm/sandbox"
	"github.com/osvm-project/osvm/units"
)

// Manager is the part of systemd's D-Bus API the supervisor uses; a
// *github.com/coreos/go-systemd/v22/dbus.Conn implements it.
type Manager interface {
	ListUnitsByPatternsContext(ctx context.Context, states, patterns []string) ([]sddbus.UnitStatus, error)
	GetServicePropertyContext(ctx context.Context, service, property string) (*sddbus.Property, error)
	GetUnitPropertiesContext(ctx context.Context, unit string) (map[string]any, error)
	GetUnitTypePropertiesContext(ctx context.Context, unit, unitType string) (map[string]any, error)
	StartTransientUnitContext(ctx context.Context, name, mode string, properties []sddbus.Property, ch chan<- string) (int, error)
	StopUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	ResetFailedUnitContext(ctx context.Context, name string) error
	Subscribe() error
	SetPropertiesSubscriber(updateCh chan<- *sddbus.PropertiesUpdate, errCh chan<- error)
}

// jobTimeout bounds the wait for one systemd job. It is longer than
// systemd's default TimeoutStopSec= (90s), so a slow stop is waited for.
const jobTimeout = 2 * time.Minute

// unitPattern matches every component unit.
var unitPattern = units.Prefix + "*" + units.Suffix

// listUnits returns the loaded component units that match pattern, keyed by
// component name.
func (s *Supervisor) listUnits(ctx context.Context, pattern string) (map[string]actual, map[string]string, error) {
	statuses, err := s.systemd.ListUnitsByPatternsContext(ctx, nil, []string{pattern})
	if err != nil {
		return nil, nil, fmt.Errorf("list units %s: %w", pattern, err)
	}
	have := map[string]actual{}
	planPaths := map[string]string{}
	for _, st := range statuses {
		name, ok := units.ComponentName(st.Name)
		if !ok || st.LoadState != "loaded" {
			continue
		}
		path, err := s.unitPlanPath(ctx, st.Name)
		if err != nil {
			return nil, nil, err
		}
		a := actual{loaded: true, activeState: st.ActiveState}
		if _, hash, ok := plan.ParseFileName(path); ok {
			a.shortHash = hash
			planPaths[name] = path
		}
		have[name] = a
	}
	return have, planPaths, nil
}

// unitPlanPath returns the plan path in a unit's ExecStart=, or "" when the
// unit runs neither osvm-launch nor osvm-exec.
func (s *Supervisor) unitPlanPath(ctx context.Context, unit string) (string, error) {
	prop, err := s.systemd.GetServicePropertyContext(ctx, unit, "ExecStart")
	if err != nil {
		return "", fmt.Errorf("read ExecStart of %s: %w", unit, err)
	}
	// ExecStart is a(sasbttttuii); the second field of each entry is argv.
	var commands []struct {
		Path           string
		Args           []string
		IgnoreFailure  bool
		StartRealtime  uint64
		StartMonotonic uint64
		ExitRealtime   uint64
		ExitMonotonic  uint64
		PID            uint32
		ExitCode       int32
		ExitStatus     int32
	}
	if err := dbus.Store([]any{prop.Value.Value()}, &commands); err != nil || len(commands) != 1 {
		return "", nil
	}
	argv := commands[0].Args
	if len(argv) != 2 {
		return "", nil
	}
	switch filepath.Base(argv[0]) {
	case filepath.Base(s.cfg.Launcher), filepath.Base(s.cfg.ExecStage):
		return argv[1], nil
	}
	return "", nil
}

// startUnit writes p and starts a transient unit for it.
func (s *Supervisor) startUnit(ctx context.Context, p *plan.Plan) error {
	if err := sandbox.CompilePlan(p); err != nil {
		return err
	}
	// The unit keeps systemd's IgnoreSIGPIPE=yes, which osvm-launch must
	// restore after its Go runtime replaced it.
	p.IgnoreSIGPIPE = true
	path, err := plan.Write(s.cfg.PlanDir, p)
	if err != nil {
		return err
	}
	u := units.New(p, path, s.writeExecRecord(p, path))

	// A failed unit stays loaded until its failure is reset, and a loaded
	// unit cannot be created again.
	s.resetFailed(ctx, u.Name)

	if err := s.writeDropIn(p); err != nil {
		return err
	}

	ch := make(chan string, 1)
	if _, err := s.systemd.StartTransientUnitContext(ctx, u.Name, "fail", u.Properties, ch); err != nil {
		// No unit uses the plan, so a later reconciliation tries again.
		os.Remove(path)
		plan.RemoveExecRecord(path)
		return fmt.Errorf("start transient unit %s: %w", u.Name, err)
	}
	return s.waitJob(ctx, ch, "start", u.Name)
}

// writeExecRecord writes the exec record of the plan p, stored at
// planPath, and returns the program the unit starts: osvm-exec when the
// record is written, osvm-launch otherwise. A plan without a record runs
// as well, only with a slower start, so failures are logged and not
// returned.
func (s *Supervisor) writeExecRecord(p *plan.Plan, planPath string) string {
	if s.cfg.ExecStage == "" {
		return s.cfg.Launcher
	}
	record, err := sandbox.NewExecRecord(p, sandbox.DetectLandlock(), isDir)
	if err == nil && record != nil {
		var data []byte
		if data, err = record.MarshalBinary(); err == nil {
			err = plan.WriteExecRecord(planPath, data)
		}
		if err == nil {
			return s.cfg.ExecStage
		}
	}
	if err != nil {
		// osvm-launch finds the same error when the unit starts and
		// reports it there, in the unit's journal.
		s.log.Debug("starting the unit with osvm-launch", "component", p.Component.Name, "unit", units.Name(p.Component.Name), "reason", err)
	}
	if err := plan.RemoveExecRecord(planPath); err != nil {
		s.log.Warn("removing a stale exec record failed", "component", p.Component.Name, "error", err)
	}
	return s.cfg.Launcher
}

func isDir(path string) (bool, error) {
	info, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return info.IsDir(), nil
}

// writeDropIn writes or removes the runtime drop-in of a component's unit.
//
// NOTE: systemd 252 saves RestrictNamespaces=yes of a transient unit as an
// empty RestrictNamespaces=, which a daemon-reload reads back as "no
// restriction". The drop-in repeats the setting in a form that survives.
func (s *Supervisor) writeDropIn(p *plan.Plan) error {
	dir := filepath.Join(s.cfg.DropInDir, units.Name(p.Component.Name)+".d")
	path := filepath.Join(dir, dropInName)
	content := units.DropIn(p)
	if content == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove drop-in of %s: %w", p.Component.Name, err)
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write drop-in of %s: %w", p.Component.Name, err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write drop-in of %s: %w", p.Component.Name, err)
	}
	return nil
}

// removeDropIn removes a component's drop-in folder after its unit is gone.
func (s *Supervisor) removeDropIn(component string) {
	dir := filepath.Join(s.cfg.DropInDir, units.Name(component)+".d")
	os.Remove(filepath.Join(dir, dropInName))
	os.Remove(dir)
}

// dropInName is the file osvmd owns in a unit's drop-in folder.
const dropInName = "50-osvm.conf"

// stopUnit stops a component's unit and lets systemd unload it.
func (s *Supervisor) stopUnit(ctx context.Context, component string) error {
	unit := units.Name(component)
	ch := make(chan string, 1)
	if _, err := s.systemd.StopUnitContext(ctx, unit, "replace", ch); err != nil {
		var dbusErr dbus.Error
		if errors.As(err, &dbusErr) && dbusErr.Name == "org.freedesktop.systemd1.NoSuchUnit" {
			return nil
		}
		return fmt.Errorf("stop unit %s: %w", unit, err)
	}
	if err := s.waitJob(ctx, ch, "stop", unit); err != nil {
		return err
	}
	s.resetFailed(ctx, unit)
	return nil
}

// restartUnit restarts a unit that keeps its plan.
func (s *Supervisor) restartUnit(ctx context.Context, component string) error {
	unit := units.Name(component)
	ch := make(chan string, 1)
	if _, err := s.systemd.RestartUnitContext(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("restart unit %s: %w", unit, err)
	}
	return s.waitJob(ctx, ch, "restart", unit)
}

// resetFailed clears a unit's failed state. Its error is ignored: a unit
// that is not loaded or not failed has nothing to reset.
func (s *Supervisor) resetFailed(ctx context.Context, unit string) {
	_ = s.systemd.ResetFailedUnitContext(ctx, unit)
}

// waitJob waits for the result of a systemd job. It keeps the watchdog fed
// while it waits, because the wait is bounded by jobTimeout.
func (s *Supervisor) waitJob(ctx context.Context, ch <-chan string, job, unit string) error {
	ctx, cancel := context.WithTimeout(ctx, jobTimeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case result := <-ch:
			if result != "done" {
				return fmt.Errorf("%s job of unit %s: %s (see journalctl -u %s)", job, unit, result, unit)
			}
			return nil
		case <-tick.C:
			s.beat()
		case <-ctx.Done():
			return fmt.Errorf("%s job of unit %s: %w", job, unit, ctx.Err())
		}
	}
}

// unitStatus reads the state of a component's unit from systemd.
func (s *Supervisor) unitStatus(ctx context.Context, component string) (map[string]dbus.Variant, error) {
	unit := units.Name(component)
	status := map[string]dbus.Variant{}
	props, err := s.systemd.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return nil, fmt.Errorf("read properties of %s: %w", unit, err)
	}
	for _, name := range []string{"LoadState", "ActiveState", "SubState", "ActiveEnterTimestamp"} {
		// A timestamp of 0 means the unit never became active.
		if v, ok := props[name]; ok && v != uint64(0) {
			status[name] = dbus.MakeVariant(v)
		}
	}
	if id, ok := props["InvocationID"].([]byte); ok && len(id) > 0 {
		status["InvocationID"] = dbus.MakeVariant(fmt.Sprintf("%x", id))
	}
	if props["LoadState"] != "loaded" {
		return status, nil
	}
	service, err := s.systemd.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		return nil, fmt.Errorf("read service properties of %s: %w", unit, err)
	}
	for _, name := range []string{"MainPID", "Result", "NRestarts", "ExecMainStatus", "MemoryCurrent", "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec"} {
		if v, ok := service[name]; ok {
			status[name] = dbus.MakeVariant(v)
		}
	}
	return status, nil
}
