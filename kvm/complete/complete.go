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

// fpuClass is the kind of x87, MMX, SSE, AVX or XSAVE instruction an
// instruction is, which decides the exceptions it raises before it runs.
type fpuClass uint8

const (
	fpuNone  fpuClass = iota // not one of them
	fpuX87                   // D8-DF: #NM while CR0.EM or CR0.TS is set
	fpuSSE                   // 0F map MMX and SSE: #UD while CR0.EM is set or CR4.OSFXSR clear
	fpuVEX                   // VEX and EVEX: #UD per vexUndefined
	fpuXSave                 // XSAVE family: #UD while CR4.OSXSAVE is clear
)

// fpuKind classifies an instruction by its opcode after the legacy and REX
// prefixes. It looks for the x87 escape bytes D8-DF, the VEX prefixes C4
// and C5, and the EVEX prefix 62 (which is not BOUND in 64-bit mode). It
// also looks for the two-byte opcodes whose map entries are MMX or SSE
// instructions, and the XSAVE family in groups 0F AE and 0F C7. Every
// class but fpuNone raises #NM while CR0.TS is set.
func fpuKind(instruction []byte) fpuClass {
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
		return fpuNone
	}
	switch op := instruction[i]; {
	case op >= 0xd8 && op <= 0xdf:
		return fpuX87
	case op == 0xc4, op == 0xc5, op == 0x62:
		return fpuVEX
	case op != 0x0f || i+1 >= len(instruction):
		return fpuNone
	}
	second := instruction[i+1]
	switch {
	case second >= 0x10 && second <= 0x17, second >= 0x28 && second <= 0x2f,
		second >= 0x50 && second <= 0x7f, second == 0x38, second == 0x3a,
		second == 0xc2, second >= 0xc4 && second <= 0xc6, second >= 0xd0:
		return fpuSSE
	case second == 0xae || second == 0xc7:
		// With a memory operand, by the ModRM reg field: 0F AE /0 to /3
		// are FXSAVE, FXRSTOR, LDMXCSR and STMXCSR, /4 to /6 XSAVE,
		// XRSTOR and XSAVEOPT (CLWB with 66); 0F C7 /3 to /5 are
		// XRSTORS, XSAVEC and XSAVES. The register forms are fences,
		// RDRAND and others.
		if i+2 >= len(instruction) {
			return fpuNone
		}
		modrm := instruction[i+2]
		reg := (modrm >> 3) & 7
		switch {
		case modrm>>6 == 3:
			return fpuNone
		case second == 0xae && reg <= 3:
			return fpuSSE
		case second == 0xae && (reg <= 5 || reg == 6 && !has66),
			second == 0xc7 && reg >= 3 && reg <= 5:
			return fpuXSave
		}
	}
	return fpuNone
}
