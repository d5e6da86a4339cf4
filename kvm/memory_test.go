package kvm

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

// Test layout: slots 0 and 1 are adjacent, slot 2 lies apart with a gap
// before it, and slot 3 sits just below the top of the 64-bit address space.
const (
	slot0Addr = 0x0
	slot1Addr = 0x10000
	slot2Addr = 0x100000
	slot3Addr = math.MaxUint64 - 0x10fff // page-aligned, ends at 2^64 - 0x1000
	slotSize  = 0x10000
)

// newTestMemory returns a Memory over Go-allocated buffers, which stand in for
// the host mappings. Each byte holds the low byte of its page number plus its
// slot number, so that misplaced copies show.
func newTestMemory(t *testing.T) *Memory {
	t.Helper()
	m := &Memory{}
	for slot, gpa := range []uint64{slot0Addr, slot1Addr, slot2Addr, slot3Addr} {
		data := make([]byte, slotSize)
		for i := range data {
			data[i] = byte(i/PageSize + slot)
		}
		if err := m.add(uint32(slot), gpa, data); err != nil {
			t.Fatalf("add slot %d at %#x: %v", slot, gpa, err)
		}
	}
	return m
}

func TestMemorySliceBounds(t *testing.T) {
	m := newTestMemory(t)
	// wantErr is the problem the error must name, "" for success.
	tests := []struct {
		name    string
		gpa, n  uint64
		wantErr string
	}{
		{"start of slot", slot0Addr, 16, ""},
		{"whole slot", slot1Addr, slotSize, ""},
		{"ends at slot end", slot2Addr + slotSize - 8, 8, ""},
		{"empty at slot end", slot2Addr + slotSize, 0, ""},
		{"empty inside slot", slot2Addr + 5, 0, ""},
		{"slot near top of address space", slot3Addr, slotSize, ""},
		{"one byte past slot end", slot2Addr + slotSize - 8, 9, "extends past the end"},
		{"crosses into adjacent slot", slot1Addr - 4, 8, "extends past the end"},
		{"in the gap", slot1Addr + slotSize, 1, "not in guest memory"},
		{"empty in the gap", slot1Addr + slotSize + 0x1000, 0, "not in guest memory"},
		{"starts before slot", slot2Addr - 1, 2, "not in guest memory"},
		{"above every slot but below the top", slot3Addr - 0x1000, 1, "not in guest memory"},
		{"length overflows 64 bits", slot3Addr + 0x10, math.MaxUint64 - 8, "wraps"},
		{"ends exactly at 2^64", slot3Addr, 0x11000, "wraps"},
		{"wraps to slot 0", math.MaxUint64 - 0xf, 0x20, "wraps"},
		{"last byte of address space", math.MaxUint64, 1, "wraps"},
		{"huge length from slot start", slot0Addr, math.MaxUint64, "extends past the end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := m.Slice(tt.gpa, tt.n)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrOutOfRange) {
					t.Errorf("Slice(%#x, %#x) error = %v, want ErrOutOfRange", tt.gpa, tt.n, err)
				}
				if err != nil && !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Slice(%#x, %#x) error = %q, want it to say %q", tt.gpa, tt.n, err, tt.wantErr)
				}
				if b != nil {
					t.Errorf("Slice(%#x, %#x) returned %d bytes with its error", tt.gpa, tt.n, len(b))
				}
				return
			}
			if err != nil {
				t.Fatalf("Slice(%#x, %#x): %v", tt.gpa, tt.n, err)
			}
			if uint64(len(b)) != tt.n || uint64(cap(b)) != tt.n {
				t.Errorf("Slice(%#x, %#x) has len %d, cap %d, want both %d", tt.gpa, tt.n, len(b), cap(b), tt.n)
			}
		})
	}
}

func TestMemorySliceAliasesGuestMemory(t *testing.T) {
	m := newTestMemory(t)
	b, err := m.Slice(slot2Addr+0x1000, 4)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, "abcd")

	got := make([]byte, 4)
	if _, err := m.ReadAt(got, slot2Addr+0x1000); err != nil {
		t.Fatal(err)
	}
	if string(got) != "abcd" {
		t.Errorf("ReadAt after writing through Slice = %q, want %q", got, "abcd")
	}
}

func TestMemoryReadAtAcrossSlots(t *testing.T) {
	m := newTestMemory(t)
	p := make([]byte, 8)
	n, err := m.ReadAt(p, slot1Addr-4)
	if err != nil {
		t.Fatalf("ReadAt across slots 0 and 1: %v", err)
	}
	if n != len(p) {
		t.Errorf("ReadAt returned n = %d, want %d", n, len(p))
	}
	// The last page of slot 0 holds 15, the first page of slot 1 holds 1.
	if want := []byte{15, 15, 15, 15, 1, 1, 1, 1}; !bytes.Equal(p, want) {
		t.Errorf("ReadAt across slots = %v, want %v", p, want)
	}
}

