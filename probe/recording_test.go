package probe

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// A recording is a folder under testdata/hosts that holds one host's
// observations:
//
//	root/      the files of filesRead at their paths, such as root/proc/cpuinfo;
//	           a file that is not there reads as ENOENT
//	host.json  everything else, as recordedHost
//	cpuid.txt  CPUID leaves in the format of cpuid -r (Debian package cpuid);
//	           without it, the host has no CPUID
//
// TestRecordHost writes one from the machine it runs on.

// recordedHost is host.json. Errors are errno names such as "EACCES",
// except command errors, which are their messages.
type recordedHost struct {
	Description string            `json:"description"`           // the host, and whether it was recorded or made up
	EUID        int               `json:"euid"`                  // of the probe
	FileErrors  map[string]string `json:"file_errors,omitempty"` // files of filesRead that exist but could not be read
	Exists      []string          `json:"exists"`                // the paths of pathsChecked that exist
	KVM         recordedKVM       `json:"kvm"`
	SEVDevice   string            `json:"sev_device,omitempty"` // access(2) of /dev/sev
	Landlock    recordedValue     `json:"landlock_abi"`
	Seccomp     recordedValue     `json:"seccomp_mode"`
	CgroupMode  CgroupMode        `json:"cgroup_mode"`
	Systemd     []recordedCommand `json:"systemd"`
}

type recordedKVM struct {
	Stat       string                   `json:"stat,omitempty"`
	Mode       string                   `json:"mode,omitempty"` // octal, such as "0660"
	Owner      string                   `json:"owner,omitempty"`
	Group      string                   `json:"group,omitempty"`
	Open       string                   `json:"open,omitempty"`
	APIVersion recordedValue            `json:"api_version"`
	Extensions map[string]recordedValue `json:"extensions,omitempty"` // by capability name, such as "KVM_CAP_IRQCHIP"
}

type recordedValue struct {
	Value int    `json:"value"`
	Error string `json:"error,omitempty"`
}

type recordedCommand struct {
	Command string `json:"command"`
	Output  string `json:"output,omitempty"`
	Error   string `json:"error,omitempty"`
}

// errnoByName maps names such as "EACCES" to their numbers. It also
// takes EOPNOTSUPP, which unix.ErrnoName calls ENOTSUP (both are 95 on
// Linux), because the Landlock documentation uses it.
var errnoByName = func() map[string]syscall.Errno {
	m := map[string]syscall.Errno{"EOPNOTSUPP": syscall.EOPNOTSUPP}
	for n := syscall.Errno(1); n < 200; n++ {
		if name := unix.ErrnoName(n); name != "" {
			m[name] = n
		}
	}
	return m
}()

// recordedErrno returns the errno named name, or nil for "".
func recordedErrno(t *testing.T, name string) error {
	t.Helper()
	if name == "" {
		return nil
	}
	errno, ok := errnoByName[name]
	if !ok {
		t.Fatalf("recording: unknown errno name %q", name)
	}
	return errno
}

