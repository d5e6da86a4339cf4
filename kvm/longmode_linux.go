//go:build amd64

package kvm

// Control-register, EFER and RFLAGS bits (Intel SDM Vol. 3A, 2.5 and 2.2.1).
const (
	CR0PE = 1 << 0  // protection enable
	CR0MP = 1 << 1  // monitor coprocessor
	CR0EM = 1 << 2  // x87 emulation
	CR0TS = 1 << 3  // task switched: the next x87 or SSE instruction raises #NM
	CR0ET = 1 << 4  // extension type, fixed to 1
	CR0NE = 1 << 5  // native x87 error reporting
	CR0WP = 1 << 16 // write protect in ring 0
	CR0PG = 1 << 31 // paging

	CR4PAE        = 1 << 5
	CR4OSFXSR     = 1 << 9
	CR4OSXMMEXCPT = 1 << 10
	CR4OSXSAVE    = 1 << 18

	EFERSCE = 1 << 0  // SYSCALL enable
	EFERLME = 1 << 8  // long mode enable
	EFERLMA = 1 << 10 // long mode active
	EFERNXE = 1 << 11 // no-execute enable

	// RFLAGSReserved is bit 1 of RFLAGS, which always reads as 1. A fresh
	// vCPU's RFLAGS for SetRegs is this value.
	RFLAGSReserved = 1 << 1
	// RFLAGSIOPL3 sets the I/O privilege level to 3, so that IN and OUT run
	// at every privilege level.
	RFLAGSIOPL3 = 3 << 12
)

// Segment returns d as KVM's segment register with the given selector, the
// hidden part that loading selector from a GDT holding d would produce.
func (d SegmentDescriptor) Segment(selector uint16) Segment {
	limit := d.Limit & 0xfffff
	if d.Granularity {
		limit = limit<<12 | 0xfff
	}
	return Segment{
		Base:     uint64(d.Base),
		Limit:    limit,
		Selector: selector,
		Type:     d.Type & 0xf,
		Present:  boolByte(d.Present),
		DPL:      d.DPL & 3,
		DB:       boolByte(d.DB),
		S:        boolByte(d.S),
		L:        boolByte(d.Long),
		G:        boolByte(d.Granularity),
		AVL:      boolByte(d.AVL),
	}
}

// SetLongMode puts s into 64-bit mode at privilege level 0, as if a boot
// loader had enabled paging and loaded FlatGDT: CR0 = PE|ET|NE|PG, CR3 =
// pml4Addr, CR4 = PAE, EFER = LME|LMA|NXE, GDTR = gdtAddr with room for three
// descriptors, CS = SelectorCode64, and DS, ES and SS = SelectorData. It
// leaves FS, GS, TR, LDT, IDT, CR2, CR8 and the APIC base as they are, so
// start from the vCPU's SRegs. These are the values uhyve starts Hermit
// kernels with.
//
// The caller writes FlatGDT at gdtAddr and page tables, such as those of
// IdentityMap.Build, at pml4Addr, and sets RIP, RSP and RFLAGS (at least
// RFLAGSReserved) with SetRegs.
func (s *SRegs) SetLongMode(gdtAddr, pml4Addr uint64) {
	s.CR0 = CR0PE | CR0ET | CR0NE | CR0PG
	s.CR3 = pml4Addr
	s.CR4 = CR4PAE
	s.EFER = EFERLME | EFERLMA | EFERNXE

	s.GDT = DTable{Base: gdtAddr, Limit: uint16(len(FlatGDT()) - 1)}
	s.CS = flatCode64.Segment(SelectorCode64)
	data := flatData.Segment(SelectorData)
	s.DS, s.ES, s.SS = data, data, data
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
