//go:build amd64

package kvm

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestOpenErrorHints(t *testing.T) {
	tests := []struct {
		err      error
		wantText string
	}{
		{unix.EACCES, "open /dev/kvm: permission denied (needs read-write access: add the user to the group that owns /dev/kvm"},
		{unix.ENOENT, "open /dev/kvm: no such file or directory (KVM is not available: load the KVM module"},
		{unix.EMFILE, "open /dev/kvm: too many open files"},
	}
	for _, tt := range tests {
		err := openError(tt.err)
		if !strings.HasPrefix(err.Error(), tt.wantText) {
			t.Errorf("openError(%v) = %q, want it to start with %q", tt.err, err, tt.wantText)
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("openError(%v) does not wrap the errno", tt.err)
		}
	}
}

func TestSystemQueries(t *testing.T) {
	sys := openKVM(t)

	size, err := sys.VCPUMmapSize()
	if err != nil {
		t.Fatal(err)
	}
	if size < int(unsafe.Sizeof(kvmRun{})) || size%PageSize != 0 {
		t.Errorf("VCPUMmapSize() = %d, want a whole number of pages holding struct kvm_run", size)
	}

	if n, err := sys.CheckExtension(CapUserMemory); err != nil || n <= 0 {
		t.Errorf("CheckExtension(%v) = %d, %v, want a positive value", CapUserMemory, n, err)
	}
	if n, err := sys.CheckExtension(Cap(1 << 20)); err != nil || n != 0 {
		t.Errorf("CheckExtension of a capability that does not exist = %d, %v, want 0", n, err)
	}

	cpuid, err := sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	leaves := map[uint32]bool{}
	for _, e := range cpuid {
		leaves[e.Function] = true
	}
	for _, leaf := range []uint32{0, 1, 0x80000000} {
		if !leaves[leaf] {
			t.Errorf("SupportedCPUID has no leaf %#x among its %d entries", leaf, len(cpuid))
		}
	}

	msrs, err := sys.MSRIndexList()
	if err != nil {
		t.Fatal(err)
	}
	const msrSysenterCS = 0x174
	if !slices.Contains(msrs, msrSysenterCS) {
		t.Errorf("MSRIndexList (%d MSRs) lacks IA32_SYSENTER_CS (%#x)", len(msrs), msrSysenterCS)
	}
	t.Logf("%d CPUID entries, %d MSRs, kvm_run mapping %d bytes", len(cpuid), len(msrs), size)
}

func TestVMSetup(t *testing.T) {
	sys := openKVM(t)
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()

	if err := vm.CreatePIT2(); err == nil || !strings.Contains(err.Error(), "call CreateIRQChip first") {
		t.Errorf("CreatePIT2 before CreateIRQChip = %v, want an error saying to call CreateIRQChip first", err)
	}
	if err := vm.SetTSSAddr(0xfffbd000); err != nil {
		t.Errorf("SetTSSAddr: %v", err)
	}
	if err := vm.SetIdentityMapAddr(0xfffbc000); err != nil {
		t.Errorf("SetIdentityMapAddr: %v", err)
	}
	if err := vm.CreateIRQChip(); err != nil {
		t.Fatalf("CreateIRQChip: %v", err)
	}
	if err := vm.CreatePIT2(); err != nil {
		t.Errorf("CreatePIT2 after CreateIRQChip: %v", err)
	}
	if err := vm.EnableCap(CapX2APICAPI, X2APICUse32BitIDs|X2APICDisableBroadcastQuirk); err != nil {
		t.Errorf("EnableCap(%v): %v", CapX2APICAPI, err)
	}
	if err := vm.EnableCap(CapX2APICAPI, 1, 2, 3, 4, 5); err == nil {
		t.Error("EnableCap with 5 arguments succeeded, want an error")
	}
	if n, err := vm.CheckExtension(CapNrMemSlots); err != nil || n <= 0 {
		t.Errorf("VM.CheckExtension(%v) = %d, %v, want a positive value", CapNrMemSlots, n, err)
	}

	if err := vm.AddMemory(0, 1<<20); err != nil {
		t.Fatalf("AddMemory: %v", err)
	}
	if err := vm.AddMemory(0x200000, 1<<20); err != nil {
		t.Fatalf("AddMemory of a second slot: %v", err)
	}
	for _, bad := range []struct{ gpa, size uint64 }{{0x80000, 0x1000}, {0x300800, 0x1000}, {0x400000, 0}} {
		if err := vm.AddMemory(bad.gpa, bad.size); err == nil {
			t.Errorf("AddMemory(%#x, %#x) succeeded, want an error", bad.gpa, bad.size)
		}
	}
	want := []MemoryRegion{{0, 0, 1 << 20}, {1, 0x200000, 1 << 20}}
	if got := vm.Memory().Regions(); !slices.Equal(got, want) {
		t.Errorf("Regions() = %+v, want %+v", got, want)
	}

	v, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatalf("CreateVCPU(0): %v", err)
	}
	if v.ID() != 0 {
		t.Errorf("ID() = %d, want 0", v.ID())
	}
	if _, err := vm.CreateVCPU(0); !errors.Is(err, unix.EEXIST) {
		t.Errorf("second CreateVCPU(0) = %v, want EEXIST", err)
	}
	if _, err := vm.CreateVCPU(-1); err == nil {
		t.Error("CreateVCPU(-1) succeeded, want an error")
	}
	if err := vm.CreateIRQChip(); err == nil {
		t.Error("CreateIRQChip after CreateVCPU succeeded, want an error")
	}

	if err := vm.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := vm.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := vm.AddMemory(0x400000, 0x1000); !errors.Is(err, ErrClosed) {
		t.Errorf("AddMemory after Close = %v, want ErrClosed", err)
	}
	if err := vm.SetTSSAddr(0xfffbd000); !errors.Is(err, ErrClosed) {
		t.Errorf("SetTSSAddr after Close = %v, want ErrClosed", err)
	}
}