// errnoName returns the name of the errno that err wraps, or its message
// when it wraps none.
func errnoName(err error) string {
	if err == nil {
		return ""
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

// loadRecording reads the recording in folder dir. Errors are wrapped the
// way gather wraps them, so messages match the live probe's.
func loadRecording(t *testing.T, dir string) *observations {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "host.json"))
	if err != nil {
		t.Fatal(err)
	}
	var h recordedHost
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&h); err != nil {
		t.Fatalf("%s/host.json: %v", dir, err)
	}

	o := &observations{
		euid:   h.EUID,
		files:  map[string]fileResult{},
		exists: map[string]error{},
	}
	for _, path := range filesRead {
		if name, ok := h.FileErrors[path]; ok {
			o.files[path] = fileResult{err: &fs.PathError{Op: "open", Path: path, Err: recordedErrno(t, name)}}
			continue
		}
		content, err := os.ReadFile(filepath.Join(dir, "root", path))
		if errors.Is(err, fs.ErrNotExist) {
			err = &fs.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
		} else if err != nil {
			t.Fatal(err)
		}
		o.files[path] = fileResult{data: content, err: err}
	}
	for _, path := range pathsChecked {
		o.exists[path] = &fs.PathError{Op: "stat", Path: path, Err: syscall.ENOENT}
	}
	for _, path := range h.Exists {
		if !slices.Contains(pathsChecked, path) {
			t.Fatalf("%s/host.json: exists lists %s, which the probe does not check", dir, path)
		}
		o.exists[path] = nil
	}

	o.cpuid, o.cpuidOK = loadCPUID(t, filepath.Join(dir, "cpuid.txt"))
	o.kvm = loadKVM(t, &h.KVM)
	if h.SEVDevice != "" {
		o.sevDeviceAccess = &fs.PathError{Op: "access", Path: sevDevice, Err: recordedErrno(t, h.SEVDevice)}
	}
	o.landlockABI = h.Landlock.Value
	if h.Landlock.Error != "" {
		o.landlockErr = os.NewSyscallError("landlock_create_ruleset", recordedErrno(t, h.Landlock.Error))
	}
	o.seccompMode = h.Seccomp.Value
	if h.Seccomp.Error != "" {
		o.seccompErr = os.NewSyscallError("prctl(PR_GET_SECCOMP)", recordedErrno(t, h.Seccomp.Error))
	}
	if !slices.Contains([]CgroupMode{CgroupUnavailable, CgroupV1, CgroupHybrid, CgroupUnified}, h.CgroupMode) {
		t.Fatalf("%s/host.json: unknown cgroup_mode %q", dir, h.CgroupMode)
	}
	o.cgroupMode = h.CgroupMode
	for _, c := range h.Systemd {
		run := commandResult{command: c.Command, output: []byte(c.Output)}
		if c.Error != "" {
			run.err = errors.New(c.Error)
		}
		o.systemd = append(o.systemd, run)
	}
	return o
}

func loadKVM(t *testing.T, k *recordedKVM) kvmObservation {
	t.Helper()
	var o kvmObservation
	if k.Stat != "" {
		o.statErr = &fs.PathError{Op: "stat", Path: kvmDevice, Err: recordedErrno(t, k.Stat)}
		return o
	}

	mode, err := strconv.ParseUint(k.Mode, 8, 32)
	if err != nil {
		t.Fatalf("recording: kvm mode %q: %v", k.Mode, err)
	}
	o.mode, o.owner, o.group = uint32(mode), k.Owner, k.Group
	if k.Open != "" {
		o.openErr = &fs.PathError{Op: "open", Path: kvmDevice, Err: recordedErrno(t, k.Open)}
		return o
	}

	o.apiVersion = k.APIVersion.Value
	if k.APIVersion.Error != "" {
		o.apiVersionErr = os.NewSyscallError("KVM_GET_API_VERSION", recordedErrno(t, k.APIVersion.Error))
	}
	o.extensions = map[kvmCapability]extensionResult{}
	for _, c := range kvmCapabilities {
		r := k.Extensions[c.String()]
		result := extensionResult{value: r.Value}
		if r.Error != "" {
			result.err = os.NewSyscallError("KVM_CHECK_EXTENSION", recordedErrno(t, r.Error))
		}
		o.extensions[c] = result
	}

	for name := range k.Extensions {
		if !slices.ContainsFunc(kvmCapabilities, func(c kvmCapability) bool { return c.String() == name }) {
			t.Fatalf("recording: extension %q is not one the probe checks", name)
		}
	}
	return o
}

// loadCPUID reads CPUID leaves in the format of cpuid -r, such as
//
//	0x00000000 0x00: eax=0x0000000d ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69
//
// Only the first CPU's leaves count, and only subleaf 0. It returns false
// when path does not exist.
func loadCPUID(t *testing.T, path string) (map[uint32]cpuidRegisters, bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	leaves := map[uint32]cpuidRegisters{}
	scanner := bufio.NewScanner(bytes.NewReader(data))
	cpus := 0
	for line := 1; scanner.Scan(); line++ {
		text := strings.TrimSpace(scanner.Text())
		if strings.HasPrefix(text, "CPU ") {
			if cpus++; cpus > 1 {
				break
			}
			continue
		}
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		var leaf, subleaf uint32
		var r cpuidRegisters
		if _, err := fmt.Sscanf(text, "0x%x 0x%x: eax=0x%x ebx=0x%x ecx=0x%x edx=0x%x",
			&leaf, &subleaf, &r.EAX, &r.EBX, &r.ECX, &r.EDX); err != nil {
			t.Fatalf("%s:%d: %q: %v", path, line, text, err)
		}
		if subleaf == 0 {
			leaves[leaf] = r
		}
	}
	return leaves, true
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	return toJSON(t, a) == toJSON(t, b)
}
