package kvm

import (
	"encoding/binary"
	"testing"
)

// entryAt returns entry index of the 4 KiB table at page number page of tables.
func entryAt(tables []byte, page, index int) uint64 {
	return binary.LittleEndian.Uint64(tables[page*PageSize+index*8:])
}

const (
	tableFlags = PTEPresent | PTEWritable
	pageFlags  = PTEPresent | PTEWritable | PTEHuge
	gib        = 1 << 30
	mib2       = 2 << 20
)

func TestIdentityMapBuild(t *testing.T) {
	const base = 0x10000 // where the tables go in each case
	type entry struct {
		page, index int
		want        uint64
	}
	tests := []struct {
		name      string
		m         IdentityMap
		wantPages int
		entries   []entry
		// unmapped lists (page, index) pairs of PD entries that must be
		// empty because they lie outside the range.
		unmapped [][2]int
	}{
		{
			name:      "first GiB with self map (Hermit)",
			m:         IdentityMap{TablesAddr: base, End: gib, SelfMap: true},
			wantPages: 3,
			entries: []entry{
				{0, 0, base + 0x1000 | tableFlags},
				{0, 1, 0},
				{0, 511, base | tableFlags},
				{1, 0, base + 0x2000 | tableFlags},
				{1, 1, 0},
				{2, 0, 0 | pageFlags},
				{2, 511, 511*mib2 | pageFlags},
			},
		},
		{
			name:      "unaligned range is rounded out",
			m:         IdentityMap{TablesAddr: base, Start: 0x200001, End: 0x600001},
			wantPages: 3,
			entries: []entry{
				{0, 511, 0},
				{2, 1, 0x200000 | pageFlags},
				{2, 3, 0x600000 | pageFlags},
			},
			unmapped: [][2]int{{2, 0}, {2, 4}},
		},
		{
			name:      "crosses a 1 GiB boundary",
			m:         IdentityMap{TablesAddr: base, Start: gib - mib2, End: gib + mib2},
			wantPages: 4,
			entries: []entry{
				{1, 0, base + 0x2000 | tableFlags},
				{1, 1, base + 0x3000 | tableFlags},
				{2, 511, (gib - mib2) | pageFlags},
				{3, 0, gib | pageFlags},
			},
			unmapped: [][2]int{{2, 510}, {3, 1}},
		},
		{
			name:      "crosses a 512 GiB boundary",
			m:         IdentityMap{TablesAddr: base, Start: 512*gib - mib2, End: 512*gib + mib2},
			wantPages: 5,
			entries: []entry{
				{0, 0, base + 0x1000 | tableFlags},
				{0, 1, base + 0x2000 | tableFlags},
				{1, 511, base + 0x3000 | tableFlags},
				{2, 0, base + 0x4000 | tableFlags},
				{3, 511, (512*gib - mib2) | pageFlags},
				{4, 0, 512*gib | pageFlags},
			},
		},
		{
			name:      "user bit in every level",
			m:         IdentityMap{TablesAddr: base, End: mib2, User: true},
			wantPages: 3,
			entries: []entry{
				{0, 0, base + 0x1000 | tableFlags | PTEUser},
				{1, 0, base + 0x2000 | tableFlags | PTEUser},
				{2, 0, pageFlags | PTEUser},
			},
			unmapped: [][2]int{{2, 1}},
		},
		{
			name:      "range at the top of the lower half",
			m:         IdentityMap{TablesAddr: base, Start: 1<<47 - mib2, End: 1 << 47},
			wantPages: 3,
			entries: []entry{
				{0, 255, base + 0x1000 | tableFlags},
				{1, 511, base + 0x2000 | tableFlags},
				{2, 511, (1<<47 - mib2) | pageFlags},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tables, err := tt.m.Build()
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if got := len(tables) / PageSize; got != tt.wantPages || len(tables)%PageSize != 0 {
				t.Fatalf("Build returned %d bytes, want %d pages", len(tables), tt.wantPages)
			}
			for _, e := range tt.entries {
				if got := entryAt(tables, e.page, e.index); got != e.want {
					t.Errorf("table page %d entry %d = %#x, want %#x", e.page, e.index, got, e.want)
				}
			}
			for _, pe := range tt.unmapped {
				if got := entryAt(tables, pe[0], pe[1]); got != 0 {
					t.Errorf("table page %d entry %d = %#x, want 0 (outside the range)", pe[0], pe[1], got)
				}
			}
		})
	}
}

// TestIdentityMapTranslates walks the tables as the MMU would, for addresses
// inside and outside the range.
func TestIdentityMapTranslates(t *testing.T) {
	m := IdentityMap{TablesAddr: 0x40000, Start: 3 * gib, End: 5*gib + 0x1234, SelfMap: true}
	tables, err := m.Build()
	if err != nil {
		t.Fatal(err)
	}
	// read returns the entry at guest-physical address addr, which must lie
	// inside the tables.
	read := func(addr uint64) uint64 {
		off := addr - m.TablesAddr
		if addr < m.TablesAddr || off >= uint64(len(tables)) {
			t.Fatalf("walk reached %#x, outside the tables at [%#x, %#x)", addr, m.TablesAddr, m.TablesAddr+uint64(len(tables)))
		}
		return binary.LittleEndian.Uint64(tables[off:])
	}
	const addrMask = 0x000ffffffffff000
	walk := func(va uint64) (uint64, bool) {
		table := m.TablesAddr
		for level, shift := range []uint{39, 30, 21} {
			e := read(table + (va>>shift)%512*8)
			if e&PTEPresent == 0 {
				return 0, false
			}
			if level == 2 {
				if e&PTEHuge == 0 {
					t.Fatalf("PD entry for %#x is not a 2 MiB page: %#x", va, e)
				}
				return e&addrMask&^(mib2-1) | va&(mib2-1), true
			}
			table = e & addrMask
		}
		panic("unreachable")
	}

	for _, va := range []uint64{3 * gib, 3*gib + 0x1234, 4*gib - 1, 4 * gib, 5*gib + 0x1234, 5*gib + mib2 - 1} {
		pa, ok := walk(va)
		if !ok {
			t.Errorf("%#x is not mapped, want it identity-mapped", va)
		} else if pa != va {
			t.Errorf("%#x maps to %#x, want itself", va, pa)
		}
	}
	for _, va := range []uint64{0, 3*gib - 1, 5*gib + mib2, 6 * gib} {
		if pa, ok := walk(va); ok {
			t.Errorf("%#x maps to %#x, want it unmapped", va, pa)
		}
	}
}

func TestIdentityMapRejects(t *testing.T) {
	tests := []struct {
		name string
		m    IdentityMap
	}{
		{"unaligned tables", IdentityMap{TablesAddr: 0x10800, End: gib}},
		{"empty range", IdentityMap{TablesAddr: 0x10000, Start: gib, End: gib}},
		{"end below start", IdentityMap{TablesAddr: 0x10000, Start: 2 * gib, End: gib}},
		{"end above 2^47", IdentityMap{TablesAddr: 0x10000, Start: 0, End: 1<<47 + mib2}},
		{"tables above 2^52", IdentityMap{TablesAddr: 1<<52 - 0x1000, End: gib}},
	}
	for _, tt := range tests {
		if tables, err := tt.m.Build(); err == nil {
			t.Errorf("%s: Build returned %d bytes, want an error", tt.name, len(tables))
		}
	}
}
