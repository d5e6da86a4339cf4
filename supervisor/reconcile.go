package supervisor

import (
	"maps"
	"slices"

	"github.com/osvm-project/osvm/internal/plan"
)

// desired is the state the configuration folder gives one component.
type desired struct {
	// plan is the plan of a valid file; nil when the file is invalid or
	// missing.
	plan *plan.Plan

	// fileExists is false when the component has no file: its unit is
	// stopped. An invalid file exists but has no plan: its unit is kept.
	fileExists bool

	// stopped is set after an operator stopped the component: it is not
	// started again until an operator starts it.
	stopped bool

	// started is set when osvmd already started a unit with this plan
	// since boot. A unit that is gone although its plan was started has
	// exited or was stopped with systemctl; reconciling leaves that to
	// systemd's restart policy and to operators.
	started bool
}

// actual is the state systemd reports for a component's unit.
type actual struct {
	// loaded is false when systemd has no such unit: never started, or
	// stopped and unloaded.
	loaded bool

	// activeState is systemd's ActiveState: active, activating,
	// deactivating, inactive or failed.
	activeState string

	// shortHash is the hash in the file name of the plan the unit runs, or
	// "" when the unit does not run an osvm plan.
	shortHash string
}

// actionKind is the step reconciling takes with one component's unit.
type actionKind int

const (
	actionStart   actionKind = iota + 1 // start a transient unit for the plan
	actionReplace                       // stop the unit, then start the new plan
	actionStop                          // stop the unit; its file is gone
)

func (k actionKind) String() string {
	switch k {
	case actionStart:
		return "start"
	case actionReplace:
		return "replace"
	case actionStop:
		return "stop"
	}
	return "none"
}

// action is one step of a reconciliation.
type action struct {
	kind      actionKind
	component string
	plan      *plan.Plan // for start and replace
	reason    string
}

// decide compares the folder with systemd and returns the actions that make
// systemd match the folder, sorted by component name. It is the whole
// reconciliation policy:
//   - a valid file whose unit is missing or inactive is started, unless an
//     operator stopped the component or its plan was started before;
//   - a valid file whose unit runs another plan is replaced;
//   - an invalid file changes nothing, so the previous version keeps running;
//   - a unit whose file is gone is stopped;
//   - a failed unit with an unchanged plan is left failed: systemd's restart
//     policy already gave up on it, and an operator restarts it.
func decide(want map[string]desired, have map[string]actual) []action {
	names := slices.Sorted(maps.Keys(want))
	for name := range have {
		if _, ok := want[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	var actions []action
	for _, name := range names {
		w, h := want[name], have[name]
		running := h.loaded && h.activeState != "inactive"
		switch {
		case !w.fileExists:
			if running {
				actions = append(actions, action{kind: actionStop, component: name, reason: "its file was removed"})
			}
		case w.plan == nil || w.stopped:
			// Invalid file, or stopped by an operator: leave the unit alone.
		case !running && w.started:
			// The plan ran and ended: starting it again would restart a
			// component behind systemd's restart policy.
		case !running:
			actions = append(actions, action{kind: actionStart, component: name, plan: w.plan, reason: "not running"})
		case h.shortHash != w.plan.ShortHash():
			actions = append(actions, action{kind: actionReplace, component: name, plan: w.plan, reason: "its file changed"})
		}
	}
	return actions
}
