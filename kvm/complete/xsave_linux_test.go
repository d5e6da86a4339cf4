package complete

import (
	"encoding/binary"
	"testing"
)

// xsaveArea returns an XSAVE area of xsaveAreaSize bytes with the given
// header and MXCSR, and every other byte set to fill.
func xsaveArea(xstateBV, xcompBV uint64, mxcsr uint32, fill byte) []byte {
	a := make([]byte, xsaveAreaSize)
	for i := range a {
		a[i] = fill
	}
	clear(a[xsaveHeader : xsaveHeader+xsaveHeaderSize])
	binary.LittleEndian.PutUint64(a[xsaveHeader:], xstateBV)
	binary.LittleEndian.PutUint64(a[xsaveHeader+8:], xcompBV)
	binary.LittleEndian.PutUint32(a[24:], mxcsr)
	binary.LittleEndian.PutUint32(a[28:], 0xffff) // MXCSR_MASK
	return a
}

func TestValidXRSTOR(t *testing.T) {
	const xcr0 = componentX87 | componentSSE | componentAVX
	vcpu := xsaveArea(3, 0, 0x1f80, 0)
	tests := []struct {
		name  string
		guest []byte
		rfbm  uint64
		want  bool
	}{
		{"standard form", xsaveArea(3, 0, 0x1f80, 0), 3, true},
		{"standard form with XCOMP_BV set", xsaveArea(3, 1, 0x1f80, 0), 3, false},
		{"XSTATE_BV outside XCR0", xsaveArea(1<<9, 0, 0x1f80, 0), 3, false},
		{"reserved MXCSR bits", xsaveArea(3, 0, 0x10000, 0), 3, false},
		{"reserved MXCSR bits, MXCSR not loaded", xsaveArea(1, 0, 0x10000, 0), 1, true},
		{"reserved MXCSR bits, loaded for AVX alone", xsaveArea(4, 0, 0x10000, 0), 4, false},
		{"compacted form", xsaveArea(3, 1<<63|3, 0x1f80, 0), 3, true},
		{"compacted, XSTATE_BV outside XCOMP_BV", xsaveArea(4, 1<<63|3, 0x1f80, 0), 7, false},
		{"compacted, XCOMP_BV outside XCR0", xsaveArea(3, 1<<63|1<<9, 0x1f80, 0), 3, false},
		{"compacted without SSE state ignores MXCSR", xsaveArea(1, 1<<63|3, 0x10000, 0), 3, true},
	}
	for _, tt := range tests {
		if got := validXRSTOR(tt.guest, vcpu, xcr0, tt.rfbm); got != tt.want {
			t.Errorf("%s: validXRSTOR = %v, want %v", tt.name, got, tt.want)
		}
	}

	reserved := xsaveArea(3, 0, 0x1f80, 0)
	reserved[xsaveHeader+20] = 1
	if validXRSTOR(reserved, vcpu, xcr0, 3) {
		t.Errorf("a reserved header byte passed")
	}
}

func TestXSaveStoreAndLoad(t *testing.T) {
	vcpu := xsaveArea(componentX87|componentSSE|componentAVX, 0, 0x1f80, 0xaa)

	// XSAVE of AVX alone stores MXCSR and the AVX upper halves, not the
	// XMM registers, and sets only the requested XSTATE_BV bit.
	guest := xsaveArea(componentX87, 0, 0, 0x55)
	xsaveStore(guest, vcpu, componentAVX)
	if got := binary.LittleEndian.Uint32(guest[24:]); got != 0x1f80 {
		t.Errorf("MXCSR after XSAVE of AVX = %#x, want 0x1f80", got)
	}
	if guest[160] != 0x55 || guest[xsaveAVXOffset] != 0xaa {
		t.Errorf("XSAVE of AVX wrote XMM0 (%#x) or skipped YMM0's upper half (%#x)", guest[160], guest[xsaveAVXOffset])
	}
	if got := binary.LittleEndian.Uint64(guest[xsaveHeader:]); got != componentX87|componentAVX {
		t.Errorf("XSTATE_BV = %#x, want the old x87 bit and AVX", got)
	}

	// XRSTOR of SSE from an area without SSE state puts the XMM registers
	// in their initial state and still loads MXCSR (standard form).
	area := xsaveArea(componentX87|componentSSE, 0, 0x1f80, 0xaa)
	guest = xsaveArea(0, 0, 0x9f80, 0x55)
	xrstorLoad(area, guest, componentSSE)
	if area[160] != 0 || area[415] != 0 {
		t.Errorf("XMM registers not cleared")
	}
	if got := binary.LittleEndian.Uint32(area[24:]); got != 0x9f80 {
		t.Errorf("MXCSR = %#x, want 0x9f80 from memory", got)
	}
	if area[32] != 0xaa {
		t.Errorf("XRSTOR of SSE changed x87 state")
	}

	// The compacted form without SSE state puts MXCSR in its initial
	// state instead.
	area = xsaveArea(componentSSE, 0, 0x9f80, 0xaa)
	guest = xsaveArea(0, 1<<63|componentSSE, 0x7f80, 0x55)
	xrstorLoad(area, guest, componentSSE)
	if got := binary.LittleEndian.Uint32(area[24:]); got != 0x1f80 {
		t.Errorf("MXCSR after compacted XRSTOR without SSE state = %#x, want 0x1f80", got)
	}
}
