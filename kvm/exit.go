package kvm

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// ExitReason is kvm_run.exit_reason, why KVM_RUN returned to the VMM. The
// values are the KVM_EXIT_* numbers of Linux include/uapi/linux/kvm.h.
type ExitReason uint32

// Exit reasons that can occur on x86.
const (
	ExitUnknown       ExitReason = 0
	ExitException     ExitReason = 1
	ExitIO            ExitReason = 2
	ExitHypercall     ExitReason = 3
	ExitDebug         ExitReason = 4
	ExitHLT           ExitReason = 5
	ExitMMIO          ExitReason = 6
	ExitIRQWindowOpen ExitReason = 7
	ExitShutdown      ExitReason = 8
	ExitFailEntry     ExitReason = 9
	ExitIntr          ExitReason = 10
	ExitSetTPR        ExitReason = 11
	ExitTPRAccess     ExitReason = 12
	ExitNMI           ExitReason = 16
	ExitInternalError ExitReason = 17
	ExitSystemEvent   ExitReason = 24
	ExitIOAPICEOI     ExitReason = 26
	ExitHyperV        ExitReason = 27
	ExitX86RDMSR      ExitReason = 29
	ExitX86WRMSR      ExitReason = 30
	ExitDirtyRingFull ExitReason = 31
	ExitAPResetHold   ExitReason = 32
	ExitX86BusLock    ExitReason = 33
	ExitXen           ExitReason = 34
	ExitNotify        ExitReason = 37
	ExitMemoryFault   ExitReason = 39
)

// exitNames lists every KVM_EXIT_* name up to KVM_EXIT_MEMORY_FAULT (Linux
// 6.8), including those of other architectures, so that an unexpected exit is
// reported by name.
var exitNames = [...]string{
	"KVM_EXIT_UNKNOWN", "KVM_EXIT_EXCEPTION", "KVM_EXIT_IO", "KVM_EXIT_HYPERCALL",
	"KVM_EXIT_DEBUG", "KVM_EXIT_HLT", "KVM_EXIT_MMIO", "KVM_EXIT_IRQ_WINDOW_OPEN",
	"KVM_EXIT_SHUTDOWN", "KVM_EXIT_FAIL_ENTRY", "KVM_EXIT_INTR", "KVM_EXIT_SET_TPR",
	"KVM_EXIT_TPR_ACCESS", "KVM_EXIT_S390_SIEIC", "KVM_EXIT_S390_RESET", "KVM_EXIT_DCR",
	"KVM_EXIT_NMI", "KVM_EXIT_INTERNAL_ERROR", "KVM_EXIT_OSI", "KVM_EXIT_PAPR_HCALL",
	"KVM_EXIT_S390_UCONTROL", "KVM_EXIT_WATCHDOG", "KVM_EXIT_S390_TSCH", "KVM_EXIT_EPR",
	"KVM_EXIT_SYSTEM_EVENT", "KVM_EXIT_S390_STSI", "KVM_EXIT_IOAPIC_EOI", "KVM_EXIT_HYPERV",
	"KVM_EXIT_ARM_NISV", "KVM_EXIT_X86_RDMSR", "KVM_EXIT_X86_WRMSR", "KVM_EXIT_DIRTY_RING_FULL",
	"KVM_EXIT_AP_RESET_HOLD", "KVM_EXIT_X86_BUS_LOCK", "KVM_EXIT_XEN", "KVM_EXIT_RISCV_SBI",
	"KVM_EXIT_RISCV_CSR", "KVM_EXIT_NOTIFY", "KVM_EXIT_LOONGARCH_IOCSR", "KVM_EXIT_MEMORY_FAULT",
}

// String returns the kernel's name for r, such as "KVM_EXIT_IO", or
// "KVM_EXIT(n)" for a number newer than this package.
func (r ExitReason) String() string {
	if int(r) < len(exitNames) {
		return exitNames[r]
	}
	return fmt.Sprintf("KVM_EXIT(%d)", uint32(r))
}

// SystemEventType is kvm_run.system_event.type, the kind of a
// KVM_EXIT_SYSTEM_EVENT exit.
type SystemEventType uint32

