package hermit

import (
	"fmt"

	"github.com/osvm-project/osvm/kvm"
)

// Guest-physical layout, as offsets from the start of guest RAM, as in uhyve
// 0.9 (src/mem_layout.rs). Kernels receive these addresses in registers and
// in the boot information.
const (
	offsetGDT      = 0x0000
	offsetFDT      = 0x1000
	maxFDTSize     = 0x4000 // up to offsetBootInfo
	offsetBootInfo = 0x5000
	offsetPML4     = 0x10000
	pageTablePool  = 0x38000 - offsetPML4 // PML4, PDPTs and PDs
	offsetStack    = 0x38000              // the lowest address of the 32 KiB boot stack
	offsetKernel   = 0x40000              // load address of position-independent kernels
)

// Where guest RAM may lie for each interface version. Version 1 passes
// 32-bit pointers and keeps RAM below 3 GiB, clear of the MMIO hole below
// 4 GiB. Versions 2 and 3 put RAM at 4 GiB and above.
const (
	v1RAMStart = 0
	v1RAMLimit = 0xc000_0000
	v2RAMStart = 1 << 32
	v2RAMLimit = 0x10_0000_0000

	hugePage = 2 << 20
	gib      = 1 << 30

	// minMemory is a floor chosen by this package: it holds the boot
	// structures and a small kernel.
	minMemory = 4 << 20
)

// DefaultMemory is the guest RAM Run gives a kernel when Config.Memory is 0,
// uhyve's default too.
const DefaultMemory = 64 << 20

// layout is the guest-physical placement of RAM, the boot structures and the
// kernel that Run uses.
type layout struct {
	RAMStart, RAMSize               uint64
	GDT, FDT, BootInfo, PML4, Stack uint64

	// KernelBias is the Load bias: the load address of a
	// position-independent kernel, 0 for ET_EXEC.
	KernelBias uint64

	// KernelStart and KernelEnd bound the loaded kernel.
	KernelStart, KernelEnd uint64

	// MapStart and MapEnd bound the identity map that the initial page
	// tables set up.
	MapStart, MapEnd uint64
}

// planLayout places RAM, the boot structures and the kernel for img with
// memSize bytes of RAM, and checks that they fit.
func planLayout(img *Image, memSize uint64) (layout, error) {
	if memSize%hugePage != 0 {
		return layout{}, fmt.Errorf("hermit: memory size %#x is not a multiple of 2 MiB", memSize)
	}
	if memSize < minMemory {
		return layout{}, fmt.Errorf("hermit: memory size %d MiB is below the minimum of %d MiB", memSize>>20, minMemory>>20)
	}

	start, limit := uint64(v1RAMStart), uint64(v1RAMLimit)
	if img.InterfaceVersion >= 2 {
		start, limit = v2RAMStart, v2RAMLimit
	}
	if memSize > limit-start {
		return layout{}, fmt.Errorf("hermit: memory size %d MiB does not fit below %#x, the limit for uhyve interface version %d",
			memSize>>20, uint64(limit), img.InterfaceVersion)
	}
	l := layout{
		RAMStart: start,
		RAMSize:  memSize,
		GDT:      start + offsetGDT,
		FDT:      start + offsetFDT,
		BootInfo: start + offsetBootInfo,
		PML4:     start + offsetPML4,
		Stack:    start + offsetStack,
	}

	low, high := img.Span()
	if img.PositionIndependent {
		l.KernelBias = start + offsetKernel
	}
	l.KernelStart, l.KernelEnd = l.KernelBias+low, l.KernelBias+high
	ramEnd := start + memSize
	if l.KernelStart < start+offsetKernel || l.KernelEnd > ramEnd {
		return layout{}, fmt.Errorf("hermit: kernel at [%#x, %#x) does not fit in guest RAM [%#x, %#x) above the boot structures: raise the memory size or link the kernel at or above %#x",
			l.KernelStart, l.KernelEnd, start+offsetKernel, ramEnd, start+offsetKernel)
	}

	// Legacy kernels get the whole GiB that holds their start, even beyond
	// RAM, because they unmap the pages above their end and panic if one is
	// missing. Newer kernels get RAM up to and including the 2 MiB page
	// that holds their end, and map the rest themselves.
	l.MapStart = start
	if img.LegacyMapping() {
		l.MapEnd = l.KernelStart&^(gib-1) + gib
	} else {
		l.MapEnd = l.KernelEnd&^(hugePage-1) + hugePage
	}
	return l, nil
}

// pageTables returns the initial page tables for l: the identity map with
// PML4[511] pointing back to the PML4, which Hermit kernels use as a
// recursive mapping.
func (l layout) pageTables() ([]byte, error) {
	tables, err := kvm.IdentityMap{TablesAddr: l.PML4, Start: l.MapStart, End: l.MapEnd, SelfMap: true}.Build()
	if err != nil {
		return nil, fmt.Errorf("hermit: page tables: %w", err)
	}
	if len(tables) > pageTablePool {
		return nil, fmt.Errorf("hermit: page tables for [%#x, %#x) need %d bytes, more than the %d reserved", l.MapStart, l.MapEnd, len(tables), pageTablePool)
	}
	return tables, nil
}
