package config

import (
	"regexp"
	"time"
)

// Isolation is the isolation level of a component, from weakest to
// strongest: none, process. Later levels (container, microvm, unikernel, tee)
// are not accepted yet.
type Isolation string

const (
	// IsolationNone runs the command as a plain service: resource limits and
	// its own user, but no sandbox.
	IsolationNone Isolation = "none"

	// IsolationProcess adds systemd's sandboxing directives around the
	// command.
	IsolationProcess Isolation = "process"
)

// DefaultIsolation is the level of a component file without an isolation key.
const DefaultIsolation = IsolationProcess

var isolations = []Isolation{IsolationNone, IsolationProcess}

// RestartPolicy says when systemd restarts a component's process; the values
// are those of systemd's Restart= setting.
type RestartPolicy string

const (
	RestartNo        RestartPolicy = "no"
	RestartOnFailure RestartPolicy = "on-failure"
	RestartAlways    RestartPolicy = "always"
)

var restartPolicies = []RestartPolicy{RestartNo, RestartOnFailure, RestartAlways}

// Defaults for the [restart] table. Burst and interval are systemd's own
// defaults for StartLimitBurst= and StartLimitIntervalSec=; the delay is
// longer than systemd's 100ms so that a crashing component does not spin.
const (
	DefaultRestartPolicy   = RestartOnFailure
	DefaultRestartDelay    = time.Second
	DefaultRestartBurst    = 5
	DefaultRestartInterval = 10 * time.Second
)

// Component is a validated component file. The zero value of an optional
// field means "not set": systemd's default applies.
type Component struct {
	// Name is the file name without ".toml"; it matches NamePattern.
	Name string `json:"name"`

	Description string    `json:"description,omitempty"`
	Isolation   Isolation `json:"isolation"`
	Exec        Exec      `json:"exec"`
	Resources   Resources `json:"resources"`
	Restart     Restart   `json:"restart"`
}

// Exec describes the program a component runs.
type Exec struct {
	// Command is the argv; Command[0] is an absolute path.
	Command []string `json:"command"`

	// Environment holds variables added to the program's environment.
	Environment map[string]string `json:"environment,omitempty"`

	// WorkingDirectory is an absolute path; empty means the root folder.
	WorkingDirectory string `json:"working_directory,omitempty"`

	// User is the user name the program runs as; empty means a user that
	// systemd allocates while the unit runs (DynamicUser=yes).
	User string `json:"user,omitempty"`
}

// Resources holds the resource limits of a component. Zero means no limit
// beyond systemd's defaults.
type Resources struct {
	MemoryMax uint64  `json:"memory_max,omitempty"` // bytes
	CPUs      float64 `json:"cpus,omitempty"`       // 0.5 is half of one CPU
	TasksMax  uint64  `json:"tasks_max,omitempty"`
	IOWeight  uint64  `json:"io_weight,omitempty"` // 1-10000
}

// Restart is the restart policy and the start rate limit.
type Restart struct {
	Policy   RestartPolicy `json:"policy"`
	Delay    time.Duration `json:"delay"`
	Burst    uint32        `json:"burst"`
	Interval time.Duration `json:"interval"`
}

// NamePattern is the form of a component name, and so of its file name
// without ".toml". It keeps unit names (osvm-NAME.service) free of escaping.
var NamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// MaxNameLength bounds component names so that unit names stay short.
const MaxNameLength = 64
