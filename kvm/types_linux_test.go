//go:build amd64

package kvm

import (
	"testing"
	"unsafe"
)

// The expected sizes and offsets are what gcc reports for the structures of
// Linux include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h on
// x86-64, through sizeof and offsetof.

func TestStructSizes(t *testing.T) {
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"kvm_regs", unsafe.Sizeof(Regs{}), 144},
		{"kvm_segment", unsafe.Sizeof(Segment{}), 24},
		{"kvm_dtable", unsafe.Sizeof(DTable{}), 16},
		{"kvm_sregs", unsafe.Sizeof(SRegs{}), 312},
		{"kvm_fpu", unsafe.Sizeof(FPU{}), 416},
		{"kvm_xsave", unsafe.Sizeof(XSave{}), 4096},
		{"kvm_xcr", unsafe.Sizeof(XCR{}), 16},
		{"kvm_xcrs", unsafe.Sizeof(xcrs{}), 392},
		{"kvm_vcpu_events", unsafe.Sizeof(VCPUEvents{}), 64},
		{"kvm_cpuid_entry2", unsafe.Sizeof(CPUIDEntry{}), 40},
		{"kvm_cpuid2 header", unsafe.Offsetof(cpuid2{}.Entries), 8},
		{"kvm_msr_entry", unsafe.Sizeof(MSR{}), 16},
		{"kvm_msrs header", unsafe.Offsetof(msrs{}.Entries), 8},
		{"kvm_userspace_memory_region", unsafe.Sizeof(userspaceMemoryRegion{}), 32},
		{"kvm_pit_config", unsafe.Sizeof(pitConfig{}), 64},
		{"kvm_enable_cap", unsafe.Sizeof(enableCap{}), 104},
		{"kvm_run", unsafe.Sizeof(kvmRun{}), 2352},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("size of struct %s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

func TestStructOffsets(t *testing.T) {
	var run kvmRun
	var events VCPUEvents
	var sregs SRegs
	var fpu FPU
	var x xcrs
	exit := unsafe.Offsetof(run.Exit)
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"kvm_run.immediate_exit", unsafe.Offsetof(run.ImmediateExit), 1},
		{"kvm_run.exit_reason", unsafe.Offsetof(run.ExitReason), 8},
		{"kvm_run.cr8", unsafe.Offsetof(run.CR8), 16},
		{"kvm_run.apic_base", unsafe.Offsetof(run.APICBase), 24},
		{"kvm_run exit union", exit, runExitOffset},
		{"kvm_run.kvm_valid_regs", unsafe.Offsetof(run.ValidRegs), 288},
		{"kvm_run.s", unsafe.Offsetof(run.SyncRegs), 304},
		{"kvm_run.io.data_offset", exit + unsafe.Offsetof(runIO{}.DataOffset), 40},
		{"kvm_run.mmio.data", exit + unsafe.Offsetof(runMMIO{}.Data), 40},
		{"kvm_run.mmio.len", exit + unsafe.Offsetof(runMMIO{}.Len), 48},
		{"kvm_run.mmio.is_write", exit + unsafe.Offsetof(runMMIO{}.IsWrite), 52},
		{"kvm_run.internal.ndata", exit + unsafe.Offsetof(runInternal{}.NData), 36},
		{"kvm_run.internal.data", exit + unsafe.Offsetof(runInternal{}.Data), 40},
		{"kvm_run.system_event.ndata", exit + unsafe.Offsetof(runSystemEvent{}.NData), 36},
		{"kvm_run.system_event.data", exit + unsafe.Offsetof(runSystemEvent{}.Data), 40},
		{"kvm_run.fail_entry.cpu", exit + unsafe.Offsetof(runFailEntry{}.CPU), 40},
		{"kvm_vcpu_events.smi", unsafe.Offsetof(events.SMI), 24},
		{"kvm_vcpu_events.triple_fault", unsafe.Offsetof(events.TripleFault), 28},
		{"kvm_vcpu_events.exception_payload", unsafe.Offsetof(events.ExceptionPayload), 56},
		{"kvm_sregs.cr0", unsafe.Offsetof(sregs.CR0), 224},
		{"kvm_sregs.interrupt_bitmap", unsafe.Offsetof(sregs.InterruptBitmap), 280},
		{"kvm_fpu.xmm", unsafe.Offsetof(fpu.XMM), 152},
		{"kvm_fpu.mxcsr", unsafe.Offsetof(fpu.MXCSR), 408},
		{"kvm_xcrs.padding", unsafe.Offsetof(x.XCRs) + unsafe.Sizeof(x.XCRs), 264},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("offset of %s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

// ioc computes an ioctl request number as _IOC in
// include/uapi/asm-generic/ioctl.h does, for KVMIO (0xAE).
func ioc(dir, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | 0xae<<8 | nr
}

const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2
)

func TestIoctlNumbers(t *testing.T) {
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"KVM_GET_API_VERSION", kvmGetAPIVersion, ioc(iocNone, 0x00, 0)},
		{"KVM_CREATE_VM", kvmCreateVM, ioc(iocNone, 0x01, 0)},
		{"KVM_GET_MSR_INDEX_LIST", kvmGetMSRIndexList, ioc(iocRead|iocWrite, 0x02, 4)},
		{"KVM_CHECK_EXTENSION", kvmCheckExtension, ioc(iocNone, 0x03, 0)},
		{"KVM_GET_VCPU_MMAP_SIZE", kvmGetVCPUMmapSize, ioc(iocNone, 0x04, 0)},
		{"KVM_GET_SUPPORTED_CPUID", kvmGetSupportedCPUID, ioc(iocRead|iocWrite, 0x05, unsafe.Offsetof(cpuid2{}.Entries))},
		{"KVM_CREATE_VCPU", kvmCreateVCPU, ioc(iocNone, 0x41, 0)},
		{"KVM_SET_USER_MEMORY_REGION", kvmSetUserMemRegion, ioc(iocWrite, 0x46, unsafe.Sizeof(userspaceMemoryRegion{}))},
		{"KVM_SET_TSS_ADDR", kvmSetTSSAddr, ioc(iocNone, 0x47, 0)},
		{"KVM_SET_IDENTITY_MAP_ADDR", kvmSetIdentityMapAddr, ioc(iocWrite, 0x48, 8)},
		{"KVM_CREATE_IRQCHIP", kvmCreateIRQChip, ioc(iocNone, 0x60, 0)},
		{"KVM_CREATE_PIT2", kvmCreatePIT2, ioc(iocWrite, 0x77, unsafe.Sizeof(pitConfig{}))},
		{"KVM_ENABLE_CAP", kvmEnableCap, ioc(iocWrite, 0xa3, unsafe.Sizeof(enableCap{}))},
		{"KVM_RUN", kvmRunIoctl, ioc(iocNone, 0x80, 0)},
		{"KVM_GET_REGS", kvmGetRegs, ioc(iocRead, 0x81, unsafe.Sizeof(Regs{}))},
		{"KVM_SET_REGS", kvmSetRegs, ioc(iocWrite, 0x82, unsafe.Sizeof(Regs{}))},
		{"KVM_GET_SREGS", kvmGetSRegs, ioc(iocRead, 0x83, unsafe.Sizeof(SRegs{}))},
		{"KVM_SET_SREGS", kvmSetSRegs, ioc(iocWrite, 0x84, unsafe.Sizeof(SRegs{}))},
		{"KVM_GET_MSRS", kvmGetMSRs, ioc(iocRead|iocWrite, 0x88, unsafe.Offsetof(msrs{}.Entries))},
		{"KVM_SET_MSRS", kvmSetMSRs, ioc(iocWrite, 0x89, unsafe.Offsetof(msrs{}.Entries))},
		{"KVM_GET_FPU", kvmGetFPU, ioc(iocRead, 0x8c, unsafe.Sizeof(FPU{}))},
		{"KVM_SET_FPU", kvmSetFPU, ioc(iocWrite, 0x8d, unsafe.Sizeof(FPU{}))},
		{"KVM_SET_CPUID2", kvmSetCPUID2, ioc(iocWrite, 0x90, unsafe.Offsetof(cpuid2{}.Entries))},
		{"KVM_GET_VCPU_EVENTS", kvmGetVCPUEvents, ioc(iocRead, 0x9f, unsafe.Sizeof(VCPUEvents{}))},
		{"KVM_SET_VCPU_EVENTS", kvmSetVCPUEvents, ioc(iocWrite, 0xa0, unsafe.Sizeof(VCPUEvents{}))},
		{"KVM_GET_XSAVE", kvmGetXSave, ioc(iocRead, 0xa4, unsafe.Sizeof(XSave{}))},
		{"KVM_SET_XSAVE", kvmSetXSave, ioc(iocWrite, 0xa5, unsafe.Sizeof(XSave{}))},
		{"KVM_GET_XCRS", kvmGetXCRs, ioc(iocRead, 0xa6, unsafe.Sizeof(xcrs{}))},
		{"KVM_SET_XCRS", kvmSetXCRs, ioc(iocWrite, 0xa7, unsafe.Sizeof(xcrs{}))},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}
