package hermit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// EntryVersion is the only Hermit entry version (the boot-information ABI,
// hermit-entry's HERMIT_ENTRY_VERSION) that this package loads. Kernels built
// with hermit-entry 0.10 and newer declare it.
const EntryVersion = 4

// MaxImageSize is the largest kernel file InspectFile and BootFile read.
// Released Hermit kernels are a few MiB.
const MaxImageSize = 256 << 20

// maxKernelSpan bounds the guest-virtual extent of a kernel's PT_LOAD
// segments, so that a hostile image cannot make the loader plan absurd
// amounts of memory. It is far above any real kernel.
const maxKernelSpan = 1 << 30

// Image is a Hermit kernel that Inspect accepted: an x86-64 ELF file that
// declares Hermit entry version 4 and a uhyve interface version this package
// serves. The fields describe the file as it is, before loading.
type Image struct {
	// InterfaceVersion is the uhyve interface version (1, 2 or 3), which
	// selects the hypercall ports and where guest memory starts.
	InterfaceVersion int
	// InterfaceVersionNoted reports whether the image carries the UHYVEIF
	// note. Without it the version is 1, as for every kernel before 0.12.
	InterfaceVersionNoted bool

	// KernelVersion is the Hermit kernel version from the NT_GNU_ABI_TAG
	// note, valid only if HasKernelVersion is set. Kernels before 0.10 carry
	// no such note.
	KernelVersion    KernelVersion
	HasKernelVersion bool

	// OSABI is e_ident[EI_OSABI]. Hermit kernels use 0xff
	// (ELFOSABI_STANDALONE), but uhyve accepts any value and so does
	// Inspect.
	OSABI uint8

	// PositionIndependent is set for ET_DYN kernels, which can be loaded
	// at any address and whose R_X86_64_RELATIVE relocations Load applies.
	// ET_EXEC kernels must be loaded at their segments' addresses.
	PositionIndependent bool

	// Entry is e_entry, relative to the load address for a
	// position-independent kernel.
	Entry uint64

	// Segments are the PT_LOAD segments in ascending address order.
	Segments []Segment

	// TLS is the PT_TLS segment, valid only if HasTLS is set.
	TLS    TLS
	HasTLS bool

	// Relocations are the offsets and addends of the R_X86_64_RELATIVE
	// relocations of a position-independent kernel, relative to its load
	// address.
	Relocations []Relocation

	data []byte // the whole file, for Load
}

// KernelVersion is a Hermit kernel release, such as 0.13.2.
type KernelVersion struct {
	Major, Minor, Patch uint32
}

// String returns the version as "major.minor.patch".
func (v KernelVersion) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Less reports whether v is an earlier release than w.
func (v KernelVersion) Less(w KernelVersion) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Patch < w.Patch
}

// Segment is a PT_LOAD program header: FileSize bytes from Offset in the file
// go to VAddr, and the rest up to MemSize is zero (BSS).
type Segment struct {
	Offset   uint64
	VAddr    uint64
	FileSize uint64
	MemSize  uint64
	Flags    uint32 // PF_X 1, PF_W 2, PF_R 4
	Align    uint64
}

// TLS is the PT_TLS segment: the initial image of the kernel's thread-local
// storage, which the boot information passes on to the kernel.
type TLS struct {
	VAddr    uint64
	FileSize uint64
	MemSize  uint64
	Align    uint64
}

// Relocation is an R_X86_64_RELATIVE relocation: Load writes the 64-bit
// value load address + Addend at load address + Offset.
type Relocation struct {
	Offset uint64
	Addend int64
}

// ImageError reports why Inspect rejected a file as a Hermit kernel.
type ImageError struct {
	Reason string
}

func (e *ImageError) Error() string {
	return "hermit: kernel image rejected: " + e.Reason
}

func rejectf(format string, args ...any) error {
	return &ImageError{Reason: fmt.Sprintf(format, args...)}
}

// Span returns the range [low, high) of addresses that the PT_LOAD segments
// occupy, relative to the load address for a position-independent kernel.
func (img *Image) Span() (low, high uint64) {
	low = img.Segments[0].VAddr
	for _, s := range img.Segments {
		high = max(high, s.VAddr+s.MemSize)
	}
	return low, high
}

// LegacyMapping reports whether the kernel expects uhyve's legacy page
// tables, which identity-map the whole GiB around the kernel. Kernels
// without a version note and kernels before 0.10.0 expect them. Such a kernel
// unmaps the pages above its end itself and panics if one is missing.
func (img *Image) LegacyMapping() bool {
	return !img.HasKernelVersion || img.KernelVersion.Less(KernelVersion{0, 10, 0})
}

