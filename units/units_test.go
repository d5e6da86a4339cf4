package units

import (
	"reflect"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
)

const (
	testLauncher = "/usr/libexec/osvm/osvm-launch"
	testPlanPath = "/run/osvm/components/web-0123456789abcdef.json"
)

func newUnit(t *testing.T, text string) (Unit, map[string]dbus.Variant) {
	t.Helper()
	return newUnitAt(t, text, "")
}

// newUnitAt returns the unit of a component file run at level, or at the
// file's own isolation when level is empty.
func newUnitAt(t *testing.T, text string, level config.Isolation) (Unit, map[string]dbus.Variant) {
	t.Helper()
	c, err := config.Parse("/etc/osvm/web.toml", []byte(text))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	if level == "" {
		level = c.Isolation
	}
	p, err := plan.New(c, level, "/etc/osvm/web.toml")
	if err != nil {
		t.Fatal(err)
	}
	u := New(p, testPlanPath, testLauncher)
	props := map[string]dbus.Variant{}
	for _, prop := range u.Properties {
		if _, dup := props[prop.Name]; dup && prop.Name != "SystemCallFilter" {
			t.Errorf("property %s set twice", prop.Name)
		}
		props[prop.Name] = prop.Value
	}
	return u, props
}

func TestUnitProperties(t *testing.T) {
	u, props := newUnit(t, `
description = "Web"
isolation = "none"
[exec]
command = ["/usr/bin/python3", "-m", "http.server"]
environment = { B = "2", A = "1" }
working_directory = "/srv"
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
`)
	if u.Name != "osvm-web.service" {
		t.Errorf("Name = %q, want osvm-web.service", u.Name)
	}
	want := map[string]any{
		"Description":            "Web",
		"Slice":                  "osvm.slice",
		"Type":                   "exec",
		"SyslogIdentifier":       "web",
		"Environment":            []string{"A=1", "B=2"},
		"WorkingDirectory":       "/srv",
		"User":                   "www-data",
		"MemoryMax":              uint64(64 << 20),
		"CPUQuotaPerSecUSec":     uint64(500000),
		"TasksMax":               uint64(32),
		"IOWeight":               uint64(200),
		"Restart":                "always",
		"RestartUSec":            uint64(2000000),
		"StartLimitBurst":        uint32(3),
		"StartLimitIntervalUSec": uint64(60000000),
	}
	for name, value := range want {
		got, ok := props[name]
		if !ok {
			t.Errorf("property %s missing", name)
			continue
		}
		if !reflect.DeepEqual(got.Value(), value) {
			t.Errorf("%s = %#v (%s), want %#v", name, got.Value(), got.Signature(), value)
		}
	}
	for _, absent := range []string{"DynamicUser", "NoNewPrivileges", "ProtectSystem"} {
		if _, ok := props[absent]; ok {
			t.Errorf("property %s set for isolation none with a user", absent)
		}
	}

	// ExecStart is a(sasb): path, argv, and whether an unclean exit fails.
	if sig := props["ExecStart"].Signature().String(); sig != "a(sasb)" {
		t.Fatalf("ExecStart has D-Bus type %s, want a(sasb)", sig)
	}
	commands := reflect.ValueOf(props["ExecStart"].Value())
	if commands.Len() != 1 {
		t.Fatalf("ExecStart has %d commands, want 1", commands.Len())
	}
	command := commands.Index(0)
	if path := command.Field(0).String(); path != testLauncher {
		t.Errorf("ExecStart path = %q, want %q", path, testLauncher)
	}
	if argv := command.Field(1).Interface(); !reflect.DeepEqual(argv, []string{testLauncher, testPlanPath}) {
		t.Errorf("ExecStart argv = %q, want %q", argv, []string{testLauncher, testPlanPath})
	}
	if ignoreFailure := command.Field(2).Bool(); ignoreFailure {
		t.Error("ExecStart has systemd's ignore-failure flag set: failures would count as success")
	}
}