func TestVCPUStateRoundTrip(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeHalt, guestOptions{})
	v := g.vcpus[0]

	// Registers set by newTestGuest come back unchanged.
	regs, err := v.Regs()
	if err != nil {
		t.Fatal(err)
	}
	if regs.RIP != testCodeAddr || regs.RDX != testPort || regs.RFLAGS != RFLAGSReserved {
		t.Errorf("Regs() = RIP %#x RDX %#x RFLAGS %#x, want %#x %#x %#x", regs.RIP, regs.RDX, regs.RFLAGS, testCodeAddr, testPort, RFLAGSReserved)
	}
	s, err := v.SRegs()
	if err != nil {
		t.Fatal(err)
	}
	var want SRegs
	want.SetLongMode(testGDTAddr, testPML4Addr)
	if s.CR0 != want.CR0 || s.CR3 != want.CR3 || s.CR4 != want.CR4 || s.EFER != want.EFER || s.CS.L != 1 {
		t.Errorf("SRegs() = CR0 %#x CR3 %#x CR4 %#x EFER %#x CS.L %d, want %#x %#x %#x %#x 1",
			s.CR0, s.CR3, s.CR4, s.EFER, s.CS.L, want.CR0, want.CR3, want.CR4, want.EFER)
	}

	const msrSysenterCS, msrSysenterESP = 0x174, 0x175
	if err := v.SetMSRs(MSR{Index: msrSysenterCS, Value: 0x10}, MSR{Index: msrSysenterESP, Value: 0x8000}); err != nil {
		t.Fatalf("SetMSRs: %v", err)
	}
	msrs, err := v.MSRs(msrSysenterCS, msrSysenterESP)
	if err != nil {
		t.Fatalf("MSRs: %v", err)
	}
	if len(msrs) != 2 || msrs[0].Value != 0x10 || msrs[1].Value != 0x8000 {
		t.Errorf("MSRs = %+v, want 0x174 = 0x10 and 0x175 = 0x8000", msrs)
	}
	const noSuchMSR = 0x4b564dff // in KVM's paravirtual range, one past the last defined MSR
	if _, err := v.MSRs(msrSysenterCS, noSuchMSR); err == nil || !strings.Contains(err.Error(), "0x4b564dff") {
		t.Errorf("MSRs with an unknown MSR = %v, want an error naming it", err)
	}

	fpu, err := v.FPU()
	if err != nil {
		t.Fatalf("FPU: %v", err)
	}
	fpu.FCW = 0x27f // double instead of extended precision
	if err := v.SetFPU(fpu); err != nil {
		t.Fatalf("SetFPU: %v", err)
	}
	fpu2, err := v.FPU()
	if err != nil {
		t.Fatalf("FPU after SetFPU: %v", err)
	}
	if fpu2.FCW != fpu.FCW {
		t.Errorf("FPU after SetFPU: FCW = %#x, want %#x", fpu2.FCW, fpu.FCW)
	}

	// MXCSR is word 6 of the XSAVE area, XSTATE_BV word 128.
	xsave, err := v.XSave()
	if err != nil {
		t.Fatalf("XSave: %v", err)
	}
	const mxcsrFlushToZero = 0x1f80 | 0x8000
	xsave.Region[6] = mxcsrFlushToZero
	xsave.Region[128] |= 1<<0 | 1<<1 // x87 and SSE state present
	if err := v.SetXSave(xsave); err != nil {
		t.Fatalf("SetXSave: %v", err)
	}
	xsave2, err := v.XSave()
	if err != nil {
		t.Fatalf("XSave after SetXSave: %v", err)
	}
	if xsave2.Region[6] != mxcsrFlushToZero {
		t.Errorf("XSave after SetXSave: MXCSR = %#x, want %#x", xsave2.Region[6], mxcsrFlushToZero)
	}

	xcrs, err := v.XCRs()
	if err != nil {
		t.Fatalf("XCRs: %v", err)
	}
	if len(xcrs) == 0 || xcrs[0].XCR != 0 || xcrs[0].Value&1 == 0 {
		t.Errorf("XCRs() = %+v, want XCR0 with the x87 bit set first", xcrs)
	}
	if err := v.SetXCRs(xcrs); err != nil {
		t.Errorf("SetXCRs of the values just read: %v", err)
	}

	events, err := v.Events()
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if err := v.SetEvents(events); err != nil {
		t.Errorf("SetEvents of the events just read: %v", err)
	}

	cpuid, err := sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetCPUID(cpuid); err != nil {
		t.Errorf("SetCPUID(SupportedCPUID()): %v", err)
	}
}

