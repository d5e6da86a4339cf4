package hermit

import (
	"encoding/binary"
	"errors"
	"time"
)

// BootInfoSize is the size of hermit-entry's RawBootInfo on x86-64.
const BootInfoSize = 128

// platformUhyve is the x86-64 PlatformInfo tag of the Uhyve variant. The
// other tags are 0 Multiboot, 2 LinuxBootParams and 3 Fdt.
const platformUhyve = 1

// BootInfo is the boot information a kernel receives in RDI: hermit-entry's
// RawBootInfo with the Uhyve platform variant, for entry version 4. Encode
// produces its byte layout.
type BootInfo struct {
	// PhysStart and PhysEnd bound guest RAM, [PhysStart, PhysEnd).
	PhysStart, PhysEnd uint64

	// SerialPortBase is the port a kernel writes log bytes to, 0 for none.
	// Kernels up to 0.11 need it even under uhyve and hang silently on a
	// panic without it.
	SerialPortBase uint16

	// DeviceTree is the guest-physical address of the FDT, 0 for none.
	DeviceTree uint64

	// KernelStart and KernelEnd bound the loaded kernel image.
	KernelStart, KernelEnd uint64

	// TLS is the kernel's thread-local storage image with its absolute
	// address. All zero means none.
	TLS TLS

	// HasPCI makes kernels up to 0.10 scan the PCI bus, which costs about
	// 2,000 port exits.
	HasPCI bool

	// NumCPUs is the number of vCPUs the VMM runs. The boot CPU waits until
	// this many have started, so it must match. It must not be 0.
	NumCPUs uint64

	// CPUFreqKHz is the TSC frequency in kHz, 0 for unknown.
	CPUFreqKHz uint32

	// BootTime is the wall-clock time at boot. The zero Time encodes as the
	// Unix epoch.
	BootTime time.Time
}

// Encode returns the 128-byte little-endian RawBootInfo:
//
//	  0 u64 phys_addr_start          48 u64 tls.start
//	  8 u64 phys_addr_end            56 u64 tls.filesz
//	 16 u16 serial_port_base         64 u64 tls.memsz
//	 24 u64 device_tree              72 u64 tls.align
//	 32 u64 kernel_image_addr_start  80 u32 platform tag (1 = Uhyve)
//	 40 u64 kernel_image_addr_end    88 u8  has_pci
//	 96 u64 num_cpus                104 u32 cpu_freq (kHz)
//	112 i128 boot_time (ns since the Unix epoch)
//
// The gaps are zero padding.
func (b BootInfo) Encode() ([]byte, error) {
	if b.NumCPUs == 0 {
		return nil, errors.New("hermit: boot info: NumCPUs is 0, but the kernel needs at least one CPU")
	}
	if b.PhysEnd <= b.PhysStart {
		return nil, errors.New("hermit: boot info: PhysEnd is not above PhysStart")
	}

	out := make([]byte, BootInfoSize)
	le := binary.LittleEndian
	le.PutUint64(out[0:], b.PhysStart)
	le.PutUint64(out[8:], b.PhysEnd)
	le.PutUint16(out[16:], b.SerialPortBase)
	le.PutUint64(out[24:], b.DeviceTree)
	le.PutUint64(out[32:], b.KernelStart)
	le.PutUint64(out[40:], b.KernelEnd)
	le.PutUint64(out[48:], b.TLS.VAddr)
	le.PutUint64(out[56:], b.TLS.FileSize)
	le.PutUint64(out[64:], b.TLS.MemSize)
	le.PutUint64(out[72:], b.TLS.Align)
	le.PutUint32(out[80:], platformUhyve)
	if b.HasPCI {
		out[88] = 1
	}
	le.PutUint64(out[96:], b.NumCPUs)
	le.PutUint32(out[104:], b.CPUFreqKHz)

	// i128 in two's complement: the low word, then the sign extension.
	// time.Time.UnixNano covers the years 1678 to 2262.
	var ns int64
	if !b.BootTime.IsZero() {
		ns = b.BootTime.UnixNano()
	}
	le.PutUint64(out[112:], uint64(ns))
	if ns < 0 {
		le.PutUint64(out[120:], ^uint64(0))
	}
	return out, nil
}
