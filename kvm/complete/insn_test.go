package complete

import (
	"bytes"
	"testing"
)

func TestDescribeInstruction(t *testing.T) {
	tests := []struct {
		bytes []byte
		want  string
	}{
		{[]byte{0x0f, 0x01, 0xd0, 0x48}, "xgetbv"},
		{[]byte{0x0f, 0x01, 0xd1}, "xsetbv"},
		{[]byte{0x0f, 0x57, 0xc0}, "xorps"},
		{[]byte{0x66, 0x0f, 0xef, 0xc0}, "pxor"},
		{[]byte{0x66, 0x41, 0x0f, 0x74, 0x07}, "pcmpeqb"},
		{[]byte{0xf2, 0x0f, 0x59, 0xc1}, "mulsd"},
		{[]byte{0xf3, 0x48, 0x0f, 0x2a, 0xc0}, "cvtsi2ss"},
		{[]byte{0x48, 0x0f, 0xae, 0x20}, "xsave64"},
		{[]byte{0x0f, 0xae, 0x28}, "xrstor"},
		{[]byte{0x0f, 0xae, 0xf0}, "mfence"},
		{[]byte{0x48, 0x0f, 0xc7, 0xf0}, "rdrand"},
		{[]byte{0xc5, 0xf9, 0xef, 0xc0}, "vpxor"},
		{[]byte{0x66, 0x0f, 0x38, 0x00, 0xc1}, "pshufb"},
		{[]byte{0x66, 0x0f, 0xf7, 0xc1}, "maskmovdqu"},
		{[]byte{0xf2, 0x0f, 0x10, 0xc1}, "movsd"},
		{[]byte{0x90}, "nop"},
		// Truncated: the fallback names what the first bytes show.
		{[]byte{0xc5, 0xf9}, "a VEX-encoded (AVX) instruction"},
		{[]byte{0x66, 0x0f, 0x38}, "an SSSE3/SSE4 instruction (0f 38)"},
		{[]byte{0x66, 0x66}, ""},
		{[]byte{0x0f}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := Describe(tt.bytes); got != tt.want {
			t.Errorf("Describe(% x) = %q, want %q", tt.bytes, got, tt.want)
		}
	}
}

func TestEmulationInstruction(t *testing.T) {
	// Data words of a real failure on xgetbv: flags, then the length byte
	// and 15 instruction bytes.
	data := []uint64{0x1, 0x20e2c148d0010f0f, 0x48ccccccc3d00948, 0x1000}
	got := Instruction(data)
	want := []byte{0x0f, 0x01, 0xd0, 0x48, 0xc1, 0xe2, 0x20, 0x48, 0x09, 0xd0, 0xc3, 0xcc, 0xcc, 0xcc, 0x48}
	if !bytes.Equal(got, want) {
		t.Errorf("Instruction = % x, want % x", got, want)
	}
	if got := Instruction([]uint64{0, 1, 2}); got != nil {
		t.Errorf("without the instruction-bytes flag: % x, want nil", got)
	}
	if got := Instruction([]uint64{1}); got != nil {
		t.Errorf("with too few words: % x, want nil", got)
	}
}
