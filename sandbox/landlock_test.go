package sandbox

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/osvm-project/osvm/internal/config"
)

func TestBuildPolicy(t *testing.T) {
	sb := &config.Sandbox{
		ReadOnlyPaths:  []string{"/srv/www", "/usr/lib/python3"},
		ReadWritePaths: []string{"/var/lib/web"},
		ExecPaths:      []string{"/usr/bin/python3", "/srv/www"},
		Network:        config.NetworkLoopback,
		BindPorts:      []uint16{8080},
		ConnectPorts:   []uint16{5432},
		Syscalls:       config.SyscallsDefault,
		Landlock:       config.LandlockRequired,
	}
	startup := []PathRule{{Path: "/usr/bin/python3", Access: AccessRead | AccessExec}, {Path: "/dev/null", Access: AccessRead | AccessWrite}}
	p, err := Build(sb, startup)
	if err != nil {
		t.Fatal(err)
	}
	wantPaths := []PathRule{
		{"/dev/null", AccessRead | AccessWrite},
		{"/srv/www", AccessRead | AccessExec},
		{"/usr/bin/python3", AccessRead | AccessExec},
		{"/usr/lib/python3", AccessRead},
		{"/var/lib/web", AccessRead | AccessWrite},
	}
	if !reflect.DeepEqual(p.Landlock.Paths, wantPaths) {
		t.Errorf("Paths =\n%v\nwant\n%v", p.Landlock.Paths, wantPaths)
	}
	if !p.Landlock.Required || p.Landlock.MinABI != ABINetwork || !p.Landlock.Scoped {
		t.Errorf("Required=%v MinABI=%d Scoped=%v, want true, %d, true", p.Landlock.Required, p.Landlock.MinABI, p.Landlock.Scoped, ABINetwork)
	}
	if !reflect.DeepEqual(p.Landlock.BindTCP, []uint16{8080}) || !reflect.DeepEqual(p.Landlock.ConnectTCP, []uint16{5432}) {
		t.Errorf("BindTCP=%v ConnectTCP=%v", p.Landlock.BindTCP, p.Landlock.ConnectTCP)
	}
}

func TestCheckABI(t *testing.T) {
	p := LandlockPolicy{Required: true, MinABI: 8}
	err := p.CheckABI(7)
	var abiErr *ABIError
	if !errors.As(err, &abiErr) || abiErr.Need != 8 || abiErr.Have != 7 {
		t.Fatalf("CheckABI(7) = %v, want an ABIError naming 8 and 7", err)
	}
	if !strings.Contains(err.Error(), "Landlock ABI is 7") || !strings.Contains(err.Error(), "needs ABI 8") {
		t.Errorf("message %q does not name both ABIs", err)
	}
	if err := (&LandlockPolicy{Required: true, MinABI: 4}).CheckABI(0); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Errorf("CheckABI(0) = %v, want Landlock not available", err)
	}
	if err := (&LandlockPolicy{Required: false, MinABI: 8}).CheckABI(1); err != nil {
		t.Errorf("best effort CheckABI = %v, want nil", err)
	}
}

func TestStartupPaths(t *testing.T) {
	rules, err := StartupPaths("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Access{}
	for _, r := range rules {
		got[r.Path] |= r.Access
	}
	if got["/bin/sh"] != AccessRead|AccessExec {
		t.Errorf("/bin/sh access = %v, want read+exec", got["/bin/sh"])
	}
	if got["/dev/null"] != AccessRead|AccessWrite {
		t.Errorf("/dev/null access = %v, want read+write", got["/dev/null"])
	}
	var libc bool
	for path, access := range got {
		if _, err := os.Stat(path + "/libc.so.6"); err == nil && access == AccessRead|AccessExec {
			libc = true
		}
	}
	if !libc {
		t.Errorf("no rule covers the folder of libc.so.6: %v", got)
	}
}

func TestStartupPathsScript(t *testing.T) {
	script := t.TempDir() + "/script"
	if err := os.WriteFile(script, []byte("#!/bin/sh -e\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rules, err := StartupPaths(script)
	if err != nil {
		t.Fatal(err)
	}
	var sawScript, sawShell bool
	for _, r := range rules {
		sawScript = sawScript || r.Path == script
		sawShell = sawShell || r.Path == "/bin/sh"
	}
	if !sawScript || !sawShell {
		t.Errorf("rules %v lack the script or its interpreter", rules)
	}

	bad := t.TempDir() + "/bad"
	os.WriteFile(bad, []byte("#!sh\n"), 0o755)
	if _, err := StartupPaths(bad); err == nil {
		t.Error("a relative interpreter was accepted")
	}
}

func TestFSRights(t *testing.T) {
	if r := fsRights(AccessRead, false, 7); r.String() != "{read_file}" {
		t.Errorf("read on a file = %v", r)
	}
	dirRW := fsRights(AccessRead|AccessWrite, true, 7)
	for _, want := range []string{"read_dir", "write_file", "remove_file", "make_reg", "refer", "truncate"} {
		if !strings.Contains(dirRW.String(), want) {
			t.Errorf("read+write on a folder = %v, lacks %s", dirRW, want)
		}
	}
	for _, never := range []string{"execute", "make_char", "make_block", "ioctl_dev"} {
		if strings.Contains(dirRW.String(), never) {
			t.Errorf("read+write on a folder = %v, includes %s", dirRW, never)
		}
	}
	if v1 := fsRights(AccessRead|AccessWrite, true, 1); strings.Contains(v1.String(), "refer") || strings.Contains(v1.String(), "truncate") {
		t.Errorf("ABI 1 rights %v include later rights", v1)
	}
}