// System event types, KVM_SYSTEM_EVENT_* in include/uapi/linux/kvm.h.
const (
	SystemEventShutdown SystemEventType = 1
	SystemEventReset    SystemEventType = 2
	SystemEventCrash    SystemEventType = 3
	SystemEventWakeup   SystemEventType = 4
	SystemEventSuspend  SystemEventType = 5
	SystemEventSEVTerm  SystemEventType = 6
)

var systemEventNames = map[SystemEventType]string{
	SystemEventShutdown: "KVM_SYSTEM_EVENT_SHUTDOWN",
	SystemEventReset:    "KVM_SYSTEM_EVENT_RESET",
	SystemEventCrash:    "KVM_SYSTEM_EVENT_CRASH",
	SystemEventWakeup:   "KVM_SYSTEM_EVENT_WAKEUP",
	SystemEventSuspend:  "KVM_SYSTEM_EVENT_SUSPEND",
	SystemEventSEVTerm:  "KVM_SYSTEM_EVENT_SEV_TERM",
}

// String returns the kernel's name for t, such as "KVM_SYSTEM_EVENT_RESET".
func (t SystemEventType) String() string {
	if name, ok := systemEventNames[t]; ok {
		return name
	}
	return fmt.Sprintf("KVM_SYSTEM_EVENT(%d)", uint32(t))
}

// Suberrors of KVM_EXIT_INTERNAL_ERROR, KVM_INTERNAL_ERROR_* in
// include/uapi/linux/kvm.h.
const (
	InternalErrorEmulation            = 1 // the instruction emulator failed or does not support the instruction
	InternalErrorSimulEx              = 2 // an exception occurred while delivering another
	InternalErrorDeliveryEv           = 3 // an exit occurred while delivering an event
	InternalErrorUnexpectedExitReason = 4 // the hardware exit reason is unknown to KVM
)

var suberrorNames = map[uint32]string{
	InternalErrorEmulation:            "KVM_INTERNAL_ERROR_EMULATION",
	InternalErrorSimulEx:              "KVM_INTERNAL_ERROR_SIMUL_EX",
	InternalErrorDeliveryEv:           "KVM_INTERNAL_ERROR_DELIVERY_EV",
	InternalErrorUnexpectedExitReason: "KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON",
}

// PortIO is a KVM_EXIT_IO exit: the guest executed IN, OUT, INS or OUTS on
// Port. Data is Size*Count bytes inside the vCPU's kvm_run mapping, valid only
// until the handler returns. For an OUT it holds the bytes the guest wrote.
// For an IN the handler fills it, and KVM completes the instruction with those
// bytes on the next KVM_RUN.
type PortIO struct {
	Port  uint16
	Size  int // access width in bytes: 1, 2 or 4
	Count int // number of accesses, more than 1 only for REP INS and REP OUTS
	Data  []byte
}

// Handlers receives the exits of VCPU.Run. A nil func makes that exit end Run
// with an error (see Run). A func that returns nil resumes the guest. One
// that returns ErrStop (or an error wrapping it) ends Run with a nil error,
// and any other error ends Run with that error.
//
// Run calls the funcs on the vCPU's own OS thread, one exit at a time. They
// may call methods of the same VCPU, such as Regs. They must not call Close on
// it, and should not block on methods of another VCPU whose Run is active,
// because those wait until that Run returns.
type Handlers struct {
	// PortIn handles an IN or INS instruction and must fill io.Data.
	PortIn func(io PortIO) error

	// PortOut handles an OUT or OUTS instruction.
	PortOut func(io PortIO) error

	// MMIORead handles a guest read from addr, a guest-physical address
	// outside every memory slot, and must fill data (1 to 8 bytes).
	MMIORead func(addr uint64, data []byte) error

	// MMIOWrite handles a guest write of data to addr, a guest-physical
	// address outside every memory slot.
	MMIOWrite func(addr uint64, data []byte) error

	// Halt handles a HLT instruction. KVM reports HLT only for VMs without an
	// in-kernel IRQ chip. With one (VM.CreateIRQChip), a halted vCPU waits in
	// the kernel for an interrupt, and cancelling Run's context still stops it.
	Halt func() error

	// SystemEvent handles a KVM_EXIT_SYSTEM_EVENT, an event such as a reset,
	// shutdown or crash that KVM reports for the whole VM. data holds the
	// event's data words. Older kernels report one flags word.
	SystemEvent func(typ SystemEventType, data []uint64) error

	// InternalError handles a KVM_EXIT_INTERNAL_ERROR, most often an
	// instruction that KVM's emulator rejects (Suberror
	// InternalErrorEmulation). Returning nil resumes the guest, which is only
	// useful after the handler has changed the vCPU's state so that it makes
	// progress, for example by emulating the instruction and advancing RIP.
	// Return e itself to end Run with it.
	InternalError func(e *ExitError) error
}

