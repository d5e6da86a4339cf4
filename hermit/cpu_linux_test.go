//go:build amd64

package hermit

import (
	"strings"
	"testing"

	"github.com/osvm-project/osvm/kvm"
)

func TestGuestCPUID(t *testing.T) {
	supported := []kvm.CPUIDEntry{
		{Function: 1, EBX: 0xff02_0800, ECX: 0x0000_2000, EDX: 0x0f8b_fbdf},
		{Function: 0xa, EAX: 0x0730_0403},
		{Function: 0xb, Index: 0, EDX: 0},
		{Function: 0xd, Index: 0, EAX: 0xe7, EDX: 0x1},
		{Function: 0xd, Index: 1, EAX: 0xf},
		{Function: 0x4000_0000, EAX: 0x4000_0001, EBX: 0x4b4d564b},
		{Function: 0x8000_0002, EAX: 1},
		{Function: 0x8000_0003},
		{Function: 0x8000_0004},
	}
	orig := append([]kvm.CPUIDEntry(nil), supported...)
	got := guestCPUID(supported, 3, 2_400_000)

	if supported[0] != orig[0] {
		t.Errorf("guestCPUID modified its input")
	}
	find := func(fn uint32) kvm.CPUIDEntry {
		for _, e := range got {
			if e.Function == fn {
				return e
			}
		}
		t.Fatalf("leaf %#x missing", fn)
		return kvm.CPUIDEntry{}
	}
	if e := find(1); e.ECX&(1<<31) == 0 || e.ECX&(1<<24) == 0 || e.EDX&(1<<5) == 0 || e.ECX&0x2000 == 0 {
		t.Errorf("leaf 1 ECX %#x EDX %#x: want hypervisor, TSC-deadline and MSR set, others kept", e.ECX, e.EDX)
	}
	if e := find(1); e.EBX>>24 != 3 || e.EBX&0xffffff != 0x020800 {
		t.Errorf("leaf 1 EBX = %#x, want APIC id 3 in bits 31:24 and the rest kept", e.EBX)
	}
	if e := find(0xb); e.EDX != 3 {
		t.Errorf("leaf 0xB EDX = %d, want the x2APIC id 3", e.EDX)
	}
	if e := find(0xa); e.EAX != 0 {
		t.Errorf("leaf 0xA EAX = %#x, want 0 (no PMU)", e.EAX)
	}
	for _, e := range got {
		if e.Function == 0xd && e.Index == 1 && e.EAX != 0x7 {
			t.Errorf("leaf 0xD.1 EAX = %#x, want XSAVEOPT, XSAVEC and XGETBV1 kept and XSAVES hidden", e.EAX)
		}
		if e.Function == 0xd && e.Index == 0 && (e.EAX != 0x7 || e.EDX != 0) {
			t.Errorf("leaf 0xD.0 = %#x:%#x, want x87, SSE and AVX only", e.EDX, e.EAX)
		}
	}
	if e := find(0x4000_0000); e.EAX != 0x4000_0010 || e.EBX != 0x4b4d564b {
		t.Errorf("leaf 0x40000000 = %#x/%#x, want EAX 0x40000010 and the signature kept", e.EAX, e.EBX)
	}
	if e := find(0x4000_0010); e.EAX != 2_400_000 || e.EBX != apicTimerKHz {
		t.Errorf("leaf 0x40000010 = %d/%d, want the TSC and APIC timer kHz", e.EAX, e.EBX)
	}

	var brand []byte
	for fn := uint32(0x8000_0002); fn <= 0x8000_0004; fn++ {
		e := find(fn)
		for _, r := range []uint32{e.EAX, e.EBX, e.ECX, e.EDX} {
			brand = append(brand, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
		}
	}
	if got := strings.TrimRight(string(brand), "\x00"); got != brandString {
		t.Errorf("brand = %q, want %q", got, brandString)
	}
}

func TestGuestCPUIDWithoutFrequency(t *testing.T) {
	got := guestCPUID([]kvm.CPUIDEntry{{Function: 0x4000_0000, EAX: 0x4000_0001}}, 0, 0)
	if len(got) != 1 || got[0].EAX != 0x4000_0001 {
		t.Errorf("guestCPUID without a TSC frequency = %+v, want leaf 0x40000000 unchanged and no timing leaf", got)
	}
}

func TestBootRegs(t *testing.T) {
	l := layout{BootInfo: 0x5000, Stack: 0x38000}
	r := bootRegs(l, 0x40190, 1)
	if r.RIP != 0x40190 || r.RDI != 0x5000 || r.RSI != 1 || r.RSP != 0x38000 || r.RFLAGS != kvm.RFLAGSReserved {
		t.Errorf("bootRegs = %+v", r)
	}
}
