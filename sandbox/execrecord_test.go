package sandbox

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"slices"
	"testing"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
)

// recordPlan returns a plan at level "process" for /usr/bin/web with a
// recorded startup and a seccomp program of one instruction.
func recordPlan(t *testing.T, sb config.Sandbox) *plan.Plan {
	t.Helper()
	c := &config.Component{Name: "web", Exec: config.Exec{Command: []string{"/usr/bin/web", "--port", "8080"}}, Sandbox: sb}
	p, err := plan.New(c, config.IsolationProcess, "/etc/osvm/web.toml")
	if err != nil {
		t.Fatal(err)
	}
	p.Startup = &plan.Startup{
		Paths: map[string]string{"/usr/bin/web": "read+exec", "/usr/lib": "read+exec", "/dev/null": "read+write"},
		Files: map[string]string{"/usr/bin/web": "1:2:100755:10:3:4"},
	}
	p.SeccompProgram = make([]byte, 8)
	return p
}

// fakeDirs reports the paths in dirs as folders, those in files as other
// files, and any other path as missing.
func fakeDirs(dirs, files []string) func(string) (bool, error) {
	return func(path string) (bool, error) {
		switch {
		case slices.Contains(dirs, path):
			return true, nil
		case slices.Contains(files, path):
			return false, nil
		}
		return false, &fs.PathError{Op: "stat", Path: path, Err: fs.ErrNotExist}
	}
}

var webPaths = fakeDirs([]string{"/usr/lib", "/var/lib/web"}, []string{"/usr/bin/web", "/dev/null"})

func TestNewExecRecordRules(t *testing.T) {
	p := recordPlan(t, config.Sandbox{
		ReadWritePaths: []string{"/var/lib/web"},
		BindPorts:      []uint16{8080},
		ConnectPorts:   []uint16{5432},
		Capabilities:   []string{"CAP_NET_BIND_SERVICE"},
	})
	r, err := NewExecRecord(p, KernelLandlock{Reported: 6, ABI: 6}, webPaths)
	if err != nil || r == nil {
		t.Fatalf("NewExecRecord = %v, %v", r, err)
	}

	cfg := abiConfig(6)
	if r.LandlockABI != 6 || r.HandledFS != uint64(cfg.HandledAccessFS) || r.HandledNet != uint64(cfg.HandledAccessNet) || r.Scoped != uint64(cfg.Scoped) {
		t.Errorf("ABI %d, handled %#x/%#x/%#x; want go-landlock's V6 %#x/%#x/%#x", r.LandlockABI, r.HandledFS, r.HandledNet, r.Scoped,
			uint64(cfg.HandledAccessFS), uint64(cfg.HandledAccessNet), uint64(cfg.Scoped))
	}
	if r.Scoped == 0 || r.HandledNet == 0 {
		t.Error("ABI 6 record does not restrict scopes or TCP")
	}

	want := []ExecRule{
		{Kind: RuleFile, Path: "/dev/null", Allowed: uint64(fsRights(AccessRead|AccessWrite, false, 6))},
		{Kind: RuleFile, Path: "/usr/bin/web", Allowed: uint64(fsRights(AccessRead|AccessExec, false, 6))},
		{Kind: RuleDir, Path: "/usr/lib", Allowed: uint64(fsRights(AccessRead|AccessExec, true, 6))},
		{Kind: RuleDir, Path: "/var/lib/web", Allowed: uint64(fsRights(AccessRead|AccessWrite, true, 6))},
		{Kind: RulePort, Port: 8080, Allowed: ll.AccessNetBindTCP},
		{Kind: RulePort, Port: 5432, Allowed: ll.AccessNetConnectTCP},
	}
	if !slices.Equal(r.Rules, want) {
		t.Errorf("Rules =\n%v\nwant\n%v", r.Rules, want)
	}
	// A file gets no folder rights, or landlock_add_rule(2) fails.
	if r.Rules[0].Allowed&(ll.AccessFSReadDir|ll.AccessFSMakeReg|ll.AccessFSRemoveFile) != 0 {
		t.Errorf("/dev/null gets folder rights %#x", r.Rules[0].Allowed)
	}
	if r.Rules[3].Allowed&ll.AccessFSMakeReg == 0 {
		t.Errorf("/var/lib/web lacks the right to create files: %#x", r.Rules[3].Allowed)
	}

	if r.KeepCapabilities != 1<<10 {
		t.Errorf("KeepCapabilities = %#x, want CAP_NET_BIND_SERVICE (1<<10)", r.KeepCapabilities)
	}
	if !slices.Equal(r.Argv, p.Component.Exec.Command) || r.Component != "web" || r.Source != "/etc/osvm/web.toml" {
		t.Errorf("Argv %q, Component %q, Source %q", r.Argv, r.Component, r.Source)
	}
	if !slices.Equal(r.ControlSockets, ControlSockets) {
		t.Errorf("ControlSockets = %q, want %q", r.ControlSockets, ControlSockets)
	}
}

