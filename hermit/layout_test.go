package hermit

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/osvm-project/osvm/internal/fakemem"
	"github.com/osvm-project/osvm/kvm"
	"github.com/osvm-project/osvm/kvm/paging"
)

func mustInspect(t *testing.T, data []byte) *Image {
	t.Helper()
	img, err := Inspect(data)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	return img
}

func TestPlanLayout(t *testing.T) {
	const kernelEnd = testDataVAddr + testDataMem
	execKernel := testKernel(kernelOptions{edit: func(f *elfFile) {
		f.typ = etExec
		f.entry = 0x800010
		f.phdrs[0].VAddr = 0x800000
		f.phdrs[1].VAddr = 0x802000
		f.phdrs[3].VAddr = 0x802010
	}})
	tests := []struct {
		name   string
		kernel []byte
		mem    uint64
		want   layout
	}{
		{
			name:   "v1 legacy",
			kernel: testKernel(kernelOptions{}),
			mem:    64 << 20,
			want: layout{
				RAMStart: 0, RAMSize: 64 << 20, GDT: 0, FDT: 0x1000, BootInfo: 0x5000, PML4: 0x10000, Stack: 0x38000,
				KernelBias: 0x40000, KernelStart: 0x40000, KernelEnd: 0x40000 + kernelEnd,
				MapStart: 0, MapEnd: 1 << 30,
			},
		},
		{
			name:   "v3 with kernel version",
			kernel: testKernel(kernelOptions{notes: concat(entryNote(4), uhyveNote(3), abiNote(6, 0, 14, 0))}),
			mem:    32 << 20,
			want: layout{
				RAMStart: 1 << 32, RAMSize: 32 << 20, GDT: 1 << 32, FDT: 1<<32 + 0x1000, BootInfo: 1<<32 + 0x5000,
				PML4: 1<<32 + 0x10000, Stack: 1<<32 + 0x38000,
				KernelBias: 1<<32 + 0x40000, KernelStart: 1<<32 + 0x40000, KernelEnd: 1<<32 + 0x40000 + kernelEnd,
				MapStart: 1 << 32, MapEnd: 1<<32 + 2<<20,
			},
		},
		{
			name:   "v1 ET_EXEC",
			kernel: execKernel,
			mem:    64 << 20,
			want: layout{
				RAMStart: 0, RAMSize: 64 << 20, GDT: 0, FDT: 0x1000, BootInfo: 0x5000, PML4: 0x10000, Stack: 0x38000,
				KernelBias: 0, KernelStart: 0x800000, KernelEnd: 0x802000 + testDataMem,
				MapStart: 0, MapEnd: 1 << 30,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planLayout(mustInspect(t, tt.kernel), tt.mem)
			if err != nil {
				t.Fatalf("planLayout: %v", err)
			}
			if got != tt.want {
				t.Errorf("planLayout =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestPlanLayoutRejects(t *testing.T) {
	v1 := testKernel(kernelOptions{})
	v2 := testKernel(kernelOptions{notes: concat(entryNote(4), uhyveNote(2))})
	lowExec := testKernel(kernelOptions{edit: func(f *elfFile) {
		f.typ = etExec
		f.phdrs[1].VAddr = 0x2000 // the text segment stays at 0, over the boot structures
	}})
	tests := []struct {
		name   string
		kernel []byte
		mem    uint64
		want   string
	}{
		{"not a multiple of 2 MiB", v1, 3 << 20, "multiple of 2 MiB"},
		{"too small", v1, 2 << 20, "below the minimum"},
		{"v1 above 3 GiB", v1, 4 << 30, "does not fit below 0xc0000000"},
		{"v2 above 64 GiB", v2, 62 << 30, "does not fit below 0x1000000000"},
		{"ET_EXEC over the boot structures", lowExec, 64 << 20, "does not fit in guest RAM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := planLayout(mustInspect(t, tt.kernel), tt.mem)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("planLayout error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestLayoutPageTables(t *testing.T) {
	l, err := planLayout(mustInspect(t, testKernel(kernelOptions{})), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := l.pageTables()
	if err != nil {
		t.Fatalf("pageTables: %v", err)
	}
	mem := fakemem.New(0, 1<<20)
	mem.Put(l.PML4, tables)

	if e := mem.U64(l.PML4 + 511*8); e&^0xfff != l.PML4 || e&kvm.PTEPresent == 0 {
		t.Errorf("PML4[511] = %#x, want a present entry pointing to the PML4 at %#x", e, l.PML4)
	}
	for _, va := range []uint64{0, 0x40000, 64<<20 - 1, 1<<30 - 1} {
		pa, _, err := paging.Translate(mem, l.PML4, va)
		if err != nil || pa != va {
			t.Errorf("paging.Translate(%#x) = %#x, %v; want the identity", va, pa, err)
		}
	}
	if _, _, err := paging.Translate(mem, l.PML4, 1<<30); err == nil {
		t.Errorf("paging.Translate(1 GiB) succeeded, but the legacy map covers only the first GiB")
	}
	if got := binary.LittleEndian.Uint64(tables[(l.MapEnd/hugePage-1)%512*8+2*kvm.PageSize:]); got&kvm.PTEHuge == 0 {
		t.Errorf("last PD entry %#x is not a 2 MiB page", got)
	}
}
