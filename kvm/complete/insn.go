package complete

import (
	"fmt"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// sseMnemonics names common two-byte 0F opcodes by mandatory prefix ("" for
// none, or 66, F2, F3), so that an error can name the SSE instruction a
// guest used. It covers what compilers emit for memcpy, string and floating
// point code; others are reported by their bytes alone.
var sseMnemonics = map[string]map[byte]string{
	"": {
		0x10: "movups", 0x11: "movups", 0x28: "movaps", 0x29: "movaps", 0x2e: "ucomiss", 0x2f: "comiss",
		0x54: "andps", 0x57: "xorps", 0x58: "addps", 0x59: "mulps", 0x5a: "cvtps2pd", 0x5e: "divps",
	},
	"66": {
		0x10: "movupd", 0x11: "movupd", 0x28: "movapd", 0x29: "movapd", 0x2e: "ucomisd", 0x2f: "comisd",
		0x54: "andpd", 0x57: "xorpd", 0x60: "punpcklbw", 0x6c: "punpcklqdq", 0x6e: "movd/movq",
		0x6f: "movdqa", 0x70: "pshufd", 0x74: "pcmpeqb", 0x75: "pcmpeqw", 0x76: "pcmpeqd", 0x7e: "movd/movq",
		0x7f: "movdqa", 0xd4: "paddq", 0xd6: "movq", 0xd7: "pmovmskb", 0xda: "pminub", 0xdb: "pand",
		0xeb: "por", 0xef: "pxor", 0xfe: "paddd",
	},
	"f2": {
		0x10: "movsd", 0x11: "movsd", 0x2a: "cvtsi2sd", 0x2c: "cvttsd2si", 0x2d: "cvtsd2si", 0x51: "sqrtsd",
		0x58: "addsd", 0x59: "mulsd", 0x5a: "cvtsd2ss", 0x5c: "subsd", 0x5e: "divsd",
	},
	"f3": {
		0x10: "movss", 0x11: "movss", 0x2a: "cvtsi2ss", 0x2c: "cvttss2si", 0x51: "sqrtss", 0x58: "addss",
		0x59: "mulss", 0x5a: "cvtss2sd", 0x6f: "movdqu", 0x7e: "movq", 0x7f: "movdqu", 0xb8: "popcnt",
		0xbc: "tzcnt", 0xbd: "lzcnt",
	},
}

// groupMnemonics names 0F AE and 0F C7 instructions by the reg field of
// their ModRM byte, for memory operands ([0]) and register operands ([1]).
var groupMnemonics = map[byte][2][8]string{
	0xae: {
		{"fxsave", "fxrstor", "ldmxcsr", "stmxcsr", "xsave", "xrstor", "xsaveopt", "clflush"},
		{"rdfsbase", "rdgsbase", "wrfsbase", "wrgsbase", "", "lfence", "mfence", "sfence"},
	},
	0xc7: {
		{"", "cmpxchg8b/16b", "", "xrstors", "xsavec", "xsaves", "", ""},
		{"", "", "", "", "", "", "rdrand", "rdseed"},
	},
}

// Describe returns the mnemonic of the x86-64 instruction at
// the start of b, or "" if it does not recognize it: x86asm's name where
// it decodes b, else a best-effort name from the legacy and REX prefixes
// and the 0F two-byte map.
func Describe(b []byte) string {
	if inst, err := x86asm.Decode(b, 64); err == nil && inst.Op != 0 {
		name := strings.ToLower(inst.Op.String())
		name, _, _ = strings.Cut(name, "_") // MOVSD_XMM and CMPSD_XMM
		return name
	}
	prefix := ""
	i := 0
	for ; i < len(b) && isLegacyPrefix(b[i]); i++ {
		if c := b[i]; c == 0x66 || c == 0xf2 || c == 0xf3 {
			prefix = fmt.Sprintf("%02x", c)
		}
	}
	if i < len(b) && b[i]&0xf0 == 0x40 { // REX
		i++
	}

	if i >= len(b) {
		return ""
	}
	switch b[i] {
	case 0xc4, 0xc5:
		return "a VEX-encoded (AVX) instruction"
	case 0x62:
		return "an EVEX-encoded (AVX-512) instruction"
	case 0x0f:
	default:
		return ""
	}

	if i+1 >= len(b) {
		return ""
	}
	op := b[i+1]
	var modrm byte
	hasModRM := i+2 < len(b)
	if hasModRM {
		modrm = b[i+2]
	}

	switch {
	case op == 0x01 && hasModRM && modrm == 0xd0:
		return "xgetbv"
	case op == 0x01 && hasModRM && modrm == 0xd1:
		return "xsetbv"
	case op == 0x01 && hasModRM && modrm == 0xf9:
		return "rdtscp"
	case op == 0xa2:
		return "cpuid"
	case op == 0x31:
		return "rdtsc"
	case (op == 0xae || op == 0xc7) && hasModRM:
		form := 0
		if modrm>>6 == 3 {
			form = 1
		}
		if name := groupMnemonics[op][form][modrm>>3&7]; name != "" {
			return name
		}
	case op == 0x38 || op == 0x3a:
		return "an SSSE3/SSE4 instruction (0f " + fmt.Sprintf("%02x", op) + ")"
	}

	if name := sseMnemonics[prefix][op]; name != "" {
		return name
	}
	return ""
}

// isLegacyPrefix reports whether c is an operand-size, repeat, lock,
// segment or address-size prefix.
func isLegacyPrefix(c byte) bool {
	switch c {
	case 0x66, 0xf2, 0xf3, 0xf0, 0x2e, 0x3e, 0x26, 0x36, 0x64, 0x65, 0x67:
		return true
	}
	return false
}
