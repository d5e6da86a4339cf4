package hermit

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osvm-project/osvm/internal/testenv"
)

func TestInspectValidKernel(t *testing.T) {
	img, err := Inspect(testKernel(kernelOptions{}))
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if img.InterfaceVersion != 1 || img.InterfaceVersionNoted {
		t.Errorf("interface version = %d (noted %v), want 1 (not noted)", img.InterfaceVersion, img.InterfaceVersionNoted)
	}
	if img.HasKernelVersion {
		t.Errorf("HasKernelVersion = true for a kernel without an ABI tag")
	}

	if !img.LegacyMapping() {
		t.Errorf("LegacyMapping = false for a kernel without a version note")
	}
	if !img.PositionIndependent {
		t.Errorf("PositionIndependent = false for ET_DYN")
	}
	if img.Entry != testEntry {
		t.Errorf("Entry = %#x, want %#x", img.Entry, testEntry)
	}
	if img.OSABI != osabiStandalone {
		t.Errorf("OSABI = %#x, want 0xff", img.OSABI)
	}

	if len(img.Segments) != 2 {
		t.Fatalf("%d segments, want 2", len(img.Segments))
	}
	if s := img.Segments[1]; s.VAddr != testDataVAddr || s.FileSize != testDataFile || s.MemSize != testDataMem || s.Flags != 6 {
		t.Errorf("data segment = %+v", s)
	}
	if low, high := img.Span(); low != 0 || high != testDataVAddr+testDataMem {
		t.Errorf("Span = [%#x, %#x), want [0, %#x)", low, high, testDataVAddr+testDataMem)
	}

	if !img.HasTLS || img.TLS != (TLS{VAddr: testTLSVAddr, FileSize: testTLSFile, MemSize: testTLSMem, Align: 8}) {
		t.Errorf("TLS = %+v (HasTLS %v)", img.TLS, img.HasTLS)
	}
	want := []Relocation{{testDataVAddr, 0x10}, {testDataVAddr + 8, 0x2018}}
	if len(img.Relocations) != len(want) || img.Relocations[0] != want[0] || img.Relocations[1] != want[1] {
		t.Errorf("Relocations = %+v, want %+v", img.Relocations, want)
	}
	if s := img.String(); !strings.Contains(s, "uhyve interface v1") || !strings.Contains(s, "2 relocations") {
		t.Errorf("String() = %q", s)
	}
}

