//go:build amd64

package kvm

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DevicePath is the KVM device that Open opens.
const DevicePath = "/dev/kvm"

// System is an open /dev/kvm, the handle for system-wide KVM ioctls and for
// creating VMs. Its methods are safe for concurrent use.
type System struct {
	mu     sync.RWMutex // held for reading while fd is in use
	fd     int
	closed bool
}

// requiredCaps are the capabilities this package cannot work without.
var requiredCaps = []struct {
	cap  Cap
	need string
}{
	{CapUserMemory, "guest memory in VMM mappings"},
	{CapImmediateExit, "stopping a running vCPU (Linux 4.11 or newer)"},
}

// Open opens /dev/kvm read-write and checks that the kernel reports KVM API
// version 12 and has the capabilities this package relies on.
func Open() (*System, error) {
	fd, err := unix.Open(DevicePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(err)
	}
	s := &System{fd: fd}

	version, err := ioctl(fd, kvmGetAPIVersion, 0) // s is not shared yet
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	if version != apiVersion {
		s.Close()
		return nil, fmt.Errorf("KVM_GET_API_VERSION returned %d, but this package needs version %d, the stable KVM API", version, apiVersion)
	}

	for _, req := range requiredCaps {
		n, err := s.CheckExtension(req.cap)
		if err != nil {
			s.Close()
			return nil, err
		}
		if n <= 0 {
			s.Close()
			return nil, fmt.Errorf("KVM_CHECK_EXTENSION: the kernel lacks %v, needed for %s", req.cap, req.need)
		}
	}
	return s, nil
}

// openError wraps the error of opening /dev/kvm with what to do about it.
func openError(err error) error {
	pathErr := &os.PathError{Op: "open", Path: DevicePath, Err: err}
	switch {
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (needs read-write access: add the user to the group that owns %s, usually kvm, or run as root)", pathErr, DevicePath)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		return fmt.Errorf("%w (KVM is not available: load the KVM module for this CPU, e.g. kvm_intel or kvm_amd, and enable virtualization in the firmware)", pathErr)
	default:
		return pathErr
	}
}

// Close closes /dev/kvm. VMs created from s stay usable. Calling Close again
// returns nil.
func (s *System) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.closed {
		return nil
	}
	s.closed = true
	if err := unix.Close(s.fd); err != nil {
		return fmt.Errorf("close %s: %w", DevicePath, err)
	}
	return nil
}

// withFD calls f with the descriptor of /dev/kvm, or returns ErrClosed.
func (s *System) withFD(f func(fd int) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()

	if s.closed {
		return ErrClosed
	}
	return f(s.fd)
}

// CheckExtension returns KVM_CHECK_EXTENSION for c: 0 if the kernel lacks
// the capability, otherwise 1 or a capability-specific number such as the
// number of memory slots for CapNrMemSlots. VM.CheckExtension queries one VM,
// which is more precise for some capabilities.
func (s *System) CheckExtension(c Cap) (int, error) {
	var n int
	err := s.withFD(func(fd int) error {
		var err error
		if n, err = ioctl(fd, kvmCheckExtension, uintptr(c)); err != nil {
			return fmt.Errorf("KVM_CHECK_EXTENSION %v: %w", c, err)
		}
		return nil
	})
	return n, err
}

// VCPUMmapSize returns KVM_GET_VCPU_MMAP_SIZE, the size in bytes of the
// kvm_run mapping of each vCPU, including the pages after struct kvm_run
// that hold port I/O data.
func (s *System) VCPUMmapSize() (int, error) {
	var n int
	err := s.withFD(func(fd int) error {
		var err error
		if n, err = ioctl(fd, kvmGetVCPUMmapSize, 0); err != nil {
			return fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if n < int(unsafe.Sizeof(kvmRun{})) {
		return 0, fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE returned %d, smaller than struct kvm_run (%d bytes)", n, unsafe.Sizeof(kvmRun{}))
	}
	return n, nil
}

// SupportedCPUID returns KVM_GET_SUPPORTED_CPUID: the CPUID leaves, and the
// feature bits in them, that KVM can present to a guest. A VMM usually edits
// the result and passes it to VCPU.SetCPUID.
func (s *System) SupportedCPUID() ([]CPUIDEntry, error) {
	c := &cpuid2{Nent: maxCPUIDEntries}
	err := s.withFD(func(fd int) error {
		if _, err := ioctlPtr(fd, kvmGetSupportedCPUID, unsafe.Pointer(c)); err != nil {
			return fmt.Errorf("KVM_GET_SUPPORTED_CPUID with room for %d entries: %w", maxCPUIDEntries, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return append([]CPUIDEntry(nil), c.Entries[:c.Nent]...), nil
}

// MSRIndexList returns KVM_GET_MSR_INDEX_LIST: the indices of the MSRs that
// KVM saves and restores for a guest.
func (s *System) MSRIndexList() ([]uint32, error) {
	var list []uint32
	err := s.withFD(func(fd int) error {
		// The first call, with room for no indices, fails with E2BIG and
		// stores the number of indices in the count.
		probe := []uint32{0}
		_, err := ioctlPtr(fd, kvmGetMSRIndexList, unsafe.Pointer(&probe[0]))
		if err != nil && !errors.Is(err, unix.E2BIG) {
			return fmt.Errorf("KVM_GET_MSR_INDEX_LIST: %w", err)
		}
		n := probe[0]
		if n == 0 {
			return nil
		}

		buf := make([]uint32, 1+n)
		buf[0] = n
		if _, err := ioctlPtr(fd, kvmGetMSRIndexList, unsafe.Pointer(&buf[0])); err != nil {
			return fmt.Errorf("KVM_GET_MSR_INDEX_LIST with room for %d indices: %w", n, err)
		}
		list = buf[1 : 1+min(buf[0], n)]
		return nil
	})
	return list, err
}

// CreateVM creates a VM with no memory and no vCPUs (KVM_CREATE_VM).
func (s *System) CreateVM() (*VM, error) {
	mmapSize, err := s.VCPUMmapSize()
	if err != nil {
		return nil, err
	}
	var vmfd int
	err = s.withFD(func(fd int) error {
		var err error
		if vmfd, err = ioctl(fd, kvmCreateVM, 0); err != nil {
			hint := ""
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
				hint = " (too many open files: close VMs that are no longer needed or raise RLIMIT_NOFILE)"
			}
			return fmt.Errorf("KVM_CREATE_VM: %w%s", err, hint)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &VM{fd: vmfd, vcpuMmapSize: mmapSize}, nil
}
