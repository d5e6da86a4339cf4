package complete

import (
	"fmt"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// Describe returns the mnemonic of the x86-64 instruction at the start of
// b as x86asm decodes it, or for too few bytes the instruction family its
// first bytes show, or "" if it does not recognize them.
func Describe(b []byte) string {
	if inst, err := x86asm.Decode(b, 64); err == nil && inst.Op != 0 {
		name := strings.ToLower(inst.Op.String())
		name, _, _ = strings.Cut(name, "_") // MOVSD_XMM and CMPSD_XMM
		return name
	}

	// Too few bytes to decode: name the instruction's family from its
	// first bytes.
	i := 0
	for i < len(b) && isLegacyPrefix(b[i]) {
		i++
	}
	if i < len(b) && b[i]&0xf0 == 0x40 { // REX
		i++
	}
	switch {
	case i >= len(b):
		return ""
	case b[i] == 0xc4 || b[i] == 0xc5:
		return "a VEX-encoded (AVX) instruction"
	case b[i] == 0x62:
		return "an EVEX-encoded (AVX-512) instruction"
	case b[i] == 0x0f && i+1 < len(b) && (b[i+1] == 0x38 || b[i+1] == 0x3a):
		return fmt.Sprintf("an SSSE3/SSE4 instruction (0f %02x)", b[i+1])
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
