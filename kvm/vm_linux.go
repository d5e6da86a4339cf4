//go:build amd64

package kvm

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// VM is a KVM virtual machine: its memory slots, its in-kernel devices and
// its vCPUs. Its methods are safe for concurrent use.
type VM struct {
	fd           int
	vcpuMmapSize int
	memory       Memory

	mu       sync.Mutex // guards the fields below
	nextSlot uint32
	vcpus    []*VCPU
	closed   bool
}

// Memory returns the guest-physical memory of vm, through which every access
// to guest memory goes.
func (vm *VM) Memory() *Memory {
	return &vm.memory
}

// AddMemory backs the guest-physical range [gpa, gpa+size) with new
// anonymous memory and registers it as the next memory slot
// (KVM_SET_USER_MEMORY_REGION). Both values must be multiples of PageSize.
// The memory reads as zeros, takes host memory only as the guest or the
// VMM touches it, and is left out of core dumps (MADV_DONTDUMP). Guest
// accesses outside every slot reach the MMIO handlers.
func (vm *VM) AddMemory(gpa, size uint64) error {
	vm.mu.Lock()
	defer vm.mu.Unlock()

	if vm.closed {
		return ErrClosed
	}
	if err := vm.memory.checkAdd(gpa, size); err != nil {
		return err
	}
	if size > uint64(^uint(0)>>1) {
		return fmt.Errorf("memory slot at %#x: size %#x does not fit in a host mapping", gpa, size)
	}

	data, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("mmap %d bytes of guest memory for %#x: %w", size, gpa, err)
	}
	// Guest memory may hold the guest's secrets and be gigabytes large, so
	// it stays out of the VMM's core dumps. The flag also keeps the kernel
	// from merging the mapping with the Go runtime's anonymous mappings, so
	// /proc/PID/smaps shows guest memory as a mapping of its own (VmFlags
	// "dd"), which the memory benchmarks rely on.
	if err := unix.Madvise(data, unix.MADV_DONTDUMP); err != nil {
		unix.Munmap(data)
		return fmt.Errorf("madvise(MADV_DONTDUMP) on %d bytes of guest memory for %#x: %w", size, gpa, err)
	}

	slot := vm.nextSlot
	region := userspaceMemoryRegion{
		Slot:          slot,
		GuestPhysAddr: gpa,
		MemorySize:    size,
		UserspaceAddr: uint64(uintptr(unsafe.Pointer(&data[0]))),
	}
	if _, err := ioctlPtr(vm.fd, kvmSetUserMemRegion, unsafe.Pointer(&region)); err != nil {
		unix.Munmap(data)
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION slot %d at %#x, size %#x: %w", slot, gpa, size, err)
	}
	if err := vm.memory.add(slot, gpa, data); err != nil {
		// checkAdd passed under vm.mu, which every add holds, so this is a
		// bug in this package.
		panic(fmt.Sprintf("kvm: memory slot %d accepted by KVM but not by Memory: %v", slot, err))
	}
	vm.nextSlot++
	return nil
}

// SetTSSAddr places the three pages that Intel VMX uses to emulate real mode
// at guest-physical address addr (KVM_SET_TSS_ADDR). api.rst calls it
// required on Intel hosts. It matters for guests that run real-mode code on
// CPUs without unrestricted-guest support, while guests started directly in
// 64-bit mode run without it (uhyve never calls it). The three pages must lie
// below 4 GiB, outside every memory slot and MMIO range. Call it before
// running a vCPU.
func (vm *VM) SetTSSAddr(addr uint64) error {
	return vm.withFD(func(fd int) error {
		if _, err := ioctl(fd, kvmSetTSSAddr, uintptr(addr)); err != nil {
			return fmt.Errorf("KVM_SET_TSS_ADDR %#x: %w", addr, err)
		}
		return nil
	})
}

// SetIdentityMapAddr places the page that Intel VMX uses as an identity page
// table while emulating real mode at guest-physical address addr
// (KVM_SET_IDENTITY_MAP_ADDR). It matters for the same guests as SetTSSAddr,
// must lie below 4 GiB outside every memory slot and MMIO range, and must be
// set before the first vCPU is created.
func (vm *VM) SetIdentityMapAddr(addr uint64) error {
	return vm.withFD(func(fd int) error {
		if _, err := ioctlPtr(fd, kvmSetIdentityMapAddr, unsafe.Pointer(&addr)); err != nil {
			return fmt.Errorf("KVM_SET_IDENTITY_MAP_ADDR %#x: %w", addr, err)
		}
		return nil
	})
}

// CreateIRQChip creates the in-kernel interrupt controllers
// (KVM_CREATE_IRQCHIP): the PIC, the IOAPIC with its MMIO at 0xfec00000, and
// a local APIC for every vCPU with its MMIO at 0xfee00000. It must come before
// the first CreateVCPU. With it, HLT no longer exits to the VMM.
func (vm *VM) CreateIRQChip() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()

	if vm.closed {
		return ErrClosed
	}
	if len(vm.vcpus) > 0 {
		return fmt.Errorf("KVM_CREATE_IRQCHIP: %d vCPUs exist already (create the IRQ chip before the first vCPU)", len(vm.vcpus))
	}
	if _, err := ioctl(vm.fd, kvmCreateIRQChip, 0); err != nil {
		return fmt.Errorf("KVM_CREATE_IRQCHIP: %w", err)
	}
	return nil
}

