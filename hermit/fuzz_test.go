package hermit

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/osvm-project/osvm/internal/fakemem"
	"github.com/osvm-project/osvm/kvm/paging"
)

// FuzzInspect feeds arbitrary files to Inspect and loads what it accepts
// into fake guest memory. Neither may panic, and an accepted image must
// satisfy the invariants Load relies on.
func FuzzInspect(f *testing.F) {
	f.Add(testKernel(kernelOptions{}))
	f.Add(testKernel(kernelOptions{notes: concat(entryNote(4), uhyveNote(3), abiNote(6, 0, 14, 0))}))
	f.Add(testKernel(kernelOptions{relocs: rela(testDataVAddr, 1, 0)}))
	f.Add(testKernel(kernelOptions{edit: func(e *elfFile) { e.typ = etExec }}))
	f.Add([]byte("\x7fELF\x02\x01\x01\xff"))

	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Inspect(data)
		if err != nil {
			if img != nil {
				t.Fatalf("Inspect returned an image and an error")
			}
			return
		}
		checkImage(t, img, data)

		// Load into memory just large enough, or into 64 KiB if the image
		// would need more than 4 MiB, where Load must fail cleanly.
		var bias uint64
		if img.PositionIndependent {
			bias = offsetKernel
		}
		_, high := img.Span()
		memSize := uint64(64 << 10)
		if bias+high <= 4<<20 {
			memSize = alignUp(bias+high, 4096)
		}
		mem := fakemem.New(0, memSize)
		if _, err := img.Load(mem, bias); err == nil && bias+high > memSize {
			t.Fatalf("Load succeeded for an image ending at %#x beyond %#x", bias+high, memSize)
		}
		if l, err := planLayout(img, DefaultMemory); err == nil {
			if _, err := l.pageTables(); err != nil {
				t.Fatalf("page tables for a planned layout: %v", err)
			}
		}
	})
}

// checkImage checks that img describes data consistently.
func checkImage(t *testing.T, img *Image, data []byte) {
	t.Helper()
	if img.InterfaceVersion < 1 || img.InterfaceVersion > 3 {
		t.Fatalf("interface version %d accepted", img.InterfaceVersion)
	}
	if len(img.Segments) == 0 {
		t.Fatalf("image without segments accepted")
	}
	for i, s := range img.Segments {
		if s.FileSize > s.MemSize || s.Offset+s.FileSize > uint64(len(data)) || s.Offset+s.FileSize < s.Offset {
			t.Fatalf("segment %d %+v does not fit the %d-byte file", i, s, len(data))
		}
		if i > 0 && s.VAddr < img.Segments[i-1].VAddr+img.Segments[i-1].MemSize {
			t.Fatalf("segment %d overlaps its predecessor", i)
		}
	}
	if low, high := img.Span(); high < low || high-low > maxKernelSpan {
		t.Fatalf("span [%#x, %#x) accepted", low, high)
	}
	for _, r := range img.Relocations {
		if !img.inSegment(r.Offset, 8) {
			t.Fatalf("relocation at %#x outside the segments accepted", r.Offset)
		}
	}
	if !img.inSegment(img.Entry, 1) {
		t.Fatalf("entry %#x outside the segments accepted", img.Entry)
	}
}

// fuzzMemorySize bounds the guest memory a fuzz input may describe.
const fuzzMemorySize = 1 << 20

// fuzzPageTables returns 64 KiB of memory whose page tables at 0x1000 map
// the first 2 MiB one to one, with room for parameters at 0x8000.
func fuzzPageTables() []byte {
	mem := make([]byte, 64<<10)
	le := binary.LittleEndian
	le.PutUint64(mem[0x1000:], 0x2000|paging.Present)
	le.PutUint64(mem[0x2000:], 0x3000|paging.Present)
	le.PutUint64(mem[0x3000:], 0x0|paging.Present|paging.Huge)
	return mem
}

// FuzzDecodeHypercall decodes hypercalls with arbitrary ports, arguments,
// CR3 values and guest memory at guest-physical 0 or 4 GiB. It must not
// panic, and a decoded request must stay within its bounds.
func FuzzDecodeHypercall(f *testing.F) {
	mem := fuzzPageTables()
	copy(mem[0x8000:], params(20, 0, int32(1), 4, uint64(0x9000), 12, uint64(5)))
	copy(mem[0x9000:], "hello")
	f.Add(uint16(0x400), uint64(0x8000), uint64(0x1000), false, mem)

	mem = fuzzPageTables()
	copy(mem[0x8000:], params(28, 0, int32(3), 4, uint64(0xfff0), 12, uint64(0x20)))
	f.Add(uint16(0x500), uint64(0x8000), uint64(0x1000), false, mem)

	mem = make([]byte, 0x4000)
	copy(mem[0x100:], params(20, 0, uint64(1<<32+0x200), 8, int32(0o101)))
	copy(mem[0x200:], "/data/file\x00")
	f.Add(uint16(0x1110), uint64(1<<32+0x100), uint64(0), true, mem)

	mem = make([]byte, 0x4000)
	copy(mem[0x100:], params(40, 0, int32(3), 8, uint64(1<<32+0x1000), 16, uint64(0x1000)))
	f.Add(uint16(0x1160), uint64(1<<32+0x100), uint64(0), true, mem)

	f.Add(uint16(0x1234), uint64(0), uint64(0), false, []byte{})

	f.Fuzz(func(t *testing.T, port uint16, arg, cr3 uint64, high bool, data []byte) {
		if len(data) > fuzzMemorySize {
			data = data[:fuzzMemorySize]
		}
		var base uint64
		if high {
			base = 1 << 32
		}
		m := fakemem.Wrap(base, data)
		before := bytes.Clone(data)

		req, err := decodeHypercall(m, port, arg, func() (uint64, error) { return cr3, nil })
		if !bytes.Equal(before, data) {
			t.Fatalf("decodeHypercall changed guest memory")
		}
		if err != nil {
			return
		}
		if uint64(len(req.Data)) > maxTransfer || req.Len > maxTransfer || len(req.Path) > maxPath {
			t.Fatalf("request exceeds its limits: %d data bytes, len %d, path of %d bytes", len(req.Data), req.Len, len(req.Path))
		}
		var total uint64
		for _, r := range req.Buf {
			if r.Addr < base || r.Addr+r.Len > base+uint64(len(data)) || r.Addr+r.Len < r.Addr {
				t.Fatalf("buffer run %+v outside guest memory [%#x, %#x)", r, base, base+uint64(len(data)))
			}
			total += r.Len
		}
		if req.Buf != nil && total != req.Len {
			t.Fatalf("buffer runs cover %d bytes, want %d", total, req.Len)
		}
	})
}
