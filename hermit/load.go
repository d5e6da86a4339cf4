package hermit

import (
	"encoding/binary"
	"fmt"
)

// GuestMemory is guest-physical memory as this package reads and writes it:
// ReadAt and WriteAt take a guest-physical address as the offset and copy
// all of p or nothing. *kvm.Memory implements it, checking every range
// against the guest's memory slots, so no call reaches host memory outside
// the guest.
type GuestMemory interface {
	ReadAt(p []byte, gpa int64) (int, error)
	WriteAt(p []byte, gpa int64) (int, error)
}

// Loaded describes a kernel that Load placed in guest memory, with absolute
// guest-physical addresses.
type Loaded struct {
	Start, End uint64 // [Start, End) holds the PT_LOAD segments
	Entry      uint64
	TLS        TLS // VAddr is absolute; zero if the kernel has no PT_TLS
}

// zeroChunk is the source for zeroing BSS through WriteAt.
var zeroChunk [64 << 10]byte

// Load copies the kernel's PT_LOAD segments into mem, zeroes each segment's
// BSS and applies the R_X86_64_RELATIVE relocations. bias is added to every
// segment address: it is the load address of a position-independent kernel,
// and must be 0 for an ET_EXEC kernel, which only runs at its linked
// addresses. Gaps between segments are left as they are; fresh guest memory
// reads as zeros. Every write goes through mem, and a range outside guest
// memory fails before anything of that segment is written.
func (img *Image) Load(mem GuestMemory, bias uint64) (Loaded, error) {
	if !img.PositionIndependent && bias != 0 {
		return Loaded{}, fmt.Errorf("hermit: load ET_EXEC kernel with bias %#x: it runs only at its linked addresses, use bias 0", bias)
	}
	low, high := img.Span()
	if bias+high < bias {
		return Loaded{}, fmt.Errorf("hermit: load kernel at %#x: its end %#x wraps past the top of the address space", bias, high)
	}

	for i, s := range img.Segments {
		addr := bias + s.VAddr
		if s.FileSize > 0 {
			if _, err := mem.WriteAt(img.data[s.Offset:s.Offset+s.FileSize], int64(addr)); err != nil {
				return Loaded{}, fmt.Errorf("hermit: load PT_LOAD segment %d at %#x (%#x bytes): %w", i, addr, s.FileSize, err)
			}
		}
		if err := zero(mem, addr+s.FileSize, s.MemSize-s.FileSize); err != nil {
			return Loaded{}, fmt.Errorf("hermit: zero BSS of PT_LOAD segment %d: %w", i, err)
		}
	}

	var word [8]byte
	for i, r := range img.Relocations {
		binary.LittleEndian.PutUint64(word[:], bias+uint64(r.Addend))
		if _, err := mem.WriteAt(word[:], int64(bias+r.Offset)); err != nil {
			return Loaded{}, fmt.Errorf("hermit: apply relocation %d at %#x: %w", i, bias+r.Offset, err)
		}
	}

	loaded := Loaded{Start: bias + low, End: bias + high, Entry: bias + img.Entry}
	if img.HasTLS {
		loaded.TLS = img.TLS
		loaded.TLS.VAddr += bias
	}
	return loaded, nil
}

// zero writes n zero bytes at addr, checking the whole range first.
func zero(mem GuestMemory, addr, n uint64) error {
	if n == 0 {
		return nil
	}
	if addr+n < addr || addr+n > 1<<63 {
		return fmt.Errorf("range %#x, length %#x, wraps past the top of the address space", addr, n)
	}
	// WriteAt checks each chunk. Reading the last byte first makes a range
	// that ends outside guest memory fail before anything is written, as
	// long as the memory has no holes, like the single slot Run creates.
	var last [1]byte
	if _, err := mem.ReadAt(last[:], int64(addr+n-1)); err != nil {
		return err
	}
	for n > 0 {
		chunk := min(n, uint64(len(zeroChunk)))
		if _, err := mem.WriteAt(zeroChunk[:chunk], int64(addr)); err != nil {
			return err
		}
		addr += chunk
		n -= chunk
	}
	return nil
}
