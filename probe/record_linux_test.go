package probe

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var recordDir = flag.String("record", "", "record this host's observations into `folder` (testdata/hosts/NAME), for TestRecordHost")

// TestRecordHost writes a recording of the machine it runs on. Run it as
// root, as osvmd runs:
//
//	go test ./probe -run TestRecordHost -record testdata/hosts/NAME
//
// Then write the description in host.json and add a case to TestHosts.
func TestRecordHost(t *testing.T) {
	if *recordDir == "" {
		t.Skip("skipping: records a host only with -record FOLDER")
	}
	o := gather(t.Context())
	if err := writeRecording(*recordDir, o); err != nil {
		t.Fatal(err)
	}
	// The recording must reproduce the live facts.
	if got, want := parse(loadRecording(t, *recordDir)), parse(o); !equalJSON(t, got, want) {
		t.Errorf("facts from the recording differ from the live facts:\n%s\nwant\n%s", toJSON(t, got), toJSON(t, want))
	}
}

func writeRecording(dir string, o *observations) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	h := recordedHost{
		Description: "recorded by TestRecordHost: describe the host here",
		EUID:        o.euid,
		FileErrors:  map[string]string{},
		Exists:      []string{},
		SEVDevice:   errnoName(o.sevDeviceAccess),
		Landlock:    recordedValue{Value: o.landlockABI, Error: errnoName(o.landlockErr)},
		Seccomp:     recordedValue{Value: o.seccompMode, Error: errnoName(o.seccompErr)},
		CgroupMode:  o.cgroupMode,
	}
	for path, file := range o.files {
		switch {
		case errors.Is(file.err, fs.ErrNotExist):
		case file.err != nil:
			h.FileErrors[path] = errnoName(file.err)
		default:
			target := filepath.Join(dir, "root", path)
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(target, file.data, 0o644); err != nil {
				return err
			}
		}
	}
	for _, path := range pathsChecked {
		if o.exists[path] == nil {
			h.Exists = append(h.Exists, path)
		}
	}
	for _, run := range o.systemd {
		h.Systemd = append(h.Systemd, recordedCommand{Command: run.command, Output: string(run.output), Error: errnoName(run.err)})
	}

	k := &o.kvm
	h.KVM = recordedKVM{Stat: errnoName(k.statErr), Open: errnoName(k.openErr)}
	if k.statErr == nil {
		h.KVM.Mode, h.KVM.Owner, h.KVM.Group = fmt.Sprintf("%04o", k.mode), k.owner, k.group
	}
	if k.statErr == nil && k.openErr == nil {
		h.KVM.APIVersion = recordedValue{Value: k.apiVersion, Error: errnoName(k.apiVersionErr)}
		h.KVM.Extensions = map[string]recordedValue{}
		for c, r := range k.extensions {
			h.KVM.Extensions[c.String()] = recordedValue{Value: r.value, Error: errnoName(r.err)}
		}
	}

	data, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "host.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if !o.cpuidOK {
		return nil
	}
	var cpuidText strings.Builder
	cpuidText.WriteString("CPU 0:\n")
	for _, leaf := range slices.Sorted(maps.Keys(o.cpuid)) {
		r := o.cpuid[leaf]
		fmt.Fprintf(&cpuidText, "   0x%08x 0x%02x: eax=0x%08x ebx=0x%08x ecx=0x%08x edx=0x%08x\n", leaf, 0, r.EAX, r.EBX, r.ECX, r.EDX)
	}
	return os.WriteFile(filepath.Join(dir, "cpuid.txt"), []byte(cpuidText.String()), 0o644)
}
