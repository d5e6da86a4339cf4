package complete

import "testing"

func TestUsesFPU(t *testing.T) {
	tests := []struct {
		bytes []byte
		want  bool
	}{
		{[]byte{0x0f, 0x57, 0xc0}, true},                   // xorps
		{[]byte{0x66, 0x0f, 0xef, 0xc0}, true},             // pxor
		{[]byte{0xf2, 0x0f, 0x59, 0xc1}, true},             // mulsd
		{[]byte{0x66, 0x48, 0x0f, 0x6e, 0xc0}, true},       // movq with REX.W
		{[]byte{0xc5, 0xf8, 0x77}, true},                   // vzeroupper
		{[]byte{0xd9, 0xc9}, true},                         // fxch
		{[]byte{0x0f, 0xae, 0x20}, true},                   // xsave [rax]
		{[]byte{0x0f, 0xae, 0x30}, true},                   // xsaveopt [rax]
		{[]byte{0x66, 0x0f, 0xae, 0x30}, false},            // clwb [rax]
		{[]byte{0x62, 0xf1, 0x7c, 0x48, 0x57, 0xc0}, true}, // vxorps zmm0 (EVEX)
		{[]byte{0x0f, 0xae, 0xf0}, false},                  // mfence
		{[]byte{0x0f, 0x01, 0xd0}, false},                  // xgetbv
		{[]byte{0x48, 0x89, 0xc3}, false},                  // mov rbx, rax
		{[]byte{0x0f, 0x05}, false},                        // syscall
		{[]byte{0x66}, false},                              // prefix only
		{nil, false},
	}
	for _, tt := range tests {
		if got := usesFPU(tt.bytes); got != tt.want {
			t.Errorf("usesFPU(% x) = %v, want %v", tt.bytes, got, tt.want)
		}
	}
	if !isXGETBV([]byte{0x0f, 0x01, 0xd0, 0x90}) || isXGETBV([]byte{0x0f, 0x01, 0xd1}) {
		t.Error("isXGETBV misreads its bytes")
	}
}
