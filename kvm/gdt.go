package kvm

import "encoding/binary"

// SegmentDescriptor is an x86 code or data segment descriptor, the 8-byte
// GDT entry of Intel SDM Vol. 3A, 3.4.5, with its fields unpacked.
type SegmentDescriptor struct {
	Base        uint32
	Limit       uint32 // 20 bits, in 4 KiB units when Granularity is set
	Type        uint8  // 4 bits, e.g. 0xB execute/read accessed code, 0x3 read/write accessed data
	S           bool   // code or data segment, as opposed to a system segment
	DPL         uint8  // descriptor privilege level, 0 to 3
	Present     bool
	AVL         bool
	Long        bool // 64-bit code segment
	DB          bool // default operation size 32 bits (code) or upper bound 4 GiB (data)
	Granularity bool
}

// Encode returns the descriptor in its GDT form.
func (d SegmentDescriptor) Encode() uint64 {
	v := uint64(d.Limit&0xffff) |
		uint64(d.Base&0xffffff)<<16 |
		uint64(d.Type&0xf)<<40 |
		uint64(d.DPL&3)<<45 |
		uint64((d.Limit>>16)&0xf)<<48 |
		uint64(d.Base>>24)<<56
	for _, bit := range []struct {
		set   bool
		shift uint
	}{
		{d.S, 44}, {d.Present, 47}, {d.AVL, 52}, {d.Long, 53}, {d.DB, 54}, {d.Granularity, 55},
	} {
		if bit.set {
			v |= 1 << bit.shift
		}
	}
	return v
}

// Selectors of the descriptors in FlatGDT.
const (
	SelectorCode64 = 0x08
	SelectorData   = 0x10
)

// flatCode64 and flatData are the ring-0 descriptors of FlatGDT: base 0, limit
// 4 GiB, a 64-bit code segment and a read/write data segment.
var (
	flatCode64 = SegmentDescriptor{Limit: 0xfffff, Type: 0xb, S: true, Present: true, Long: true, Granularity: true}
	flatData   = SegmentDescriptor{Limit: 0xfffff, Type: 0x3, S: true, Present: true, DB: true, Granularity: true}
)

// BuildGDT returns a GDT holding the null descriptor followed by descs, so
// that descs[i] has selector (i+1)*8 at privilege level 0.
func BuildGDT(descs ...SegmentDescriptor) []byte {
	gdt := make([]byte, 8*(1+len(descs)))
	for i, d := range descs {
		binary.LittleEndian.PutUint64(gdt[8*(i+1):], d.Encode())
	}
	return gdt
}

// FlatGDT returns the 24-byte boot GDT for 64-bit code that SRegs.SetLongMode
// expects: the null descriptor, a flat 64-bit ring-0 code segment
// (SelectorCode64) and a flat ring-0 data segment (SelectorData). This is the
// layout uhyve gives Hermit kernels.
func FlatGDT() []byte {
	return BuildGDT(flatCode64, flatData)
}
