package hermit

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/osvm-project/osvm/kvm"
)

// newTestExecutor returns an executor that the test closes.
func newTestExecutor(t testing.TB) *nativeExecutor {
	t.Helper()
	x, err := newNativeExecutor()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := x.close(); err != nil {
			t.Error(err)
		}
	})
	return x
}

// sseState is the legacy region of an XSAVE area with MXCSR's exceptions
// masked and the given XMM registers as float64 pairs.
func sseState(xmm map[int][2]float64) []byte {
	legacy := make([]byte, xsaveLegacySize)
	binary.LittleEndian.PutUint32(legacy[24:], 0x1f80)
	for r, v := range xmm {
		binary.LittleEndian.PutUint64(legacy[160+16*r:], math.Float64bits(v[0]))
		binary.LittleEndian.PutUint64(legacy[168+16*r:], math.Float64bits(v[1]))
	}
	return legacy
}

func xmmFloat64(legacy []byte, r, lane int) float64 {
	return math.Float64frombits(binary.LittleEndian.Uint64(legacy[160+16*r+8*lane:]))
}

// TestNativeExecutor runs SSE instructions through the trampoline and
// checks their effect on registers, flags and the memory operand.
func TestNativeExecutor(t *testing.T) {
	x := newTestExecutor(t)
	for _, tt := range []struct {
		name    string
		code    []byte
		xmm     map[int][2]float64
		regs    kvm.Regs
		operand []byte
		check   func(t *testing.T, regs *kvm.Regs, legacy, operand []byte)
	}{
		{
			name: "addpd xmm0, xmm1",
			code: []byte{0x66, 0x0f, 0x58, 0xc1},
			xmm:  map[int][2]float64{0: {1.5, 2}, 1: {2.25, -4}},
			check: func(t *testing.T, _ *kvm.Regs, legacy, _ []byte) {
				if a, b := xmmFloat64(legacy, 0, 0), xmmFloat64(legacy, 0, 1); a != 3.75 || b != -2 {
					t.Errorf("xmm0 = %v, %v; want 3.75, -2", a, b)
				}
			},
		},
		{
			name:    "mulsd xmm3, [rax+8]",
			code:    []byte{0xf2, 0x0f, 0x59, 0x58, 0x08},
			xmm:     map[int][2]float64{3: {3, 7}},
			operand: binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.5)),
			check: func(t *testing.T, _ *kvm.Regs, legacy, _ []byte) {
				if a, b := xmmFloat64(legacy, 3, 0), xmmFloat64(legacy, 3, 1); a != 1.5 || b != 7 {
					t.Errorf("xmm3 = %v, %v; want 1.5, 7", a, b)
				}
			},
		},
		{
			name:    "movsd [rbx], xmm9",
			code:    []byte{0xf2, 0x44, 0x0f, 0x11, 0x0b},
			xmm:     map[int][2]float64{9: {-1.25, 0}},
			operand: make([]byte, 8),
			check: func(t *testing.T, _ *kvm.Regs, _, operand []byte) {
				if v := math.Float64frombits(binary.LittleEndian.Uint64(operand)); v != -1.25 {
					t.Errorf("stored %v, want -1.25", v)
				}
			},
		},
		{
			name: "cvttsd2si r13, xmm2",
			code: []byte{0xf2, 0x4c, 0x0f, 0x2c, 0xea},
			xmm:  map[int][2]float64{2: {-42.9, 0}},
			regs: kvm.Regs{R13: 7, RBX: 99},
			check: func(t *testing.T, regs *kvm.Regs, _, _ []byte) {
				if int64(regs.R13) != -42 || regs.RBX != 99 {
					t.Errorf("r13 = %d, rbx = %d; want -42, 99", int64(regs.R13), regs.RBX)
				}
			},
		},
		{
			name: "comisd xmm0, xmm1 sets CF",
			code: []byte{0x66, 0x0f, 0x2f, 0xc1},
			xmm:  map[int][2]float64{0: {1, 0}, 1: {2, 0}},
			regs: kvm.Regs{RFLAGS: 0x202 | 0x40},
			check: func(t *testing.T, regs *kvm.Regs, _, _ []byte) {
				if regs.RFLAGS != 0x203 {
					t.Errorf("rflags = %#x, want %#x (CF, IF kept, ZF cleared)", regs.RFLAGS, 0x203)
				}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := planData(tt.code)
			if err != nil {
				t.Fatal(err)
			}
			legacy := sseState(tt.xmm)
			regs := tt.regs
			if regs.RFLAGS == 0 {
				regs.RFLAGS = 0x2
			}
			operand := append([]byte(nil), tt.operand...)
			if err := x.run(&d, &regs, legacy, operand); err != nil {
				t.Fatal(err)
			}
			tt.check(t, &regs, legacy, operand)
		})
	}
}
