package hermit

import (
	"encoding/binary"
	"fmt"
)

// Dynamic-section tags (System V gABI) that decide whether a kernel can be
// relocated.
const (
	dtNull     = 0
	dtNeeded   = 1
	dtRela     = 7
	dtRelaSz   = 8
	dtRelaEnt  = 9
	dtRel      = 17
	dtRelSz    = 18
	dtRelrSz   = 35
	dtRelr     = 36
	relaSize   = 24 // sizeof(Elf64_Rela)
	dynEntSize = 16 // sizeof(Elf64_Dyn)

	rX8664None     = 0
	rX8664Relative = 8
)

// relocationNames names the x86-64 relocation types that Inspect rejects, so
// that the error names what the kernel needs.
var relocationNames = map[uint32]string{
	1:  "R_X86_64_64",
	2:  "R_X86_64_PC32",
	5:  "R_X86_64_COPY",
	6:  "R_X86_64_GLOB_DAT",
	7:  "R_X86_64_JUMP_SLOT",
	16: "R_X86_64_DTPMOD64",
	18: "R_X86_64_TPOFF64",
	37: "R_X86_64_IRELATIVE",
}

// readRelocations reads the R_X86_64_RELATIVE relocations that PT_DYNAMIC
// points to. Kernels link with -static-pie and only have those. REL and RELR
// relocations, and every RELA type but RELATIVE and NONE, are rejected.
func (img *Image) readRelocations(phdrs []progHeader) error {
	var dyn *progHeader
	for i := range phdrs {
		if phdrs[i].Type == ptDynamic {
			dyn = &phdrs[i]
			break
		}
	}
	if dyn == nil {
		return nil // nothing to relocate
	}
	table, err := fileRange(img.data, dyn.Offset, dyn.FileSize, "the PT_DYNAMIC segment")
	if err != nil {
		return err
	}

	le := binary.LittleEndian
	var rela, relaSz, relaEnt uint64
	var haveRela bool
	for off := 0; off+dynEntSize <= len(table); off += dynEntSize {
		tag := le.Uint64(table[off:])
		val := le.Uint64(table[off+8:])
		if tag == dtNull {
			break
		}
		switch tag {
		case dtNeeded:
			return rejectf("the dynamic section lists a needed shared library (DT_NEEDED): a kernel must be linked statically")
		case dtRela:
			rela, haveRela = val, true
		case dtRelaSz:
			relaSz = val
		case dtRelaEnt:
			relaEnt = val
		case dtRel, dtRelSz:
			if val != 0 {
				return rejectf("the kernel has REL relocations (DT_REL/DT_RELSZ), but only RELA relocations are applied")
			}
		case dtRelr, dtRelrSz:
			if val != 0 {
				return rejectf("the kernel has RELR relocations (DT_RELR), which uhyve does not apply either: link without -z pack-relative-relocs")
			}
		}
	}
	if !haveRela || relaSz == 0 {
		return nil
	}
	if relaEnt != 0 && relaEnt != relaSize {
		return rejectf("DT_RELAENT is %d, want %d", relaEnt, relaSize)
	}
	if relaSz%relaSize != 0 {
		return rejectf("DT_RELASZ %d is not a multiple of the %d-byte Elf64_Rela", relaSz, relaSize)
	}
	off, ok := img.fileOffset(rela, relaSz)
	if !ok {
		return rejectf("the relocation table DT_RELA %#x (%d bytes) lies outside the file-backed part of every PT_LOAD segment", rela, relaSz)
	}
	entries := img.data[off : off+relaSz]

	img.Relocations = make([]Relocation, 0, relaSz/relaSize)
	for i := 0; i < len(entries); i += relaSize {
		offset := le.Uint64(entries[i:])
		info := le.Uint64(entries[i+8:])
		addend := int64(le.Uint64(entries[i+16:]))
		switch typ := uint32(info); typ {
		case rX8664None:
		case rX8664Relative:
			if !img.inSegment(offset, 8) {
				return rejectf("relocation %d targets %#x, outside every PT_LOAD segment", i/relaSize, offset)
			}
			img.Relocations = append(img.Relocations, Relocation{Offset: offset, Addend: addend})
		default:
			name := relocationNames[typ]
			if name == "" {
				name = fmt.Sprintf("type %d", typ)
			}
			return rejectf("relocation %d at %#x is %s, but only R_X86_64_RELATIVE is supported: link the kernel with -static-pie", i/relaSize, offset, name)
		}
	}
	return nil
}
