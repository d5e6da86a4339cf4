//go:build amd64

package kvm

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// VCPU is a virtual CPU of a VM. Each VCPU owns a goroutine locked to its own
// OS thread, which creates the vCPU and issues every one of its ioctls,
// including KVM_RUN. Linux Documentation/virt/kvm/api.rst recommends this:
// "vcpu ioctls should be issued from the same thread that was used to create
// the vcpu", because switching threads costs performance.
//
// The methods are safe for concurrent use. A method called from another
// goroutine hands its ioctl to the vCPU's thread and waits for it, so while
// Run is active such calls wait until Run returns. Called from a Handlers
// func of this vCPU's own Run, they execute at once.
type VCPU struct {
	id  int
	fd  int
	tid int    // thread id of the vCPU's OS thread
	run []byte // the kvm_run mapping

	calls  chan func()   // work for the vCPU's thread
	quit   chan struct{} // closed by Close
	exited chan struct{} // closed when the vCPU's thread is done

	closeOnce sync.Once
	closeErr  error // set before exited is closed

	active atomic.Pointer[runState] // the state of the active Run, or nil

	// kickMu serializes stopping a Run against unmapping run, so that a late
	// stop never writes to unmapped memory or signals a finished thread.
	kickMu   sync.Mutex
	unmapped bool
}

