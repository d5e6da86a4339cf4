//go:build amd64

package kvm

import "testing"

func TestSetLongMode(t *testing.T) {
	untouched := Segment{Base: 0x1000, Limit: 0xffff, Selector: 0x33, Type: 3, Present: 1, S: 1}
	idt := DTable{Base: 0x2000, Limit: 0xfff}
	s := SRegs{FS: untouched, GS: untouched, TR: untouched, LDT: untouched, IDT: idt, CR2: 7, CR8: 1, APICBase: 0xfee00900}

	s.SetLongMode(0x3000, 0x40000)

	// The values uhyve starts Hermit kernels with.
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"CR0", s.CR0, 0x80000031},
		{"CR3", s.CR3, 0x40000},
		{"CR4", s.CR4, 0x20},
		{"EFER", s.EFER, 0xd00},
		{"GDT base", s.GDT.Base, 0x3000},
		{"GDT limit", uint64(s.GDT.Limit), 23},
		{"CR2", s.CR2, 7},
		{"CR8", s.CR8, 1},
		{"APIC base", s.APICBase, 0xfee00900},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}

	wantCS := Segment{Limit: 0xffffffff, Selector: 0x08, Type: 0xb, Present: 1, S: 1, L: 1, G: 1}
	if s.CS != wantCS {
		t.Errorf("CS = %+v, want %+v", s.CS, wantCS)
	}
	wantData := Segment{Limit: 0xffffffff, Selector: 0x10, Type: 0x3, Present: 1, S: 1, DB: 1, G: 1}
	for name, seg := range map[string]Segment{"DS": s.DS, "ES": s.ES, "SS": s.SS} {
		if seg != wantData {
			t.Errorf("%s = %+v, want %+v", name, seg, wantData)
		}
	}
	for name, seg := range map[string]Segment{"FS": s.FS, "GS": s.GS, "TR": s.TR, "LDT": s.LDT} {
		if seg != untouched {
			t.Errorf("%s = %+v, want it unchanged (%+v)", name, seg, untouched)
		}
	}
	if s.IDT != idt {
		t.Errorf("IDT = %+v, want it unchanged (%+v)", s.IDT, idt)
	}
}

func TestSegmentDescriptorSegment(t *testing.T) {
	tests := []struct {
		name     string
		d        SegmentDescriptor
		selector uint16
		want     Segment
	}{
		{
			"4 KiB granularity scales the limit",
			userCode64, 0x1b,
			Segment{Limit: 0xffffffff, Selector: 0x1b, Type: 0xb, Present: 1, DPL: 3, S: 1, L: 1, G: 1},
		},
		{
			"byte granularity keeps the limit",
			SegmentDescriptor{Base: 0xb8000, Limit: 0xffff, Type: 0x3, S: true, Present: true, AVL: true}, 0x28,
			Segment{Base: 0xb8000, Limit: 0xffff, Selector: 0x28, Type: 0x3, Present: 1, S: 1, AVL: 1},
		},
	}
	for _, tt := range tests {
		if got := tt.d.Segment(tt.selector); got != tt.want {
			t.Errorf("%s: Segment(%#x) = %+v, want %+v", tt.name, tt.selector, got, tt.want)
		}
	}
}
