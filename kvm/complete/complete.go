package complete

// Exception vectors the monitor injects (Intel SDM volume 3, 6.3.1).
const (
	vectorUD = 6  // invalid opcode
	vectorNM = 7  // device not available
	vectorGP = 13 // general protection
	vectorPF = 14 // page fault
	vectorXM = 19 // SIMD floating-point exception
)

// xgetbvBytes is the encoding of XGETBV, which reads the extended control
// register that ECX names into EDX:EAX.
var xgetbvBytes = []byte{0x0f, 0x01, 0xd0}

// isXGETBV reports whether instruction is XGETBV without prefixes.
func isXGETBV(instruction []byte) bool {
	return len(instruction) >= len(xgetbvBytes) && string(instruction[:len(xgetbvBytes)]) == string(xgetbvBytes)
}

// usesFPU reports whether an instruction is an x87, MMX, SSE or AVX
// instruction: the kind that raises #NM while CR0.TS is set. It looks at
// the opcode after the legacy and REX prefixes: the x87 escape bytes
// D8-DF, the VEX prefixes C4 and C5, the EVEX prefix 62 (which is not
// BOUND in 64-bit mode), and the two-byte opcodes whose map entries are
// MMX or SSE instructions.
func usesFPU(instruction []byte) bool {
	i := 0
	has66 := false
	for i < len(instruction) {
		b := instruction[i]
		if b == 0x66 || b == 0xf2 || b == 0xf3 || b == 0x2e || b == 0x3e || b == 0x26 || b == 0x36 ||
			b == 0x64 || b == 0x65 || b == 0x67 || b == 0xf0 || (b >= 0x40 && b <= 0x4f) {
			has66 = has66 || b == 0x66
			i++
			continue
		}
		break
	}
	if i >= len(instruction) {
		return false
	}
	switch op := instruction[i]; {
	case op >= 0xd8 && op <= 0xdf, op == 0xc4, op == 0xc5, op == 0x62:
		return true
	case op != 0x0f || i+1 >= len(instruction):
		return false
	}
	second := instruction[i+1]
	switch {
	case second >= 0x10 && second <= 0x17, second >= 0x28 && second <= 0x2f,
		second >= 0x50 && second <= 0x7f, second == 0x38, second == 0x3a,
		second == 0xc2, second >= 0xc4 && second <= 0xc6, second >= 0xd0:
		return true
	case second == 0xae:
		// FXSAVE, FXRSTOR, LDMXCSR, STMXCSR, XSAVE, XRSTOR and XSAVEOPT
		// by their ModRM reg field 0 to 6 with a memory operand; with 66,
		// field 6 is CLWB, and the register forms are fences and others.
		if i+2 >= len(instruction) {
			return false
		}
		modrm := instruction[i+2]
		reg := (modrm >> 3) & 7
		return modrm>>6 != 3 && (reg <= 5 || reg == 6 && !has66)
	}
	return false
}
