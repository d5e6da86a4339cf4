package hermit

import (
	"errors"
	"fmt"
	"strings"

	"github.com/osvm-project/osvm/kvm"
	"github.com/osvm-project/osvm/kvm/complete"
)

// errGuestExited is the cancellation cause that stops the other vCPUs once
// one of them made the Exit hypercall.
var errGuestExited = errors.New("hermit: the guest exited")

// Registers is the vCPU state that VCPUError reports.
type Registers struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
	CR0, CR2, CR3, CR4, EFER               uint64
	CS, SS                                 uint16 // selectors
}

// VCPUError reports why a vCPU stopped the guest: a triple fault, an
// instruction KVM could not emulate, a hypercall the package rejected, a
// cancelled context or another error of kvm.VCPU.Run. It carries the vCPU's
// registers at that moment.
type VCPUError struct {
	VCPU int
	Err  error

	// Regs holds the registers, if HaveRegs is set. Reading them can fail
	// when the VM is already being torn down.
	Regs     Registers
	HaveRegs bool

	// Instruction holds the bytes of the instruction that KVM's
	// instruction emulator rejected (KVM_EXIT_INTERNAL_ERROR with suberror
	// KVM_INTERNAL_ERROR_EMULATION), if KVM reported them.
	Instruction []byte
}

// Error describes the failure on one line, then the registers. The
// wrapped errors of kvm.VCPU.Run name the vCPU already.
func (e *VCPUError) Error() string {
	var b strings.Builder
	b.WriteString("hermit: ")
	b.WriteString(e.Err.Error())
	if e.Instruction != nil || isEmulationFailure(e.Err) {
		b.WriteString(": KVM's instruction emulator rejected ")
		name := ""
		if e.Instruction != nil {
			name = complete.Describe(e.Instruction)
		}
		if name == "" {
			name = "an instruction"
		}
		b.WriteString(name)
		if e.HaveRegs {
			fmt.Fprintf(&b, " at RIP %#x", e.Regs.RIP)
		}
		if e.Instruction != nil {
			fmt.Fprintf(&b, " (bytes from RIP: % x)", e.Instruction)
		}
		if u, ok := errors.AsType[*complete.UncompletedError](e.Err); ok {
			b.WriteString(", which the monitor does not complete: " + u.Reason.Error())
		}
	}
	if e.HaveRegs {
		b.WriteString("\n")
		b.WriteString(e.Regs.String())
	}
	return b.String()
}

func (e *VCPUError) Unwrap() error {
	return e.Err
}

// isEmulationFailure reports whether err comes from KVM_EXIT_INTERNAL_ERROR
// with suberror KVM_INTERNAL_ERROR_EMULATION.
func isEmulationFailure(err error) bool {
	var exit *kvm.ExitError
	return errors.As(err, &exit) && exit.Reason == kvm.ExitInternalError && exit.Suberror == kvm.InternalErrorEmulation
}

// String formats the registers as a dump of five lines.
func (r Registers) String() string {
	return fmt.Sprintf(
		"  rip %016x  rflags %016x  cs %04x  ss %04x\n"+
			"  rax %016x  rbx %016x  rcx %016x  rdx %016x\n"+
			"  rsi %016x  rdi %016x  rsp %016x  rbp %016x\n"+
			"  r8  %016x  r9  %016x  r10 %016x  r11 %016x\n"+
			"  r12 %016x  r13 %016x  r14 %016x  r15 %016x\n"+
			"  cr0 %016x  cr2 %016x  cr3 %016x  cr4 %016x  efer %016x",
		r.RIP, r.RFLAGS, r.CS, r.SS,
		r.RAX, r.RBX, r.RCX, r.RDX,
		r.RSI, r.RDI, r.RSP, r.RBP,
		r.R8, r.R9, r.R10, r.R11,
		r.R12, r.R13, r.R14, r.R15,
		r.CR0, r.CR2, r.CR3, r.CR4, r.EFER)
}
