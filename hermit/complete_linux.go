package hermit

import (
	"fmt"

	"github.com/osvm-project/osvm/kvm"
)

// cr4OSXSAVE is CR4.OSXSAVE, which enables XGETBV and XSETBV.
const cr4OSXSAVE = 1 << 18

// completeRejected does what the CPU would for an instruction KVM's
// emulator rejected, where the monitor can: XGETBV reads the
// vCPU's extended control registers, XSAVE and XRSTOR copy state between
// the vCPU and guest memory, and an x87 or SSE instruction while CR0.TS is
// set raises #NM, as on hardware. It reports whether the guest
// may go on; false leaves the exit an error.
func completeRejected(v *kvm.VCPU, mem GuestMemory, exit *kvm.ExitError) (bool, error) {
	instruction := emulationInstruction(exit.Data)
	if instruction == nil {
		return false, nil
	}
	sregs, err := v.SRegs()
	if err != nil {
		return false, err
	}

	if sregs.CR0&kvm.CR0TS != 0 && usesFPU(instruction) {
		return true, inject(v, vectorNM, false)
	}
	if !isXGETBV(instruction) {
		return completeXSave(v, mem, instruction)
	}
	if sregs.CR4&cr4OSXSAVE == 0 {
		return true, inject(v, vectorUD, false)
	}

	regs, err := v.Regs()
	if err != nil {
		return false, err
	}
	xcrs, err := v.XCRs()
	if err != nil {
		return false, err
	}
	index := uint32(regs.RCX)
	for _, xcr := range xcrs {
		if xcr.XCR != index {
			continue
		}
		// XGETBV writes EDX:EAX, which clears the upper halves of RDX
		// and RAX.
		regs.RAX = xcr.Value & 0xffffffff
		regs.RDX = xcr.Value >> 32
		regs.RIP += uint64(len(xgetbvBytes))
		if err := v.SetRegs(regs); err != nil {
			return false, fmt.Errorf("complete XGETBV: %w", err)
		}
		return true, nil
	}
	// An extended control register the CPU does not have.
	return true, inject(v, vectorGP, true)
}

// inject makes vector the vCPU's next exception, as the CPU would raise
// it at the current instruction; errorCode adds an error code of 0.
func inject(v *kvm.VCPU, vector uint8, errorCode bool) error {
	events, err := v.Events()
	if err != nil {
		return fmt.Errorf("inject exception %d: %w", vector, err)
	}
	events.Exception.Injected = 1
	events.Exception.Nr = vector
	events.Exception.HasErrorCode = 0
	if errorCode {
		events.Exception.HasErrorCode = 1
	}
	events.Exception.ErrorCode = 0
	events.Exception.Pending = 0
	if err := v.SetEvents(events); err != nil {
		return fmt.Errorf("inject exception %d: %w", vector, err)
	}
	return nil
}
