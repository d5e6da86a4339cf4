package hermit

import (
	"bytes"
	"errors"
	"testing"

	"github.com/osvm-project/osvm/internal/fakemem"
	"github.com/osvm-project/osvm/kvm"
)

func TestLoadPositionIndependent(t *testing.T) {
	img, err := Inspect(testKernel(kernelOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	const bias = 0x40000
	mem := fakemem.New(0, 1<<20)
	all := mem.At(0, 1<<20)
	for i := range all {
		all[i] = 0xaa // BSS must be zeroed, not assumed zero
	}

	loaded, err := img.Load(mem, bias)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Loaded{
		Start: bias, End: bias + testDataVAddr + testDataMem, Entry: bias + testEntry,
		TLS: TLS{VAddr: bias + testTLSVAddr, FileSize: testTLSFile, MemSize: testTLSMem, Align: 8},
	}
	if loaded != want {
		t.Errorf("Load = %+v, want %+v", loaded, want)
	}

	if got := mem.At(bias, testRelaVAddr); !bytes.Equal(got, bytes.Repeat([]byte{0x90}, testRelaVAddr)) {
		t.Errorf("text segment not copied: % x", got[:8])
	}
	if got := mem.U64(bias + testDataVAddr); got != bias+0x10 {
		t.Errorf("relocated word 0 = %#x, want %#x", got, bias+0x10)
	}
	if got := mem.U64(bias + testDataVAddr + 8); got != bias+0x2018 {
		t.Errorf("relocated word 1 = %#x, want %#x", got, bias+0x2018)
	}
	if got := mem.At(bias+testDataVAddr+16, 16); got[0] != 0xd0+16 || got[15] != 0xd0+31 {
		t.Errorf("data bytes after the relocations = % x", got)
	}
	bss := mem.At(bias+testDataVAddr+testDataFile, testDataMem-testDataFile)
	if !bytes.Equal(bss, make([]byte, len(bss))) {
		t.Errorf("BSS not zeroed")
	}
	if got := mem.At(bias+testDataVAddr+testDataMem, 1)[0]; got != 0xaa {
		t.Errorf("byte after the image = %#x, want it untouched (0xaa)", got)
	}
	if got := mem.At(bias+testTextSize, 1)[0]; got != 0xaa {
		t.Errorf("gap between segments = %#x, want it untouched (0xaa)", got)
	}
}

func TestLoadExec(t *testing.T) {
	img, err := Inspect(testKernel(kernelOptions{edit: func(f *elfFile) {
		f.typ = etExec
		f.entry = 0x80010
		f.phdrs[0].VAddr = 0x80000
		f.phdrs[1].VAddr = 0x82000
		f.phdrs[3].VAddr = 0x82010
	}}))
	if err != nil {
		t.Fatal(err)
	}
	mem := fakemem.New(0, 1<<20)
	if _, err := img.Load(mem, 0x1000); err == nil {
		t.Errorf("Load of ET_EXEC with a bias succeeded")
	}
	loaded, err := img.Load(mem, 0)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if loaded.Entry != 0x80010 || loaded.Start != 0x80000 || loaded.TLS.VAddr != 0x82010 {
		t.Errorf("Load = %+v", loaded)
	}
	if got := mem.U64(0x82000); got != 0xd7d6d5d4d3d2d1d0 {
		t.Errorf("ET_EXEC data word = %#x: relocations must not apply", got)
	}
}

func TestLoadOutsideMemory(t *testing.T) {
	img, err := Inspect(testKernel(kernelOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mem  *fakemem.Memory
		bias uint64
	}{
		{"text beyond memory", fakemem.New(0, 0x1000), 0x40000},
		{"BSS beyond memory", fakemem.New(0, testDataVAddr+testDataFile+0x100), 0},
		{"below memory", fakemem.New(1<<32, 1<<20), 0x40000},
		{"bias near the top", fakemem.New(0, 1<<20), ^uint64(0) - 0x1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := img.Load(tt.mem, tt.bias)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if tt.name != "bias near the top" && !errors.Is(err, kvm.ErrOutOfRange) {
				t.Errorf("error %v does not wrap kvm.ErrOutOfRange", err)
			}
		})
	}
}