// ExitError reports an exit that ended VCPU.Run because the vCPU cannot go on
// (KVM_EXIT_SHUTDOWN, KVM_EXIT_FAIL_ENTRY, KVM_EXIT_UNKNOWN), because Run has
// no handler for it (KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_SYSTEM_EVENT), or
// because Run does not dispatch that exit reason at all. The vCPU's registers
// still hold the state at the exit and can be read with the VCPU's methods.
type ExitError struct {
	VCPU   int        // vCPU id
	Reason ExitReason // kvm_run.exit_reason

	// Suberror and Data describe KVM_EXIT_INTERNAL_ERROR. For
	// InternalErrorEmulation, newer kernels may put a flags word and the
	// failing instruction's bytes into Data.
	Suberror uint32
	Data     []uint64

	// SystemEvent is the event type of KVM_EXIT_SYSTEM_EVENT, whose data
	// words are in Data.
	SystemEvent SystemEventType

	// HardwareReason is the hardware exit reason of KVM_EXIT_UNKNOWN, or the
	// hardware entry failure reason of KVM_EXIT_FAIL_ENTRY. On Intel VMX the
	// latter is the VM-exit reason with bit 31 set, for example 0x80000021 for
	// invalid guest state.
	HardwareReason uint64

	// CPU is the host CPU of KVM_EXIT_FAIL_ENTRY.
	CPU uint32
}

// Error describes the exit, naming the exit reason and its details.
func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vCPU %d: exit %v", e.VCPU, e.Reason)

	switch e.Reason {
	case ExitShutdown:
		b.WriteString(": the guest shut down, usually after a triple fault")
	case ExitFailEntry:
		fmt.Fprintf(&b, ": hardware entry failure reason %#x on host cpu %d", e.HardwareReason, e.CPU)
	case ExitUnknown:
		fmt.Fprintf(&b, ": hardware exit reason %#x", e.HardwareReason)
	case ExitInternalError:
		name, ok := suberrorNames[e.Suberror]
		if !ok {
			name = "unknown"
		}
		fmt.Fprintf(&b, ": suberror %d (%s), data %s", e.Suberror, name, hexWords(e.Data))
	case ExitSystemEvent:
		fmt.Fprintf(&b, ": %v, data %s", e.SystemEvent, hexWords(e.Data))
	default:
		b.WriteString(": Run does not handle this exit reason")
	}
	return b.String()
}

// hexWords formats words as "[0x1 0x2]".
func hexWords(words []uint64) string {
	parts := make([]string, len(words))
	for i, w := range words {
		parts[i] = fmt.Sprintf("%#x", w)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// emulationFlagInstructionBytes is KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES:
// bit 0 of the first data word of an emulation-failure exit, set when the
// next two words hold the instruction's length (first byte) and up to 15
// instruction bytes.
const emulationFlagInstructionBytes = 1

// RejectedInstruction returns the bytes of the instruction that KVM's
// instruction emulator rejected, for a KVM_EXIT_INTERNAL_ERROR with
// suberror KVM_INTERNAL_ERROR_EMULATION, or nil for other exits or where
// KVM did not include them (Linux 5.14 and later do).
func (e *ExitError) RejectedInstruction() []byte {
	if e.Reason != ExitInternalError || e.Suberror != InternalErrorEmulation {
		return nil
	}
	data := e.Data
	if len(data) < 3 || data[0]&emulationFlagInstructionBytes == 0 {
		return nil
	}
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:], data[1])
	binary.LittleEndian.PutUint64(raw[8:], data[2])
	n := min(int(raw[0]), 15)
	return append([]byte(nil), raw[1:1+n]...)
}
