package paging

import (
	"strings"
	"testing"

	"github.com/osvm-project/osvm/internal/fakemem"
)

func TestTranslate(t *testing.T) {
	mem := fakemem.WithPageTables()
	tests := []struct {
		name     string
		gva      uint64
		wantGPA  uint64
		wantRest uint64
	}{
		{"4 KiB page", 0x5123, 0x7123, 0x1000 - 0x123},
		{"2 MiB page", 0x2abcde, 0x6abcde, 0x400000 - 0x2abcde},
		{"1 GiB page", 1<<39 + 0x1234, 0x1234, 1<<30 - 0x1234},
	}
	for _, tt := range tests {
		gpa, rest, err := Translate(mem, 0x1000, tt.gva)
		if err != nil {
			t.Errorf("%s: Translate(%#x): %v", tt.name, tt.gva, err)
			continue
		}
		if gpa != tt.wantGPA || rest != tt.wantRest {
			t.Errorf("%s: Translate(%#x) = %#x, %#x; want %#x, %#x", tt.name, tt.gva, gpa, rest, tt.wantGPA, tt.wantRest)
		}
	}
}

func TestTranslateErrors(t *testing.T) {
	mem := fakemem.WithPageTables()
	tests := []struct {
		name string
		cr3  uint64
		gva  uint64
		want string
	}{
		{"not present", 0x1000, 0x400000, "not mapped"},
		{"PT entry not present", 0x1000, 0x8000, "level-1 entry 8"},
		{"not canonical", 0x1000, 1 << 47, "not canonical"},
		{"table outside memory", 0x1000, 2 << 39, "outside"},
		{"CR3 outside memory", 0x4000_0000, 0, "outside"},
	}
	for _, tt := range tests {
		_, _, err := Translate(mem, tt.cr3, tt.gva)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Translate(%#x) error = %v, want one mentioning %q", tt.name, tt.gva, err, tt.want)
		}
	}
}

func TestTranslateRange(t *testing.T) {
	mem := fakemem.WithPageTables()
	runs, err := Range(mem, 0x1000, 0x5ff0, 0x1020)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	want := []Run{{0x7ff0, 0x10}, {0x9000, 0x1010}} // PT[6] and PT[7] merge
	if len(runs) != len(want) || runs[0] != want[0] || runs[1] != want[1] {
		t.Errorf("Range = %+v, want %+v", runs, want)
	}
	if _, err := Range(mem, 0x1000, 0x7ff0, 0x20); err == nil {
		t.Errorf("Range into an unmapped page succeeded")
	}
	if _, err := Range(mem, 0x1000, ^uint64(0)-4, 16); err == nil {
		t.Errorf("Range wrapping the address space succeeded")
	}
}
