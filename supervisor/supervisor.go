package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/fsnotify/fsnotify"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
	"github.com/osvm-project/osvm/probe"
	"github.com/osvm-project/osvm/units"
)

// Config configures a Supervisor. Zero fields take the defaults named on
// each field.
type Config struct {
	// ConfigDir is the folder of component files. Default /etc/osvm.
	ConfigDir string

	// RuntimeDir holds osvmd's runtime state: plans and the list of
	// components an operator stopped. Default /run/osvm.
	RuntimeDir string

	// PlanDir is the folder plans are written to. Default RuntimeDir/components.
	PlanDir string

	// DropInDir holds the runtime drop-in folders of component units.
	// Default /run/systemd/system.
	DropInDir string

	// Launcher is the absolute path of osvm-launch. Required.
	Launcher string

	// ExecStage is the absolute path of osvm-exec, which starts a unit at
	// level "process" from the plan's exec record without a Go runtime,
	// and runs Launcher when the record no longer applies. Empty: every
	// unit runs Launcher.
	ExecStage string

	// Debounce is the window in which further events for a file are
	// gathered into one reload. Default 100ms.
	Debounce time.Duration

	// HostReport is the host's capability report. The supervisor chooses
	// levels from it (see HostLevels) and serves it over D-Bus. nil means
	// a host that offers every level osvm implements.
	HostReport *probe.Report

	// Logger receives the supervisor's log. Default slog.Default().
	Logger *slog.Logger

	// Ready, when set, is called once the first reconciliation is done.
	Ready func()

	// StateChanged, when set, is called when a component's unit changes
	// its active state. It must not block.
	StateChanged func(component, activeState, subState string)
}

// Supervisor keeps systemd's component units in line with the component
// files of a folder. Create it with New and call Run once.
type Supervisor struct {
	cfg     Config
	log     *slog.Logger
	systemd Manager

	requests chan request
	debounce *debouncer

	// levels is the status of each isolation level on this host.
	levels map[config.Isolation]LevelStatus

	// watcher watches ConfigDir; folderGone is set while the folder does
	// not exist. Only the loop uses them.
	watcher    *fsnotify.Watcher
	folderGone bool

	// unitStates is the last ActiveState/SubState reported per component;
	// only the loop uses it.
	unitStates map[string]string

	// heartbeat is the time of the loop's last sign of life, in Unix
	// nanoseconds; see Alive.
	heartbeat atomic.Int64

	mu         sync.Mutex
	components map[string]*component // guarded by mu
}

// component is the supervisor's record of one component.
type component struct {
	file      string
	fileError string     // the file's last validation error; "" when valid or missing
	refusal   string     // the reason no isolation level it accepts can run here; "" when one can
	plan      *plan.Plan // the plan of the valid file; nil when invalid or missing
	exists    bool       // the file exists
	stopped   bool       // an operator stopped the component
}

// request is an operation from the D-Bus API, run by the loop so that it
// never overlaps a reconciliation.
type request struct {
	run  func(ctx context.Context) error
	done chan error
}