// InspectFile reads the kernel at path, at most MaxImageSize bytes, and
// inspects it with Inspect.
func InspectFile(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hermit: open kernel image: %w", err)
	}
	defer f.Close()

	tooLarge := fmt.Errorf("hermit: kernel image %s is larger than %d bytes, the most InspectFile reads", path, MaxImageSize)
	if info, err := f.Stat(); err == nil && info.Size() > MaxImageSize {
		return nil, tooLarge
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxImageSize+1))
	if err != nil {
		return nil, fmt.Errorf("hermit: read kernel image %s: %w", path, err)
	}
	if len(data) > MaxImageSize {
		return nil, tooLarge
	}
	img, err := Inspect(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// ELF constants from the System V gABI and its x86-64 supplement.
const (
	elfHeaderSize  = 64
	progHeaderSize = 56

	elfClass64      = 2
	elfData2LSB     = 1
	elfVersion1     = 1
	etExec          = 2
	etDyn           = 3
	emX8664         = 62
	ptLoad          = 1
	ptDynamic       = 2
	ptNote          = 4
	ptTLS           = 7
	osabiStandalone = 0xff
)

var (
	elfMagic  = []byte{0x7f, 'E', 'L', 'F'}
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
)

// Inspect checks that data is a Hermit kernel this package can run, and
// describes it. It applies uhyve's acceptance rules: a little-endian ELF64
// file for x86-64, of type ET_DYN or ET_EXEC, whose first PT_NOTE segment
// declares Hermit entry version 4 and, optionally, uhyve interface version 1,
// 2 or 3. It also rejects what Load could not place or relocate: segments
// outside the file, overlapping segments, DT_NEEDED, REL and RELR
// relocations, and relocation types other than R_X86_64_RELATIVE. The error
// is an *ImageError that names the reason.
//
// Inspect reads data only within its bounds. The returned Image refers to
// data, which must not change afterwards.
func Inspect(data []byte) (*Image, error) {
	if err := checkIdent(data); err != nil {
		return nil, err
	}
	img := &Image{OSABI: data[7], data: data}

	le := binary.LittleEndian
	typ := le.Uint16(data[16:])
	machine := le.Uint16(data[18:])
	if machine != emX8664 {
		return nil, rejectf("e_machine is %d (%s), want 62 (x86-64)", machine, machineName(machine))
	}
	switch typ {
	case etDyn:
		img.PositionIndependent = true
	case etExec:
	default:
		return nil, rejectf("e_type is %d, want ET_DYN (3) or ET_EXEC (2): the file is not an executable kernel", typ)
	}
	img.Entry = le.Uint64(data[24:])

	phdrs, err := programHeaders(data)
	if err != nil {
		return nil, err
	}
	if err := img.readNotes(phdrs); err != nil {
		return nil, err
	}
	if err := img.readSegments(phdrs); err != nil {
		return nil, err
	}
	if img.PositionIndependent {
		if err := img.readRelocations(phdrs); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// checkIdent checks the ELF identification bytes.
func checkIdent(data []byte) error {
	switch {
	case bytes.HasPrefix(data, gzipMagic):
		return rejectf("the file is a gzip archive (a Hermit image with a config); pass the kernel ELF file it contains instead")
	case !bytes.HasPrefix(data, elfMagic):
		return rejectf("the file does not start with the ELF magic 7f 45 4c 46")
	case len(data) < elfHeaderSize:
		return rejectf("the file has %d bytes, fewer than an ELF64 header (%d)", len(data), elfHeaderSize)
	case data[4] != elfClass64:
		return rejectf("EI_CLASS is %d, want 2 (ELFCLASS64): only 64-bit kernels run", data[4])
	case data[5] != elfData2LSB:
		return rejectf("EI_DATA is %d, want 1 (little-endian)", data[5])
	case data[6] != elfVersion1:
		return rejectf("EI_VERSION is %d, want 1", data[6])
	}
	return nil
}

func machineName(m uint16) string {
	switch m {
	case 3:
		return "i386"
	case 40:
		return "ARM"
	case 183:
		return "AArch64"
	case 243:
		return "RISC-V"
	}
	return "unknown"
}

// progHeader is one ELF64 program header.
type progHeader struct {
	Type, Flags                      uint32
	Offset, VAddr, FileSize, MemSize uint64
	Align                            uint64
}

// programHeaders decodes the program header table.
func programHeaders(data []byte) ([]progHeader, error) {
	le := binary.LittleEndian
	phoff := le.Uint64(data[32:])
	phentsize := le.Uint16(data[54:])
	phnum := le.Uint16(data[56:])
	if phnum == 0 {
		return nil, rejectf("the file has no program headers, so nothing to load")
	}
	if phentsize != progHeaderSize {
		return nil, rejectf("e_phentsize is %d, want %d", phentsize, progHeaderSize)
	}
	size := uint64(phnum) * progHeaderSize
	if phoff > uint64(len(data)) || size > uint64(len(data))-phoff {
		return nil, rejectf("the program header table (offset %#x, %d entries) lies past the end of the %d-byte file", phoff, phnum, len(data))
	}

	phdrs := make([]progHeader, phnum)
	for i := range phdrs {
		b := data[phoff+uint64(i)*progHeaderSize:]
		phdrs[i] = progHeader{
			Type:     le.Uint32(b[0:]),
			Flags:    le.Uint32(b[4:]),
			Offset:   le.Uint64(b[8:]),
			VAddr:    le.Uint64(b[16:]),
			FileSize: le.Uint64(b[32:]),
			MemSize:  le.Uint64(b[40:]),
			Align:    le.Uint64(b[48:]),
		}
	}
	return phdrs, nil
}

// fileRange returns data[off:off+n], or an error naming what lies outside
// the file.
func fileRange(data []byte, off, n uint64, what string) ([]byte, error) {
	if off > uint64(len(data)) || n > uint64(len(data))-off {
		return nil, rejectf("%s (file offset %#x, %#x bytes) lies past the end of the %d-byte file", what, off, n, len(data))
	}
	return data[off : off+n], nil
}

// readSegments collects and checks the PT_LOAD and PT_TLS segments and the
// entry point.
func (img *Image) readSegments(phdrs []progHeader) error {
	for i, ph := range phdrs {
		switch ph.Type {
		case ptLoad:
			what := fmt.Sprintf("PT_LOAD segment (program header %d)", i)
			if ph.FileSize > ph.MemSize {
				return rejectf("%s has p_filesz %#x larger than p_memsz %#x", what, ph.FileSize, ph.MemSize)
			}
			// The ELF specification allows 0, 1 and powers of two.
			if ph.Align&(ph.Align-1) != 0 {
				return rejectf("%s has p_align %d, which is not a power of two", what, ph.Align)
			}
			if _, err := fileRange(img.data, ph.Offset, ph.FileSize, what); err != nil {
				return err
			}
			if ph.VAddr+ph.MemSize < ph.VAddr {
				return rejectf("%s at %#x with p_memsz %#x wraps past the top of the address space", what, ph.VAddr, ph.MemSize)
			}
			if n := len(img.Segments); n > 0 {
				prev := img.Segments[n-1]
				if ph.VAddr < prev.VAddr+prev.MemSize {
					return rejectf("%s at %#x overlaps or precedes the previous PT_LOAD segment [%#x, %#x): segments must ascend without overlap",
						what, ph.VAddr, prev.VAddr, prev.VAddr+prev.MemSize)
				}
			}
			img.Segments = append(img.Segments, Segment{
				Offset: ph.Offset, VAddr: ph.VAddr, FileSize: ph.FileSize,
				MemSize: ph.MemSize, Flags: ph.Flags, Align: ph.Align,
			})
		case ptTLS:
			if img.HasTLS {
				return rejectf("the file has more than one PT_TLS segment")
			}
			if ph.FileSize > ph.MemSize {
				return rejectf("the PT_TLS segment has p_filesz %#x larger than p_memsz %#x", ph.FileSize, ph.MemSize)
			}
			img.TLS = TLS{VAddr: ph.VAddr, FileSize: ph.FileSize, MemSize: ph.MemSize, Align: ph.Align}
			img.HasTLS = true
		}
	}
	if len(img.Segments) == 0 {
		return rejectf("the file has no PT_LOAD segment, so nothing to load")
	}

	low, high := img.Span()
	if high-low > maxKernelSpan {
		return rejectf("the PT_LOAD segments span [%#x, %#x), more than %d MiB", low, high, maxKernelSpan>>20)
	}
	if img.PositionIndependent && high > maxKernelSpan {
		return rejectf("the position-independent kernel's segments end at %#x, beyond %d MiB from its load address", high, maxKernelSpan>>20)
	}
	if !img.inSegment(img.Entry, 1) {
		return rejectf("the entry point %#x lies outside every PT_LOAD segment", img.Entry)
	}
	if img.HasTLS && img.TLS.MemSize > 0 && !img.inSegment(img.TLS.VAddr, img.TLS.FileSize) {
		return rejectf("the PT_TLS image [%#x, +%#x) lies outside every PT_LOAD segment", img.TLS.VAddr, img.TLS.FileSize)
	}
	return nil
}

// inSegment reports whether [addr, addr+n) lies within one PT_LOAD segment.
func (img *Image) inSegment(addr, n uint64) bool {
	for _, s := range img.Segments {
		if addr >= s.VAddr && n <= s.MemSize && addr-s.VAddr <= s.MemSize-n {
			return true
		}
	}
	return false
}

// fileOffset converts a virtual address of n file-backed bytes to a file
// offset through the PT_LOAD segments.
func (img *Image) fileOffset(addr, n uint64) (uint64, bool) {
	for _, s := range img.Segments {
		if addr >= s.VAddr && n <= s.FileSize && addr-s.VAddr <= s.FileSize-n {
			return s.Offset + (addr - s.VAddr), true
		}
	}
	return 0, false
}
