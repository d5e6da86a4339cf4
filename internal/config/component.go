package config

import (
	"slices"
	"time"
)

// Isolation is the isolation level of a component, from weakest to
// strongest: none, process, container, microvm, unikernel, tee. With
// "auto", osvmd picks the strongest level the host and the component allow.
type Isolation string

const (
	// IsolationNone runs the command as a plain service: resource limits and
	// its own user, but no sandbox.
	IsolationNone Isolation = "none"

	// IsolationProcess adds systemd's sandboxing directives around the
	// command, and Landlock and seccomp inside it.
	IsolationProcess Isolation = "process"

	// IsolationContainer runs the command in namespaces of its own with its
	// own root file system.
	IsolationContainer Isolation = "container"

	// IsolationMicroVM runs a Linux guest in a virtual machine.
	IsolationMicroVM Isolation = "microvm"

	// IsolationUnikernel boots a Hermit unikernel image in a virtual
	// machine that osvm-launch creates through /dev/kvm.
	IsolationUnikernel Isolation = "unikernel"

	// IsolationTEE boots a guest in an AMD SEV-SNP or Intel TDX trusted
	// execution environment.
	IsolationTEE Isolation = "tee"

	// IsolationAuto picks the strongest level available; see MinIsolation.
	IsolationAuto Isolation = "auto"
)

// Levels lists the isolation levels from weakest to strongest.
var Levels = []Isolation{IsolationNone, IsolationProcess, IsolationContainer, IsolationMicroVM, IsolationUnikernel, IsolationTEE}

// Rank returns the position of a level in Levels, from 0 for "none", or -1
// for "auto" and unknown values.
func (i Isolation) Rank() int {
	return slices.Index(Levels, i)
}

// DefaultIsolation is the level of a component file without an isolation key.
const DefaultIsolation = IsolationProcess

var isolations = append(slices.Clone(Levels), IsolationAuto)

// RestartPolicy is the condition under which systemd restarts a component's
// process. The values are those of systemd's Restart= setting.
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
	// Name is the file name without ".toml", which ValidName accepts.
	Name string `json:"name"`

	Description string    `json:"description,omitempty"`
	Isolation   Isolation `json:"isolation"`

	// MinIsolation is the weakest level the component accepts; empty
	// means any.
	MinIsolation Isolation `json:"min_isolation,omitempty"`
	Exec         Exec      `json:"exec"`
	Resources    Resources `json:"resources"`
	Restart      Restart   `json:"restart"`
	Sandbox      Sandbox   `json:"sandbox"`
	Unikernel    Unikernel `json:"unikernel"`

	// Container is left out of the JSON encoding when empty, so that the
	// plans of components without it keep their hashes.
	Container Container `json:"container,omitzero"`
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