func TestDynamicUserWithoutUser(t *testing.T) {
	_, props := newUnit(t, `exec.command = ["/bin/true"]`)
	if v, ok := props["DynamicUser"]; !ok || v.Value() != true {
		t.Errorf("DynamicUser = %v, want true when no user is set", v)
	}
	if _, ok := props["User"]; ok {
		t.Error("User set although the component names none")
	}
	if v := props["Description"].Value(); v != "osvm component web" {
		t.Errorf("Description = %v, want the default", v)
	}
}

func TestProcessHardening(t *testing.T) {
	_, props := newUnit(t, `isolation = "process"
exec.command = ["/bin/true"]`)
	want := map[string]any{
		"NoNewPrivileges":         true,
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              true,
		"PrivateDevices":          true,
		"ProtectKernelTunables":   true,
		"ProtectKernelModules":    true,
		"ProtectKernelLogs":       true,
		"ProtectControlGroups":    true,
		"RestrictNamespaces":      uint64(0),
		"RestrictSUIDSGID":        true,
		"LockPersonality":         true,
		"SystemCallArchitectures": []string{"native"},
		"InaccessiblePaths":       []string{"-/run/dbus", "-/run/systemd/private"},
	}
	for name, value := range want {
		got, ok := props[name]
		if !ok {
			t.Errorf("property %s missing", name)
			continue
		}
		if !reflect.DeepEqual(got.Value(), value) {
			t.Errorf("%s = %#v, want %#v", name, got.Value(), value)
		}
	}
}

func TestNoLimitsByDefault(t *testing.T) {
	_, props := newUnit(t, `exec.command = ["/bin/true"]`)
	for _, name := range []string{"MemoryMax", "CPUQuotaPerSecUSec", "TasksMax", "IOWeight", "Environment", "WorkingDirectory"} {
		if _, ok := props[name]; ok {
			t.Errorf("property %s set although the file does not set it", name)
		}
	}
}

func TestComponentName(t *testing.T) {
	tests := []struct {
		unit, name string
		ok         bool
	}{
		{"osvm-web.service", "web", true},
		{"osvm-my-app.service", "my-app", true},
		{"osvm.slice", "", false},
		{"osvm-web.scope", "", false},
		{"osvm-Web.service", "", false},
		{"sshd.service", "", false},
	}
	for _, tt := range tests {
		name, ok := ComponentName(tt.unit)
		if name != tt.name || ok != tt.ok {
			t.Errorf("ComponentName(%q) = %q, %v; want %q, %v", tt.unit, name, ok, tt.name, tt.ok)
		}
	}
	if got := Name("web"); got != "osvm-web.service" {
		t.Errorf("Name(web) = %q", got)
	}
}