// New returns a supervisor that manages units through systemd.
func New(cfg Config, systemd Manager) (*Supervisor, error) {
	if cfg.ConfigDir == "" {
		cfg.ConfigDir = "/etc/osvm"
	}
	if cfg.RuntimeDir == "" {
		cfg.RuntimeDir = "/run/osvm"
	}
	if cfg.PlanDir == "" {
		cfg.PlanDir = filepath.Join(cfg.RuntimeDir, "components")
	}
	if cfg.DropInDir == "" {
		cfg.DropInDir = "/run/systemd/system"
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = 100 * time.Millisecond
	}
	levels := ImplementedLevels()
	if cfg.HostReport != nil {
		levels = HostLevels(cfg.HostReport)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if !filepath.IsAbs(cfg.Launcher) {
		return nil, fmt.Errorf("launcher path %q is not absolute", cfg.Launcher)
	}
	if cfg.ExecStage != "" && !filepath.IsAbs(cfg.ExecStage) {
		return nil, fmt.Errorf("exec stage path %q is not absolute", cfg.ExecStage)
	}
	s := &Supervisor{
		cfg:        cfg,
		levels:     levels,
		log:        cfg.Logger,
		systemd:    systemd,
		requests:   make(chan request),
		debounce:   newDebouncer(cfg.Debounce),
		unitStates: map[string]string{},
		components: map[string]*component{},
	}
	s.beat()
	return s, nil
}

// Run watches the configuration folder and reconciles until ctx is done.
// Units keep running when Run returns: they belong to systemd, not to
// osvmd.
func (s *Supervisor) Run(ctx context.Context) error {
	if info, err := os.Stat(s.cfg.ConfigDir); err != nil {
		return fmt.Errorf("configuration folder: %w", err)
	} else if !info.IsDir() {
		return fmt.Errorf("configuration folder %s is not a folder", s.cfg.ConfigDir)
	}

	// Watch before the first scan, so that no change between the scan and
	// the watch is missed. The folder, not each file, is watched: an
	// editor's atomic save replaces the file and would end a file watch.
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.cfg.ConfigDir, err)
	}
	defer watcher.Close()
	if err := watcher.Add(s.cfg.ConfigDir); err != nil {
		return fmt.Errorf("watch %s: %w", s.cfg.ConfigDir, err)
	}
	s.watcher = watcher

	updates := make(chan *sddbus.PropertiesUpdate, 256)
	updateErrors := make(chan error, 1)
	s.systemd.SetPropertiesSubscriber(updates, updateErrors)
	if err := s.systemd.Subscribe(); err != nil {
		return fmt.Errorf("subscribe to systemd's unit changes: %w", err)
	}

	s.loadStopped()
	if err := s.reconcileAll(ctx); err != nil {
		return err
	}
	if s.cfg.Ready != nil {
		s.cfg.Ready()
	}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	heartbeat := time.NewTicker(time.Second)
	defer heartbeat.Stop()
	for {
		s.beat()
		select {
		case <-ctx.Done():
			return nil

		case event, ok := <-watcher.Events:
			if !ok {
				return errors.New("file watcher closed")
			}
			s.fileEvent(ctx, event)
			s.armTimer(timer)

		case err, ok := <-watcher.Errors:
			if !ok {
				return errors.New("file watcher closed")
			}
			// An overflow loses events: read the whole folder again.
			s.log.Error("watching the configuration folder failed; reloading it", "folder", s.cfg.ConfigDir, "error", err)
			if err := s.reconcileAll(ctx); err != nil {
				s.log.Error("reload failed", "error", err)
			}

		case <-timer.C:
			for _, file := range s.debounce.due(time.Now()) {
				s.reconcileFile(ctx, file, true)
			}
			s.armTimer(timer)

		case update := <-updates:
			s.unitChanged(update)

		case err := <-updateErrors:
			s.log.Warn("missed unit state changes from systemd", "error", err)

		case req := <-s.requests:
			req.done <- req.run(ctx)

		case <-heartbeat.C:
			if s.folderGone {
				s.rewatchFolder(ctx)
			}
		}
	}
}

func (s *Supervisor) armTimer(timer *time.Timer) {
	if next, ok := s.debounce.next(); ok {
		timer.Reset(time.Until(next))
	}
}

// rewatchFolder watches the configuration folder again once it exists
// again, and reads it whole, since its files may have changed meanwhile.
func (s *Supervisor) rewatchFolder(ctx context.Context) {
	if err := s.watcher.Add(s.cfg.ConfigDir); err != nil {
		return
	}
	s.folderGone = false
	s.log.Info("the configuration folder is back; reading it again", "folder", s.cfg.ConfigDir)
	if err := s.reconcileAll(ctx); err != nil {
		s.log.Error("reload failed", "error", err)
	}
}

// beat records that the loop is alive.
func (s *Supervisor) beat() {
	s.heartbeat.Store(time.Now().UnixNano())
}

