package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/godbus/dbus/v5"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
	"github.com/osvm-project/osvm/units"
)

// ErrInvalidFile is returned when an operation needs a valid component file
// and the file is invalid.
var ErrInvalidFile = errors.New("invalid component file")

// Start starts a component that is not running and clears an operator's
// earlier stop. A component that is already running is left as it is.
func (s *Supervisor) Start(ctx context.Context, name string) error {
	return s.do(ctx, func(ctx context.Context) error {
		want, have, err := s.lookup(ctx, name)
		if err != nil {
			return err
		}
		s.setStopped(name, false)
		if h := have[name]; h.loaded && h.activeState != "inactive" && h.activeState != "failed" {
			return nil
		}
		if want.plan == nil {
			return s.fileProblem(name)
		}
		s.log.Info("starting component on request", "component", name, "unit", units.Name(name))
		return s.startUnit(ctx, want.plan)
	})
}

// Stop stops a component's unit. The component stays stopped, whatever its
// file contains, until Start or Restart, a removal of its file, or a reboot.
func (s *Supervisor) Stop(ctx context.Context, name string) error {
	return s.do(ctx, func(ctx context.Context) error {
		if _, _, err := s.lookup(ctx, name); err != nil {
			return err
		}
		if err := s.setStopped(name, true); err != nil {
			return fmt.Errorf("remember that %s is stopped: %w", name, err)
		}
		s.log.Info("stopping component on request", "component", name, "unit", units.Name(name))
		return s.stopUnit(ctx, name)
	})
}

// Restart restarts a component's unit, with the settings of its file when
// the file is valid and with its current settings otherwise. It also
// restarts a unit that failed or hit its start limit.
func (s *Supervisor) Restart(ctx context.Context, name string) error {
	return s.do(ctx, func(ctx context.Context) error {
		want, have, err := s.lookup(ctx, name)
		if err != nil {
			return err
		}
		s.setStopped(name, false)
		h := have[name]
		log := s.log.With("component", name, "unit", units.Name(name))

		p := want.plan
		if p == nil {
			// An invalid file: keep the settings the unit runs with.
			if p, err = s.runningPlan(ctx, name); err != nil {
				return err
			}
		}
		if h.loaded && h.shortHash == p.ShortHash() && h.activeState != "failed" && h.activeState != "inactive" {
			log.Info("restarting component on request")
			return s.restartUnit(ctx, name)
		}
		log.Info("restarting component on request", "plan", p.ShortHash())
		if h.loaded {
			if err := s.stopUnit(ctx, name); err != nil {
				return err
			}
		}
		return s.startUnit(ctx, p)
	})
}

// runningPlan reads the plan of a component's loaded unit.
func (s *Supervisor) runningPlan(ctx context.Context, name string) (*plan.Plan, error) {
	path, err := s.unitPlanPath(ctx, units.Name(name))
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, s.fileProblem(name)
	}
	return plan.Read(path)
}

// lookup reloads a component's file and reads its unit. It fails when the
// component has neither.
func (s *Supervisor) lookup(ctx context.Context, name string) (desired, map[string]actual, error) {
	if err := checkName(name); err != nil {
		return desired{}, nil, err
	}
	want, _ := s.load(name, true)
	have, _, err := s.listUnits(ctx, units.Name(name))
	if err != nil {
		return desired{}, nil, err
	}
	if !want.fileExists && !have[name].loaded {
		return desired{}, nil, noComponent(name, s.cfg.ConfigDir)
	}
	return want, have, nil
}

func (s *Supervisor) fileProblem(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.components[name]; c != nil && c.fileError != "" {
		return fmt.Errorf("%w: %s", ErrInvalidFile, c.fileError)
	}
	if c := s.components[name]; c != nil && c.refusal != "" {
		return errors.New(c.refusal)
	}
	return noComponent(name, s.cfg.ConfigDir)
}

func (s *Supervisor) setStopped(name string, stopped bool) error {
	s.mu.Lock()
	if c := s.components[name]; c != nil {
		c.stopped = stopped
	}
	s.mu.Unlock()
	if !stopped {
		s.forgetStopped(name)
		return nil
	}
	return s.rememberStopped(name)
}

// Summary is one line of List.
type Summary struct {
	Name        string
	Unit        string
	ActiveState string // systemd's ActiveState, or "inactive" without a unit
	SubState    string
	File        string // "valid", "invalid", "refused", "missing" or "stopped"
}

// List returns every component that has a file or a unit.
func (s *Supervisor) List(ctx context.Context) ([]Summary, error) {
	names, have, err := s.componentNames(ctx)
	if err != nil {
		return nil, err
	}
	statuses, err := s.systemd.ListUnitsByPatternsContext(ctx, nil, []string{unitPattern})
	if err != nil {
		return nil, fmt.Errorf("list units: %w", err)
	}
	subStates := map[string]string{}
	for _, st := range statuses {
		subStates[st.Name] = st.SubState
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]Summary, 0, len(names))
	for _, name := range names {
		unit := units.Name(name)
		sum := Summary{Name: name, Unit: unit, ActiveState: "inactive", SubState: "dead", File: "missing"}
		if h, ok := have[name]; ok {
			sum.ActiveState, sum.SubState = h.activeState, subStates[unit]
		}
		if c := s.components[name]; c != nil && c.exists {
			sum.File = "valid"
			switch {
			case c.fileError != "":
				sum.File = "invalid"
			case c.refusal != "":
				sum.File = "refused"
			case c.stopped:
				sum.File = "stopped"
			}
		}
		list = append(list, sum)
	}
	return list, nil
}

// Status returns what osvmd and systemd know about a component, as D-Bus
// values keyed by name: the file and its problem, the plan, and the unit's
// state, main PID, invocation ID and limits.
func (s *Supervisor) Status(ctx context.Context, name string) (map[string]dbus.Variant, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	status, err := s.unitStatus(ctx, name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	c := s.components[name]
	if c != nil {
		status["File"] = dbus.MakeVariant(c.file)
		status["FileExists"] = dbus.MakeVariant(c.exists)
		status["FileError"] = dbus.MakeVariant(c.fileError)
		status["StoppedByOperator"] = dbus.MakeVariant(c.stopped)
		status["Refused"] = dbus.MakeVariant(c.refusal)
		if c.plan != nil {
			status["Plan"] = dbus.MakeVariant(c.plan.ShortHash())
			if d := c.plan.Component.Description; d != "" {
				status["Description"] = dbus.MakeVariant(d)
			}
			status["Isolation"] = dbus.MakeVariant(string(c.plan.Level))
		}
	}
	s.mu.Unlock()

	loaded := status["LoadState"].Value() == "loaded"
	if (c == nil || !c.exists) && !loaded {
		return nil, noComponent(name, s.cfg.ConfigDir)
	}
	status["Name"] = dbus.MakeVariant(name)
	status["Unit"] = dbus.MakeVariant(units.Name(name))
	if loaded {
		if path, err := s.unitPlanPath(ctx, units.Name(name)); err == nil && path != "" {
			status["RunningPlan"] = dbus.MakeVariant(path)
		}
	}
	return status, nil
}

// checkName rejects names that no component file can have, such as names
// with "/" from a D-Bus caller.
func checkName(name string) error {
	if !config.ValidName(name) || len(name) > config.MaxNameLength {
		return fmt.Errorf("%w %q: not a valid component name (1-%d characters from a-z, 0-9 and '-')", errNoComponent, name, config.MaxNameLength)
	}
	return nil
}
