//go:build amd64

package hermit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/osvm-project/osvm/internal/testenv"
	"github.com/osvm-project/osvm/internal/testguest"
)

func TestBootFileRunsGuest(t *testing.T) {
	testenv.MustHaveKVM(t)
	testenv.MustHaveExecPath(t, "gcc")
	kernel, err := testguest.Build(t.TempDir(), guestVariant{Interface: 1})
	if err != nil {
		t.Fatal(err)
	}

	// The test kernel reads input.txt from /data and checks that /ro is
	// read-only.
	data, ro := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "input.txt"), []byte("input file content\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var stdout strings.Builder
	m, err := BootFile(kernel, Config{
		Memory: 32 << 20,
		Args:   []string{"exit=42"},
		Mounts: map[string]Mount{"/data": {Dir: data, Writable: true}, "/ro": {Dir: ro}},
		Stdout: &stdout,
	})
	if err != nil {
		t.Fatalf("BootFile: %v", err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, err := m.Run(ctx)
	if err != nil || code != 42 {
		t.Fatalf("Run = %d, %v; want 42, nil\nstdout:\n%s", code, err, stdout.String())
	}
	if !strings.Contains(stdout.String(), "hello from the test kernel, uhyve interface 1\n") {
		t.Errorf("stdout lacks the kernel's greeting:\n%s", stdout.String())
	}
}

func TestBootFileRejects(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	kernel := filepath.Join(dir, "kernel")
	if err := os.WriteFile(kernel, testKernel(kernelOptions{}), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		path string
		cfg  Config
		want string // a part of the error message
	}{
		{"missing file", filepath.Join(dir, "missing"), Config{}, "no such file or directory"},
		{"directory", dir, Config{}, "is not a regular file"},
		{"empty file", empty, Config{}, empty + ": hermit: kernel image rejected"},
		{"not an ELF file", garbage, Config{}, garbage + ": hermit: kernel image rejected"},
		{"invalid configuration", kernel, Config{Memory: 5 << 19}, "boot " + kernel + ": "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := BootFile(tt.path, tt.cfg)
			if err == nil {
				m.Close()
				t.Fatalf("BootFile(%s) succeeded, want an error", tt.path)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("BootFile(%s) error = %q, want it to contain %q", tt.path, err, tt.want)
			}
		})
	}

	var imageErr *ImageError
	if _, err := BootFile(garbage, Config{}); !errors.As(err, &imageErr) {
		t.Errorf("BootFile of a non-ELF file returned %v (%T), want an *ImageError", err, err)
	}
}

func TestReadImageFileUnmaps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kernel")
	want := testKernel(kernelOptions{})
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}

	data, unmap, err := readImageFile(path)
	if err != nil {
		t.Fatalf("readImageFile: %v", err)
	}
	if string(data) != string(want) {
		t.Fatalf("readImageFile returned %d bytes that differ from the file's %d", len(data), len(want))
	}
	addr := unsafe.Pointer(&data[0])
	unmap()

	// mincore(2) fails with ENOMEM for a range that is not mapped.
	vec := make([]byte, 1)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(addr), uintptr(unix.Getpagesize()), uintptr(unsafe.Pointer(&vec[0])))
	if errno != unix.ENOMEM {
		t.Errorf("mincore of the image's first page after unmap = %v, want ENOMEM (unmapped)", errno)
	}
}
