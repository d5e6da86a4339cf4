package paging

import (
	"encoding/binary"
	"fmt"
)

// Page-table entry fields of x86-64 4-level paging (Intel SDM Vol. 3A, 4.5).
const (
	Present  = 1 << 0
	Writable = 1 << 1
	Huge     = 1 << 7                // PS: a 1 GiB page in a PDPT entry, 2 MiB in a PD entry
	addrMask = 0x000f_ffff_ffff_f000 // bits 51:12, the next table or the 4 KiB page
)

// Memory is guest memory as kvm.Memory offers it: ReadAt and WriteAt at
// guest-physical offsets, copying all of p or failing.
type Memory interface {
	ReadAt(p []byte, gpa int64) (int, error)
	WriteAt(p []byte, gpa int64) (int, error)
}

// Run is a run of guest-physical memory.
type Run struct {
	Addr, Len uint64
}

// Fault is the error of a page walk for which the CPU raises an exception.
// That is #PF for a page that is not present or, for a write, not
// writable, and #GP for a non-canonical address.
type Fault struct {
	Addr         uint64
	NonCanonical bool
	Protection   bool // the page is present, and the access violates its protection (the P bit of #PF's error code)
	Write        bool
	why          string
}

func (f *Fault) Error() string { return f.why }

// Translate walks the 4-level page tables at cr3 and
// returns the guest-physical address of the guest-virtual address gva, and
// how many bytes from gva on lie in the same page. Every table entry is read
// through mem, so tables outside guest memory fail the walk. A walk that
// ends at a missing page fails with a *Fault.
func Translate(mem Memory, cr3, gva uint64) (gpa, rest uint64, err error) {
	gpa, rest, _, err = walk(mem, cr3, gva)
	return gpa, rest, err
}

// walk is Translate that also reports whether every level of the walk
// allows writes (the R/W bit, Intel SDM volume 3A, 4.6).
func walk(mem Memory, cr3, gva uint64) (gpa, rest uint64, writable bool, err error) {
	if top := int64(gva) >> 47; top != 0 && top != -1 {
		return 0, 0, false, &Fault{Addr: gva, NonCanonical: true, why: fmt.Sprintf("guest-virtual address %#x is not canonical", gva)}
	}
	writable = true

	table := cr3 & addrMask
	var entry [8]byte
	for level := 4; level >= 1; level-- {
		shift := 12 + 9*uint(level-1)
		index := (gva >> shift) & 511
		if _, err := mem.ReadAt(entry[:], int64(table+index*8)); err != nil {
			return 0, 0, false, fmt.Errorf("translate guest-virtual address %#x: level-%d page-table entry at %#x: %w", gva, level, table+index*8, err)
		}
		e := binary.LittleEndian.Uint64(entry[:])
		if e&Present == 0 {
			return 0, 0, false, &Fault{Addr: gva, why: fmt.Sprintf("guest-virtual address %#x is not mapped (level-%d entry %d of the table at %#x is not present)", gva, level, index, table)}
		}
		writable = writable && e&Writable != 0
		if level == 1 || (e&Huge != 0 && (level == 2 || level == 3)) {
			size := uint64(1) << shift
			base := e & addrMask &^ (size - 1)
			offset := gva & (size - 1)
			return base + offset, size - offset, writable, nil
		}
		table = e & addrMask
	}
	panic("unreachable: level 1 always returns")
}

// Range returns the guest-physical runs that back the n bytes of
// guest-virtual memory at gva, one per page crossed, merging runs that are
// physically contiguous. The caller bounds n, which bounds the walk.
func Range(mem Memory, cr3, gva, n uint64) ([]Run, error) {
	if gva+n < gva {
		return nil, fmt.Errorf("guest-virtual range %#x, length %#x, wraps past the top of the address space", gva, n)
	}
	return Access(mem, cr3, gva, n, false, false)
}

// Access is Range for an instruction's memory access. write marks a
// resulting *Fault as caused by a write, and with enforceWrite a page that
// is not writable fails the walk with a *Fault (CR0.WP makes the CPU check
// that in ring 0). Like the CPU in 64-bit mode, it wraps from the top of
// the address space to 0.
func Access(mem Memory, cr3, gva, n uint64, write, enforceWrite bool) ([]Run, error) {
	var runs []Run
	for n > 0 {
		gpa, rest, writable, err := walk(mem, cr3, gva)
		if err != nil {
			if f, ok := err.(*Fault); ok {
				f.Write = write
			}
			return nil, err
		}
		if enforceWrite && !writable {
			return nil, &Fault{Addr: gva, Protection: true, Write: true, why: fmt.Sprintf("guest-virtual address %#x is not writable", gva)}
		}
		chunk := min(rest, n)
		if k := len(runs); k > 0 && runs[k-1].Addr+runs[k-1].Len == gpa {
			runs[k-1].Len += chunk
		} else {
			runs = append(runs, Run{Addr: gpa, Len: chunk})
		}
		gva += chunk
		n -= chunk
	}
	return runs, nil
}

// Read copies the guest-physical runs into buf, in order. buf must be as
// long as the runs together.
func Read(mem Memory, runs []Run, buf []byte) error {
	off := uint64(0)
	for _, r := range runs {
		if _, err := mem.ReadAt(buf[off:off+r.Len], int64(r.Addr)); err != nil {
			return err
		}
		off += r.Len
	}
	return nil
}

// Write copies buf to the guest-physical runs, in order. buf must be as
// long as the runs together.
func Write(mem Memory, runs []Run, buf []byte) error {
	off := uint64(0)
	for _, r := range runs {
		if _, err := mem.WriteAt(buf[off:off+r.Len], int64(r.Addr)); err != nil {
			return err
		}
		off += r.Len
	}
	return nil
}
