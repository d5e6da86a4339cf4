package config

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// reservedEnvironmentPrefix starts the environment variables through which
// osvm-launch passes state to its own later stages; a component setting
// one could confuse them.
const reservedEnvironmentPrefix = "OSVM_LAUNCH_"

// invalidValue is a value that decoded but is out of range or malformed.
type invalidValue struct {
	key     string
	message string
}

// Limits of the [resources] values. The CPU bound catches typos such as
// cpus = 5000 meant as 50%.
const (
	minMemory   = 1 << 20
	minCPUs     = 0.01 // systemd's CPUQuota= resolution: 1% of one CPU
	maxCPUs     = 1024
	minTasks    = 16      // osvm-launch's Go runtime runs several threads before it executes the command
	maxTasks    = 1 << 22 // the kernel's maximum pid_max
	minIOWeight = 1
	maxIOWeight = 10000
	maxBurst    = math.MaxUint32
)

var (
	// environmentName is the POSIX form of an environment variable name.
	environmentName = lazyRegexp(`^[A-Za-z_][A-Za-z0-9_]*$`)

	// userName is a user name as Debian's and Fedora's tools create them
	// (letters, digits, '_', '-' and '.', at most 32 characters, not
	// starting with '-' or '.'), or a numeric user ID without leading
	// zeros, as systemd's User= takes it.
	userName = lazyRegexp(`^([a-zA-Z_][a-zA-Z0-9_.-]{0,31}|0|[1-9][0-9]{0,9})$`)
)

// component validates f and converts it into a Component named name.
// defined reports whether a file defines a key, such as "exec".
type defined func(key ...string) bool

func (f *file) component(name string, isDefined defined) (*Component, []invalidValue) {
	var invalid []invalidValue
	report := func(key, format string, args ...any) {
		invalid = append(invalid, invalidValue{key: key, message: fmt.Sprintf(format, args...)})
	}

	c := &Component{
		Name:        name,
		Description: f.Description,
		Isolation:   f.Isolation,
		Exec: Exec{
			Command:          f.Exec.Command,
			Environment:      f.Exec.Environment,
			WorkingDirectory: f.Exec.WorkingDirectory,
			User:             f.Exec.User,
		},
	}
	if c.Isolation == "" {
		c.Isolation = DefaultIsolation
	}
	c.MinIsolation = f.MinIsolation
	switch {
	case c.MinIsolation == IsolationAuto:
		report("min_isolation", `"auto" is not a level: name the weakest level the component accepts, such as "process"`)
	case c.MinIsolation != "" && c.Isolation != IsolationAuto && c.Isolation.Rank() < c.MinIsolation.Rank():
		report("min_isolation", "%q is stronger than isolation = %q: raise isolation, set it to \"auto\", or lower min_isolation", c.MinIsolation, c.Isolation)
	}
	if strings.ContainsFunc(c.Description, unicode.IsControl) {
		report("description", "must be one line of printable characters")
	}

	// A component runs either a command or a unikernel image; "auto" goes
	// by the table the file has.
	switch {
	case c.Isolation == IsolationUnikernel || (c.Isolation == IsolationAuto && isDefined("unikernel")):
		if isDefined("exec") {
			report("exec", `a component that boots an image has no [exec] table: remove [exec] or [unikernel]`)
		}
		c.Unikernel = f.Unikernel.check(report)
		if isDefined("container") {
			report("container", `a component that boots an image has no [container] table: remove [container]`)
		}
	default:
		if isDefined("unikernel") {
			report("unikernel", `[unikernel] needs isolation = "unikernel"`)
		}
		f.Exec.check(report)
		c.Container = f.Container.check(report, c, isDefined("container"))
	}
	c.Resources = f.Resources.check(report)
	c.Restart = f.Restart.check(report)
	c.Sandbox = f.Sandbox.check(report)
	if c.RunsImage() && c.Resources.MemoryMax == 0 {
		c.Resources.MemoryMax = DefaultUnikernelMemory
	}
	return c, invalid
}

func (u *fileUk) check(report reporter) Unikernel {
	uk := Unikernel{
		Image:       u.Image,
		CPUs:        DefaultUnikernelCPUs,
		Args:        u.Args,
		Environment: u.Environment,
		User:        u.User,
	}
	if u.User != "" && !userName().MatchString(u.User) {
		report("unikernel.user", "invalid user name %q: use 1-32 letters, digits, '_', '-' and '.', starting with a letter or '_', or a numeric user ID", u.User)
	}
	switch {
	case u.Image == "":
		report("unikernel.image", `missing: set the path of the Hermit kernel image, such as image = "/var/lib/osvm/images/hello_world"`)
	case !filepath.IsAbs(u.Image):
		report("unikernel.image", "%q is not an absolute path", u.Image)
	}
	if u.CPUs != nil {
		if n := *u.CPUs; n < 1 || n > MaxUnikernelCPUs {
			report("unikernel.cpus", "%d is out of range 1-%d", n, MaxUnikernelCPUs)
		} else {
			uk.CPUs = int(n)
		}
	}
	for variable := range u.Environment {
		if !environmentName().MatchString(variable) {
			report("unikernel.environment."+variable, "invalid variable name %q: use letters, digits and '_', not starting with a digit", variable)
		}
	}
	for i, m := range u.Mounts {
		switch {
		case !filepath.IsAbs(m.Host):
			report("unikernel.mounts", "mount %d: host folder %q is not an absolute path", i+1, m.Host)
		case !filepath.IsAbs(m.Guest):
			report("unikernel.mounts", "mount %d: guest path %q is not an absolute path", i+1, m.Guest)
		default:
			uk.Mounts = append(uk.Mounts, Mount{Host: filepath.Clean(m.Host), Guest: filepath.Clean(m.Guest), Writable: m.Writable})
		}
	}
	return uk
}

