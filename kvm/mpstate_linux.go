//go:build amd64

package kvm

import (
	"fmt"
	"unsafe"
)

// MPState is a vCPU's multiprocessing state, struct kvm_mp_state. The values
// are the KVM_MP_STATE_* numbers of Linux include/uapi/linux/kvm.h.
type MPState uint32

// Multiprocessing states that can occur on x86.
const (
	// MPStateRunnable: the vCPU runs when KVM_RUN is issued.
	MPStateRunnable MPState = 0
	// MPStateUninitialized: an application processor waiting for INIT.
	// With an in-kernel IRQ chip (VM.CreateIRQChip), every vCPU except
	// vCPU 0 starts in this state and KVM_RUN blocks until another vCPU
	// sends it INIT and SIPI through its local APIC.
	MPStateUninitialized MPState = 1
	// MPStateInitReceived: INIT received, waiting for SIPI.
	MPStateInitReceived MPState = 2
	// MPStateHalted: the vCPU executed HLT and waits for an interrupt.
	MPStateHalted MPState = 3
	// MPStateSIPIReceived: SIPI received, the vCPU starts at the next
	// KVM_RUN.
	MPStateSIPIReceived MPState = 4
)

// Request numbers of KVM_GET_MP_STATE (_IOR(KVMIO, 0x98, struct
// kvm_mp_state)) and KVM_SET_MP_STATE (_IOW(KVMIO, 0x99, struct
// kvm_mp_state)). struct kvm_mp_state is one __u32.
const (
	kvmGetMPState = 0x8004ae98
	kvmSetMPState = 0x4004ae99
)

var mpStateNames = map[MPState]string{
	MPStateRunnable:      "KVM_MP_STATE_RUNNABLE",
	MPStateUninitialized: "KVM_MP_STATE_UNINITIALIZED",
	MPStateInitReceived:  "KVM_MP_STATE_INIT_RECEIVED",
	MPStateHalted:        "KVM_MP_STATE_HALTED",
	MPStateSIPIReceived:  "KVM_MP_STATE_SIPI_RECEIVED",
}

// String returns the kernel's name for s, such as "KVM_MP_STATE_RUNNABLE".
func (s MPState) String() string {
	if name, ok := mpStateNames[s]; ok {
		return name
	}
	return fmt.Sprintf("KVM_MP_STATE(%d)", uint32(s))
}

// MPState returns the vCPU's multiprocessing state (KVM_GET_MP_STATE). It
// needs CapMPState.
func (v *VCPU) MPState() (MPState, error) {
	var s MPState
	err := v.ioctlStruct("KVM_GET_MP_STATE", kvmGetMPState, unsafe.Pointer(&s), unsafe.Sizeof(s))
	return s, err
}

// SetMPState sets the vCPU's multiprocessing state (KVM_SET_MP_STATE). A VMM
// that starts every vCPU itself at a chosen RIP, instead of letting vCPU 0
// wake the others with INIT and SIPI, sets each of them to MPStateRunnable
// after VM.CreateIRQChip. Call it before the vCPU's first Run.
func (v *VCPU) SetMPState(s MPState) error {
	return v.ioctlStruct("KVM_SET_MP_STATE", kvmSetMPState, unsafe.Pointer(&s), unsafe.Sizeof(s))
}