func TestInspectNotes(t *testing.T) {
	tests := []struct {
		name        string
		notes       []byte
		wantVersion int
		wantNoted   bool
		wantKernel  *KernelVersion
		wantLegacy  bool
	}{
		{"entry only", entryNote(4), 1, false, nil, true},
		{"interface 1", concat(entryNote(4), uhyveNote(1)), 1, true, nil, true},
		{"interface 2", concat(uhyveNote(2), entryNote(4)), 2, true, nil, true},
		{"interface 3 with kernel 0.14.0", concat(entryNote(4), uhyveNote(3), abiNote(6, 0, 14, 0)), 3, true, &KernelVersion{0, 14, 0}, false},
		{"kernel 0.9.9 is legacy", concat(entryNote(4), abiNote(6, 0, 9, 9)), 1, false, &KernelVersion{0, 9, 9}, true},
		{"kernel 0.10.0 is not legacy", concat(entryNote(4), abiNote(6, 0, 10, 0)), 1, false, &KernelVersion{0, 10, 0}, false},
		{"ABI tag of another OS is ignored", concat(entryNote(4), abiNote(0, 3, 2, 0)), 1, false, nil, true},
		{"unknown notes are skipped", concat(noteBytes("Go", 4, []byte("build id")), entryNote(4), uhyveNote(2)), 2, true, nil, true},
		{"first of two entry notes counts", concat(entryNote(4), entryNote(3)), 1, false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Inspect(testKernel(kernelOptions{notes: tt.notes}))
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if img.InterfaceVersion != tt.wantVersion || img.InterfaceVersionNoted != tt.wantNoted {
				t.Errorf("interface version = %d (noted %v), want %d (noted %v)", img.InterfaceVersion, img.InterfaceVersionNoted, tt.wantVersion, tt.wantNoted)
			}
			if tt.wantKernel == nil && img.HasKernelVersion {
				t.Errorf("kernel version %v, want none", img.KernelVersion)
			}
			if tt.wantKernel != nil && (!img.HasKernelVersion || img.KernelVersion != *tt.wantKernel) {
				t.Errorf("kernel version %v (present %v), want %v", img.KernelVersion, img.HasKernelVersion, *tt.wantKernel)
			}
			if img.LegacyMapping() != tt.wantLegacy {
				t.Errorf("LegacyMapping = %v, want %v", img.LegacyMapping(), tt.wantLegacy)
			}
		})
	}
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestInspectRejects(t *testing.T) {
	valid := testKernel(kernelOptions{})
	edit := func(f func(b []byte)) []byte {
		b := append([]byte(nil), valid...)
		f(b)
		return b
	}
	phdrField := func(i, off int) int { return elfHeaderSize + i*progHeaderSize + off }

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "ELF magic"},
		{"text file", []byte("#!/bin/sh\necho hi\n"), "ELF magic"},
		{"gzip image", []byte{0x1f, 0x8b, 0x08, 0, 0, 0}, "gzip archive"},
		{"header cut off", valid[:40], "fewer than an ELF64 header"},
		{"32-bit", edit(func(b []byte) { b[4] = 1 }), "ELFCLASS64"},
		{"big-endian", edit(func(b []byte) { b[5] = 2 }), "little-endian"},
		{"AArch64", edit(func(b []byte) { binary.LittleEndian.PutUint16(b[18:], 183) }), "183 (AArch64)"},
		{"relocatable object", edit(func(b []byte) { binary.LittleEndian.PutUint16(b[16:], 1) }), "ET_DYN (3) or ET_EXEC (2)"},
		{"no program headers", edit(func(b []byte) { binary.LittleEndian.PutUint16(b[56:], 0) }), "no program headers"},
		{"odd phentsize", edit(func(b []byte) { binary.LittleEndian.PutUint16(b[54:], 32) }), "e_phentsize"},
		{"program headers past the end", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[32:], uint64(len(b))) }), "program header table"},
		{"no note segment", edit(func(b []byte) { binary.LittleEndian.PutUint32(b[phdrField(4, 0):], 0) }), "no PT_NOTE"},
		{"no HERMIT note", testKernel(kernelOptions{notes: uhyveNote(1)}), "does not declare a Hermit entry version"},
		{"entry version 3", testKernel(kernelOptions{notes: entryNote(3)}), "entry version 3"},
		{"entry note empty", testKernel(kernelOptions{notes: noteBytes("HERMIT", noteTypeEntryVersion, nil)}), "entry-version note is empty"},
		{"interface version 4", testKernel(kernelOptions{notes: concat(entryNote(4), uhyveNote(4))}), "interface version 4"},
		{"interface version little-endian", testKernel(kernelOptions{notes: concat(entryNote(4), uhyveNote(0x0100_0000))}), "interface version 16777216"},
		{"interface note too short", testKernel(kernelOptions{notes: concat(entryNote(4), noteBytes("UHYVEIF", noteTypeInterfaceVersion, []byte{3}))}), "1-byte descriptor"},
		{"ABI tag too short", testKernel(kernelOptions{notes: concat(entryNote(4), noteBytes("GNU", 1, []byte{6, 0, 0, 0}))}), "GNU ABI-tag note"},
		{"note past its segment", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[phdrField(4, 32):], 13) }), "runs past the segment"},
		{"note segment past the file", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[phdrField(4, 8):], 1<<40) }), "PT_NOTE segment"},
		{"note alignment 16", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[phdrField(4, 48):], 16) }), "p_align 16"},
		{"filesz above memsz", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[phdrField(1, 32):], testDataMem+1) }), "larger than p_memsz"},
		{"load alignment not a power of two", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[phdrField(1, 48):], 3) }), "p_align 3, which is not a power of two"},
		{"segment past the file", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[phdrField(1, 8):], uint64(len(b))) }), "past the end of the"},
		{"segment wraps", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[phdrField(1, 16):], ^uint64(0)-10) }), "wraps"},
		{"segments overlap", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[phdrField(1, 16):], 0x80) }), "overlaps"},
		{"segment span over 1 GiB", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[phdrField(1, 40):], 1<<31) }), "span"},
		{"entry outside segments", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[24:], 0x1000) }), "entry point 0x1000"},
		{"two TLS segments", testKernel(kernelOptions{edit: func(f *elfFile) { f.phdr(f.phdrs[3]) }}), "more than one PT_TLS"},
		{"TLS outside segments", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[phdrField(3, 16):], 0x9000) }), "PT_TLS image"},
		{"DT_NEEDED", testKernel(kernelOptions{dyn: dynamic(dtNeeded, 1)}), "DT_NEEDED"},
		{"REL relocations", testKernel(kernelOptions{dyn: dynamic(dtRel, 0x40, dtRelSz, 16)}), "REL relocations"},
		{"RELR relocations", testKernel(kernelOptions{dyn: dynamic(dtRelr, 0x40, dtRelrSz, 8)}), "RELR"},
		{"odd RELAENT", testKernel(kernelOptions{dyn: dynamic(dtRela, testRelaVAddr, dtRelaSz, 48, dtRelaEnt, 16)}), "DT_RELAENT"},
		{"RELASZ not a multiple", testKernel(kernelOptions{dyn: dynamic(dtRela, testRelaVAddr, dtRelaSz, 47)}), "not a multiple"},
		{"RELA outside the file", testKernel(kernelOptions{dyn: dynamic(dtRela, 0x2100, dtRelaSz, 24)}), "lies outside the file-backed part"},
		{"R_X86_64_64", testKernel(kernelOptions{relocs: rela(testDataVAddr, 1, 0)}), "R_X86_64_64"},
		{"unknown relocation type", testKernel(kernelOptions{relocs: rela(testDataVAddr, 99, 0)}), "type 99"},
		{"relocation outside segments", testKernel(kernelOptions{relocs: rela(0x9000, rX8664Relative, 0)}), "outside every PT_LOAD"},
		{"relocation across a segment end", testKernel(kernelOptions{relocs: rela(testTextSize-4, rX8664Relative, 0)}), "outside every PT_LOAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Inspect(tt.data)
			if err == nil {
				t.Fatalf("Inspect succeeded: %v", img)
			}
			var ie *ImageError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v (%T) is no *ImageError", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestInspectExec(t *testing.T) {
	data := testKernel(kernelOptions{edit: func(f *elfFile) {
		f.typ = etExec
		f.entry = 0x800010
		f.phdrs[0].VAddr = 0x800000
		f.phdrs[1].VAddr = 0x802000
		f.phdrs[3].VAddr = 0x802010
		f.phdrs = append(f.phdrs[:2], f.phdrs[3:]...) // no PT_DYNAMIC
	}})
	img, err := Inspect(data)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if img.PositionIndependent || len(img.Relocations) != 0 {
		t.Errorf("PositionIndependent %v, %d relocations; want false, 0", img.PositionIndependent, len(img.Relocations))
	}
	if low, high := img.Span(); low != 0x800000 || high != 0x802000+testDataMem {
		t.Errorf("Span = [%#x, %#x)", low, high)
	}
}