// Alive reports whether the loop showed a sign of life within maxAge. The
// loop shows one at least every second while it waits for events or for a
// systemd job, so a false result means it is stuck.
func (s *Supervisor) Alive(maxAge time.Duration) bool {
	return time.Since(time.Unix(0, s.heartbeat.Load())) < maxAge
}

// fileEvent handles one event of the folder watch.
func (s *Supervisor) fileEvent(ctx context.Context, event fsnotify.Event) {
	if filepath.Clean(event.Name) == filepath.Clean(s.cfg.ConfigDir) {
		if event.Has(fsnotify.Remove) || event.Has(fsnotify.Rename) {
			s.log.Error("the configuration folder was removed or renamed; waiting for it to come back", "folder", s.cfg.ConfigDir)
			s.watcher.Remove(s.cfg.ConfigDir)
			s.folderGone = true
		}
		return
	}
	file := filepath.Base(event.Name)
	if !config.IsComponentFile(file) || event.Op == fsnotify.Chmod {
		return
	}
	if s.debounce.event(file, time.Now()) {
		if !s.reconcileFile(ctx, file, false) {
			s.debounce.retry(file)
		}
	}
}

// reconcileFile reloads one component file and reconciles its unit. With
// reportInvalid unset, an invalid file is not logged and reconcileFile
// returns false: the caller retries once the writer has had time to finish.
func (s *Supervisor) reconcileFile(ctx context.Context, file string, reportInvalid bool) bool {
	path := filepath.Join(s.cfg.ConfigDir, file)
	name, err := config.NameFromPath(path)
	if err != nil {
		if _, statErr := os.Lstat(path); reportInvalid && statErr == nil {
			s.log.Error("ignoring component file", "file", path, "error", err)
		}
		return reportInvalid
	}

	// A file that disappeared may be an editor's save in progress (vim
	// renames the file away before writing it anew): act on removals only
	// when the window of events ends.
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) && !reportInvalid {
		return false
	}

	want, valid := s.load(name, reportInvalid)
	if !valid && !reportInvalid {
		return false
	}
	have, _, err := s.listUnits(ctx, units.Name(name))
	if err != nil {
		s.log.Error("reconcile failed", "component", name, "error", err)
		return true
	}
	s.apply(ctx, decide(map[string]desired{name: want}, have))
	if !want.fileExists {
		s.removeUnusedPlans(func(_, component string) bool { return component != name })
	}
	return true
}

// Reload reads the whole configuration folder again and reconciles every
// component, as at start. It is what SIGHUP and the Reload method do.
func (s *Supervisor) Reload(ctx context.Context) error {
	return s.do(ctx, s.reconcileAll)
}

// reconcileAll reads every component file and every component unit, makes
// them match, and removes plans no unit uses.
func (s *Supervisor) reconcileAll(ctx context.Context) error {
	entries, err := os.ReadDir(s.cfg.ConfigDir)
	if err != nil {
		return fmt.Errorf("read configuration folder: %w", err)
	}
	have, planPaths, err := s.listUnits(ctx, unitPattern)
	if err != nil {
		return err
	}

	want := map[string]desired{}
	for _, entry := range entries {
		if entry.IsDir() || !config.IsComponentFile(entry.Name()) {
			continue
		}
		path := filepath.Join(s.cfg.ConfigDir, entry.Name())
		name, err := config.NameFromPath(path)
		if err != nil {
			s.log.Error("ignoring component file", "file", path, "error", err)
			continue
		}
		want[name], _ = s.load(name, true)
	}
	// Components known before whose files are gone.
	s.mu.Lock()
	for name, c := range s.components {
		if _, ok := want[name]; !ok && c.exists {
			c.exists, c.plan, c.fileError = false, nil, ""
		}
	}
	s.mu.Unlock()
	s.apply(ctx, decide(want, have))

	keep := map[string]bool{}
	for _, path := range planPaths {
		keep[filepath.Base(path)] = true
	}
	for _, w := range want {
		if w.plan != nil {
			keep[w.plan.FileName()] = true
		}
	}
	s.removeUnusedPlans(func(file, _ string) bool { return keep[file] })
	return nil
}

