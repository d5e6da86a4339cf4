package complete

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

func TestPlanData(t *testing.T) {
	tests := []struct {
		name     string
		bytes    []byte
		wantErr  string // part of the error, if planData rejects the bytes
		code     []byte // the re-encoding, with a zero displacement
		memBytes int
		store    bool
		aligned  bool
	}{
		{name: "xorps xmm0, xmm0", bytes: []byte{0x0f, 0x57, 0xc0}, code: []byte{0x0f, 0x57, 0xc0}},
		{
			name: "movdqa xmm0, [rsp+0x10]", bytes: []byte{0x66, 0x0f, 0x6f, 0x44, 0x24, 0x10},
			code: []byte{0x66, 0x0f, 0x6f, 0x05, 0, 0, 0, 0}, memBytes: 16, aligned: true,
		},
		{
			name: "movaps [rsp+0x10], xmm0", bytes: []byte{0x0f, 0x29, 0x44, 0x24, 0x10},
			code: []byte{0x0f, 0x29, 0x05, 0, 0, 0, 0}, memBytes: 16, store: true, aligned: true,
		},
		{
			name: "movdqu xmm0, [rax+rcx]", bytes: []byte{0xf3, 0x0f, 0x6f, 0x04, 0x08},
			code: []byte{0xf3, 0x0f, 0x6f, 0x05, 0, 0, 0, 0}, memBytes: 16,
		},
		{
			name: "movsd xmm9, [r12+r13*8+0x100]", bytes: []byte{0xf2, 0x47, 0x0f, 0x10, 0x8c, 0xec, 0x00, 0x01, 0x00, 0x00},
			code: []byte{0xf2, 0x44, 0x0f, 0x10, 0x0d, 0, 0, 0, 0}, memBytes: 8,
		},
		{
			name: "movsd xmm0, fs:[0x10]", bytes: []byte{0x64, 0xf2, 0x0f, 0x10, 0x04, 0x25, 0x10, 0, 0, 0},
			code: []byte{0xf2, 0x0f, 0x10, 0x05, 0, 0, 0, 0}, memBytes: 8,
		},
		{
			name: "palignr xmm0, [rax+0x10], 8", bytes: []byte{0x66, 0x0f, 0x3a, 0x0f, 0x40, 0x10, 0x08},
			code: []byte{0x66, 0x0f, 0x3a, 0x0f, 0x05, 0, 0, 0, 0, 0x08}, memBytes: 16, aligned: true,
		},
		{name: "pextrd r8d, xmm0, 1", bytes: []byte{0x66, 0x41, 0x0f, 0x3a, 0x16, 0xc0, 0x01}, code: []byte{0x66, 0x41, 0x0f, 0x3a, 0x16, 0xc0, 0x01}},
		{
			name: "cvtsi2sd xmm1, qword [rbx]", bytes: []byte{0xf2, 0x48, 0x0f, 0x2a, 0x0b},
			code: []byte{0xf2, 0x48, 0x0f, 0x2a, 0x0d, 0, 0, 0, 0}, memBytes: 8,
		},
		{name: "movq xmm4, rsp", bytes: []byte{0x66, 0x48, 0x0f, 0x6e, 0xe4}, wantErr: "stack pointer"},
		{name: "paddd mm0, mm1", bytes: []byte{0x0f, 0xfe, 0xc1}, wantErr: "register M0"},
		{name: "lock addps", bytes: []byte{0xf0, 0x0f, 0x58, 0x00}, wantErr: "not an SSE data instruction"},
		{name: "vxorps", bytes: []byte{0xc5, 0xf8, 0x57, 0xc0}, wantErr: "VXORPS is not on the allowlist"},
		{name: "maskmovdqu", bytes: []byte{0x66, 0x0f, 0xf7, 0xc1}, wantErr: "MASKMOVDQU is not on the allowlist"},
		{name: "ldmxcsr", bytes: []byte{0x0f, 0xae, 0x10}, wantErr: "LDMXCSR is not on the allowlist"},
		{name: "truncated", bytes: []byte{0xf2, 0x0f, 0x10}, wantErr: "not an SSE data instruction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := planData(tt.bytes)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, errNotData) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("planData = %v, %v; want a refusal mentioning %q", d.Inst, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Code, tt.code) {
				t.Errorf("Code = % x, want % x", d.Code, tt.code)
			}
			if d.MemBytes != tt.memBytes || d.Store != tt.store || d.Aligned != tt.aligned || d.HasMem != (tt.memBytes > 0) {
				t.Errorf("memory operand: %d bytes, store %v, aligned %v, present %v; want %d, %v, %v",
					d.MemBytes, d.Store, d.Aligned, d.HasMem, tt.memBytes, tt.store, tt.aligned)
			}
			checkReencoding(t, &d)
		})
	}
}

// checkReencoding checks that d.Code, with a displacement filled in, is
// the same instruction as d.Inst with the memory operand replaced by
// [RIP+disp].
func checkReencoding(t testing.TB, d *dataInsn) {
	t.Helper()
	if len(d.Code) > 15 {
		t.Fatalf("Code is %d bytes, longer than any x86 instruction", len(d.Code))
	}
	code := append([]byte(nil), d.Code...)
	const disp = 0x1234
	if d.DispOffset >= 0 {
		binary.LittleEndian.PutUint32(code[d.DispOffset:], disp)
	}
	inst, err := x86asm.Decode(code, 64)
	if err != nil {
		t.Fatalf("re-encoding % x does not decode: %v", code, err)
	}
	if inst.Op != d.Inst.Op || inst.Len != len(code) {
		t.Fatalf("re-encoding % x decodes as %v (%d bytes), want %v (%d bytes)", code, inst, inst.Len, d.Inst.Op, len(code))
	}
	if _, ok := dataAllowlist[inst.Op]; !ok {
		t.Fatalf("re-encoding decodes as %v, which is not on the allowlist", inst.Op)
	}
	for i, arg := range d.Inst.Args {
		want := arg
		if _, ok := arg.(x86asm.Mem); ok {
			want = x86asm.Mem{Base: x86asm.RIP, Disp: disp}
		}
		if inst.Args[i] != want {
			t.Fatalf("re-encoding % x: argument %d is %v, want %v (original %v)", code, i, inst.Args[i], want, d.Inst)
		}
	}
	if inst.MemBytes != d.Inst.MemBytes {
		t.Fatalf("re-encoding % x accesses %d bytes, the original %d", code, inst.MemBytes, d.Inst.MemBytes)
	}
}
