package kvm

import (
	"encoding/binary"
	"fmt"
)

// Page-table entry bits of x86-64 4-level paging (Intel SDM Vol. 3A, 4.5).
const (
	PTEPresent  = 1 << 0
	PTEWritable = 1 << 1
	PTEUser     = 1 << 2
	PTEHuge     = 1 << 7 // in a PD entry, maps a 2 MiB page
)

const (
	hugePageSize = 2 << 20 // bytes mapped by one PD entry with PTEHuge
	pdSpan       = 1 << 30 // bytes mapped by one PD, and by one PDPT entry
	pdptSpan     = 1 << 39 // bytes mapped by one PDPT, and by one PML4 entry
	entriesPerPT = 512

	// maxIdentityEnd is the end of the lower canonical half, 2^47. Identity
	// mapping means virtual address = physical address, and virtual addresses
	// at or above 2^47 are not canonical with 4-level paging.
	maxIdentityEnd = 1 << 47

	// maxPhysAddr is 2^52, the widest physical address a page-table entry can
	// hold.
	maxPhysAddr = 1 << 52
)

// IdentityMap describes 4-level page tables that map a range of guest-virtual
// addresses to the same guest-physical addresses with 2 MiB pages, for
// starting a guest directly in 64-bit mode.
type IdentityMap struct {
	// TablesAddr is the guest-physical address of the PML4 and so the value
	// for CR3. It must be 4 KiB aligned. The PDPT and PD pages follow the PML4
	// contiguously, one 4 KiB page each (see Build).
	TablesAddr uint64

	// Start and End bound the mapped range [Start, End). Start is rounded down
	// and End up to a multiple of 2 MiB. End must not exceed 2^47.
	Start, End uint64

	// SelfMap makes PML4 entry 511 point to the PML4 itself (a recursive
	// mapping), which Hermit kernels expect.
	SelfMap bool

	// User sets the user bit in every entry, so that code at privilege level
	// 3 may use the mapping.
	User bool
}

// Build returns the page tables to write at TablesAddr. They are laid out as
// the PML4, then one PDPT per 512 GiB touched, then one PD per 1 GiB touched,
// each 4 KiB, so len of the result is the space the tables occupy. Every
// entry is present and writable, PD entries map 2 MiB pages, and nothing is
// marked global or no-execute.
func (m IdentityMap) Build() ([]byte, error) {
	if m.TablesAddr%PageSize != 0 {
		return nil, fmt.Errorf("identity map: page-table address %#x is not 4 KiB aligned", m.TablesAddr)
	}
	if m.End <= m.Start {
		return nil, fmt.Errorf("identity map: end %#x is not above start %#x", m.End, m.Start)
	}
	if m.End > maxIdentityEnd {
		return nil, fmt.Errorf("identity map: end %#x is above 2^47, where identity-mapped addresses stop being canonical", m.End)
	}

	start := m.Start &^ (hugePageSize - 1)
	end := (m.End + hugePageSize - 1) &^ (hugePageSize - 1)
	firstPD, lastPD := start/pdSpan, (end-1)/pdSpan
	firstPDPT, lastPDPT := start/pdptSpan, (end-1)/pdptSpan
	pdpts := lastPDPT - firstPDPT + 1
	pds := lastPD - firstPD + 1
	size := (1 + pdpts + pds) * PageSize
	if m.TablesAddr > maxPhysAddr-size {
		return nil, fmt.Errorf("identity map: page tables at %#x, %#x bytes, end above 2^52, the widest physical address", m.TablesAddr, size)
	}

	flags := uint64(PTEPresent | PTEWritable)
	if m.User {
		flags |= PTEUser
	}
	tables := make([]byte, size)
	setEntry := func(page, index, value uint64) {
		binary.LittleEndian.PutUint64(tables[page*PageSize+index*8:], value)
	}
	pageAddr := func(page uint64) uint64 { return m.TablesAddr + page*PageSize }

	// Page 0 is the PML4, pages 1..pdpts the PDPTs, and the PDs follow.
	for i := uint64(0); i < pdpts; i++ {
		setEntry(0, (firstPDPT+i)%entriesPerPT, pageAddr(1+i)|flags)
	}
	if m.SelfMap {
		setEntry(0, entriesPerPT-1, m.TablesAddr|flags)
	}
	for i := uint64(0); i < pds; i++ {
		gib := firstPD + i
		pdpt := 1 + gib/entriesPerPT - firstPDPT
		setEntry(pdpt, gib%entriesPerPT, pageAddr(1+pdpts+i)|flags)
	}
	for addr := start; addr < end; addr += hugePageSize {
		pd := 1 + pdpts + addr/pdSpan - firstPD
		setEntry(pd, addr/hugePageSize%entriesPerPT, addr|flags|PTEHuge)
	}
	return tables, nil
}