// load reads a component file, records the result and returns the desired
// state of the component. valid is false when the file exists but is
// invalid.
func (s *Supervisor) load(name string, reportInvalid bool) (want desired, valid bool) {
	path := filepath.Join(s.cfg.ConfigDir, name+config.Extension)
	c, err := config.Load(path)

	s.mu.Lock()
	defer s.mu.Unlock()
	state := s.components[name]
	if state == nil {
		state = &component{file: path}
		s.components[name] = state
	}
	want.stopped = state.stopped

	switch {
	case errors.Is(err, fs.ErrNotExist):
		state.exists, state.plan, state.fileError = false, nil, ""
		state.stopped = false
		want.stopped = false
		s.forgetStopped(name)
		return want, true
	case err != nil:
		state.exists, state.plan = true, nil
		want.fileExists = true
		if reportInvalid {
			state.fileError = err.Error()
			s.logInvalid(name, path, err)
		}
		return want, false
	}

	// A component that cannot run at a level it accepts is refused like an
	// invalid file: nothing starts, and a running version keeps running.
	level, err := chooseLevel(c, s.levels)
	if err == nil && level == config.IsolationUnikernel && c.User() == "" {
		if kvmErr := kvmForDynamicUser(); kvmErr != nil {
			err = &RefusalError{Component: name, Missing: []string{"unikernel: " + kvmErr.Error()}}
		}
	}
	if err != nil {
		state.exists, state.plan, state.fileError = true, nil, ""
		want.fileExists = true
		if !reportInvalid {
			return want, false
		}
		if state.refusal != err.Error() {
			s.log.Error("refusing to start component: no isolation level it accepts can run on this host", "component", name, "unit", units.Name(name), "file", path, "error", err)
		}
		state.refusal = err.Error()
		return want, true
	}
	state.refusal = ""

	p, err := plan.New(c, level, path)
	if err != nil {
		state.exists, state.plan, state.fileError = true, nil, err.Error()
		want.fileExists = true
		return want, false
	}
	state.exists, state.plan, state.fileError = true, p, ""
	want.fileExists, want.plan = true, p
	_, err = os.Stat(filepath.Join(s.cfg.PlanDir, p.FileName()))
	want.started = err == nil
	return want, true
}

// logInvalid logs each problem of an invalid component file on a line of
// its own, so that journalctl shows every position in full.
func (s *Supervisor) logInvalid(name, path string, err error) {
	log := s.log.With("component", name, "unit", units.Name(name), "file", path)
	problems := config.Errors(err)
	if len(problems) == 0 {
		log.Error("invalid component file; the running version, if any, is kept", "error", err)
		return
	}
	for _, problem := range problems {
		log.Error("invalid component file; the running version, if any, is kept", "error", problem)
	}
}

// apply carries out actions one by one. A failed action is logged and does
// not stop the others.
func (s *Supervisor) apply(ctx context.Context, actions []action) {
	for _, a := range actions {
		log := s.log.With("component", a.component, "unit", units.Name(a.component))
		var err error
		switch a.kind {
		case actionStart:
			log.Info("starting component", "reason", a.reason, "plan", a.plan.ShortHash())
			err = s.startUnit(ctx, a.plan)
		case actionReplace:
			log.Info("restarting component with its new settings", "reason", a.reason, "plan", a.plan.ShortHash())
			if err = s.stopUnit(ctx, a.component); err == nil {
				err = s.startUnit(ctx, a.plan)
			}
		case actionStop:
			log.Info("stopping component", "reason", a.reason)
			if err = s.stopUnit(ctx, a.component); err == nil {
				s.removeDropIn(a.component)
			}
		}
		if err != nil {
			log.Error("component "+a.kind.String()+" failed", "error", err)
			continue
		}

		// The component's earlier plans are no longer used by any unit.
		keep := ""
		if a.plan != nil {
			keep = a.plan.FileName()
		}
		s.removeUnusedPlans(func(file, component string) bool {
			return component != a.component || file == keep
		})
	}
}

