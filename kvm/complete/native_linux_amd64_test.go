package complete

import (
	"bytes"
	"encoding/binary"
	"math"
	"sync/atomic"
	"testing"

	"github.com/osvm-project/osvm/internal/fakemem"
	"github.com/osvm-project/osvm/kvm"
	"github.com/osvm-project/osvm/kvm/paging"
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

// TestCompleteStep runs single instructions through Completer.step
// against page tables in fake memory: results, and the exceptions the CPU
// would raise instead (which must leave the registers and memory alone).
func TestCompleteStep(t *testing.T) {
	x := newTestExecutor(t)
	const (
		readOnlyVA = 0x8000 // PT[8], not writable
		unmapped   = 0x9000 // PT[9], not present
	)
	f64 := func(v float64) []byte { return binary.LittleEndian.AppendUint64(nil, math.Float64bits(v)) }
	tests := []struct {
		name     string
		code     []byte
		rax      uint64
		cr0, cr4 uint64
		mxcsr    uint32
		xmm      map[int][2]float64
		memory   map[uint64][]byte // guest-physical contents before
		// Outcome: an exception, or the new XMM0 low lane, memory and MXCSR.
		vector     uint8
		errorCode  uint32 // the error code
		cr2        uint64
		xmm0       float64
		written    map[uint64][]byte
		mxcsrAfter uint32
	}{
		{
			name: "load", code: []byte{0xf2, 0x0f, 0x10, 0x00}, rax: 0x5008, // movsd xmm0, [rax]
			memory: map[uint64][]byte{0x7008: f64(2.5)}, xmm0: 2.5,
		},
		{
			name: "load across two pages", code: []byte{0xf2, 0x0f, 0x10, 0x00}, rax: 0x6ffc,
			memory: map[uint64][]byte{0x9ffc: f64(-3)[:4], 0xa000: f64(-3)[4:]}, xmm0: -3,
		},
		{
			name: "store across two pages", code: []byte{0xf2, 0x0f, 0x11, 0x00}, rax: 0x5ffc, // movsd [rax], xmm0
			xmm: map[int][2]float64{0: {7.25, 0}}, xmm0: 7.25,
			written: map[uint64][]byte{0x7ffc: f64(7.25)[:4], 0x9000: f64(7.25)[4:]},
		},
		{
			name: "misaligned movaps raises #GP(0)", code: []byte{0x0f, 0x28, 0x00}, rax: 0x5008,
			vector: vectorGP,
		},
		{
			name: "unmapped page raises #PF", code: []byte{0xf2, 0x0f, 0x10, 0x00}, rax: unmapped + 8,
			vector: vectorPF, errorCode: 0, cr2: unmapped + 8,
		},
		{
			name: "store to a read-only page with CR0.WP raises #PF", code: []byte{0xf2, 0x0f, 0x11, 0x00}, rax: readOnlyVA,
			cr0: 1 << 16, vector: vectorPF, errorCode: 3, cr2: readOnlyVA,
		},
		{
			name: "store to a read-only page without CR0.WP", code: []byte{0xf2, 0x0f, 0x11, 0x00}, rax: readOnlyVA,
			xmm: map[int][2]float64{0: {1, 0}}, xmm0: 1, written: map[uint64][]byte{0xb000: f64(1)},
		},
		{
			name: "masked division by zero sets ZE", code: []byte{0xf2, 0x0f, 0x5e, 0xc1}, // divsd xmm0, xmm1
			xmm: map[int][2]float64{0: {1, 0}}, xmm0: math.Inf(1), mxcsrAfter: 0x1f80 | 0x4,
		},
		{
			name: "unmasked division by zero raises #XM", code: []byte{0xf2, 0x0f, 0x5e, 0xc1},
			xmm: map[int][2]float64{0: {1, 0}}, mxcsr: 0x1d80, cr4: 1 << 10, vector: vectorXM, mxcsrAfter: 0x1d80 | 0x4,
		},
		{
			name: "unmasked division by zero without CR4.OSXMMEXCPT raises #UD", code: []byte{0xf2, 0x0f, 0x5e, 0xc1},
			xmm: map[int][2]float64{0: {1, 0}}, mxcsr: 0x1d80, vector: vectorUD, mxcsrAfter: 0x1d80 | 0x4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := fakemem.WithPageTables()
			mem.PutU64(0x4000+8*8, 0xb000|paging.Present)
			for gpa, b := range tt.memory {
				mem.Put(gpa, b)
			}
			before := append([]byte(nil), mem.At(0, 8<<20)...)
			c := New(mem, new(atomic.Uint64))
			d, err := planData(tt.code)
			if err != nil {
				t.Fatal(err)
			}
			mxcsr := tt.mxcsr
			if mxcsr == 0 {
				mxcsr = 0x1f80
			}
			area := make([]byte, xsaveAreaSize)
			copy(area, sseState(tt.xmm))
			binary.LittleEndian.PutUint32(area[24:], mxcsr)
			regs := kvm.Regs{RAX: tt.rax, RIP: 0x1000, RFLAGS: 0x2}
			sregs := kvm.SRegs{CR0: tt.cr0, CR3: 0x1000, CR4: tt.cr4 | 1<<9}
			origRegs, origArea := regs, append([]byte(nil), area...)

			exc, err := c.step(x, &d, &regs, &sregs, area)
			if err != nil {
				t.Fatal(err)
			}
			if tt.vector != 0 {
				if exc == nil || exc.vector != tt.vector || exc.code != tt.errorCode {
					t.Fatalf("step = %+v, want exception %d with error code %d", exc, tt.vector, tt.errorCode)
				}
				if tt.cr2 != 0 && (exc.cr2 == nil || *exc.cr2 != tt.cr2) {
					t.Errorf("CR2 = %v, want %#x", exc.cr2, tt.cr2)
				}
				if tt.mxcsrAfter != 0 && (exc.mxcsr == nil || *exc.mxcsr != tt.mxcsrAfter) {
					t.Errorf("MXCSR after the exception = %v, want %#x", exc.mxcsr, tt.mxcsrAfter)
				}
				if regs != origRegs || !bytes.Equal(area, origArea) || !bytes.Equal(mem.At(0, 8<<20), before) {
					t.Errorf("a faulting instruction changed registers, SSE state or memory")
				}
				return
			}
			if exc != nil {
				t.Fatalf("step raised exception %d", exc.vector)
			}
			if regs.RIP != 0x1000+uint64(len(tt.code)) {
				t.Errorf("RIP = %#x, want past the instruction", regs.RIP)
			}
			if got := xmmFloat64(area, 0, 0); got != tt.xmm0 {
				t.Errorf("xmm0 = %v, want %v", got, tt.xmm0)
			}
			for gpa, want := range tt.written {
				if got := mem.At(gpa, uint64(len(want))); !bytes.Equal(got, want) {
					t.Errorf("guest-physical %#x = % x, want % x", gpa, got, want)
				}
			}
			if tt.mxcsrAfter != 0 {
				if got := binary.LittleEndian.Uint32(area[24:]); got != tt.mxcsrAfter {
					t.Errorf("MXCSR = %#x, want %#x", got, tt.mxcsrAfter)
				}
			}
		})
	}
}
