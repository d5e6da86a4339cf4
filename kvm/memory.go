package kvm

import (
	"fmt"
	"math"
	"sort"
	"sync"
)

// PageSize is the granularity of guest memory slots: their guest-physical
// address and size must be multiples of it.
const PageSize = 4096

// Memory is the guest-physical memory of a VM: the memory slots registered
// with KVM_SET_USER_MEMORY_REGION and the host mappings behind them. Every
// access checks the whole guest-physical range against the slots first, and
// a range that is not backed entirely by guest memory fails with an error
// wrapping ErrOutOfRange. Nothing else in this package touches guest memory.
//
// Memory is safe for concurrent use. It does not order accesses against the
// guest's own, which run at the same time on the vCPUs.
type Memory struct {
	mu      sync.RWMutex
	regions []memoryRegion // sorted by address, not overlapping
	closed  bool
}

// memoryRegion is one memory slot and its host mapping. add guarantees that
// gpa+len(data) does not overflow.
type memoryRegion struct {
	slot uint32
	gpa  uint64
	data []byte
}

func (r memoryRegion) end() uint64 {
	return r.gpa + uint64(len(r.data))
}

// MemoryRegion describes one memory slot of a VM.
type MemoryRegion struct {
	Slot          uint32
	GuestPhysAddr uint64
	Size          uint64
}

// Regions returns the memory slots, ordered by guest-physical address.
func (m *Memory) Regions() []MemoryRegion {
	m.mu.RLock()
	defer m.mu.RUnlock()

	out := make([]MemoryRegion, len(m.regions))
	for i, r := range m.regions {
		out[i] = MemoryRegion{Slot: r.slot, GuestPhysAddr: r.gpa, Size: uint64(len(r.data))}
	}
	return out
}

// Slice returns the n bytes of guest memory at guest-physical address gpa as
// a slice of the host mapping, so writes to it reach the guest. The range must
// lie within one memory slot. Use ReadAt or WriteAt for ranges that cross from
// one slot into an adjacent one. The slice is valid until the VM is closed,
// and using it afterwards crashes the process.
func (m *Memory) Slice(gpa, n uint64) ([]byte, error) {
	if _, err := rangeEnd(gpa, n); err != nil {
		return nil, err
	}

	m.mu.RLock()
	defer m.mu.RUnlock()

	if m.closed {
		return nil, ErrClosed
	}
	i, ok := m.find(gpa, n == 0)
	if !ok {
		return nil, rangeError(gpa, n, "is not in guest memory")
	}
	r := m.regions[i]
	off := gpa - r.gpa
	if n > uint64(len(r.data))-off {
		return nil, rangeError(gpa, n, fmt.Sprintf("extends past the end of memory slot %d at %#x (use ReadAt or WriteAt to cross slots)", r.slot, r.end()))
	}
	return r.data[off : off+n : off+n], nil
}

// ReadAt copies len(p) bytes of guest memory at guest-physical address off
// into p. It implements io.ReaderAt, but reads nothing unless the whole range
// is guest memory, so it returns either len(p) and nil or 0 and an error.
func (m *Memory) ReadAt(p []byte, off int64) (int, error) {
	return m.copyRange(p, off, false)
}

// WriteAt copies p into guest memory at guest-physical address off. It
// implements io.WriterAt, but writes nothing unless the whole range is guest
// memory, so it returns either len(p) and nil or 0 and an error.
func (m *Memory) WriteAt(p []byte, off int64) (int, error) {
	return m.copyRange(p, off, true)
}