func TestSystemClose(t *testing.T) {
	sys := openKVM(t)
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()

	if err := sys.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := sys.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := sys.CheckExtension(CapIRQChip); !errors.Is(err, ErrClosed) {
		t.Errorf("CheckExtension after Close = %v, want ErrClosed", err)
	}
	if _, err := sys.CreateVM(); !errors.Is(err, ErrClosed) {
		t.Errorf("CreateVM after Close = %v, want ErrClosed", err)
	}

	// A VM outlives the System it came from.
	if err := vm.AddMemory(0, PageSize); err != nil {
		t.Errorf("AddMemory after System.Close: %v", err)
	}
}

func TestGuestMemoryExcludedFromCoreDumps(t *testing.T) {
	sys := openKVM(t)
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := vm.AddMemory(0, 1<<20); err != nil {
		t.Fatalf("AddMemory: %v", err)
	}
	data, err := vm.Memory().Slice(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}

	start, end, flags := mappingOf(t, uintptr(unsafe.Pointer(&data[0])))
	if !slices.Contains(flags, "dd") {
		t.Errorf("VmFlags of guest memory = %v, want dd (MADV_DONTDUMP)", flags)
	}
	// The flag keeps the kernel from merging guest memory with a neighbor.
	if size := end - start; size != 1<<20 {
		t.Errorf("guest memory is part of a %#x-byte mapping, want one of its own (%#x bytes)", size, 1<<20)
	}
}

// mappingOf returns the range and the VmFlags of the mapping in
// /proc/self/smaps that contains addr.
func mappingOf(t *testing.T, addr uintptr) (start, end uintptr, flags []string) {
	t.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for line := range strings.Lines(string(smaps)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && !strings.HasSuffix(fields[0], ":") {
			a, errLo := strconv.ParseUint(lo, 16, 64)
			b, errHi := strconv.ParseUint(hi, 16, 64)
			found = errLo == nil && errHi == nil && uintptr(a) <= addr && addr < uintptr(b)
			if found {
				start, end = uintptr(a), uintptr(b)
			}
			continue
		}
		if found && fields[0] == "VmFlags:" {
			return start, end, fields[1:]
		}
	}
	t.Fatalf("no mapping with VmFlags in /proc/self/smaps contains %#x", addr)
	return 0, 0, nil
}

// residentPages counts the pages of mapping that are in host memory.
func residentPages(t *testing.T, mapping []byte) int {
	t.Helper()
	vec := make([]byte, (len(mapping)+PageSize-1)/PageSize)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mapping[0])), uintptr(len(mapping)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

func TestAddMemoryNotResident(t *testing.T) {
	sys := openKVM(t)
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()

	const size = 64 << 20
	if err := vm.AddMemory(0, size); err != nil {
		t.Fatal(err)
	}
	mapping := vm.memory.regions[0].data
	if n := residentPages(t, mapping); n != 0 {
		t.Errorf("%d pages of fresh guest memory are resident, want 0", n)
	}

	if _, err := vm.Memory().WriteAt([]byte{1}, 5*PageSize); err != nil {
		t.Fatal(err)
	}
	if n := residentPages(t, mapping); n != 1 {
		t.Errorf("%d pages are resident after writing one byte, want 1", n)
	}
}
