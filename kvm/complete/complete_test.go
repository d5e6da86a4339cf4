package complete

import (
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

func TestFPUKind(t *testing.T) {
	tests := []struct {
		bytes []byte
		want  fpuClass
	}{
		{[]byte{0x0f, 0x57, 0xc0}, fpuSSE},                   // xorps
		{[]byte{0x66, 0x0f, 0xef, 0xc0}, fpuSSE},             // pxor
		{[]byte{0xf2, 0x0f, 0x59, 0xc1}, fpuSSE},             // mulsd
		{[]byte{0x66, 0x48, 0x0f, 0x6e, 0xc0}, fpuSSE},       // movq with REX.W
		{[]byte{0xc5, 0xf8, 0x77}, fpuVEX},                   // vzeroupper
		{[]byte{0xd9, 0xc9}, fpuX87},                         // fxch
		{[]byte{0x0f, 0xae, 0x20}, fpuXSave},                 // xsave [rax]
		{[]byte{0x0f, 0xae, 0x30}, fpuXSave},                 // xsaveopt [rax]
		{[]byte{0x66, 0x0f, 0xae, 0x30}, fpuNone},            // clwb [rax]
		{[]byte{0x62, 0xf1, 0x7c, 0x48, 0x57, 0xc0}, fpuVEX}, // vxorps zmm0 (EVEX)
		{[]byte{0x0f, 0xae, 0xf0}, fpuNone},                  // mfence
		{[]byte{0x0f, 0x01, 0xd0}, fpuNone},                  // xgetbv
		{[]byte{0x48, 0x89, 0xc3}, fpuNone},                  // mov rbx, rax
		{[]byte{0x0f, 0x05}, fpuNone},                        // syscall
		{[]byte{0x0f, 0xc7, 0x20}, fpuXSave},                 // xsavec [rax]
		{[]byte{0x48, 0x0f, 0xc7, 0xf0}, fpuNone},            // rdrand rax
		{[]byte{0x0f, 0xae, 0x10}, fpuSSE},                   // ldmxcsr [rax]
		{[]byte{0x66}, fpuNone},                              // prefix only
		{nil, fpuNone},
	}
	for _, tt := range tests {
		if got := fpuKind(tt.bytes); got != tt.want {
			t.Errorf("fpuKind(% x) = %v, want %v", tt.bytes, got, tt.want)
		}
	}
	if !isXGETBV([]byte{0x0f, 0x01, 0xd0, 0x90}) || isXGETBV([]byte{0x0f, 0x01, 0xd1}) {
		t.Error("isXGETBV misreads its bytes")
	}
}

// TestRegisterNumbers checks that x86asm lists RAX to R15 in the order of
// their register numbers, which effectiveAddress relies on.
func TestRegisterNumbers(t *testing.T) {
	order := []x86asm.Reg{
		x86asm.RAX, x86asm.RCX, x86asm.RDX, x86asm.RBX, x86asm.RSP, x86asm.RBP, x86asm.RSI, x86asm.RDI,
		x86asm.R8, x86asm.R9, x86asm.R10, x86asm.R11, x86asm.R12, x86asm.R13, x86asm.R14, x86asm.R15,
	}
	for n, r := range order {
		if r != x86asm.RAX+x86asm.Reg(n) {
			t.Errorf("register %d is %v, which is not RAX+%d", n, r, n)
		}
	}
}