func TestMemoryWriteAtAcrossSlots(t *testing.T) {
	m := newTestMemory(t)
	if _, err := m.WriteAt([]byte("01234567"), slot1Addr-4); err != nil {
		t.Fatalf("WriteAt across slots 0 and 1: %v", err)
	}
	end0, err := m.Slice(slot1Addr-4, 4)
	if err != nil {
		t.Fatal(err)
	}
	start1, err := m.Slice(slot1Addr, 4)
	if err != nil {
		t.Fatal(err)
	}
	if string(end0) != "0123" {
		t.Errorf("end of slot 0 = %q, want %q", end0, "0123")
	}
	if string(start1) != "4567" {
		t.Errorf("start of slot 1 = %q, want %q", start1, "4567")
	}
}

func TestMemoryWriteAtFailsWhole(t *testing.T) {
	tests := []struct {
		name string
		off  int64
		n    int
	}{
		{"runs into the gap after slot 1", slot1Addr + slotSize - 4, 8},
		{"starts in the gap", slot1Addr + slotSize, 4},
		{"negative offset", -4, 8},
		{"beyond int64 range end", math.MaxInt64 - 2, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMemory(t)
			before := snapshot(m)

			n, err := m.WriteAt(bytes.Repeat([]byte{0xff}, tt.n), tt.off)
			if !errors.Is(err, ErrOutOfRange) {
				t.Errorf("WriteAt(%d bytes at %#x) error = %v, want ErrOutOfRange", tt.n, tt.off, err)
			}
			if n != 0 {
				t.Errorf("WriteAt returned n = %d with its error, want 0", n)
			}
			for i, data := range snapshot(m) {
				if !bytes.Equal(data, before[i]) {
					t.Errorf("slot %d changed by a rejected write", m.regions[i].slot)
				}
			}
		})
	}
}

// snapshot returns a copy of the contents of every region of m.
func snapshot(m *Memory) [][]byte {
	out := make([][]byte, len(m.regions))
	for i, r := range m.regions {
		out[i] = bytes.Clone(r.data)
	}
	return out
}

func TestMemoryReadAtErrors(t *testing.T) {
	m := newTestMemory(t)
	tests := []struct {
		name string
		off  int64
		n    int
	}{
		{"ends past slot 2", slot2Addr + slotSize - 1, 2},
		{"below slot 2", slot2Addr - 2, 4},
		{"negative offset", -1, 1},
		{"largest offset", math.MaxInt64, 1},
	}
	for _, tt := range tests {
		n, err := m.ReadAt(make([]byte, tt.n), tt.off)
		if !errors.Is(err, ErrOutOfRange) {
			t.Errorf("%s: ReadAt error = %v, want ErrOutOfRange", tt.name, err)
		}
		if n != 0 {
			t.Errorf("%s: ReadAt returned n = %d with its error, want 0", tt.name, n)
		}
	}
}

func TestMemoryAddRejects(t *testing.T) {
	tests := []struct {
		name      string
		gpa, size uint64
	}{
		{"zero size", 0x200000, 0},
		{"unaligned address", 0x200800, 0x1000},
		{"unaligned size", 0x200000, 0x1800},
		{"overlaps slot 0 and 1", 0xf000, 0x2000},
		{"inside slot 2", slot2Addr + 0x1000, 0x1000},
		{"covers slot 2", slot2Addr - 0x1000, slotSize + 0x2000},
		{"wraps past 2^64", math.MaxUint64 - 0xfff, 0x2000},
	}
	for _, tt := range tests {
		m := newTestMemory(t)
		if err := m.add(9, tt.gpa, make([]byte, tt.size)); err == nil {
			t.Errorf("%s: add(%#x, size %#x) succeeded, want an error", tt.name, tt.gpa, tt.size)
		}
		if got := len(m.Regions()); got != 4 {
			t.Errorf("%s: %d regions after a rejected add, want 4", tt.name, got)
		}
	}
}

func TestMemoryRegionsSorted(t *testing.T) {
	m := &Memory{}
	for slot, gpa := range []uint64{0x300000, 0x100000, 0x200000} {
		if err := m.add(uint32(slot), gpa, make([]byte, PageSize)); err != nil {
			t.Fatal(err)
		}
	}
	want := []MemoryRegion{
		{Slot: 1, GuestPhysAddr: 0x100000, Size: PageSize},
		{Slot: 2, GuestPhysAddr: 0x200000, Size: PageSize},
		{Slot: 0, GuestPhysAddr: 0x300000, Size: PageSize},
	}
	got := m.Regions()
	if len(got) != len(want) {
		t.Fatalf("Regions() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Regions()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestMemoryClosed(t *testing.T) {
	m := newTestMemory(t)
	if got := len(m.close()); got != 4 {
		t.Errorf("close returned %d mappings, want 4", got)
	}
	if _, err := m.Slice(slot0Addr, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Slice after close: error = %v, want ErrClosed", err)
	}
	if _, err := m.ReadAt(make([]byte, 1), slot0Addr); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadAt after close: error = %v, want ErrClosed", err)
	}
	if err := m.add(5, 0x400000, make([]byte, PageSize)); !errors.Is(err, ErrClosed) {
		t.Errorf("add after close: error = %v, want ErrClosed", err)
	}
}
