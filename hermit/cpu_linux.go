//go:build amd64

package hermit

import (
	"encoding/binary"
	"fmt"

	"github.com/osvm-project/osvm/kvm"
)

// CPUID bits and leaves that guestCPUID sets (Intel SDM Vol. 2A, CPUID).
const (
	cpuid1ECXTSCDeadline = 1 << 24
	cpuid1ECXHypervisor  = 1 << 31
	cpuid1EDXMSR         = 1 << 5

	// Leaf 0xD, subleaf 1, EAX bit 3: XSAVES and XRSTORS.
	cpuidDXSAVES = 1 << 3
	// Leaf 0xD, subleaf 0, EDX:EAX: the XCR0 bits the guest may set; x87,
	// SSE and AVX are bits 0 to 2.
	xcr0X87SSEAVX = 0b111

	leafHypervisorBase = 0x4000_0000
	// leafTiming is the VMware timing leaf: EAX the TSC frequency in kHz,
	// EBX the local APIC timer frequency in kHz. Hermit kernels read it when
	// the boot information and the FDT give no frequency, and only if leaf
	// 0x4000_0000 reports it as present.
	leafTiming = 0x4000_0010

	// apicTimerKHz is the frequency of KVM's emulated local APIC timer:
	// its bus cycle is 1 ns (APIC_BUS_CYCLE_NS_DEFAULT in Linux).
	apicTimerKHz = 1_000_000

	msrIA32MiscEnable     = 0x1a0
	miscEnableFastStrings = 1 << 0
)

// brandString is the processor brand that CPUID 0x8000_0002 to 0x8000_0004
// return, replacing the host's as uhyve does. Kernels do not check it. It
// contains no frequency, because kernels up to 0.8 parse one from the brand
// as a late fallback.
const brandString = "osvm-launch - unikernel hypervisor"

// guestCPUID returns the CPUID table for vCPU id, starting from
// supported (KVM_GET_SUPPORTED_CPUID). It makes the changes uhyve makes:
// the hypervisor, TSC-deadline and MSR feature bits set, no performance
// monitoring (leaf 0xA), its own brand string. In addition it reports the
// TSC frequency in leaf 0x4000_0010 when tscKHz is not 0, and the vCPU's
// APIC id in leaves 1, 0xB and 0x1F. supported is not modified.
func guestCPUID(supported []kvm.CPUIDEntry, id int, tscKHz uint32) []kvm.CPUIDEntry {
	out := make([]kvm.CPUIDEntry, 0, len(supported)+2)
	var brand [48]byte
	copy(brand[:], brandString)
	haveTiming := false

	for _, e := range supported {
		switch e.Function {
		case 1:
			e.ECX |= cpuid1ECXHypervisor | cpuid1ECXTSCDeadline
			e.EDX |= cpuid1EDXMSR
			e.EBX = e.EBX&0x00ff_ffff | uint32(id)<<24
		case 0xa:
			e.EAX = 0
		case 0xd:
			switch e.Index {
			case 0:
				// Offer x87, SSE and AVX state only: package
				// kvm/complete saves and restores no other component
				// where KVM's emulator rejects XSAVE.
				e.EAX &= xcr0X87SSEAVX
				e.EDX = 0
			case 1:
				// Hide XSAVES, which package kvm/complete does not
				// complete.
				e.EAX &^= cpuidDXSAVES
			}
		case 0xb, 0x1f:
			e.EDX = uint32(id)
		case 0x8000_0002, 0x8000_0003, 0x8000_0004:
			off := 16 * (e.Function - 0x8000_0002)
			e.EAX, e.EBX, e.ECX, e.EDX = le32(brand[off:]), le32(brand[off+4:]), le32(brand[off+8:]), le32(brand[off+12:])
		case leafHypervisorBase:
			if tscKHz != 0 {
				e.EAX = max(e.EAX, leafTiming)
			}
		case leafTiming:
			haveTiming = true
			if tscKHz != 0 {
				e.EAX, e.EBX = tscKHz, apicTimerKHz
			}
		}
		out = append(out, e)
	}
	if tscKHz != 0 && !haveTiming {
		out = append(out, kvm.CPUIDEntry{Function: leafTiming, EAX: tscKHz, EBX: apicTimerKHz})
	}
	return out
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// bootRegs returns the registers a vCPU starts with: RIP at the entry
// point, RDI the boot information, RSI the CPU number, RSP the lowest
// address of the boot stack (the kernel adds the stack size itself) and
// interrupts off. Every vCPU starts this way; the kernel keeps the
// application processors spinning until the boot CPU lets them in.
func bootRegs(l layout, entry uint64, id int) kvm.Regs {
	return kvm.Regs{
		RIP:    entry,
		RDI:    l.BootInfo,
		RSI:    uint64(id),
		RSP:    l.Stack,
		RFLAGS: kvm.RFLAGSReserved,
	}
}

// setupVCPU sets the CPU state of vCPU id for entering the kernel in 64-bit
// mode.
func setupVCPU(v *kvm.VCPU, l layout, entry uint64, cpuid []kvm.CPUIDEntry) error {
	id := v.ID()
	if err := v.SetCPUID(cpuid); err != nil {
		return err
	}

	s, err := v.SRegs()
	if err != nil {
		return err
	}
	s.SetLongMode(l.GDT, l.PML4)
	if err := v.SetSRegs(s); err != nil {
		return err
	}
	if err := v.SetRegs(bootRegs(l, entry, id)); err != nil {
		return err
	}

	// The x87 and SSE control words start as after FNINIT and reset
	// (FCW 0x037f, MXCSR 0x1f80, Intel SDM volume 1, 8.1.5 and 10.2.3.1).
	// KVM leaves both 0 on some hosts, and a kernel that saves its FPU
	// state before loading its own would then save zeros.
	if err := initFPUControl(v); err != nil {
		return err
	}

	// uhyve also writes IA32_MISC_ENABLE with only fast strings enabled.
	if err := v.SetMSRs(kvm.MSR{Index: msrIA32MiscEnable, Value: miscEnableFastStrings}); err != nil {
		return err
	}

	// With the in-kernel IRQ chip, KVM holds every vCPU but the first in
	// wait-for-INIT. Hermit expects all CPUs to start at the entry point.
	if id != 0 {
		if err := v.SetMPState(kvm.MPStateRunnable); err != nil {
			return fmt.Errorf("start application processor: %w", err)
		}
	}
	return nil
}

// initFPUControl sets FCW and MXCSR to their initial values in the vCPU's
// XSAVE state.
func initFPUControl(v *kvm.VCPU) error {
	state, err := v.XSave()
	if err != nil {
		return fmt.Errorf("initialize FPU state: %w", err)
	}
	area := state.Bytes()
	binary.LittleEndian.PutUint16(area[0:], 0x037f)
	binary.LittleEndian.PutUint32(area[24:], 0x1f80)

	// KVM_SET_XSAVE takes a component only with its XSTATE_BV bit set:
	// the header's first field, at byte 512; x87 is bit 0, SSE bit 1.
	const xstateBV, x87AndSSE = 512, 0b11
	bv := binary.LittleEndian.Uint64(area[xstateBV:])
	binary.LittleEndian.PutUint64(area[xstateBV:], bv|x87AndSSE)
	if err := v.SetXSave(state); err != nil {
		return fmt.Errorf("initialize FPU state: %w", err)
	}
	return nil
}