func TestInspectRelocationNone(t *testing.T) {
	img, err := Inspect(testKernel(kernelOptions{relocs: concat(rela(0, rX8664None, 0), rela(testDataVAddr, rX8664Relative, 5))}))
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if len(img.Relocations) != 1 || img.Relocations[0] != (Relocation{testDataVAddr, 5}) {
		t.Errorf("Relocations = %+v, want the RELATIVE one only", img.Relocations)
	}
}

func TestInspectFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kernel")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxImageSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := InspectFile(path); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("InspectFile of an oversized file: %v, want a size error", err)
	}
}

func TestInspectFileMissing(t *testing.T) {
	_, err := InspectFile(filepath.Join(t.TempDir(), "absent"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("InspectFile of a missing file: %v, want os.ErrNotExist", err)
	}
}

func TestKernelVersionLess(t *testing.T) {
	tests := []struct {
		a, b KernelVersion
		want bool
	}{
		{KernelVersion{0, 9, 9}, KernelVersion{0, 10, 0}, true},
		{KernelVersion{0, 10, 0}, KernelVersion{0, 10, 0}, false},
		{KernelVersion{1, 0, 0}, KernelVersion{0, 99, 99}, false},
		{KernelVersion{0, 13, 1}, KernelVersion{0, 13, 2}, true},
	}
	for _, tt := range tests {
		if got := tt.a.Less(tt.b); got != tt.want {
			t.Errorf("%v.Less(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestInspectRealImages inspects the prebuilt images of uhyve's data folder
// when OSVM_HERMIT_IMAGES names a folder holding them.
func TestInspectRealImages(t *testing.T) {
	dir := testenv.HermitImagesDir(t)
	tests := []struct {
		file    string
		pie     bool
		entry   uint64
		relocs  int
		segment int
	}{
		{"hello_world", true, 0x360e0, 2245, 4},
		{"rusty_demo", true, 0x54c10, 2687, 4},
		{"hello_c", false, 0x8422a0, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			img, err := InspectFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatalf("InspectFile: %v", err)
			}
			if img.InterfaceVersion != 1 || img.InterfaceVersionNoted || img.HasKernelVersion {
				t.Errorf("versions: interface %d noted %v, kernel version present %v; want 1, false, false",
					img.InterfaceVersion, img.InterfaceVersionNoted, img.HasKernelVersion)
			}
			if img.PositionIndependent != tt.pie || img.Entry != tt.entry || len(img.Relocations) != tt.relocs || len(img.Segments) != tt.segment {
				t.Errorf("got PIE %v entry %#x, %d relocations, %d segments; want %v %#x %d %d",
					img.PositionIndependent, img.Entry, len(img.Relocations), len(img.Segments), tt.pie, tt.entry, tt.relocs, tt.segment)
			}
			if !img.HasTLS {
				t.Errorf("no PT_TLS found")
			}
		})
	}
}
