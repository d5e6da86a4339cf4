package hermit

import (
	"github.com/osvm-project/osvm/internal/fakemem"
	"strings"
	"testing"
)

// walkMemory returns 8 MiB of fake memory at 0 with hand-made page tables
// at 0x1000 (the PML4):
//
//	VA 0x5000, 0x6000          4 KiB pages at 0x7000 and 0x9000
//	VA 0x200000                a 2 MiB page at 0x600000
//	VA 0x8000000000 + x        a 1 GiB page at 0 (PML4 entry 1)
//	PML4 entry 2               points outside guest memory
func walkMemory() *fakemem.Memory {
	mem := fakemem.New(0, 8<<20)
	const p, huge = ptePresent | 2, ptePresent | 2 | pteHuge
	mem.PutU64(0x1000+0*8, 0x2000|p)        // PML4[0] -> PDPT
	mem.PutU64(0x1000+1*8, 0x5000|p)        // PML4[1] -> PDPT with a 1 GiB page
	mem.PutU64(0x1000+2*8, 0x1_0000_0000|p) // PML4[2] -> outside memory
	mem.PutU64(0x2000+0*8, 0x3000|p)        // PDPT[0] -> PD
	mem.PutU64(0x3000+0*8, 0x4000|p)        // PD[0] -> PT
	mem.PutU64(0x3000+1*8, 0x600000|huge)   // PD[1] -> 2 MiB page
	mem.PutU64(0x4000+5*8, 0x7000|p)        // PT[5]
	mem.PutU64(0x4000+6*8, 0x9000|p)        // PT[6]
	mem.PutU64(0x4000+7*8, 0xa000|p)        // PT[7], contiguous with PT[6]
	mem.PutU64(0x5000+0*8, 0x0|huge)        // 1 GiB page at 0
	return mem
}

func TestTranslate(t *testing.T) {
	mem := walkMemory()
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
		gpa, rest, err := translate(mem, 0x1000, tt.gva)
		if err != nil {
			t.Errorf("%s: translate(%#x): %v", tt.name, tt.gva, err)
			continue
		}
		if gpa != tt.wantGPA || rest != tt.wantRest {
			t.Errorf("%s: translate(%#x) = %#x, %#x; want %#x, %#x", tt.name, tt.gva, gpa, rest, tt.wantGPA, tt.wantRest)
		}
	}
}

func TestTranslateErrors(t *testing.T) {
	mem := walkMemory()
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
		_, _, err := translate(mem, tt.cr3, tt.gva)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: translate(%#x) error = %v, want one mentioning %q", tt.name, tt.gva, err, tt.want)
		}
	}
}

func TestTranslateRange(t *testing.T) {
	mem := walkMemory()
	runs, err := translateRange(mem, 0x1000, 0x5ff0, 0x1020)
	if err != nil {
		t.Fatalf("translateRange: %v", err)
	}
	want := []physRange{{0x7ff0, 0x10}, {0x9000, 0x1010}} // PT[6] and PT[7] merge
	if len(runs) != len(want) || runs[0] != want[0] || runs[1] != want[1] {
		t.Errorf("translateRange = %+v, want %+v", runs, want)
	}
	if _, err := translateRange(mem, 0x1000, 0x7ff0, 0x20); err == nil {
		t.Errorf("translateRange into an unmapped page succeeded")
	}
	if _, err := translateRange(mem, 0x1000, ^uint64(0)-4, 16); err == nil {
		t.Errorf("translateRange wrapping the address space succeeded")
	}
}
