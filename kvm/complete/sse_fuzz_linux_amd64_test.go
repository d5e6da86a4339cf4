package complete

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/osvm-project/osvm/kvm"
)

// FuzzPlanData feeds arbitrary bytes to planData. Whatever it accepts
// must be on the allowlist and re-encode to the same instruction with a
// RIP-relative operand (checkReencoding). The executor then runs it on
// this CPU, with register and memory values taken from the input. The
// process must survive it, with its own SSE state intact.
func FuzzPlanData(f *testing.F) {
	seeds := [][]byte{
		{0x0f, 0x57, 0xc0},                   // xorps xmm0, xmm0
		{0x66, 0x0f, 0x6f, 0x44, 0x24, 0x10}, // movdqa xmm0, [rsp+0x10]
		{0xf2, 0x47, 0x0f, 0x10, 0x8c, 0xec, 0x00, 0x01, 0x00, 0x00},
		{0x66, 0x0f, 0x3a, 0x0f, 0x40, 0x10, 0x08}, // palignr xmm0, [rax+0x10], 8
		{0xf2, 0x48, 0x0f, 0x2c, 0xc0},             // cvttsd2si rax, xmm0
		{0x66, 0x0f, 0x3a, 0x61, 0xc1, 0x0c},       // pcmpestri xmm0, xmm1, 12
		{0x66, 0x0f, 0x2f, 0xc1},                   // comisd xmm0, xmm1
		{0x66, 0x0f, 0xf7, 0xc1},                   // maskmovdqu: refused
		{0xf0, 0x0f, 0x58, 0x00},                   // lock addps: refused
	}
	for _, s := range seeds {
		f.Add(append(s, make([]byte, 16)...))
	}
	x := newTestExecutor(f)

	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := planData(data)
		if err != nil {
			return
		}
		checkReencoding(t, &d)
		if !hostHas(d.Ext) {
			return
		}

		// Guest values from the bytes after the instruction, repeated.
		values := data[d.Inst.Len:]
		if len(values) == 0 {
			values = []byte{0x5a}
		}
		fill := func(b []byte) {
			for i := range b {
				b[i] = values[i%len(values)] ^ byte(i)
			}
		}
		var raw [16 * 8]byte
		fill(raw[:])
		regs := kvm.Regs{RFLAGS: 0x2}
		for r, p := range guestRegOrder(&regs) {
			*p = binary.LittleEndian.Uint64(raw[8*r:])
		}
		legacy := make([]byte, xsaveLegacySize)
		fill(legacy[160:416])
		// The guest's rounding control, flush-to-zero and
		// denormals-are-zero come from the input too.
		const modes = 0x6000 | 0x8000 | 0x40
		binary.LittleEndian.PutUint32(legacy[24:], mxcsrMasks|uint32(raw[0])<<8&modes|uint32(raw[1])&0x40)
		operand := make([]byte, d.MemBytes)
		fill(operand)

		if err := x.run(&d, &regs, legacy, operand); err != nil {
			t.Fatal(err)
		}
		if err := checkHostSSE(); err != nil {
			t.Fatalf("after %v: %v: the host's SSE state was not restored", d.Inst, err)
		}
	})
}

// checkHostSSE reports whether the host's floating-point arithmetic
// still rounds to nearest and keeps denormals, as Go expects of MXCSR.
func checkHostSSE() error {
	const small = 1e-17 // below half the spacing of doubles near 1
	if add(1, small) != 1 || add(1, -small) != 1 {
		return fmt.Errorf("1 ± %g is not 1: the rounding mode is not round to nearest", small)
	}
	if tiny := 1e-310; multiply(tiny, 0.5) == 0 || multiply(tiny, 1) != tiny {
		return fmt.Errorf("denormals are flushed to zero")
	}
	return nil
}

//go:noinline
func add(a, b float64) float64 { return a + b }

//go:noinline
func multiply(a, b float64) float64 { return a * b }
