package hermit

import (
	"encoding/binary"
	"fmt"
)

// Page-table entry fields of x86-64 4-level paging (Intel SDM Vol. 3A, 4.5).
const (
	ptePresent  = 1 << 0
	pteWritable = 1 << 1
	pteHuge     = 1 << 7                // PS: a 1 GiB page in a PDPT entry, 2 MiB in a PD entry
	pteAddrMask = 0x000f_ffff_ffff_f000 // bits 51:12, the next table or the 4 KiB page
)

// physRange is a run of guest-physical memory.
type physRange struct {
	Addr, Len uint64
}

// pageFault is the error of a page walk that the CPU would answer with an
// exception: #PF for a page that is not present or, for a write, not
// writable; #GP for a non-canonical address.
type pageFault struct {
	Addr         uint64
	NonCanonical bool
	Present      bool // the page is present but not writable
	Write        bool
	why          string
}

func (f *pageFault) Error() string { return f.why }

// translate walks the 4-level page tables at cr3 (CR4.LA57 clear) and
// returns the guest-physical address of the guest-virtual address gva, and
// how many bytes from gva on lie in the same page. Every table entry is read
// through mem, so tables outside guest memory fail the walk. A walk that
// ends at a missing page fails with a *pageFault.
func translate(mem GuestMemory, cr3, gva uint64) (gpa, rest uint64, err error) {
	gpa, rest, _, err = walk(mem, cr3, gva)
	return gpa, rest, err
}

// walk is translate that also reports whether every level of the walk
// allows writes (the R/W bit, Intel SDM volume 3A, 4.6).
func walk(mem GuestMemory, cr3, gva uint64) (gpa, rest uint64, writable bool, err error) {
	if top := int64(gva) >> 47; top != 0 && top != -1 {
		return 0, 0, false, &pageFault{Addr: gva, NonCanonical: true, why: fmt.Sprintf("guest-virtual address %#x is not canonical", gva)}
	}
	writable = true

	table := cr3 & pteAddrMask
	var entry [8]byte
	for level := 4; level >= 1; level-- {
		shift := 12 + 9*uint(level-1)
		index := (gva >> shift) & 511
		if _, err := mem.ReadAt(entry[:], int64(table+index*8)); err != nil {
			return 0, 0, false, fmt.Errorf("translate guest-virtual address %#x: level-%d page-table entry at %#x: %w", gva, level, table+index*8, err)
		}
		e := binary.LittleEndian.Uint64(entry[:])
		if e&ptePresent == 0 {
			return 0, 0, false, &pageFault{Addr: gva, why: fmt.Sprintf("guest-virtual address %#x is not mapped (level-%d entry %d of the table at %#x is not present)", gva, level, index, table)}
		}
		writable = writable && e&pteWritable != 0
		if level == 1 || (e&pteHuge != 0 && (level == 2 || level == 3)) {
			size := uint64(1) << shift
			base := e & pteAddrMask &^ (size - 1)
			offset := gva & (size - 1)
			return base + offset, size - offset, writable, nil
		}
		table = e & pteAddrMask
	}
	panic("unreachable: level 1 always returns")
}

// translateRange returns the guest-physical runs that back the n bytes of
// guest-virtual memory at gva, one per page crossed, merging runs that are
// physically contiguous. The caller bounds n, which bounds the walk.
func translateRange(mem GuestMemory, cr3, gva, n uint64) ([]physRange, error) {
	if gva+n < gva {
		return nil, fmt.Errorf("guest-virtual range %#x, length %#x, wraps past the top of the address space", gva, n)
	}
	return translateRangeFor(mem, cr3, gva, n, false, false)
}

// translateRangeFor is translateRange for an instruction's memory access.
// write marks a resulting *pageFault as caused by a write, and with
// enforceWrite a page that is not writable fails the walk with a
// *pageFault (CR0.WP makes the CPU check that in ring 0). Like the CPU in
// 64-bit mode, it wraps from the top of the address space to 0.
func translateRangeFor(mem GuestMemory, cr3, gva, n uint64, write, enforceWrite bool) ([]physRange, error) {
	var runs []physRange
	for n > 0 {
		gpa, rest, writable, err := walk(mem, cr3, gva)
		if err != nil {
			if f, ok := err.(*pageFault); ok {
				f.Write = write
			}
			return nil, err
		}
		if enforceWrite && !writable {
			return nil, &pageFault{Addr: gva, Present: true, Write: true, why: fmt.Sprintf("guest-virtual address %#x is not writable", gva)}
		}
		chunk := min(rest, n)
		if k := len(runs); k > 0 && runs[k-1].Addr+runs[k-1].Len == gpa {
			runs[k-1].Len += chunk
		} else {
			runs = append(runs, physRange{gpa, chunk})
		}
		gva += chunk
		n -= chunk
	}
	return runs, nil
}