func BenchmarkNew(b *testing.B) {
	c, err := config.Parse("/etc/osvm/web.toml", []byte("[exec]\ncommand = [\"/bin/true\"]\nenvironment = { A = \"1\" }\n[resources]\nmemory = \"64MiB\"\n"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := plan.New(c, c.Isolation, "/etc/osvm/web.toml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		New(p, testPlanPath, testLauncher)
	}
}

func TestUnikernelProperties(t *testing.T) {
	_, props := newUnit(t, `isolation = "unikernel"
[unikernel]
image = "/var/lib/osvm/images/hello"
`)
	if _, ok := props["PrivateDevices"]; ok {
		t.Error("PrivateDevices set: it would hide /dev/kvm")
	}
	if got := props["DevicePolicy"].Value(); got != "closed" {
		t.Errorf("DevicePolicy = %v, want closed", got)
	}
	if got := props["DeviceAllow"].Value(); !reflect.DeepEqual(got, []deviceAllow{{"/dev/kvm", "rw"}}) {
		t.Errorf("DeviceAllow = %#v, want /dev/kvm rw", got)
	}
	for _, name := range []string{"NoNewPrivileges", "ProtectSystem", "PrivateNetwork", "CapabilityBoundingSet", "MemoryMax"} {
		if _, ok := props[name]; !ok {
			t.Errorf("property %s missing", name)
		}
	}
	if got := props["MemoryMax"].Value(); got != uint64(64<<20+MonitorMemory) {
		t.Errorf("MemoryMax = %v, want the default guest memory plus MonitorMemory", got)
	}
	if got := props["Environment"].Value(); !reflect.DeepEqual(got, []string{"GOMAXPROCS=1"}) {
		t.Errorf("Environment = %#v, want GOMAXPROCS=1 for one vCPU", got)
	}

	_, props = newUnit(t, "isolation = \"unikernel\"\n[unikernel]\nimage = \"/var/lib/osvm/images/hello\"\ncpus = 4\n")
	if got := props["Environment"].Value(); !reflect.DeepEqual(got, []string{"GOMAXPROCS=4"}) {
		t.Errorf("with 4 vCPUs: Environment = %#v, want GOMAXPROCS=4", got)
	}
}

func TestContainerProperties(t *testing.T) {
	const file = `isolation = "container"
[container]
rootfs = "/var/lib/osvm/rootfs/web"
[exec]
command = ["/bin/sh"]
working_directory = "/srv"
[sandbox]
read_write_paths = ["/var/cache"]
capabilities = ["CAP_NET_BIND_SERVICE"]
deny_syscalls = ["mount"]
`
	_, props := newUnitAt(t, file, "")

	want := map[string]any{
		"NoNewPrivileges":       true,
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"PrivateTmp":            true,
		"PrivateDevices":        true,
		"ProtectKernelTunables": true,
		"ProtectKernelLogs":     true,
		"ProtectControlGroups":  true,
		"ProtectProc":           "invisible",
		"ProcSubset":            "pid",
		"PrivateIPC":            true,
		"PrivateNetwork":        true,
		"DynamicUser":           true,
		"CapabilityBoundingSet": uint64(0),
		"AmbientCapabilities":   uint64(0),
		"InaccessiblePaths":     []string{"-/run/dbus", "-/run/systemd/private"},
		"ReadWritePaths":        []string{"-/var/lib/osvm/rootfs/web/var/cache"},
	}
	for name, value := range want {
		got, ok := props[name]
		if !ok {
			t.Errorf("property %s missing", name)
			continue
		}
		if !reflect.DeepEqual(got.Value(), value) {
			t.Errorf("%s = %#v, want %#v", name, got.Value(), value)
		}
	}

	// These forbid or break the launcher's user namespace; the working
	// directory is a path inside the container.
	for _, absent := range []string{"RestrictNamespaces", "PrivateUsers", "ProtectHostname", "WorkingDirectory", "RootDirectory", "User"} {
		if _, ok := props[absent]; ok {
			t.Errorf("property %s set at level container", absent)
		}
	}
}

func TestContainerSyscallFilterOrder(t *testing.T) {
	u, _ := newUnitAt(t, "isolation = \"container\"\nexec.command = [\"/bin/sh\"]\nsandbox.deny_syscalls = [\"mount\"]\n", "")
	var filters []syscallFilter
	for _, prop := range u.Properties {
		if prop.Name == "SystemCallFilter" {
			filters = append(filters, prop.Value.Value().(syscallFilter))
		}
	}
	if len(filters) == 0 {
		t.Fatal("no SystemCallFilter")
	}
	// systemd applies the entries in order: the launcher's calls come
	// last, after the component's deny_syscalls.
	last := filters[len(filters)-1]
	if !last.AllowList || !reflect.DeepEqual(last.Names, containerSyscalls) {
		t.Errorf("last SystemCallFilter = %+v, want the allow list %v", last, containerSyscalls)
	}
	var denied bool
	for _, f := range filters[:len(filters)-1] {
		if !f.AllowList && reflect.DeepEqual(f.Names, []string{"mount"}) {
			denied = true
		}
	}
	if !denied {
		t.Errorf("deny_syscalls missing from %+v", filters)
	}
}

func TestContainerUsers(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		user      string // "" for a dynamic user
		readWrite []string
	}{
		{"named user", "isolation = \"container\"\n[exec]\ncommand = [\"/bin/sh\"]\nuser = \"www-data\"\n", "www-data", nil},
		{"dynamic user", "isolation = \"container\"\n[exec]\ncommand = [\"/bin/sh\"]\n", "", nil},
		// "auto" may name root, for the levels where root means the host's root.
		{"root under auto", "isolation = \"auto\"\n[exec]\ncommand = [\"/bin/sh\"]\nuser = \"root\"\n", "", nil},
		{"uid 0 under auto", "isolation = \"auto\"\n[exec]\ncommand = [\"/bin/sh\"]\nuser = \"0\"\n", "", nil},
		{"host root paths", "isolation = \"container\"\n[exec]\ncommand = [\"/bin/sh\"]\n[sandbox]\nread_write_paths = [\"/var/lib/x\"]\n", "", []string{"-/var/lib/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, props := newUnitAt(t, tt.file, config.IsolationContainer)
			if tt.user == "" {
				if v, ok := props["DynamicUser"]; !ok || v.Value() != true {
					t.Errorf("DynamicUser = %v, want true", v)
				}
				if v, ok := props["User"]; ok {
					t.Errorf("User = %v, want none", v)
				}
			} else if v := props["User"]; v.Value() != tt.user {
				t.Errorf("User = %v, want %s", v, tt.user)
			}
			if tt.readWrite != nil {
				if got := props["ReadWritePaths"].Value(); !reflect.DeepEqual(got, tt.readWrite) {
					t.Errorf("ReadWritePaths = %v, want %v", got, tt.readWrite)
				}
			}
		})
	}
}

func TestContainerDropIn(t *testing.T) {
	c, err := config.Parse("/etc/osvm/web.toml", []byte("isolation = \"container\"\nexec.command = [\"/bin/sh\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.New(c, config.IsolationContainer, "/etc/osvm/web.toml")
	if err != nil {
		t.Fatal(err)
	}
	// The drop-in repeats RestrictNamespaces=yes, which would forbid the
	// container's user namespace.
	if got := DropIn(p); got != "" {
		t.Errorf("DropIn = %q, want none at level container", got)
	}
}

func TestContainerTasksMax(t *testing.T) {
	_, props := newUnitAt(t, "isolation = \"container\"\nexec.command = [\"/bin/sh\"]\nresources.tasks = 32\n", "")
	if got := props["TasksMax"].Value(); got != uint64(32+ContainerLauncherTasks) {
		t.Errorf("TasksMax = %v, want the component's 32 plus ContainerLauncherTasks", got)
	}
	_, props = newUnitAt(t, "isolation = \"container\"\nexec.command = [\"/bin/sh\"]\n", "")
	if _, ok := props["TasksMax"]; ok {
		t.Error("TasksMax set although the component sets no limit")
	}
}

// TestPrivateUsersOnlyWithoutCapabilities checks that a component that
// keeps capabilities runs in the host's user namespace, where they act on
// the host's resources.
func TestPrivateUsersOnlyWithoutCapabilities(t *testing.T) {
	_, props := newUnit(t, "isolation = \"process\"\nexec.command = [\"/bin/true\"]\n")
	if got, ok := props["PrivateUsers"]; !ok || got.Value() != true {
		t.Errorf("without capabilities: PrivateUsers = %v, want true", got)
	}

	_, props = newUnit(t, "isolation = \"process\"\nexec.command = [\"/bin/true\"]\n[sandbox]\ncapabilities = [\"CAP_NET_BIND_SERVICE\"]\n")
	if got, ok := props["PrivateUsers"]; ok {
		t.Errorf("with capabilities: PrivateUsers = %v, want it unset", got)
	}
	if got := props["AmbientCapabilities"].Value(); got != uint64(1<<10) {
		t.Errorf("with capabilities: AmbientCapabilities = %#v, want CAP_NET_BIND_SERVICE (1<<10)", got)
	}
}