// newVCPU starts the vCPU's thread, which creates the vCPU, and returns once
// it is ready.
func newVCPU(vmfd, id, mmapSize int) (*VCPU, error) {
	v := &VCPU{
		id:     id,
		calls:  make(chan func()),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	ready := make(chan error, 1)
	go v.serve(vmfd, mmapSize, ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return v, nil
}

// serve is the vCPU's goroutine. It never unlocks its OS thread, so when it
// returns the Go runtime ends the thread instead of reusing it.
func (v *VCPU) serve(vmfd, mmapSize int, ready chan<- error) {
	runtime.LockOSThread()
	defer close(v.exited)

	v.tid = unix.Gettid()
	fd, err := ioctl(vmfd, kvmCreateVCPU, uintptr(v.id))
	if err != nil {
		hint := ""
		if errors.Is(err, unix.EEXIST) {
			hint = " (a vCPU with this id exists already)"
		} else if errors.Is(err, unix.EINVAL) {
			hint = " (the id may exceed KVM_CAP_MAX_VCPU_ID)"
		}
		ready <- fmt.Errorf("KVM_CREATE_VCPU %d: %w%s", v.id, err, hint)
		return
	}
	run, err := unix.Mmap(fd, 0, mmapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		ready <- fmt.Errorf("mmap kvm_run of vCPU %d (%d bytes): %w", v.id, mmapSize, err)
		return
	}
	v.fd, v.run = fd, run
	ready <- nil

	for {
		select {
		case f := <-v.calls:
			f()
		case <-v.quit:
			v.closeErr = v.release()
			return
		}
	}
}

// release unmaps kvm_run and closes the vCPU descriptor.
func (v *VCPU) release() error {
	v.kickMu.Lock()
	v.unmapped = true
	v.kickMu.Unlock()

	var errs []error
	if err := unix.Munmap(v.run); err != nil {
		errs = append(errs, fmt.Errorf("munmap kvm_run of vCPU %d: %w", v.id, err))
	}
	if err := unix.Close(v.fd); err != nil {
		errs = append(errs, fmt.Errorf("close vCPU %d: %w", v.id, err))
	}
	return errors.Join(errs...)
}

// onThread reports whether tid is the thread of v while v is open. A closed
// vCPU's thread has exited, and the kernel may reuse its id.
func (v *VCPU) onThread(tid int) bool {
	select {
	case <-v.exited:
		return false
	default:
		return tid == v.tid
	}
}

// do runs f on the vCPU's thread and returns its error. Called on that
// thread, from an exit handler, it runs f directly.
func (v *VCPU) do(f func() error) error {
	select {
	case <-v.quit:
		return ErrClosed
	default:
	}
	// The thread id identifies the vCPU's thread reliably while the vCPU is
	// open, because that thread is locked to the vCPU's goroutine.
	if unix.Gettid() == v.tid {
		return f()
	}

	errc := make(chan error, 1)
	select {
	case v.calls <- func() { errc <- f() }:
		return <-errc
	case <-v.quit:
		return ErrClosed
	}
}

// ioctlStruct issues the vCPU ioctl req, which reads or fills the size-byte
// struct at arg, on v's thread. From an exit handler of v the ioctl runs on
// arg directly, so that the registers a handler reads or writes at every
// exit stay on its stack and leave no garbage. From another goroutine, v's
// thread works on a heap copy, and ioctlStruct copies the result back.
func (v *VCPU) ioctlStruct(name string, req uintptr, arg unsafe.Pointer, size uintptr) error {
	select {
	case <-v.quit:
		return ErrClosed
	default:
	}
	if unix.Gettid() == v.tid {
		return v.ioctlHere(name, req, arg)
	}

	// A closure that captured arg would move the caller's struct to the
	// heap for every call, also for those from v's own thread. The structs
	// hold no Go pointers, so a byte copy is safe.
	data := unsafe.Slice((*byte)(arg), size)
	buf := make([]byte, size)
	copy(buf, data)
	err := v.do(func() error { return v.ioctlHere(name, req, unsafe.Pointer(&buf[0])) })
	copy(data, buf)
	return err
}

// ioctlPtr issues a vCPU ioctl with a pointer argument on the vCPU's thread.
// The closure makes arg escape, so it suits structs that are on the heap
// anyway, such as the 4 KiB XSAVE area, where ioctlStruct would copy them.
func (v *VCPU) ioctlPtr(name string, req uintptr, arg unsafe.Pointer) error {
	return v.do(func() error { return v.ioctlHere(name, req, arg) })
}

// ioctlHere issues a vCPU ioctl with a pointer argument on the calling
// thread, which must be v's.
func (v *VCPU) ioctlHere(name string, req uintptr, arg unsafe.Pointer) error {
	if _, err := ioctlPtr(v.fd, req, arg); err != nil {
		return fmt.Errorf("%s on vCPU %d: %w", name, v.id, err)
	}
	return nil
}

// ID returns the vCPU id passed to VM.CreateVCPU.
func (v *VCPU) ID() int {
	return v.id
}

// Regs returns the general-purpose registers, RIP and RFLAGS (KVM_GET_REGS).
func (v *VCPU) Regs() (Regs, error) {
	var r Regs
	err := v.ioctlStruct("KVM_GET_REGS", kvmGetRegs, unsafe.Pointer(&r), unsafe.Sizeof(r))
	return r, err
}

// SetRegs sets the general-purpose registers, RIP and RFLAGS (KVM_SET_REGS).
func (v *VCPU) SetRegs(r Regs) error {
	return v.ioctlStruct("KVM_SET_REGS", kvmSetRegs, unsafe.Pointer(&r), unsafe.Sizeof(r))
}

// SRegs returns the segment, descriptor-table and control registers
// (KVM_GET_SREGS).
func (v *VCPU) SRegs() (SRegs, error) {
	var s SRegs
	err := v.ioctlStruct("KVM_GET_SREGS", kvmGetSRegs, unsafe.Pointer(&s), unsafe.Sizeof(s))
	return s, err
}

// SetSRegs sets the segment, descriptor-table and control registers
// (KVM_SET_SREGS). KVM rejects inconsistent values with EINVAL, for example
// EFER.LMA without CR0.PG and CR4.PAE.
func (v *VCPU) SetSRegs(s SRegs) error {
	return v.ioctlStruct("KVM_SET_SREGS", kvmSetSRegs, unsafe.Pointer(&s), unsafe.Sizeof(s))
}

// FPU returns the x87 registers and the XMM registers (KVM_GET_FPU).
//
// KVM's x86 implementation of KVM_GET_FPU and KVM_SET_FPU skips MXCSR, so
// f.MXCSR reads as 0 whatever the guest's value. Use XSave for MXCSR.
func (v *VCPU) FPU() (FPU, error) {
	var f FPU
	err := v.ioctlStruct("KVM_GET_FPU", kvmGetFPU, unsafe.Pointer(&f), unsafe.Sizeof(f))
	return f, err
}

// SetFPU sets the x87 registers and the XMM registers (KVM_SET_FPU). It
// ignores f.MXCSR.
func (v *VCPU) SetFPU(f FPU) error {
	return v.ioctlStruct("KVM_SET_FPU", kvmSetFPU, unsafe.Pointer(&f), unsafe.Sizeof(f))
}

// XSave returns the XSAVE area (KVM_GET_XSAVE).
//
// NOTE: KVM fails this with EINVAL when the guest's XSAVE area exceeds 4 KiB,
// as with AMX enabled in its CPUID. Such guests need KVM_GET_XSAVE2
// (CapXSave2), which this package does not wrap.
func (v *VCPU) XSave() (*XSave, error) {
	x := new(XSave)
	if err := v.ioctlPtr("KVM_GET_XSAVE", kvmGetXSave, unsafe.Pointer(x)); err != nil {
		return nil, err
	}
	return x, nil
}

// SetXSave sets the XSAVE area (KVM_SET_XSAVE). KVM takes a state component
// only if its bit is set in XSTATE_BV (bytes 512 to 519 of the area), so to
// change MXCSR set bit 1 (SSE) there.
func (v *VCPU) SetXSave(x *XSave) error {
	return v.ioctlPtr("KVM_SET_XSAVE", kvmSetXSave, unsafe.Pointer(x))
}

// XCRs returns the extended control registers, such as XCR0 (KVM_GET_XCRS).
func (v *VCPU) XCRs() ([]XCR, error) {
	var x xcrs
	if err := v.ioctlStruct("KVM_GET_XCRS", kvmGetXCRs, unsafe.Pointer(&x), unsafe.Sizeof(x)); err != nil {
		return nil, err
	}
	n := min(int(x.NrXCRs), maxXCRs)
	return append([]XCR(nil), x.XCRs[:n]...), nil
}

// SetXCRs sets extended control registers (KVM_SET_XCRS).
func (v *VCPU) SetXCRs(regs []XCR) error {
	if len(regs) > maxXCRs {
		return fmt.Errorf("KVM_SET_XCRS on vCPU %d: %d registers, at most %d allowed", v.id, len(regs), maxXCRs)
	}
	x := xcrs{NrXCRs: uint32(len(regs))}
	copy(x.XCRs[:], regs)
	return v.ioctlStruct("KVM_SET_XCRS", kvmSetXCRs, unsafe.Pointer(&x), unsafe.Sizeof(x))
}

// Events returns the pending and injected exceptions, interrupts, NMIs and
// SMIs (KVM_GET_VCPU_EVENTS).
func (v *VCPU) Events() (VCPUEvents, error) {
	var e VCPUEvents
	err := v.ioctlStruct("KVM_GET_VCPU_EVENTS", kvmGetVCPUEvents, unsafe.Pointer(&e), unsafe.Sizeof(e))
	return e, err
}

// SetEvents sets them (KVM_SET_VCPU_EVENTS), for example to inject an
// exception into the guest.
func (v *VCPU) SetEvents(e VCPUEvents) error {
	return v.ioctlStruct("KVM_SET_VCPU_EVENTS", kvmSetVCPUEvents, unsafe.Pointer(&e), unsafe.Sizeof(e))
}

// SetCPUID sets what CPUID returns in the guest (KVM_SET_CPUID2). Start from
// System.SupportedCPUID. Linux 5.16 and newer reject changes after the vCPU
// has run.
func (v *VCPU) SetCPUID(entries []CPUIDEntry) error {
	if len(entries) > maxCPUIDEntries {
		return fmt.Errorf("KVM_SET_CPUID2 on vCPU %d: %d entries, at most %d allowed", v.id, len(entries), maxCPUIDEntries)
	}
	c := &cpuid2{Nent: uint32(len(entries))}
	copy(c.Entries[:], entries)
	return v.ioctlPtr("KVM_SET_CPUID2", kvmSetCPUID2, unsafe.Pointer(c))
}

// MSRs reads the model-specific registers with the given indices
// (KVM_GET_MSRS) and returns them in the same order.
func (v *VCPU) MSRs(indices ...uint32) ([]MSR, error) {
	if len(indices) > maxMSRs {
		return nil, fmt.Errorf("KVM_GET_MSRS on vCPU %d: %d MSRs, at most %d per call", v.id, len(indices), maxMSRs)
	}
	m := &msrs{NMSRs: uint32(len(indices))}
	for i, index := range indices {
		m.Entries[i].Index = index
	}

	var n int
	err := v.do(func() error {
		var err error
		n, err = ioctlPtr(v.fd, kvmGetMSRs, unsafe.Pointer(m))
		if err != nil {
			return fmt.Errorf("KVM_GET_MSRS on vCPU %d: %w", v.id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// KVM stops at the first MSR it cannot read and returns how many it read.
	if n < len(indices) {
		return nil, fmt.Errorf("KVM_GET_MSRS on vCPU %d: MSR %#x (entry %d of %d) is not supported", v.id, indices[n], n+1, len(indices))
	}
	return append([]MSR(nil), m.Entries[:n]...), nil
}

// SetMSRs writes model-specific registers (KVM_SET_MSRS). On an error the
// MSRs before the one named in it have been written.
func (v *VCPU) SetMSRs(regs ...MSR) error {
	if len(regs) > maxMSRs {
		return fmt.Errorf("KVM_SET_MSRS on vCPU %d: %d MSRs, at most %d per call", v.id, len(regs), maxMSRs)
	}
	m := &msrs{NMSRs: uint32(len(regs))}
	copy(m.Entries[:], regs)

	var n int
	err := v.do(func() error {
		var err error
		n, err = ioctlPtr(v.fd, kvmSetMSRs, unsafe.Pointer(m))
		if err != nil {
			return fmt.Errorf("KVM_SET_MSRS on vCPU %d: %w", v.id, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n < len(regs) {
		return fmt.Errorf("KVM_SET_MSRS on vCPU %d: MSR %#x = %#x (entry %d of %d) was rejected", v.id, regs[n].Index, regs[n].Value, n+1, len(regs))
	}
	return nil
}

// Close stops an active Run, which then returns an error wrapping ErrClosed,
// waits for it to return, unmaps kvm_run and closes the vCPU. Calling Close
// again returns the first call's result. Called from this vCPU's own exit
// handlers, Close would wait for itself, so it returns an error there. Return
// ErrStop from the handler instead.
func (v *VCPU) Close() error {
	select {
	case <-v.exited:
		return v.closeErr
	default:
	}
	if v.onThread(unix.Gettid()) {
		return fmt.Errorf("vCPU %d: Close called from the vCPU's own exit handler (return ErrStop instead)", v.id)
	}

	v.closeOnce.Do(func() { close(v.quit) })
	if rs := v.active.Load(); rs != nil {
		v.kick(rs, ErrClosed)
	}
	<-v.exited
	return v.closeErr
}
