//go:build amd64

package kvm

import "unsafe"

// Go mirrors of the x86-64 structures in Linux include/uapi/linux/kvm.h and
// arch/x86/include/uapi/asm/kvm.h. Field order, sizes and padding must match
// the kernel's exactly, because the ioctls copy these structures byte for
// byte. TestStructSizes and TestStructOffsets check them against the sizes
// and offsets the C compiler reports for the kernel headers.

// Regs is struct kvm_regs: the general-purpose registers, RIP and RFLAGS of a
// vCPU (KVM_GET_REGS, KVM_SET_REGS).
type Regs struct {
	RAX, RBX, RCX, RDX                   uint64
	RSI, RDI, RSP, RBP                   uint64
	R8, R9, R10, R11, R12, R13, R14, R15 uint64
	RIP, RFLAGS                          uint64
}

// Segment is struct kvm_segment: a segment register with its hidden
// descriptor part unpacked. Limit is in bytes, already scaled by G.
type Segment struct {
	Base     uint64
	Limit    uint32
	Selector uint16
	Type     uint8
	Present  uint8
	DPL      uint8
	DB       uint8
	S        uint8
	L        uint8
	G        uint8
	AVL      uint8
	Unusable uint8
	_        uint8
}

// DTable is struct kvm_dtable: the base and limit of the GDT or the IDT.
type DTable struct {
	Base  uint64
	Limit uint16
	_     [3]uint16
}

// SRegs is struct kvm_sregs: segment registers, descriptor-table registers,
// control registers, EFER and the APIC base (KVM_GET_SREGS, KVM_SET_SREGS).
type SRegs struct {
	CS, DS, ES, FS, GS, SS  Segment
	TR, LDT                 Segment
	GDT, IDT                DTable
	CR0, CR2, CR3, CR4, CR8 uint64
	EFER                    uint64
	APICBase                uint64
	InterruptBitmap         [4]uint64
}

// FPU is struct kvm_fpu: the x87 and SSE state in FXSAVE form (KVM_GET_FPU,
// KVM_SET_FPU).
type FPU struct {
	FPR        [8][16]uint8
	FCW        uint16
	FSW        uint16
	FTWX       uint8
	_          uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]uint8
	MXCSR      uint32
	_          uint32
}

// XSave is struct kvm_xsave: the vCPU's XSAVE area in the standard format
// (KVM_GET_XSAVE, KVM_SET_XSAVE).
type XSave struct {
	Region [1024]uint32
}

// Bytes returns the XSAVE area as bytes, sharing x's memory, for reading
// its fields at their byte offsets (Intel SDM volume 1, 13.4).
func (x *XSave) Bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&x.Region[0])), len(x.Region)*4)
}

// XCR is struct kvm_xcr: one extended control register, such as XCR0.
type XCR struct {
	XCR   uint32
	_     uint32
	Value uint64
}

// maxXCRs is KVM_MAX_XCRS, the capacity of struct kvm_xcrs.
const maxXCRs = 16

// xcrs is struct kvm_xcrs.
type xcrs struct {
	NrXCRs uint32
	Flags  uint32
	XCRs   [maxXCRs]XCR
	_      [16]uint64
}

// VCPUEvents is struct kvm_vcpu_events: pending and injected exceptions,
// interrupts, NMIs and SMIs (KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS).
// Flags selects which optional parts KVM_SET_VCPU_EVENTS applies, as the
// KVM_VCPUEVENT_VALID_* flags in Linux Documentation/virt/kvm/api.rst define.
type VCPUEvents struct {
	Exception struct {
		Injected     uint8
		Nr           uint8
		HasErrorCode uint8
		Pending      uint8
		ErrorCode    uint32
	}
	Interrupt struct {
		Injected uint8
		Nr       uint8
		Soft     uint8
		Shadow   uint8
	}
	NMI struct {
		Injected uint8
		Pending  uint8
		Masked   uint8
		_        uint8
	}
	SIPIVector uint32
	Flags      uint32
	SMI        struct {
		SMM          uint8
		Pending      uint8
		SMMInsideNMI uint8
		LatchedInit  uint8
	}
	TripleFault struct {
		Pending uint8
	}
	_                   [26]uint8
	ExceptionHasPayload uint8
	ExceptionPayload    uint64
}

