package kvm

import "fmt"

// Cap is a KVM capability, the argument of KVM_CHECK_EXTENSION and
// KVM_ENABLE_CAP. The values are the KVM_CAP_* numbers of Linux
// include/uapi/linux/kvm.h.
type Cap int

// Capabilities that an x86 VMM commonly checks or enables.
const (
	CapIRQChip                Cap = 0   // in-kernel PIC, IOAPIC and LAPIC (KVM_CREATE_IRQCHIP)
	CapHLT                    Cap = 1   // KVM_EXIT_HLT
	CapUserMemory             Cap = 3   // KVM_SET_USER_MEMORY_REGION
	CapSetTSSAddr             Cap = 4   // KVM_SET_TSS_ADDR
	CapExtCPUID               Cap = 7   // KVM_GET_SUPPORTED_CPUID and KVM_SET_CPUID2
	CapNrVCPUs                Cap = 9   // recommended maximum number of vCPUs
	CapNrMemSlots             Cap = 10  // maximum number of memory slots
	CapMPState                Cap = 14  // KVM_GET_MP_STATE and KVM_SET_MP_STATE
	CapSyncMMU                Cap = 16  // changes to guest memory mappings reach the guest
	CapPIT2                   Cap = 33  // KVM_CREATE_PIT2
	CapSetIdentityMapAddr     Cap = 37  // KVM_SET_IDENTITY_MAP_ADDR
	CapVCPUEvents             Cap = 41  // KVM_GET_VCPU_EVENTS and KVM_SET_VCPU_EVENTS
	CapXSave                  Cap = 55  // KVM_GET_XSAVE and KVM_SET_XSAVE
	CapXCRs                   Cap = 56  // KVM_GET_XCRS and KVM_SET_XCRS
	CapTSCControl             Cap = 60  // KVM_SET_TSC_KHZ
	CapGetTSCKHz              Cap = 61  // KVM_GET_TSC_KHZ
	CapMaxVCPUs               Cap = 66  // maximum number of vCPUs
	CapTSCDeadlineTimer       Cap = 72  // TSC-deadline mode of the in-kernel LAPIC timer
	CapReadonlyMem            Cap = 81  // KVM_MEM_READONLY memory slots
	CapMaxVCPUID              Cap = 128 // maximum vCPU id plus one
	CapX2APICAPI              Cap = 129 // 32-bit x2APIC ids, enabled with X2APICUse32BitIDs
	CapImmediateExit          Cap = 136 // kvm_run.immediate_exit, which Run relies on
	CapX86DisableExits        Cap = 143 // let HLT, MWAIT and PAUSE run without exits
	CapExitOnEmulationFailure Cap = 204 // instruction bytes in emulation-failure exits
	CapXSave2                 Cap = 208 // KVM_GET_XSAVE2 for XSAVE areas over 4 KiB
)

// Flags for VM.EnableCap(CapX2APICAPI, flags), KVM_X2APIC_API_* in
// include/uapi/linux/kvm.h.
const (
	X2APICUse32BitIDs           = 1 << 0
	X2APICDisableBroadcastQuirk = 1 << 1
)

var capNames = map[Cap]string{
	CapIRQChip:                "KVM_CAP_IRQCHIP",
	CapHLT:                    "KVM_CAP_HLT",
	CapUserMemory:             "KVM_CAP_USER_MEMORY",
	CapSetTSSAddr:             "KVM_CAP_SET_TSS_ADDR",
	CapExtCPUID:               "KVM_CAP_EXT_CPUID",
	CapNrVCPUs:                "KVM_CAP_NR_VCPUS",
	CapNrMemSlots:             "KVM_CAP_NR_MEMSLOTS",
	CapMPState:                "KVM_CAP_MP_STATE",
	CapSyncMMU:                "KVM_CAP_SYNC_MMU",
	CapPIT2:                   "KVM_CAP_PIT2",
	CapSetIdentityMapAddr:     "KVM_CAP_SET_IDENTITY_MAP_ADDR",
	CapVCPUEvents:             "KVM_CAP_VCPU_EVENTS",
	CapXSave:                  "KVM_CAP_XSAVE",
	CapXCRs:                   "KVM_CAP_XCRS",
	CapTSCControl:             "KVM_CAP_TSC_CONTROL",
	CapGetTSCKHz:              "KVM_CAP_GET_TSC_KHZ",
	CapMaxVCPUs:               "KVM_CAP_MAX_VCPUS",
	CapTSCDeadlineTimer:       "KVM_CAP_TSC_DEADLINE_TIMER",
	CapReadonlyMem:            "KVM_CAP_READONLY_MEM",
	CapMaxVCPUID:              "KVM_CAP_MAX_VCPU_ID",
	CapX2APICAPI:              "KVM_CAP_X2APIC_API",
	CapImmediateExit:          "KVM_CAP_IMMEDIATE_EXIT",
	CapX86DisableExits:        "KVM_CAP_X86_DISABLE_EXITS",
	CapExitOnEmulationFailure: "KVM_CAP_EXIT_ON_EMULATION_FAILURE",
	CapXSave2:                 "KVM_CAP_XSAVE2",
}

// String returns the kernel's name for c, such as "KVM_CAP_IRQCHIP", or
// "KVM_CAP(n)" for a capability this package has no constant for.
func (c Cap) String() string {
	if name, ok := capNames[c]; ok {
		return name
	}
	return fmt.Sprintf("KVM_CAP(%d)", int(c))
}
