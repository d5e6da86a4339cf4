package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenInRoot(t *testing.T) {
	root := t.TempDir()
	for _, dir := range []string{"a/b", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"abs":      "/a",                 // absolute: starts again at root
		"up":       "../../../../../etc", // ".." stops at root
		"loop":     "loop",
		"relative": "a/b",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootFD)

	tests := []struct {
		path       string
		noSymlinks bool
		want       string // folder under root, or "" for an error
		wantErr    error
	}{
		{"/a/b", false, "a/b", nil},
		{"a/./b/", false, "a/b", nil},
		{"/", false, ".", nil},
		{"/abs/b", false, "a/b", nil},
		{"/up", false, "etc", nil},
		{"/a/../../../etc", false, "etc", nil},
		{"/relative", false, "a/b", nil},
		{"/abs/b", true, "", unix.ELOOP},
		{"/a/b", true, "a/b", nil},
		{"/loop", false, "", unix.ELOOP},
		{"/missing", false, "", unix.ENOENT},
		{"/a/b/missing", false, "", unix.ENOENT},
	}
	for _, tt := range tests {
		fd, err := openInRoot(rootFD, tt.path, tt.noSymlinks)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("openInRoot(%q, noSymlinks=%v) = %v, want %v", tt.path, tt.noSymlinks, err, tt.wantErr)
			}
			if err == nil {
				unix.Close(fd)
			}
			continue
		}
		if err != nil {
			t.Errorf("openInRoot(%q, noSymlinks=%v): %v", tt.path, tt.noSymlinks, err)
			continue
		}
		var got, want unix.Stat_t
		unix.Fstat(fd, &got)
		unix.Close(fd)
		if err := unix.Stat(filepath.Join(root, tt.want), &want); err != nil {
			t.Fatal(err)
		}
		if got.Ino != want.Ino || got.Dev != want.Dev {
			t.Errorf("openInRoot(%q, noSymlinks=%v) opened another file than %s", tt.path, tt.noSymlinks, tt.want)
		}
	}
}

func TestWithStage(t *testing.T) {
	env := withStage([]string{"A=1", containerStage + "=init", "B=2"}, stageExec)
	want := []string{"A=1", "B=2", containerStage + "=" + stageExec}
	if len(env) != len(want) {
		t.Fatalf("withStage = %q, want %q", env, want)
	}
	for i := range want {
		if env[i] != want[i] {
			t.Errorf("withStage = %q, want %q", env, want)
			break
		}
	}
}

// In the initial user namespace, the stages that mount refuse to run.
func TestNotInContainerNamespace(t *testing.T) {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		t.Fatal(err)
	}
	if fields := strings.Fields(string(data)); len(fields) != 3 || fields[2] != "4294967295" {
		t.Skipf("the test runs in a user namespace of its own:\n%s", data)
	}
	if inContainerNamespace() {
		t.Error("inContainerNamespace is true in the initial user namespace")
	}
}