func TestNewExecRecordCapsABI(t *testing.T) {
	r, err := NewExecRecord(recordPlan(t, config.Sandbox{}), KernelLandlock{Reported: maxKnownABI + 3, ABI: maxKnownABI + 3}, webPaths)
	if err != nil || r == nil {
		t.Fatalf("NewExecRecord = %v, %v", r, err)
	}
	if r.LandlockABI != maxKnownABI || r.KernelABI != maxKnownABI+3 {
		t.Errorf("LandlockABI = %d, KernelABI = %d on a kernel with ABI %d; want %d, the newest this package knows, and the kernel's", r.LandlockABI, r.KernelABI, maxKnownABI+3, maxKnownABI)
	}
}

// TestNewExecRecordLeavesToLauncher lists the plans osvm-launch must run
// itself.
func TestNewExecRecordLeavesToLauncher(t *testing.T) {
	tests := []struct {
		name   string
		abi    int
		change func(p *plan.Plan)
	}{
		{"level none", 7, func(p *plan.Plan) { p.Level = config.IsolationNone }},
		{"level container", 7, func(p *plan.Plan) { p.Level = config.IsolationContainer }},
		{"no recorded startup", 7, func(p *plan.Plan) { p.Startup = nil }},
		{"no seccomp program", 7, func(p *plan.Plan) { p.SeccompProgram = nil }},
		{"best-effort Landlock", 7, func(p *plan.Plan) { p.Component.Sandbox.Landlock = config.LandlockBestEffort }},
		{"kernel ABI below the network rules", 3, func(p *plan.Plan) {}},
		{"kernel ABI below the component's minimum", 7, func(p *plan.Plan) { p.Component.Sandbox.LandlockMinABI = 99 }},
		{"no Landlock", 0, func(p *plan.Plan) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := recordPlan(t, config.Sandbox{})
			tt.change(p)
			r, err := NewExecRecord(p, KernelLandlock{Reported: tt.abi, ABI: tt.abi}, webPaths)
			if err != nil || r != nil {
				t.Errorf("NewExecRecord = %+v, %v; want no record and no error", r, err)
			}
		})
	}
}

func TestNewExecRecordMissingPath(t *testing.T) {
	p := recordPlan(t, config.Sandbox{ReadOnlyPaths: []string{"/srv/missing"}})
	_, err := NewExecRecord(p, KernelLandlock{Reported: 7, ABI: 7}, webPaths)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NewExecRecord with a missing path: %v, want fs.ErrNotExist", err)
	}
}

func TestExecRecordMarshalBinary(t *testing.T) {
	r := &ExecRecord{
		Component:      "web",
		Source:         "",
		KernelABI:      7,
		LandlockABI:    6,
		HandledFS:      0xffff,
		Rules:          []ExecRule{{Kind: RuleDir, Path: "/srv", Allowed: 1}, {Kind: RulePort, Port: 80, Allowed: 1}},
		StartupFiles:   map[string]string{"/b": "2", "/a": ""},
		Argv:           []string{"/bin/web", ""},
		SeccompProgram: []byte{1, 2, 3, 4, 5, 6, 7, 8},
	}
	data, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}

	var want []byte
	want = append(want, "OSVMEX02"...)
	want = appendString(want, "web")
	want = appendString(want, "")
	want = binary.LittleEndian.AppendUint32(want, 7)
	want = binary.LittleEndian.AppendUint32(want, 6)
	want = binary.LittleEndian.AppendUint64(want, 0xffff)
	want = binary.LittleEndian.AppendUint64(want, 0)
	want = binary.LittleEndian.AppendUint64(want, 0)
	want = binary.LittleEndian.AppendUint32(want, 2)
	want = append(want, byte(RuleDir))
	want = binary.LittleEndian.AppendUint64(want, 1)
	want = appendString(want, "/srv")
	want = append(want, byte(RulePort))
	want = binary.LittleEndian.AppendUint64(want, 1)
	want = binary.LittleEndian.AppendUint64(want, 80)
	want = binary.LittleEndian.AppendUint64(want, 0) // capabilities
	want = binary.LittleEndian.AppendUint32(want, 2) // startup files, sorted
	want = appendString(want, "/a")
	want = appendString(want, "")
	want = appendString(want, "/b")
	want = appendString(want, "2")
	want = binary.LittleEndian.AppendUint32(want, 0) // control sockets
	want = binary.LittleEndian.AppendUint32(want, 2)
	want = appendString(want, "/bin/web")
	want = appendString(want, "")
	want = binary.LittleEndian.AppendUint32(want, 8)
	want = append(want, 1, 2, 3, 4, 5, 6, 7, 8)
	if !slices.Equal(data, want) {
		t.Errorf("MarshalBinary =\n% x\nwant\n% x", data, want)
	}
}