// removeUnusedPlans deletes the plan files for which keep returns false.
// keep receives each plan's file name and component name.
func (s *Supervisor) removeUnusedPlans(keep func(file, component string) bool) {
	entries, err := os.ReadDir(s.cfg.PlanDir)
	if err != nil {
		return
	}
	for _, entry := range entries {
		// An exec record goes with its plan.
		file := entry.Name()
		if planFile, ok := plan.PlanFileOfRecord(file); ok {
			file = planFile
		}
		component, _, ok := plan.ParseFileName(file)
		if !ok || keep(file, component) {
			continue
		}
		if err := os.Remove(filepath.Join(s.cfg.PlanDir, entry.Name())); err != nil {
			s.log.Warn("removing an unused plan failed", "file", entry.Name(), "error", err)
		}
	}
}

// unitChanged logs and forwards a change of a component unit's state.
func (s *Supervisor) unitChanged(update *sddbus.PropertiesUpdate) {
	name, ok := units.ComponentName(update.UnitName)
	if !ok {
		return
	}
	active, ok := update.Changed["ActiveState"]
	if !ok {
		return
	}
	activeState, _ := active.Value().(string)
	subState, _ := update.Changed["SubState"].Value().(string)

	// systemd signals a change once for each interface of the unit object
	// (Unit and Service); report each state once.
	state := activeState + "/" + subState
	if s.unitStates[name] == state {
		return
	}
	s.unitStates[name] = state
	log := s.log.With("component", name, "unit", update.UnitName, "state", activeState, "substate", subState)
	if activeState == "failed" {
		log.Warn("component failed")
	} else {
		log.Debug("component state changed")
	}
	if s.cfg.StateChanged != nil {
		s.cfg.StateChanged(name, activeState, subState)
	}
}

// do runs fn on the loop and returns its error.
func (s *Supervisor) do(ctx context.Context, fn func(ctx context.Context) error) error {
	req := request{run: fn, done: make(chan error, 1)}
	select {
	case s.requests <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// componentNames returns every component known from files or units.
func (s *Supervisor) componentNames(ctx context.Context) ([]string, map[string]actual, error) {
	have, _, err := s.listUnits(ctx, unitPattern)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	names := map[string]bool{}
	for name, c := range s.components {
		if c.exists {
			names[name] = true
		}
	}
	s.mu.Unlock()
	for name := range have {
		names[name] = true
	}
	return slices.Sorted(maps.Keys(names)), have, nil
}

// stoppedPath is the marker of a component an operator stopped. It lives
// on /run, so it survives a restart of osvmd but not a reboot, like the
// state of a unit stopped with systemctl.
func (s *Supervisor) stoppedPath(name string) string {
	return filepath.Join(s.cfg.RuntimeDir, "stopped", name)
}

func (s *Supervisor) loadStopped() {
	entries, _ := os.ReadDir(filepath.Join(s.cfg.RuntimeDir, "stopped"))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, entry := range entries {
		name := entry.Name()
		if !config.ValidName(name) {
			continue
		}
		s.components[name] = &component{file: filepath.Join(s.cfg.ConfigDir, name+config.Extension), stopped: true}
	}
}

func (s *Supervisor) rememberStopped(name string) error {
	path := s.stoppedPath(name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, nil, 0o644)
}

func (s *Supervisor) forgetStopped(name string) {
	if err := os.Remove(s.stoppedPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("removing a stop marker failed", "component", name, "error", err)
	}
}

// errNoComponent is returned for a component with neither file nor unit.
var errNoComponent = errors.New("no such component")

func noComponent(name string, folder string) error {
	return fmt.Errorf("%w %q: no file %s and no unit %s", errNoComponent, name,
		filepath.Join(folder, name+config.Extension), units.Name(name))
}
