package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const fullFile = `# A web server.
description = "Example web server"
isolation = "process"

[exec]
command = ["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", "8080"]
environment = { PYTHONUNBUFFERED = "1" }
working_directory = "/srv/www"
user = "www-data"

[resources]
memory = "64MiB"
cpus = 0.5
tasks = 32
io_weight = 200

[restart]
policy = "always"
delay = "2s"
burst = 3
interval = "1m"

[sandbox]
read_only_paths = ["/srv/www", "/usr/lib/python3/"]
read_write_paths = ["/var/lib/web"]
exec_paths = ["/usr/bin/python3"]
network = "loopback"
bind_ports = [8080]
connect_ports = [5432]
syscalls = "strict"
allow_syscalls = ["ptrace"]
deny_syscalls = ["ioctl"]
landlock = "best-effort"
landlock_min_abi = 4
capabilities = ["cap_net_bind_service", "NET_BIND_SERVICE", "CAP_NET_RAW"]
allow_jit = true
`

func TestParseFullFile(t *testing.T) {
	c, err := Parse("/etc/osvm/web.toml", []byte(fullFile))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Component{
		Name:        "web",
		Description: "Example web server",
		Isolation:   IsolationProcess,
		Exec: Exec{
			Command:          []string{"/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", "8080"},
			Environment:      map[string]string{"PYTHONUNBUFFERED": "1"},
			WorkingDirectory: "/srv/www",
			User:             "www-data",
		},
		Resources: Resources{MemoryMax: 64 << 20, CPUs: 0.5, TasksMax: 32, IOWeight: 200},
		Restart:   Restart{Policy: RestartAlways, Delay: 2 * time.Second, Burst: 3, Interval: time.Minute},
		Sandbox: Sandbox{
			ReadOnlyPaths:  []string{"/srv/www", "/usr/lib/python3"},
			ReadWritePaths: []string{"/var/lib/web"},
			ExecPaths:      []string{"/usr/bin/python3"},
			Network:        NetworkLoopback,
			BindPorts:      []uint16{8080},
			ConnectPorts:   []uint16{5432},
			Syscalls:       SyscallsStrict,
			AllowSyscalls:  []string{"ptrace"},
			DenySyscalls:   []string{"ioctl"},
			Landlock:       LandlockBestEffort,
			LandlockMinABI: 4,
			Capabilities:   []string{"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"},
			AllowJIT:       true,
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", c, want)
	}
}

func TestParseUnikernel(t *testing.T) {
	c, err := Parse("/etc/osvm/hello.toml", []byte(`isolation = "unikernel"
[unikernel]
image = "/var/lib/osvm/images/hello_world"
cpus = 2
args = ["-v"]
environment = { RUST_LOG = "info" }
mounts = [{ host = "/srv/data", guest = "/data" }, { host = "/var/lib/hello/", guest = "/state", writable = true }]
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Unikernel{
		Image:       "/var/lib/osvm/images/hello_world",
		CPUs:        2,
		Args:        []string{"-v"},
		Environment: map[string]string{"RUST_LOG": "info"},
		Mounts:      []Mount{{Host: "/srv/data", Guest: "/data"}, {Host: "/var/lib/hello", Guest: "/state", Writable: true}},
	}
	if !reflect.DeepEqual(c.Unikernel, want) {
		t.Errorf("Unikernel = %+v, want %+v", c.Unikernel, want)
	}
	if c.Resources.MemoryMax != DefaultUnikernelMemory {
		t.Errorf("MemoryMax = %d, want the default guest memory %d", c.Resources.MemoryMax, DefaultUnikernelMemory)
	}
}

func TestParseContainer(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Container
	}{
		{"rootfs", "isolation = \"container\"\n[container]\nrootfs = \"/var/lib/osvm/rootfs/web/\"\n[exec]\ncommand = [\"/bin/sh\"]\n", Container{Rootfs: "/var/lib/osvm/rootfs/web"}},
		{"host root", "isolation = \"container\"\n[exec]\ncommand = [\"/bin/sh\"]\n", Container{}},
		{"empty table", "isolation = \"container\"\n[container]\n[exec]\ncommand = [\"/bin/sh\"]\n", Container{}},
		{"auto with minimum", "isolation = \"auto\"\nmin_isolation = \"container\"\n[container]\nrootfs = \"/srv/root\"\n[exec]\ncommand = [\"/bin/sh\"]\n", Container{Rootfs: "/srv/root"}},
		{"auto without rootfs", "isolation = \"auto\"\n[container]\n[exec]\ncommand = [\"/bin/sh\"]\n", Container{}},
		{"named user", "isolation = \"container\"\n[exec]\ncommand = [\"/bin/sh\"]\nuser = \"www-data\"\n", Container{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("/etc/osvm/box.toml", []byte(tt.text))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.Container != tt.want {
				t.Errorf("Container = %+v, want %+v", c.Container, tt.want)
			}
		})
	}
}

// Plans hash the JSON encoding of a component, so a component without
// [container] must encode as it did before the table existed.
func TestContainerOmittedFromJSON(t *testing.T) {
	c, err := Parse("/etc/osvm/a.toml", []byte(`exec.command = ["/bin/true"]`))
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), `"container"`) {
		t.Errorf("JSON of a component without [container] has the key: %s", data)
	}
	c.Container.Rootfs = "/srv/root"
	data, err = json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"container":{"rootfs":"/srv/root"}`) {
		t.Errorf("JSON of a component with a rootfs lacks it: %s", data)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse("/etc/osvm/a.toml", []byte(`exec.command = ["/bin/true"]`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Isolation != DefaultIsolation {
		t.Errorf("Isolation = %q, want %q", c.Isolation, DefaultIsolation)
	}
	wantRestart := Restart{Policy: DefaultRestartPolicy, Delay: DefaultRestartDelay, Burst: DefaultRestartBurst, Interval: DefaultRestartInterval}
	if c.Restart != wantRestart {
		t.Errorf("Restart = %+v, want %+v", c.Restart, wantRestart)
	}
	if c.Resources != (Resources{}) {
		t.Errorf("Resources = %+v, want no limits", c.Resources)
	}
	wantSandbox := Sandbox{Network: DefaultNetwork, Syscalls: DefaultSyscalls, Landlock: DefaultLandlock}
	if !reflect.DeepEqual(c.Sandbox, wantSandbox) {
		t.Errorf("Sandbox = %+v, want %+v", c.Sandbox, wantSandbox)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		text string
		want []string // each must appear in the error, in order of the list
	}{
		{
			name: "misspelled key",
			text: "[exec]\ncommand = [\"/bin/true\"]\n\n[resources]\nmemmory = \"64MiB\"\n",
			want: []string{`/etc/osvm/web.toml:5: unknown key "resources.memmory" (did you mean "memory"?)`},
		},
		{
			name: "key in wrong table",
			text: "memory = \"64MiB\"\n[exec]\ncommand = [\"/bin/true\"]\n",
			want: []string{`/etc/osvm/web.toml:1: unknown key "memory" (did you mean "memory" in the [resources] table?)`},
		},
		{
			name: "unknown table reported once",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[network]\nport = 80\nhost = \"x\"\n",
			want: []string{`/etc/osvm/web.toml:3: unknown key "network"`},
		},
		{
			name: "unknown key far from any",
			text: "[exec]\ncommand = [\"/bin/true\"]\nzzzzzzzz = 1\n",
			want: []string{`/etc/osvm/web.toml:3: unknown key "exec.zzzzzzzz"` + "\n"},
		},
		{
			name: "wrong type",
			text: "[exec]\ncommand = \"/bin/true\"\n",
			want: []string{`/etc/osvm/web.toml:2: exec.command: wrong type: got a string, want an array`},
		},
		{
			name: "wrong type of integer",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[resources]\ntasks = \"many\"\n",
			want: []string{`/etc/osvm/web.toml:4: resources.tasks: wrong type: got a string, want an integer`},
		},
		{
			name: "bad size",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[resources]\nmemory = \"64MB\"\n",
			want: []string{`/etc/osvm/web.toml:4: resources.memory: invalid size "64MB": decimal units are ambiguous, use KiB, MiB, GiB or TiB`},
		},
		{
			name: "size below minimum",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[resources]\nmemory = 4096\n",
			want: []string{`/etc/osvm/web.toml:4: resources.memory: 4096 bytes is below the minimum of 1MiB`},
		},
		{
			name: "bad isolation",
			text: "isolation = \"vm\"\n[exec]\ncommand = [\"/bin/true\"]\n",
			want: []string{`/etc/osvm/web.toml:1: isolation: invalid isolation "vm" (valid: "none", "process", "container", "microvm", "unikernel", "tee", "auto")`},
		},
		{
			name: "bad restart policy",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[restart]\npolicy = \"on-abort\"\n",
			want: []string{`/etc/osvm/web.toml:4: restart.policy: invalid restart policy "on-abort"`},
		},
		{
			name: "bare integer duration",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[restart]\ndelay = 5\n",
			want: []string{`/etc/osvm/web.toml:4: restart.delay: invalid duration 5: want a string with a unit`},
		},
		{
			name: "relative command",
			text: "[exec]\ncommand = [\"python3\", \"-m\", \"http.server\"]\n",
			want: []string{`/etc/osvm/web.toml:2: exec.command: "python3" is not an absolute path: give the program's full path, such as /usr/bin/python3`},
		},
		{
			name: "missing command",
			text: "description = \"x\"\n",
			want: []string{`/etc/osvm/web.toml: exec.command: missing`},
		},
		{
			name: "bad environment name in inline table",
			text: "[exec]\ncommand = [\"/bin/true\"]\nenvironment = { \"A-B\" = \"1\" }\n",
			want: []string{`/etc/osvm/web.toml:3: exec.environment.A-B: invalid variable name "A-B"`},
		},
		{
			name: "several problems at once",
			text: "descripton = \"x\"\n[exec]\ncommand = [\"true\"]\nworking_directory = \"srv\"\n[resources]\ncpus = 0\nio_weight = 20000\n",
			want: []string{
				`/etc/osvm/web.toml:1: unknown key "descripton" (did you mean "description"?)`,
				`/etc/osvm/web.toml:3: exec.command: "true" is not an absolute path`,
				`/etc/osvm/web.toml:4: exec.working_directory: "srv" is not an absolute path`,
				`/etc/osvm/web.toml:6: resources.cpus: 0 is out of range`,
				`/etc/osvm/web.toml:7: resources.io_weight: 20000 is out of range 1-10000`,
			},
		},
		{
			name: "syntax error",
			text: "[exec]\ncommand = [\"/bin/true\"\n",
			want: []string{`/etc/osvm/web.toml:`},
		},
		{
			name: "dotted keys",
			text: "exec.command = [\"/bin/true\"]\nresources.memroy = 1\n",
			want: []string{`/etc/osvm/web.toml:2: unknown key "resources.memroy" (did you mean "memory"?)`},
		},
		{
			name: "unknown system call",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[sandbox]\nallow_syscalls = [\"ptrace\", \"ptrase\", \"fork2\"]\n",
			want: []string{`/etc/osvm/web.toml:4: sandbox.allow_syscalls: unknown system call "ptrase", "fork2": use names as in syscalls(2)`},
		},
		{
			name: "system call allowed and denied",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[sandbox]\nallow_syscalls = [\"ptrace\"]\ndeny_syscalls = [\"ptrace\"]\n",
			want: []string{`/etc/osvm/web.toml:5: sandbox.deny_syscalls: "ptrace" is in both allow_syscalls and deny_syscalls`},
		},
		{
			name: "unknown capability",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[sandbox]\ncapabilities = [\"CAP_ROOT\"]\n",
			want: []string{`/etc/osvm/web.toml:4: sandbox.capabilities: unknown capability "CAP_ROOT"`},
		},
		{
			name: "ports without network",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[sandbox]\nbind_ports = [8080]\n",
			want: []string{`sandbox.network: ports are listed but network is "none"`},
		},
		{
			name: "bad port and relative path",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[sandbox]\nnetwork = \"host\"\nbind_ports = [0, 70000]\nread_only_paths = [\"etc\"]\n",
			want: []string{
				`/etc/osvm/web.toml:5: sandbox.bind_ports: port 0 is out of range 1-65535`,
				`/etc/osvm/web.toml:5: sandbox.bind_ports: port 70000 is out of range 1-65535`,
				`/etc/osvm/web.toml:6: sandbox.read_only_paths: "etc" is not an absolute path`,
			},
		},
		{
			name: "bad network",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[sandbox]\nnetwork = \"internet\"\n",
			want: []string{`/etc/osvm/web.toml:4: sandbox.network: invalid network "internet" (valid: "none", "loopback", "host")`},
		},
		{
			name: "keys differing in case",
			text: "Description = \"x\"\n[EXEC]\ncommand = [\"/bin/true\"]\n",
			want: []string{
				`/etc/osvm/web.toml:1: unknown key "Description" (did you mean "description"? keys are case-sensitive)`,
				`/etc/osvm/web.toml:2: unknown key "EXEC" (did you mean "exec"? keys are case-sensitive)`,
			},
		},
		{
			name: "array of tables for a table",
			text: "[[exec]]\ncommand = [\"/bin/true\"]\n",
			want: []string{`/etc/osvm/web.toml:1: exec: wrong type: got an array of tables, want a table`},
		},
		{
			name: "table for an environment value",
			text: "[exec]\ncommand = [\"/bin/true\"]\nenvironment.x.y = \"1\"\n",
			want: []string{`/etc/osvm/web.toml:3: exec.environment.x: wrong type: got a table, want a string`},
		},
		{
			name: "duplicate key",
			text: "description = \"a\"\ndescription = \"b\"\n",
			want: []string{`/etc/osvm/web.toml:2: duplicate key "description": each key may appear once`},
		},
		{
			name: "empty program path",
			text: "[exec]\ncommand = [\"\"]\n",
			want: []string{`/etc/osvm/web.toml:2: exec.command: the program path is empty`},
		},
		{
			name: "control character in description",
			text: "description = \"a\\u001b[31mred\"\n[exec]\ncommand = [\"/bin/true\"]\n",
			want: []string{`/etc/osvm/web.toml:1: description: must be one line of printable characters`},
		},
		{
			name: "too small CPU quota and task limit",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[resources]\ncpus = 0.00001\ntasks = 4\n",
			want: []string{
				`/etc/osvm/web.toml:4: resources.cpus: 1e-05 is out of range: give a number of CPUs from 0.01 to 1024`,
				`/etc/osvm/web.toml:5: resources.tasks: 4 is out of range 16-4194304`,
			},
		},
		{
			name: "unikernel with exec",
			text: "isolation = \"unikernel\"\n[exec]\ncommand = [\"/bin/true\"]\n[unikernel]\nimage = \"/img\"\n",
			want: []string{`/etc/osvm/web.toml:2: exec: a component that boots an image has no [exec] table`},
		},
		{
			name: "unikernel table without the level",
			text: "[exec]\ncommand = [\"/bin/true\"]\n[unikernel]\nimage = \"/img\"\n",
			want: []string{`/etc/osvm/web.toml:3: unikernel: [unikernel] needs isolation = "unikernel"`},
		},
		{
			name: "unikernel without image and bad mount",
			text: "isolation = \"unikernel\"\n[unikernel]\ncpus = 0\nmounts = [{ host = \"data\", guest = \"/data\" }]\n",
			want: []string{
				`/etc/osvm/web.toml:2: unikernel.image: missing`,
				`/etc/osvm/web.toml:3: unikernel.cpus: 0 is out of range 1-64`,
				`/etc/osvm/web.toml:4: unikernel.mounts: mount 1: host folder "data" is not an absolute path`,
			},
		},
		{
			name: "minimum above the level",
			text: "isolation = \"process\"\nmin_isolation = \"container\"\n[exec]\ncommand = [\"/bin/true\"]\n",
			want: []string{`/etc/osvm/web.toml:2: min_isolation: "container" is stronger than isolation = "process"`},
		},
		{
			name: "auto as minimum",
			text: "isolation = \"auto\"\nmin_isolation = \"auto\"\n[exec]\ncommand = [\"/bin/true\"]\n",
			want: []string{`/etc/osvm/web.toml:2: min_isolation: "auto" is not a level`},
		},
		{
			name: "relative rootfs",
			text: "isolation = \"container\"\n[container]\nrootfs = \"rootfs\"\n[exec]\ncommand = [\"/bin/sh\"]\n",
			want: []string{`/etc/osvm/web.toml:3: container.rootfs: "rootfs" is not an absolute path`},
		},
		{
			name: "host root as rootfs",
			text: "isolation = \"container\"\n[container]\nrootfs = \"/\"\n[exec]\ncommand = [\"/bin/sh\"]\n",
			want: []string{`/etc/osvm/web.toml:3: container.rootfs: "/" is the host's root: leave rootfs out`},
		},
		{
			name: "container table at level process",
			text: "isolation = \"process\"\n[container]\nrootfs = \"/srv/root\"\n[exec]\ncommand = [\"/bin/sh\"]\n",
			want: []string{`/etc/osvm/web.toml:2: container: [container] needs isolation = "container" or "auto"`},
		},
		{
			name: "rootfs with auto and no minimum",
			text: "isolation = \"auto\"\n[container]\nrootfs = \"/srv/root\"\n[exec]\ncommand = [\"/bin/sh\"]\n",
			want: []string{`/etc/osvm/web.toml:3: container.rootfs: a rootfs needs level "container"`},
		},
		{
			name: "container table with unikernel",
			text: "isolation = \"unikernel\"\n[unikernel]\nimage = \"/img\"\n[container]\nrootfs = \"/srv/root\"\n",
			want: []string{`/etc/osvm/web.toml:4: container: a component that boots an image has no [container] table`},
		},
		{
			name: "container mapped to root",
			text: "isolation = \"container\"\n[exec]\ncommand = [\"/bin/sh\"]\nuser = \"root\"\n",
			want: []string{`/etc/osvm/web.toml:4: exec.user: at isolation "container" the command runs as root inside the container`},
		},
		{
			name: "misspelled container key",
			text: "isolation = \"container\"\n[container]\nroot_fs = \"/srv/root\"\n[exec]\ncommand = [\"/bin/sh\"]\n",
			want: []string{`/etc/osvm/web.toml:3: unknown key "container.root_fs" (did you mean "rootfs"?)`},
		},
		{
			name: "rootfs of the wrong type",
			text: "isolation = \"container\"\n[container]\nrootfs = 1\n[exec]\ncommand = [\"/bin/sh\"]\n",
			want: []string{`/etc/osvm/web.toml:3: container.rootfs: wrong type: got an integer, want a string`},
		},
		{
			name: "reserved environment variable",
			text: "[exec]\ncommand = [\"/bin/true\"]\nenvironment = { OSVM_LAUNCH_CONTAINER_STAGE = \"exec\" }\n",
			want: []string{`exec.environment.OSVM_LAUNCH_CONTAINER_STAGE: variable names starting with OSVM_LAUNCH_ are reserved`},
		},
		{
			name: "user ID with leading zeros",
			text: "[exec]\ncommand = [\"/bin/true\"]\nuser = \"00\"\n",
			want: []string{`exec.user: invalid user name "00"`},
		},
		{
			name: "invalid file name",
			file: "/etc/osvm/Web_1.toml",
			text: "[exec]\ncommand = [\"/bin/true\"]\n",
			want: []string{`/etc/osvm/Web_1.toml: invalid component name "Web_1"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.file
			if path == "" {
				path = "/etc/osvm/web.toml"
			}
			_, err := Parse(path, []byte(tt.text))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error containing %q", tt.want)
			}
			got := err.Error() + "\n"
			rest := got
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error:\n%s\ndoes not contain, in order:\n%s", got, w)
				}
				rest = rest[i+len(w):]
			}
			for _, e := range Errors(err) {
				if e.File != path {
					t.Errorf("Error.File = %q, want %q", e.File, path)
				}
			}
		})
	}
}

func TestSizes(t *testing.T) {
	tests := []struct {
		text string
		want uint64
	}{
		{"64MiB", 64 << 20},
		{"1GiB", 1 << 30},
		{"1.5GiB", 3 << 29},
		{"512K", 512 << 10},
		{"2 G", 2 << 30},
		{"1048576", 1 << 20},
		{"0.5KiB", 512},
		{"4096B", 4096},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.text)
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.text, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1MiB", "1e400GiB", "1e3MiB", "0x1p30B", "1_000MiB", "+1MiB", "64MB", "sixty", "1.5"} {
		if got, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", bad, got)
		}
	}
}

func TestKeyLines(t *testing.T) {
	text := `description = "a = b" # comment with key = value
[exec]
command = [
  "/bin/sh",   # a ] bracket in a comment
  "-c", "x = [1",
]
environment = { A = "1" }
script = """
fake = 1
"""
"quoted.key" = 2
[ resources ]
memory = "1MiB"
[[more]]
x = 1
`
	want := map[string]int{
		"description":      1,
		"exec":             2,
		"exec.command":     3,
		"exec.environment": 7,
		"exec.script":      8,
		"exec.quoted.key":  11,
		"resources":        12,
		"resources.memory": 13,
		"more":             14,
		"more.x":           15,
	}
	got := keyLines(text)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keyLines =\n%v\nwant\n%v", got, want)
	}
	if n := lineOf(got, "exec.environment.A"); n != 7 {
		t.Errorf("lineOf(exec.environment.A) = %d, want 7 (the inline table's line)", n)
	}
}

func TestSuggestKey(t *testing.T) {
	tests := map[string]string{
		"exec.comand":        `did you mean "command"?`,
		"resources.cpu":      `did you mean "cpus"?`,
		"restart.polcy":      `did you mean "policy"?`,
		"isolaton":           `did you mean "isolation"?`,
		"exec.memory":        `did you mean "memory" in the [resources] table?`,
		"resources.user":     `did you mean "user" in the [exec] table?`,
		"resources.isolaton": `did you mean "isolation" at the top level, before any table?`,
		"restart.dealy":      `did you mean "delay"?`,
		"restart.brust":      `did you mean "burst"?`,
		"exec.workdir":       `did you mean "working_directory"?`,
		"exec.working_dir":   `did you mean "working_directory"?`,
		"exec.frobnicate":    "",
	}
	for key, want := range tests {
		if got := suggestKey(key); got != want {
			t.Errorf("suggestKey(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestLoadExamples(t *testing.T) {
	paths, err := filepath.Glob("../../examples/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no examples found in ../../examples")
	}
	for _, path := range paths {
		if _, err := Load(path); err != nil {
			t.Errorf("example %s: %v", path, err)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "gone.toml"))
	if !os.IsNotExist(err) {
		t.Errorf("Load of a missing file: %v, want a not-exist error", err)
	}
}

func TestIsComponentFile(t *testing.T) {
	for name, want := range map[string]bool{
		"web.toml": true, "Web.toml": true, ".web.toml.swp": false, ".web.toml": false,
		"web.toml~": false, "4913": false, "web.toml.dpkg-new": false,
	} {
		if got := IsComponentFile(name); got != want {
			t.Errorf("IsComponentFile(%q) = %v, want %v", name, got, want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	data := []byte(fullFile)
	for b.Loop() {
		if _, err := Parse("/etc/osvm/web.toml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestValidName(t *testing.T) {
	// The form as a regular expression, which ValidName must agree with.
	pattern := regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	for _, name := range []string{
		"web", "my-app", "a", "0", "9lives", "web-", "a--b",
		"", "-web", "Web", "my_app", "my.app", "web\n", "wéb", "web app", "-",
	} {
		want := pattern.MatchString(name)
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}