type reporter func(key, format string, args ...any)

// check validates the [container] table of component c, whose isolation
// and [exec] table are already set. defined reports whether the file has
// the table.
func (f *fileCtr) check(report reporter, c *Component, defined bool) Container {
	// Inside the container the command is root; exec.user is the host user
	// that root maps to, and that must not be the host's root.
	if c.Isolation == IsolationContainer && (c.Exec.User == "root" || c.Exec.User == "0") {
		report("exec.user", `at isolation "container" the command runs as root inside the container, and user names the unprivileged host user that this root maps to: remove user for a dynamic user, or name another user`)
	}

	var ctr Container
	switch {
	case !defined:
		return ctr
	case c.Isolation != IsolationContainer && c.Isolation != IsolationAuto:
		report("container", `[container] needs isolation = "container" or "auto"`)
		return ctr
	}

	switch rootfs := f.Rootfs; {
	case rootfs == "":
		// No rootfs: the container runs on the host's root, read-only.
	case strings.ContainsRune(rootfs, 0):
		report("container.rootfs", "%q contains a NUL byte", rootfs)
	case !filepath.IsAbs(rootfs):
		report("container.rootfs", "%q is not an absolute path", rootfs)
	case filepath.Clean(rootfs) == "/":
		report("container.rootfs", `"/" is the host's root: leave rootfs out to run on the host's root, read-only`)
	default:
		ctr.Rootfs = filepath.Clean(rootfs)
	}

	// At a weaker level the command would run on the host's root instead
	// of the rootfs.
	if ctr.Rootfs != "" && c.Isolation == IsolationAuto && c.MinIsolation.Rank() < IsolationContainer.Rank() {
		report("container.rootfs", `a rootfs needs level "container": set isolation = "container", or min_isolation = "container" with isolation = "auto"`)
	}
	return ctr
}

func (e *fileExec) check(report reporter) {
	switch {
	case len(e.Command) == 0:
		report("exec.command", `missing: set the program and its arguments, such as command = ["/usr/bin/python3", "-m", "http.server"]`)
	case e.Command[0] == "":
		report("exec.command", "the program path is empty: give the program's full path, such as /usr/bin/python3")
	case !filepath.IsAbs(e.Command[0]):
		report("exec.command", "%q is not an absolute path: give the program's full path, such as /usr/bin/%s", e.Command[0], filepath.Base(e.Command[0]))
	}
	for i, arg := range e.Command {
		if strings.ContainsRune(arg, 0) {
			report("exec.command", "argument %d contains a NUL byte", i)
		}
	}

	for variable, value := range e.Environment {
		if !environmentName().MatchString(variable) {
			report("exec.environment."+variable, "invalid variable name %q: use letters, digits and '_', not starting with a digit", variable)
		}
		if strings.HasPrefix(variable, reservedEnvironmentPrefix) {
			report("exec.environment."+variable, "variable names starting with %s are reserved for osvm-launch's own stages", reservedEnvironmentPrefix)
		}
		if strings.ContainsRune(value, 0) {
			report("exec.environment."+variable, "value contains a NUL byte")
		}
	}

	if e.WorkingDirectory != "" && !filepath.IsAbs(e.WorkingDirectory) {
		report("exec.working_directory", "%q is not an absolute path", e.WorkingDirectory)
	}
	if e.User != "" && !userName().MatchString(e.User) {
		report("exec.user", "invalid user name %q: use 1-32 letters, digits, '_', '-' and '.', starting with a letter or '_', or a numeric user ID", e.User)
	}
}

func (r *fileRes) check(report reporter) Resources {
	var res Resources
	if r.Memory.set {
		if r.Memory.bytes < minMemory {
			report("resources.memory", "%d bytes is below the minimum of 1MiB", r.Memory.bytes)
		}
		res.MemoryMax = r.Memory.bytes
	}
	if r.CPUs != nil {
		if cpus := *r.CPUs; !(cpus >= minCPUs && cpus <= maxCPUs) {
			report("resources.cpus", "%v is out of range: give a number of CPUs from %v to %d, such as 0.5 for half a CPU", cpus, minCPUs, maxCPUs)
		} else {
			res.CPUs = cpus
		}
	}
	if r.Tasks != nil {
		if tasks := *r.Tasks; tasks < minTasks || tasks > maxTasks {
			report("resources.tasks", "%d is out of range %d-%d (osvm-launch itself needs %d before it starts the command)", tasks, minTasks, maxTasks, minTasks)
		} else {
			res.TasksMax = uint64(tasks)
		}
	}
	if r.IOWeight != nil {
		if weight := *r.IOWeight; weight < minIOWeight || weight > maxIOWeight {
			report("resources.io_weight", "%d is out of range %d-%d", weight, minIOWeight, maxIOWeight)
		} else {
			res.IOWeight = uint64(weight)
		}
	}
	return res
}

