package kvm

import (
	"encoding/binary"
	"testing"
)

// Ring-3 descriptors that follow FlatGDT in the GDT of ring-3 test guests,
// with their selectors at privilege level 3.
var (
	userCode64 = SegmentDescriptor{Limit: 0xfffff, Type: 0xb, S: true, DPL: 3, Present: true, Long: true, Granularity: true}
	userData   = SegmentDescriptor{Limit: 0xfffff, Type: 0x3, S: true, DPL: 3, Present: true, DB: true, Granularity: true}
)

const (
	selectorUserCode64 = 0x18 | 3
	selectorUserData   = 0x20 | 3
)

func TestSegmentDescriptorEncode(t *testing.T) {
	tests := []struct {
		name string
		d    SegmentDescriptor
		want uint64
	}{
		// The boot GDT entries that uhyve gives Hermit kernels.
		{"flat 64-bit code", flatCode64, 0x00af9b000000ffff},
		{"flat data", flatData, 0x00cf93000000ffff},
		{"ring-3 64-bit code", userCode64, 0x00affb000000ffff},
		{"ring-3 data", userData, 0x00cff3000000ffff},
		{"null", SegmentDescriptor{}, 0},
		{
			"base and limit split across the descriptor",
			SegmentDescriptor{Base: 0x12345678, Limit: 0xabcde, Type: 0x2, S: true, Present: true},
			0x120a92345678bcde,
		},
		{"AVL only", SegmentDescriptor{AVL: true}, 1 << 52},
		{"fields wider than their bits are cut", SegmentDescriptor{Limit: 0xfffffff, Type: 0xff, DPL: 7}, 0x000f6f000000ffff},
	}
	for _, tt := range tests {
		if got := tt.d.Encode(); got != tt.want {
			t.Errorf("%s: Encode() = %#016x, want %#016x", tt.name, got, tt.want)
		}
	}
}

func TestFlatGDT(t *testing.T) {
	gdt := FlatGDT()
	if len(gdt) != 24 {
		t.Fatalf("FlatGDT is %d bytes, want 24", len(gdt))
	}
	want := map[int]uint64{
		0:              0,
		SelectorCode64: 0x00af9b000000ffff,
		SelectorData:   0x00cf93000000ffff,
	}
	for offset, desc := range want {
		if got := binary.LittleEndian.Uint64(gdt[offset:]); got != desc {
			t.Errorf("descriptor at selector %#x = %#016x, want %#016x", offset, got, desc)
		}
	}
}

func TestBuildGDTSelectors(t *testing.T) {
	gdt := BuildGDT(flatCode64, flatData, userCode64, userData)
	if len(gdt) != 40 {
		t.Fatalf("BuildGDT of 4 descriptors is %d bytes, want 40", len(gdt))
	}
	for selector, d := range map[int]SegmentDescriptor{0x18: userCode64, 0x20: userData} {
		if got := binary.LittleEndian.Uint64(gdt[selector:]); got != d.Encode() {
			t.Errorf("descriptor at selector %#x = %#016x, want %#016x", selector, got, d.Encode())
		}
	}
}
