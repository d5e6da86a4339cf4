// Package fakemem is guest memory for tests that run without KVM: a byte
// slice at a guest-physical base address, with the ReadAt and WriteAt
// semantics of kvm.Memory. It needs no privileges.
package fakemem

import (
	"encoding/binary"
	"fmt"

	"github.com/osvm-project/osvm/kvm"
)

// Memory is size bytes of guest memory at guest-physical base. Like
// kvm.Memory, ReadAt and WriteAt copy all of p or nothing, and fail with an
// error wrapping kvm.ErrOutOfRange.
type Memory struct {
	base uint64
	data []byte
}

// New returns size bytes of zeroed memory at guest-physical base.
func New(base, size uint64) *Memory {
	return &Memory{base: base, data: make([]byte, size)}
}

// Wrap returns memory at guest-physical base backed by data, which it
// shares.
func Wrap(base uint64, data []byte) *Memory {
	return &Memory{base: base, data: data}
}

func (m *Memory) span(p []byte, off int64) ([]byte, error) {
	n := uint64(len(p))
	gpa := uint64(off)
	if off < 0 || gpa < m.base || gpa-m.base > uint64(len(m.data)) || n > uint64(len(m.data))-(gpa-m.base) {
		return nil, fmt.Errorf("guest-physical range %#x, length %#x is not in guest memory: %w", gpa, n, kvm.ErrOutOfRange)
	}
	return m.data[gpa-m.base : gpa-m.base+n], nil
}

// ReadAt copies len(p) bytes at guest-physical off into p.
func (m *Memory) ReadAt(p []byte, off int64) (int, error) {
	s, err := m.span(p, off)
	if err != nil {
		return 0, err
	}
	return copy(p, s), nil
}

// WriteAt copies p to guest-physical off.
func (m *Memory) WriteAt(p []byte, off int64) (int, error) {
	s, err := m.span(p, off)
	if err != nil {
		return 0, err
	}
	return copy(s, p), nil
}

// At returns the n bytes at gpa, sharing them, or panics: for checking
// what a test wrote.
func (m *Memory) At(gpa, n uint64) []byte {
	return m.data[gpa-m.base : gpa-m.base+n]
}

// Put copies b to gpa, or panics.
func (m *Memory) Put(gpa uint64, b []byte) {
	copy(m.data[gpa-m.base:], b)
}

// PutU64 stores v little-endian at gpa, or panics.
func (m *Memory) PutU64(gpa, v uint64) {
	binary.LittleEndian.PutUint64(m.data[gpa-m.base:], v)
}

// U64 returns the little-endian uint64 at gpa, or panics.
func (m *Memory) U64(gpa uint64) uint64 {
	return binary.LittleEndian.Uint64(m.data[gpa-m.base:])
}

// U32 returns the little-endian uint32 at gpa, or panics.
func (m *Memory) U32(gpa uint64) uint32 {
	return binary.LittleEndian.Uint32(m.data[gpa-m.base:])
}

// WithPageTables returns 8 MiB of memory at 0 with hand-made x86-64 page
// tables at 0x1000 (the PML4), every entry present and writable:
//
//	VA 0x5000, 0x6000, 0x7000  4 KiB pages at 0x7000, 0x9000 and 0xa000
//	VA 0x200000                a 2 MiB page at 0x600000
//	VA 0x8000000000 + x        a 1 GiB page at 0 (PML4 entry 1)
//	PML4 entry 2               points outside guest memory
func WithPageTables() *Memory {
	const present, writable, huge = 1 << 0, 1 << 1, 1 << 7
	const p, large = present | writable, present | writable | huge
	mem := New(0, 8<<20)
	mem.PutU64(0x1000+0*8, 0x2000|p)        // PML4[0] -> PDPT
	mem.PutU64(0x1000+1*8, 0x5000|p)        // PML4[1] -> PDPT with a 1 GiB page
	mem.PutU64(0x1000+2*8, 0x1_0000_0000|p) // PML4[2] -> outside memory
	mem.PutU64(0x2000+0*8, 0x3000|p)        // PDPT[0] -> PD
	mem.PutU64(0x3000+0*8, 0x4000|p)        // PD[0] -> PT
	mem.PutU64(0x3000+1*8, 0x600000|large)  // PD[1] -> 2 MiB page
	mem.PutU64(0x4000+5*8, 0x7000|p)        // PT[5]
	mem.PutU64(0x4000+6*8, 0x9000|p)        // PT[6]
	mem.PutU64(0x4000+7*8, 0xa000|p)        // PT[7], contiguous with PT[6]
	mem.PutU64(0x5000+0*8, 0x0|large)       // 1 GiB page at 0
	return mem
}