// CPUIDEntry is struct kvm_cpuid_entry2: the result of CPUID for one leaf
// (Function) and subleaf (Index).
type CPUIDEntry struct {
	Function uint32
	Index    uint32
	Flags    uint32
	EAX      uint32
	EBX      uint32
	ECX      uint32
	EDX      uint32
	_        [3]uint32
}

// CPUIDFlagSignificantIndex is KVM_CPUID_FLAG_SIGNIFCANT_INDEX (sic): the
// entry applies only to the subleaf in Index.
const CPUIDFlagSignificantIndex = 1

// maxCPUIDEntries is KVM_MAX_CPUID_ENTRIES in arch/x86/include/asm/kvm_host.h,
// the most entries KVM_GET_SUPPORTED_CPUID and KVM_SET_CPUID2 accept.
const maxCPUIDEntries = 256

// cpuid2 is struct kvm_cpuid2 with room for the most entries KVM accepts.
type cpuid2 struct {
	Nent    uint32
	_       uint32
	Entries [maxCPUIDEntries]CPUIDEntry
}

// MSR is struct kvm_msr_entry: the index and value of one model-specific
// register.
type MSR struct {
	Index uint32
	_     uint32
	Value uint64
}

// maxMSRs is the most entries one KVM_GET_MSRS or KVM_SET_MSRS call accepts:
// KVM rejects nmsrs >= MAX_IO_MSRS (256) in arch/x86/kvm/x86.c.
const maxMSRs = 255

// msrs is struct kvm_msrs with room for maxMSRs entries.
type msrs struct {
	NMSRs   uint32
	_       uint32
	Entries [maxMSRs]MSR
}

// userspaceMemoryRegion is struct kvm_userspace_memory_region.
type userspaceMemoryRegion struct {
	Slot          uint32
	Flags         uint32
	GuestPhysAddr uint64
	MemorySize    uint64
	UserspaceAddr uint64
}

// pitConfig is struct kvm_pit_config.
type pitConfig struct {
	Flags uint32
	_     [15]uint32
}

// enableCap is struct kvm_enable_cap.
type enableCap struct {
	Cap   uint32
	Flags uint32
	Args  [4]uint64
	_     [64]uint8
}

// kvmRun is struct kvm_run, the structure that the vCPU file descriptor maps
// into the VMM's memory. Exit is the union of exit-specific structures, and
// the run* types below are views of it.
type kvmRun struct {
	RequestInterruptWindow     uint8
	ImmediateExit              uint8
	_                          [6]uint8
	ExitReason                 uint32
	ReadyForInterruptInjection uint8
	IFFlag                     uint8
	Flags                      uint16
	CR8                        uint64
	APICBase                   uint64
	Exit                       [256]uint8
	ValidRegs                  uint64
	DirtyRegs                  uint64
	SyncRegs                   [2048]uint8
}

// runExitOffset is the offset of the exit union in struct kvm_run.
const runExitOffset = 32

// runHW is the exit union for KVM_EXIT_UNKNOWN.
type runHW struct {
	HardwareExitReason uint64
}

// runFailEntry is the exit union for KVM_EXIT_FAIL_ENTRY.
type runFailEntry struct {
	HardwareEntryFailureReason uint64
	CPU                        uint32
}

// runIO is the exit union for KVM_EXIT_IO. The data lies in the kvm_run
// mapping at DataOffset, Size*Count bytes long.
type runIO struct {
	Direction  uint8
	Size       uint8
	Port       uint16
	Count      uint32
	DataOffset uint64
}

// Values of runIO.Direction.
const (
	ioDirectionIn  = 0
	ioDirectionOut = 1
)

// runMMIO is the exit union for KVM_EXIT_MMIO.
type runMMIO struct {
	PhysAddr uint64
	Data     [8]uint8
	Len      uint32
	IsWrite  uint8
}

// runInternal is the exit union for KVM_EXIT_INTERNAL_ERROR.
type runInternal struct {
	Suberror uint32
	NData    uint32
	Data     [16]uint64
}

// runSystemEvent is the exit union for KVM_EXIT_SYSTEM_EVENT. Older kernels
// leave NData zero and store a single flags word in Data[0].
type runSystemEvent struct {
	Type  uint32
	NData uint32
	Data  [16]uint64
}