// ValidName reports whether name has the form of a component name, and so
// of its file name without ".toml": lowercase ASCII letters, digits and
// '-', starting with a letter or digit. The form keeps unit names
// (osvm-NAME.service) free of escaping. ValidName does not check
// MaxNameLength. It is a loop rather than a regular expression, so that
// importing this package compiles nothing at initialization: osvm-launch
// imports it and pays for its initialization at every start.
func ValidName(name string) bool {
	if name == "" || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// MaxNameLength bounds component names so that unit names stay short.
const MaxNameLength = 64

// Network is the set of networks a component reaches: sandbox.network.
type Network string

const (
	// NetworkNone leaves the component only a private loopback device and
	// Unix sockets.
	NetworkNone Network = "none"

	// NetworkLoopback allows IP traffic to and from 127.0.0.0/8 and ::1
	// only.
	NetworkLoopback Network = "loopback"

	// NetworkHost allows the host's networks.
	NetworkHost Network = "host"
)

var networks = []Network{NetworkNone, NetworkLoopback, NetworkHost}

// Syscalls names a seccomp profile: sandbox.syscalls.
type Syscalls string

const (
	// SyscallsDefault denies the system calls that lead out of a sandbox or
	// into rarely used kernel code, and allows the rest.
	SyscallsDefault Syscalls = "default"

	// SyscallsStrict allows only the system calls ordinary programs need,
	// plus allow_syscalls.
	SyscallsStrict Syscalls = "strict"
)

var syscallProfiles = []Syscalls{SyscallsDefault, SyscallsStrict}

// LandlockMode is the behavior on a kernel whose Landlock cannot enforce a
// component's rules: sandbox.landlock.
type LandlockMode string

const (
	// LandlockRequired refuses to start the component.
	LandlockRequired LandlockMode = "required"

	// LandlockBestEffort applies what the kernel supports.
	LandlockBestEffort LandlockMode = "best-effort"
)

var landlockModes = []LandlockMode{LandlockRequired, LandlockBestEffort}

// Sandbox is the inner sandbox of isolation level "process", which
// osvm-launch applies with Landlock and seccomp. It is ignored at level
// "none".
type Sandbox struct {
	// ReadOnlyPaths, ReadWritePaths and ExecPaths are absolute paths of
	// files and folders. Folders cover everything below them.
	ReadOnlyPaths  []string `json:"read_only_paths,omitempty"`
	ReadWritePaths []string `json:"read_write_paths,omitempty"`
	ExecPaths      []string `json:"exec_paths,omitempty"`

	Network      Network  `json:"network"`
	BindPorts    []uint16 `json:"bind_ports,omitempty"`    // TCP
	ConnectPorts []uint16 `json:"connect_ports,omitempty"` // TCP

	Syscalls      Syscalls `json:"syscalls"`
	AllowSyscalls []string `json:"allow_syscalls,omitempty"`
	DenySyscalls  []string `json:"deny_syscalls,omitempty"`

	Landlock LandlockMode `json:"landlock"`

	// LandlockMinABI is the lowest Landlock ABI version the component
	// accepts; 0 means the version its rules need.
	LandlockMinABI int `json:"landlock_min_abi,omitempty"`

	// Capabilities are kept in the bounding and ambient sets, such as
	// CAP_NET_BIND_SERVICE; every other capability is dropped.
	Capabilities []string `json:"capabilities,omitempty"`

	// AllowJIT permits memory that is both writable and executable, which
	// just-in-time compilers need.
	AllowJIT bool `json:"allow_jit,omitempty"`
}

// Defaults of the [sandbox] table.
const (
	DefaultNetwork  = NetworkNone
	DefaultSyscalls = SyscallsDefault
	DefaultLandlock = LandlockRequired
)

// Unikernel describes the image a component of level "unikernel" boots.
// The guest's memory is Resources.MemoryMax.
type Unikernel struct {
	// Image is the absolute path of a Hermit kernel (an ELF file).
	Image string `json:"image,omitempty"`

	// CPUs is the number of virtual CPUs.
	CPUs int `json:"cpus,omitempty"`

	// Args and Environment are passed to the guest.
	Args        []string          `json:"args,omitempty"`
	Environment map[string]string `json:"environment,omitempty"`

	// Mounts make host folders visible to the guest's file hypercalls.
	Mounts []Mount `json:"mounts,omitempty"`

	// User is the user the monitor runs as; empty means a user that systemd
	// allocates while the unit runs, which must then reach /dev/kvm
	// through group kvm.
	User string `json:"user,omitempty"`
}

// Mount makes a host folder visible to a unikernel under a guest path.
type Mount struct {
	Host     string `json:"host"`
	Guest    string `json:"guest"`
	Writable bool   `json:"writable,omitempty"`
}

// Container describes the root file system of a component at level
// "container".
type Container struct {
	// Rootfs is the absolute path of the folder that becomes the
	// container's root; empty means the host's root, mounted read-only.
	Rootfs string `json:"rootfs,omitempty"`
}

// Defaults and limits of the [unikernel] table.
const (
	DefaultUnikernelCPUs   = 1
	MaxUnikernelCPUs       = 64
	DefaultUnikernelMemory = 64 << 20
)

// RunsImage reports whether the component boots a unikernel image rather
// than running a command.
func (c *Component) RunsImage() bool {
	return c.Unikernel.Image != "" || c.Isolation == IsolationUnikernel
}

// User returns the user the component runs as, from [exec] or
// [unikernel]; empty means a dynamic user.
func (c *Component) User() string {
	if c.RunsImage() {
		return c.Unikernel.User
	}
	return c.Exec.User
}
