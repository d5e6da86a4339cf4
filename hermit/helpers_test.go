package hermit

import (
	"encoding/binary"
)

// elfFile builds ELF64 files for Inspect tests. The program header table
// has room for maxTestPhdrs entries, and blobs follow it.
type elfFile struct {
	ident   [16]byte
	typ     uint16
	machine uint16
	entry   uint64
	phdrs   []progHeader
	body    []byte
}

const (
	maxTestPhdrs = 16
	bodyOffset   = elfHeaderSize + maxTestPhdrs*progHeaderSize
)

func newELF() *elfFile {
	f := &elfFile{typ: etDyn, machine: emX8664}
	copy(f.ident[:], []byte{0x7f, 'E', 'L', 'F', elfClass64, elfData2LSB, elfVersion1, osabiStandalone})
	return f
}

// blob appends data to the file and returns its file offset.
func (f *elfFile) blob(data []byte) uint64 {
	for len(f.body)%8 != 0 {
		f.body = append(f.body, 0)
	}
	off := uint64(bodyOffset + len(f.body))
	f.body = append(f.body, data...)
	return off
}

func (f *elfFile) phdr(p progHeader) {
	f.phdrs = append(f.phdrs, p)
}

func (f *elfFile) bytes() []byte {
	out := make([]byte, bodyOffset, bodyOffset+len(f.body))
	copy(out, f.ident[:])
	le := binary.LittleEndian
	le.PutUint16(out[16:], f.typ)
	le.PutUint16(out[18:], f.machine)
	le.PutUint32(out[20:], 1)
	le.PutUint64(out[24:], f.entry)
	le.PutUint64(out[32:], elfHeaderSize)
	le.PutUint16(out[52:], elfHeaderSize)
	le.PutUint16(out[54:], progHeaderSize)
	le.PutUint16(out[56:], uint16(len(f.phdrs)))
	for i, p := range f.phdrs {
		b := out[elfHeaderSize+i*progHeaderSize:]
		le.PutUint32(b[0:], p.Type)
		le.PutUint32(b[4:], p.Flags)
		le.PutUint64(b[8:], p.Offset)
		le.PutUint64(b[16:], p.VAddr)
		le.PutUint64(b[24:], p.VAddr)
		le.PutUint64(b[32:], p.FileSize)
		le.PutUint64(b[40:], p.MemSize)
		le.PutUint64(b[48:], p.Align)
	}
	return append(out, f.body...)
}

// noteBytes encodes one ELF note with 4-byte padding.
func noteBytes(name string, typ uint32, desc []byte) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, uint32(len(name)+1))
	b = le.AppendUint32(b, uint32(len(desc)))
	b = le.AppendUint32(b, typ)
	b = append(b, name...)
	b = append(b, 0)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	b = append(b, desc...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func entryNote(v byte) []byte { return noteBytes("HERMIT", noteTypeEntryVersion, []byte{v}) }

func uhyveNote(v uint32) []byte {
	return noteBytes("UHYVEIF", noteTypeInterfaceVersion, binary.BigEndian.AppendUint32(nil, v))
}

func abiNote(os, major, minor, patch uint32) []byte {
	le := binary.LittleEndian
	desc := le.AppendUint32(nil, os)
	desc = le.AppendUint32(desc, major)
	desc = le.AppendUint32(desc, minor)
	desc = le.AppendUint32(desc, patch)
	return noteBytes("GNU", noteTypeGNUABITag, desc)
}

func rela(offset uint64, typ uint32, addend int64) []byte {
	le := binary.LittleEndian
	b := le.AppendUint64(nil, offset)
	b = le.AppendUint64(b, uint64(typ))
	return le.AppendUint64(b, uint64(addend))
}

func dynamic(tagValues ...uint64) []byte {
	var b []byte
	for _, v := range tagValues {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return append(b, make([]byte, 16)...) // DT_NULL
}

// Layout of testKernel: a text segment at 0 with code and the relocation
// table, and a data segment at 0x2000 with two relocated words and BSS.
const (
	testTextSize   = 0x100
	testRelaVAddr  = 0x40
	testDataVAddr  = 0x2000
	testDataFile   = 0x20
	testDataMem    = 0x3000
	testEntry      = 0x10
	testTLSVAddr   = 0x2010
	testTLSFile    = 0x8
	testTLSMem     = 0x18
	testRelocCount = 2
)

// kernelOptions changes testKernel.
type kernelOptions struct {
	notes  []byte // replaces the note segment
	relocs []byte // replaces the relocation entries
	dyn    []byte // replaces the dynamic section
	edit   func(f *elfFile)
}

// testKernel returns a small valid position-independent Hermit kernel with
// the given notes (HERMIT 4 only if nil), two RELATIVE relocations and a
// TLS segment.
func testKernel(o kernelOptions) []byte {
	f := newELF()
	f.entry = testEntry

	notes := o.notes
	if notes == nil {
		notes = entryNote(EntryVersion)
	}
	noteOff := f.blob(notes)

	relocs := o.relocs
	if relocs == nil {
		relocs = append(rela(testDataVAddr, rX8664Relative, 0x10), rela(testDataVAddr+8, rX8664Relative, 0x2018)...)
	}
	text := make([]byte, testTextSize)
	for i := range testRelaVAddr {
		text[i] = 0x90
	}
	copy(text[testRelaVAddr:], relocs)
	textOff := f.blob(text)

	data := make([]byte, testDataFile)
	for i := range data {
		data[i] = byte(0xd0 + i)
	}
	dataOff := f.blob(data)

	dyn := o.dyn
	if dyn == nil {
		dyn = dynamic(dtRela, testRelaVAddr, dtRelaSz, uint64(len(relocs)), dtRelaEnt, relaSize)
	}
	dynOff := f.blob(dyn)

	f.phdr(progHeader{Type: ptLoad, Flags: 5, Offset: textOff, VAddr: 0, FileSize: testTextSize, MemSize: testTextSize, Align: 0x1000})
	f.phdr(progHeader{Type: ptLoad, Flags: 6, Offset: dataOff, VAddr: testDataVAddr, FileSize: testDataFile, MemSize: testDataMem, Align: 0x1000})
	f.phdr(progHeader{Type: ptDynamic, Flags: 6, Offset: dynOff, VAddr: 0x4000, FileSize: uint64(len(dyn)), MemSize: uint64(len(dyn)), Align: 8})
	f.phdr(progHeader{Type: ptTLS, Flags: 4, Offset: dataOff + 0x10, VAddr: testTLSVAddr, FileSize: testTLSFile, MemSize: testTLSMem, Align: 8})
	f.phdr(progHeader{Type: ptNote, Flags: 4, Offset: noteOff, VAddr: 0x80, FileSize: uint64(len(notes)), MemSize: uint64(len(notes)), Align: 4})
	if o.edit != nil {
		o.edit(f)
	}
	return f.bytes()
}
