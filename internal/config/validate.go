package config

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// invalidValue is a value that decoded but is out of range or malformed.
type invalidValue struct {
	key     string
	message string
}

// Limits of the [resources] values. The CPU bound catches typos such as
// cpus = 5000 meant as 50%.
const (
	minMemory   = 1 << 20
	maxCPUs     = 1024
	maxTasks    = 1 << 22 // the kernel's maximum pid_max
	minIOWeight = 1
	maxIOWeight = 10000
	maxBurst    = math.MaxUint32
)

var (
	// environmentName is the POSIX form of an environment variable name.
	environmentName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

	// userName is a conservative form of user name, as useradd accepts by
	// default: letters, digits, '_' and '-', at most 31 characters.
	userName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_-]{0,30}$`)
)

// component validates f and converts it into a Component named name.
func (f *file) component(name string) (*Component, []invalidValue) {
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
	if strings.ContainsAny(c.Description, "\n\x00") {
		report("description", "must be a single line")
	}

	f.Exec.check(report)
	c.Resources = f.Resources.check(report)
	c.Restart = f.Restart.check(report)
	return c, invalid
}

type reporter func(key, format string, args ...any)

func (e *fileExec) check(report reporter) {
	switch {
	case len(e.Command) == 0:
		report("exec.command", `missing: set the program and its arguments, such as command = ["/usr/bin/python3", "-m", "http.server"]`)
	case !filepath.IsAbs(e.Command[0]):
		report("exec.command", "%q is not an absolute path: give the program's full path, such as /usr/bin/%s", e.Command[0], filepath.Base(e.Command[0]))
	}
	for i, arg := range e.Command {
		if strings.ContainsRune(arg, 0) {
			report("exec.command", "argument %d contains a NUL byte", i)
		}
	}

	for variable, value := range e.Environment {
		if !environmentName.MatchString(variable) {
			report("exec.environment."+variable, "invalid variable name %q: use letters, digits and '_', not starting with a digit", variable)
		}
		if strings.ContainsRune(value, 0) {
			report("exec.environment."+variable, "value contains a NUL byte")
		}
	}

	if e.WorkingDirectory != "" && !filepath.IsAbs(e.WorkingDirectory) {
		report("exec.working_directory", "%q is not an absolute path", e.WorkingDirectory)
	}
	if e.User != "" && !userName.MatchString(e.User) {
		report("exec.user", "invalid user name %q: use 1-31 letters, digits, '_' and '-', not starting with a digit or '-'", e.User)
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
		if cpus := *r.CPUs; cpus <= 0 || cpus > maxCPUs || math.IsNaN(cpus) {
			report("resources.cpus", "%v is out of range: give a number of CPUs above 0 and at most %d, such as 0.5 for half a CPU", cpus, maxCPUs)
		} else {
			res.CPUs = cpus
		}
	}
	if r.Tasks != nil {
		if tasks := *r.Tasks; tasks < 1 || tasks > maxTasks {
			report("resources.tasks", "%d is out of range 1-%d", tasks, maxTasks)
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
