package hermit

import (
	"encoding/binary"
	"fmt"
)

// ELF note types and names that Hermit kernels carry, as hermit-entry and
// uhyve define them.
const (
	noteTypeEntryVersion     = 0x5a00 // name "HERMIT", 1-byte desc
	noteTypeInterfaceVersion = 0x5b00 // name "UHYVEIF", big-endian u32 desc
	noteTypeGNUABITag        = 1      // NT_GNU_ABI_TAG, name "GNU"

	noteNameHermit = "HERMIT"
	noteNameUhyve  = "UHYVEIF"
	noteNameGNU    = "GNU"

	// abiTagHermit is the OS field of the NT_GNU_ABI_TAG note of a Hermit
	// kernel. GNU's table assigns 6 to NaCl, and Hermit reuses it.
	abiTagHermit = 6
)

// Interface versions this package serves.
const (
	minInterfaceVersion = 1
	maxInterfaceVersion = 3
)

// note is one entry of an ELF note segment.
type note struct {
	Name string // without the trailing NUL
	Type uint32
	Desc []byte
}

// parseNotes walks a note segment: each note is a 12-byte header {namesz,
// descsz, type}, then the name and the descriptor, each padded to align
// bytes. It rejects a note that runs past the end of the segment.
func parseNotes(seg []byte, align uint64) ([]note, error) {
	le := binary.LittleEndian
	var notes []note
	for off := uint64(0); off < uint64(len(seg)); {
		rest := uint64(len(seg)) - off
		if rest < 12 {
			return nil, rejectf("note at offset %#x of the PT_NOTE segment is cut off after %d bytes", off, rest)
		}
		namesz := uint64(le.Uint32(seg[off:]))
		descsz := uint64(le.Uint32(seg[off+4:]))
		typ := le.Uint32(seg[off+8:])
		off += 12

		nameEnd := off + namesz
		descStart := alignUp(nameEnd, align)
		descEnd := descStart + descsz
		if descEnd > uint64(len(seg)) {
			return nil, rejectf("note at offset %#x of the PT_NOTE segment (namesz %d, descsz %d) runs past the segment's %d bytes",
				off-12, namesz, descsz, len(seg))
		}
		name := seg[off:nameEnd]
		if n := len(name); n > 0 && name[n-1] == 0 {
			name = name[:n-1]
		}
		notes = append(notes, note{Name: string(name), Type: typ, Desc: seg[descStart:descEnd]})
		off = alignUp(descEnd, align)
	}
	return notes, nil
}

// alignUp rounds v up to a multiple of align, a power of two. The callers'
// values are bounded by a slice length, so the sum cannot overflow.
func alignUp(v, align uint64) uint64 {
	return (v + align - 1) &^ (align - 1)
}

// readNotes reads the version notes from the first PT_NOTE segment, which is
// the only one uhyve reads.
func (img *Image) readNotes(phdrs []progHeader) error {
	var seg *progHeader
	for i := range phdrs {
		if phdrs[i].Type == ptNote {
			seg = &phdrs[i]
			break
		}
	}
	if seg == nil {
		return rejectf("the file has no PT_NOTE segment, so it does not declare a Hermit entry version: it is not a Hermit kernel")
	}
	data, err := fileRange(img.data, seg.Offset, seg.FileSize, "the PT_NOTE segment")
	if err != nil {
		return err
	}
	// The padding follows p_align, as in hermit-entry. The gABI allows 4
	// and 8. Values below 4 are treated as 4, the usual alignment.
	align := seg.Align
	switch {
	case align <= 4:
		align = 4
	case align != 8:
		return rejectf("the PT_NOTE segment has p_align %d, want 4 or 8", seg.Align)
	}
	notes, err := parseNotes(data, align)
	if err != nil {
		return err
	}

	var haveEntry bool
	for _, n := range notes {
		switch {
		case n.Name == noteNameHermit && n.Type == noteTypeEntryVersion && !haveEntry:
			if len(n.Desc) < 1 {
				return rejectf("the HERMIT entry-version note is empty")
			}
			if v := n.Desc[0]; v != EntryVersion {
				return rejectf("the kernel declares Hermit entry version %d, but only version %d (hermit-entry 0.10 and newer) is supported", v, EntryVersion)
			}
			haveEntry = true

		case n.Name == noteNameUhyve && n.Type == noteTypeInterfaceVersion && !img.InterfaceVersionNoted:
			if len(n.Desc) != 4 {
				return rejectf("the UHYVEIF note has a %d-byte descriptor, want 4", len(n.Desc))
			}
			v := binary.BigEndian.Uint32(n.Desc)
			if v < minInterfaceVersion || v > maxInterfaceVersion {
				return rejectf("the kernel declares uhyve interface version %d, but only versions %d to %d are supported",
					v, minInterfaceVersion, maxInterfaceVersion)
			}
			img.InterfaceVersion = int(v)
			img.InterfaceVersionNoted = true

		case n.Name == noteNameGNU && n.Type == noteTypeGNUABITag && !img.HasKernelVersion:
			v, ok, err := parseABITag(n.Desc)
			if err != nil {
				return err
			}
			img.KernelVersion, img.HasKernelVersion = v, ok
		}
	}
	if !haveEntry {
		return rejectf("the first PT_NOTE segment has no HERMIT note of type %#x, so the file does not declare a Hermit entry version: it is not a Hermit kernel",
			noteTypeEntryVersion)
	}
	if !img.InterfaceVersionNoted {
		img.InterfaceVersion = 1
	}
	return nil
}

// parseABITag decodes an NT_GNU_ABI_TAG descriptor, four little-endian u32
// values {OS, major, minor, patch}. ok is false for a tag of another OS.
func parseABITag(desc []byte) (v KernelVersion, ok bool, err error) {
	if len(desc) != 16 {
		return KernelVersion{}, false, rejectf("the GNU ABI-tag note has a %d-byte descriptor, want 16", len(desc))
	}
	le := binary.LittleEndian
	if le.Uint32(desc) != abiTagHermit {
		return KernelVersion{}, false, nil
	}
	return KernelVersion{le.Uint32(desc[4:]), le.Uint32(desc[8:]), le.Uint32(desc[12:])}, true, nil
}

// String describes the image in one line, for logs and errors.
func (img *Image) String() string {
	kind := "ET_EXEC"
	if img.PositionIndependent {
		kind = "position-independent"
	}
	version := "unknown kernel version"
	if img.HasKernelVersion {
		version = "kernel " + img.KernelVersion.String()
	}
	low, high := img.Span()
	return fmt.Sprintf("Hermit %s image, uhyve interface v%d, %s, entry %#x, %d PT_LOAD segments spanning [%#x, %#x), %d relocations",
		kind, img.InterfaceVersion, version, img.Entry, len(img.Segments), low, high, len(img.Relocations))
}