// copyRange copies between p and the guest memory at off, in the direction
// write selects. The range may span adjacent memory slots.
func (m *Memory) copyRange(p []byte, off int64, write bool) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("guest-physical offset %d is negative: %w", off, ErrOutOfRange)
	}
	gpa, n := uint64(off), uint64(len(p))
	if _, err := rangeEnd(gpa, n); err != nil {
		return 0, err
	}

	m.mu.RLock()
	defer m.mu.RUnlock()

	if m.closed {
		return 0, ErrClosed
	}

	// Check the whole range before copying anything, so that a failed
	// WriteAt leaves guest memory unchanged.
	first, ok := m.find(gpa, n == 0)
	if !ok {
		return 0, rangeError(gpa, n, "is not in guest memory")
	}
	last := first
	for covered := m.regions[first].end(); covered-gpa < n; covered = m.regions[last].end() {
		if last+1 == len(m.regions) || m.regions[last+1].gpa != covered {
			return 0, rangeError(gpa, n, fmt.Sprintf("is not in guest memory from %#x on", covered))
		}
		last++
	}

	done := 0
	for i := first; i <= last; i++ {
		r := m.regions[i]
		start := gpa + uint64(done) - r.gpa
		chunk := min(uint64(len(p)-done), uint64(len(r.data))-start)
		if write {
			copy(r.data[start:start+chunk], p[done:])
		} else {
			copy(p[done:done+int(chunk)], r.data[start:])
		}
		done += int(chunk)
	}
	return done, nil
}

// find returns the index of the region containing gpa. With atEnd set, it
// also accepts a gpa equal to a region's end, which is where an empty range
// may start.
func (m *Memory) find(gpa uint64, atEnd bool) (int, bool) {
	i := sort.Search(len(m.regions), func(i int) bool { return m.regions[i].end() > gpa })
	if i < len(m.regions) && m.regions[i].gpa <= gpa {
		return i, true
	}
	if atEnd && i > 0 && m.regions[i-1].end() == gpa {
		return i - 1, true
	}
	return 0, false
}

// checkAdd returns an error unless a slot of size bytes at gpa could be added:
// both page-aligned, size not zero, the end not past 2^64, and no overlap with
// an existing slot.
func (m *Memory) checkAdd(gpa, size uint64) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.checkAddLocked(gpa, size)
}

func (m *Memory) checkAddLocked(gpa, size uint64) error {
	if m.closed {
		return ErrClosed
	}
	if size == 0 {
		return fmt.Errorf("memory slot at %#x: size is zero", gpa)
	}
	if gpa%PageSize != 0 || size%PageSize != 0 {
		return fmt.Errorf("memory slot at %#x, size %#x: address and size must be multiples of %d", gpa, size, PageSize)
	}
	if _, err := rangeEnd(gpa, size); err != nil {
		return err
	}
	for _, r := range m.regions {
		if gpa < r.end() && r.gpa < gpa+size {
			return fmt.Errorf("memory slot at %#x, size %#x: overlaps slot %d at [%#x, %#x)", gpa, size, r.slot, r.gpa, r.end())
		}
	}
	return nil
}

// add registers data as the memory of slot at guest-physical address gpa.
func (m *Memory) add(slot uint32, gpa uint64, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	if err := m.checkAddLocked(gpa, uint64(len(data))); err != nil {
		return err
	}
	i := sort.Search(len(m.regions), func(i int) bool { return m.regions[i].gpa > gpa })
	m.regions = append(m.regions, memoryRegion{})
	copy(m.regions[i+1:], m.regions[i:])
	m.regions[i] = memoryRegion{slot: slot, gpa: gpa, data: data}
	return nil
}

// close marks m closed and returns the host mappings so that the caller can
// unmap them.
func (m *Memory) close() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()

	m.closed = true
	mappings := make([][]byte, len(m.regions))
	for i, r := range m.regions {
		mappings[i] = r.data
	}
	m.regions = nil
	return mappings
}

// rangeEnd returns gpa+n, or an error if that overflows 64 bits.
func rangeEnd(gpa, n uint64) (uint64, error) {
	if gpa > math.MaxUint64-n {
		return 0, rangeError(gpa, n, "wraps past the top of the 64-bit address space")
	}
	return gpa + n, nil
}

func rangeError(gpa, n uint64, problem string) error {
	return fmt.Errorf("guest-physical range %#x, length %#x %s: %w", gpa, n, problem, ErrOutOfRange)
}