func (r *fileRst) check(report reporter) Restart {
	restart := Restart{
		Policy:   r.Policy,
		Delay:    DefaultRestartDelay,
		Burst:    DefaultRestartBurst,
		Interval: DefaultRestartInterval,
	}
	if restart.Policy == "" {
		restart.Policy = DefaultRestartPolicy
	}
	if r.Delay.set {
		restart.Delay = r.Delay.value
	}
	if r.Interval.set {
		if r.Interval.value < time.Millisecond {
			report("restart.interval", "%v is too short: give at least 1ms", r.Interval.value)
		}
		restart.Interval = r.Interval.value
	}
	if r.Burst != nil {
		if burst := *r.Burst; burst < 1 || burst > maxBurst {
			report("restart.burst", "%d is out of range 1-%d", burst, uint64(maxBurst))
		} else {
			restart.Burst = uint32(burst)
		}
	}
	return restart
}

// maxLandlockABI bounds landlock_min_abi. Linux 6.15 has ABI 7; the bound
// leaves room for later kernels and catches typos.
const maxLandlockABI = 100

func (b *fileSbx) check(report reporter) Sandbox {
	sb := Sandbox{
		ReadOnlyPaths:  checkPaths(report, "sandbox.read_only_paths", b.ReadOnlyPaths),
		ReadWritePaths: checkPaths(report, "sandbox.read_write_paths", b.ReadWritePaths),
		ExecPaths:      checkPaths(report, "sandbox.exec_paths", b.ExecPaths),
		Network:        b.Network,
		BindPorts:      checkPorts(report, "sandbox.bind_ports", b.BindPorts),
		ConnectPorts:   checkPorts(report, "sandbox.connect_ports", b.ConnectPorts),
		Syscalls:       b.Syscalls,
		AllowSyscalls:  checkSyscalls(report, "sandbox.allow_syscalls", b.AllowSyscalls),
		DenySyscalls:   checkSyscalls(report, "sandbox.deny_syscalls", b.DenySyscalls),
		Landlock:       b.Landlock,
		AllowJIT:       b.AllowJIT,
	}
	if sb.Network == "" {
		sb.Network = DefaultNetwork
	}
	if sb.Syscalls == "" {
		sb.Syscalls = DefaultSyscalls
	}
	if sb.Landlock == "" {
		sb.Landlock = DefaultLandlock
	}
	if sb.Network == NetworkNone && (len(sb.BindPorts) > 0 || len(sb.ConnectPorts) > 0) {
		report("sandbox.network", `ports are listed but network is "none": set network = "loopback" or "host"`)
	}
	for _, name := range sb.AllowSyscalls {
		if slices.Contains(sb.DenySyscalls, name) {
			report("sandbox.deny_syscalls", "%q is in both allow_syscalls and deny_syscalls", name)
		}
	}
	if b.LandlockMinABI != nil {
		if abi := *b.LandlockMinABI; abi < 1 || abi > maxLandlockABI {
			report("sandbox.landlock_min_abi", "%d is out of range 1-%d", abi, maxLandlockABI)
		} else {
			sb.LandlockMinABI = int(abi)
		}
	}
	for _, name := range b.Capabilities {
		canonical, err := capabilityName(name)
		if err != nil {
			report("sandbox.capabilities", "%v", err)
			continue
		}
		if !slices.Contains(sb.Capabilities, canonical) {
			sb.Capabilities = append(sb.Capabilities, canonical)
		}
	}
	return sb
}

func checkPaths(report reporter, key string, paths []string) []string {
	var clean []string
	for _, p := range paths {
		switch {
		case strings.ContainsRune(p, 0):
			report(key, "%q contains a NUL byte", p)
		case !filepath.IsAbs(p):
			report(key, "%q is not an absolute path", p)
		default:
			clean = append(clean, filepath.Clean(p))
		}
	}
	return clean
}

func checkPorts(report reporter, key string, ports []int64) []uint16 {
	var valid []uint16
	for _, port := range ports {
		if port < 1 || port > 65535 {
			report(key, "port %d is out of range 1-65535", port)
			continue
		}
		valid = append(valid, uint16(port))
	}
	return valid
}

func checkSyscalls(report reporter, key string, names []string) []string {
	var unknown []string
	for _, name := range names {
		if !isSyscallName(name) {
			unknown = append(unknown, strconv.Quote(name))
		}
	}
	if len(unknown) > 0 {
		report(key, "unknown system call %s: use names as in syscalls(2), such as \"ptrace\" or \"openat\"", strings.Join(unknown, ", "))
		return nil
	}
	return names
}