// CreatePIT2 creates the in-kernel i8254 timer on ports 0x40 to 0x43
// (KVM_CREATE_PIT2). It needs CreateIRQChip first. Port 0x61 (the PC
// speaker) still exits to the VMM.
func (vm *VM) CreatePIT2() error {
	cfg := pitConfig{} // no KVM_PIT_SPEAKER_DUMMY
	return vm.withFD(func(fd int) error {
		if _, err := ioctlPtr(fd, kvmCreatePIT2, unsafe.Pointer(&cfg)); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("KVM_CREATE_PIT2: %w (call CreateIRQChip first)", err)
			}
			return fmt.Errorf("KVM_CREATE_PIT2: %w", err)
		}
		return nil
	})
}

// CheckExtension is System.CheckExtension for this VM, which can differ from
// the system-wide answer, for example for CapNrMemSlots or CapMaxVCPUs.
func (vm *VM) CheckExtension(c Cap) (int, error) {
	var n int
	err := vm.withFD(func(fd int) error {
		var err error
		if n, err = ioctl(fd, kvmCheckExtension, uintptr(c)); err != nil {
			return fmt.Errorf("KVM_CHECK_EXTENSION %v on VM: %w", c, err)
		}
		return nil
	})
	return n, err
}

// EnableCap enables capability c on the VM with up to four arguments
// (KVM_ENABLE_CAP), for example EnableCap(CapX2APICAPI,
// X2APICUse32BitIDs|X2APICDisableBroadcastQuirk). Most capabilities must be
// enabled before the first vCPU is created.
func (vm *VM) EnableCap(c Cap, args ...uint64) error {
	req := enableCap{Cap: uint32(c)}
	if len(args) > len(req.Args) {
		return fmt.Errorf("KVM_ENABLE_CAP %v: %d arguments, at most %d allowed", c, len(args), len(req.Args))
	}
	copy(req.Args[:], args)
	return vm.withFD(func(fd int) error {
		if _, err := ioctlPtr(fd, kvmEnableCap, unsafe.Pointer(&req)); err != nil {
			return fmt.Errorf("KVM_ENABLE_CAP %v %#x: %w", c, args, err)
		}
		return nil
	})
}

// CreateVCPU creates the vCPU with the given id (KVM_CREATE_VCPU), usually
// numbered from 0, with its own goroutine locked to a new OS thread that
// issues all of its ioctls. Its registers hold the x86 reset state, in real
// mode at 0xfffffff0.
func (vm *VM) CreateVCPU(id int) (*VCPU, error) {
	vm.mu.Lock()
	defer vm.mu.Unlock()

	if vm.closed {
		return nil, ErrClosed
	}
	if id < 0 {
		return nil, fmt.Errorf("KVM_CREATE_VCPU %d: vCPU id is negative", id)
	}
	v, err := newVCPU(vm.fd, id, vm.vcpuMmapSize)
	if err != nil {
		return nil, err
	}
	vm.vcpus = append(vm.vcpus, v)
	return v, nil
}

// withFD calls f with the VM's descriptor while holding vm.mu, so that Close
// cannot close the descriptor, and the kernel reuse its number, during f.
func (vm *VM) withFD(f func(fd int) error) error {
	vm.mu.Lock()
	defer vm.mu.Unlock()

	if vm.closed {
		return ErrClosed
	}
	return f(vm.fd)
}

// Close closes the VM's vCPUs (stopping any Run, see VCPU.Close), unmaps its
// guest memory and closes the VM. Slices from Memory.Slice must not be used
// afterwards. Calling Close again returns nil. Called from an exit handler,
// Close returns an error and closes nothing, because it would wait for the
// handler's own vCPU.
func (vm *VM) Close() error {
	vm.mu.Lock()
	if vm.closed {
		vm.mu.Unlock()
		return nil
	}
	tid := unix.Gettid()
	for _, v := range vm.vcpus {
		if v.onThread(tid) {
			vm.mu.Unlock()
			return fmt.Errorf("VM.Close called from an exit handler of vCPU %d (return ErrStop, then close the VM)", v.id)
		}
	}
	vm.closed = true
	vcpus := vm.vcpus
	vm.mu.Unlock()

	// vm.mu is not held from here on, so that exit handlers of the runs being
	// stopped can still call methods of vm and return.
	var errs []error
	for _, v := range vcpus {
		if err := v.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, data := range vm.memory.close() {
		if err := unix.Munmap(data); err != nil {
			errs = append(errs, fmt.Errorf("munmap guest memory: %w", err))
		}
	}
	if err := unix.Close(vm.fd); err != nil {
		errs = append(errs, fmt.Errorf("close VM: %w", err))
	}
	return errors.Join(errs...)
}
