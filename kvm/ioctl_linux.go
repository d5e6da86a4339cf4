//go:build amd64

package kvm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Request numbers of the KVM ioctls as the _IO, _IOR, _IOW and _IOWR macros of
// Linux include/uapi/linux/kvm.h expand them on x86-64. TestIoctlNumbers
// recomputes each one from its direction, number and the size of the Go type
// passed with it.
const (
	// System ioctls, on the /dev/kvm descriptor. KVM_CHECK_EXTENSION also
	// works on a VM descriptor.
	kvmGetAPIVersion     = 0xae00
	kvmCreateVM          = 0xae01
	kvmGetMSRIndexList   = 0xc004ae02
	kvmCheckExtension    = 0xae03
	kvmGetVCPUMmapSize   = 0xae04
	kvmGetSupportedCPUID = 0xc008ae05

	// VM ioctls, on a descriptor from KVM_CREATE_VM.
	kvmCreateVCPU         = 0xae41
	kvmSetUserMemRegion   = 0x4020ae46
	kvmSetTSSAddr         = 0xae47
	kvmSetIdentityMapAddr = 0x4008ae48
	kvmCreateIRQChip      = 0xae60
	kvmCreatePIT2         = 0x4040ae77
	kvmEnableCap          = 0x4068aea3

	// vCPU ioctls, on a descriptor from KVM_CREATE_VCPU.
	kvmRunIoctl      = 0xae80
	kvmGetRegs       = 0x8090ae81
	kvmSetRegs       = 0x4090ae82
	kvmGetSRegs      = 0x8138ae83
	kvmSetSRegs      = 0x4138ae84
	kvmGetMSRs       = 0xc008ae88
	kvmSetMSRs       = 0x4008ae89
	kvmGetFPU        = 0x81a0ae8c
	kvmSetFPU        = 0x41a0ae8d
	kvmSetCPUID2     = 0x4008ae90
	kvmGetVCPUEvents = 0x8040ae9f
	kvmSetVCPUEvents = 0x4040aea0
	kvmGetXSave      = 0x9000aea4
	kvmSetXSave      = 0x5000aea5
	kvmGetXCRs       = 0x8188aea6
	kvmSetXCRs       = 0x4188aea7
)

// apiVersion is KVM_API_VERSION, the only version of the stable KVM API.
const apiVersion = 12

// ioctl issues an ioctl with an integer argument and returns its result,
// retrying when a signal interrupts it. It must not be used for KVM_RUN,
// whose EINTR the run loop handles itself.
func ioctl(fd int, req uintptr, arg uintptr) (int, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return int(r), errno
		}
		return int(r), nil
	}
}

// ioctlPtr is ioctl with a pointer argument. The conversion to uintptr sits
// in the unix.Syscall call expression, which keeps the pointed-to memory
// alive and in place for the duration of the call (rule 4 of unsafe.Pointer).
func ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) (int, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return int(r), errno
		}
		return int(r), nil
	}
}

// ioctlRun issues KVM_RUN once. It returns unix.EINTR when a signal or
// immediate_exit ended the call, which the caller decides how to handle.
func ioctlRun(fd int) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmRunIoctl, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
