package hermit

import (
	"errors"
	"strings"
	"testing"
)

func TestVCPUErrorMessage(t *testing.T) {
	cause := errors.New("vCPU 1: handler for OUT to port 0x440: bad")
	e := &VCPUError{VCPU: 1, Err: cause, HaveRegs: true, Regs: Registers{RIP: 0x40123, RSP: 0x38000, CR3: 0x10000}}
	msg := e.Error()
	for _, want := range []string{"hermit: vCPU 1: handler", "rip 0000000000040123", "rsp 0000000000038000", "cr3 0000000000010000"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if !errors.Is(e, cause) {
		t.Errorf("VCPUError does not unwrap to its cause")
	}

	e = &VCPUError{VCPU: 0, Err: cause, Instruction: []byte{0x0f, 0x01, 0xd0}, HaveRegs: true, Regs: Registers{RIP: 0xc5172}}
	if msg := e.Error(); !strings.Contains(msg, "rejected xgetbv at RIP 0xc5172 (bytes from RIP: 0f 01 d0)") {
		t.Errorf("message %q does not name the instruction and its address", msg)
	}
}
