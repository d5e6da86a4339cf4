package config

// file is the layout of a component file. Every field carries a toml tag:
// the tags are also the list of known keys that unknown keys are compared
// with.
type file struct {
	Description  string    `toml:"description"`
	Isolation    Isolation `toml:"isolation"`
	MinIsolation Isolation `toml:"min_isolation"`
	Exec         fileExec  `toml:"exec"`
	Resources    fileRes   `toml:"resources"`
	Restart      fileRst   `toml:"restart"`
	Sandbox      fileSbx   `toml:"sandbox"`
	Unikernel    fileUk    `toml:"unikernel"`
	Container    fileCtr   `toml:"container"`
}

type fileExec struct {
	Command          []string          `toml:"command"`
	Environment      map[string]string `toml:"environment"`
	WorkingDirectory string            `toml:"working_directory"`
	User             string            `toml:"user"`
}

type fileRes struct {
	Memory   size     `toml:"memory"`
	CPUs     *float64 `toml:"cpus"`
	Tasks    *int64   `toml:"tasks"`
	IOWeight *int64   `toml:"io_weight"`
}

type fileRst struct {
	Policy   RestartPolicy `toml:"policy"`
	Delay    duration      `toml:"delay"`
	Burst    *int64        `toml:"burst"`
	Interval duration      `toml:"interval"`
}

type fileSbx struct {
	ReadOnlyPaths  []string     `toml:"read_only_paths"`
	ReadWritePaths []string     `toml:"read_write_paths"`
	ExecPaths      []string     `toml:"exec_paths"`
	Network        Network      `toml:"network"`
	BindPorts      []int64      `toml:"bind_ports"`
	ConnectPorts   []int64      `toml:"connect_ports"`
	Syscalls       Syscalls     `toml:"syscalls"`
	AllowSyscalls  []string     `toml:"allow_syscalls"`
	DenySyscalls   []string     `toml:"deny_syscalls"`
	Landlock       LandlockMode `toml:"landlock"`
	LandlockMinABI *int64       `toml:"landlock_min_abi"`
	Capabilities   []string     `toml:"capabilities"`
	AllowJIT       bool         `toml:"allow_jit"`
}

type fileUk struct {
	Image       string            `toml:"image"`
	CPUs        *int64            `toml:"cpus"`
	Args        []string          `toml:"args"`
	Environment map[string]string `toml:"environment"`
	Mounts      []fileMount       `toml:"mounts"`
	User        string            `toml:"user"`
}

type fileMount struct {
	Host     string `toml:"host"`
	Guest    string `toml:"guest"`
	Writable bool   `toml:"writable"`
}

type fileCtr struct {
	Rootfs string `toml:"rootfs"`
}
