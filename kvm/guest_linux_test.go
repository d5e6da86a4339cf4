//go:build amd64

package kvm

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/osvm-project/osvm/internal/testenv"
)

// Layout of the test guests. Guest memory is the first 2 MiB. The page
// tables identity-map the first 4 MiB, so testMMIOAddr is mapped but not
// backed by memory, and accesses to it exit as MMIO.
const (
	testMemSize  = 2 << 20
	testGDTAddr  = 0x1000
	testPML4Addr = 0x2000
	testCodeAddr = 0x10000
	testDataAddr = 0x11000
	testMapEnd   = 4 << 20
	testMMIOAddr = 0x300000
	testPort     = 0xe9
)

// Hand-assembled 64-bit guest code. Each program is a few instructions,
// because on a host whose KVM emulates guest ring 0 (PVM) every ring-0
// instruction costs microseconds.
var (
	// codeOutString writes the bytes of RAX, lowest first, to port DX until
	// RAX is zero, then halts.
	codeOutString = []byte{
		0xee,                   // 0: out dx, al
		0x48, 0xc1, 0xe8, 0x08, // 1: shr rax, 8
		0x75, 0xf9, //             5: jnz 0
		0xf4, //                   7: hlt
	}

	// codeDevices exercises every device exit: IN, OUT, an MMIO write and
	// read at RBX, and a REP OUTSB of RCX bytes from RSI, then halts.
	codeDevices = []byte{
		0xec,       // in al, dx
		0xee,       // out dx, al
		0x88, 0x03, // mov [rbx], al
		0x8a, 0x03, // mov al, [rbx]
		0xee,       // out dx, al
		0xf3, 0x6e, // rep outsb
		0xf4, //       hlt
	}

	// codeOutLoop writes AL to port DX forever.
	codeOutLoop = []byte{
		0xee,       // 0: out dx, al
		0xeb, 0xfd, // 1: jmp 0
	}

	// codeSpin loops forever without exits.
	codeSpin = []byte{0xeb, 0xfe} // jmp $

	// codeHalt halts at once.
	codeHalt = []byte{0xf4} // hlt

	// codeUD2 raises #UD, which with an empty IDT escalates to a triple fault.
	codeUD2 = []byte{0x0f, 0x0b} // ud2
)

// guestOptions selects how newTestGuest sets up a guest.
type guestOptions struct {
	vcpus   int               // number of vCPUs, 1 if zero
	ring3   bool              // run the code at privilege level 3 with IOPL 3
	irqchip bool              // create the in-kernel IRQ chip
	regs    func(int, *Regs)  // adjusts the registers of each vCPU
	sregs   func(int, *SRegs) // adjusts the special registers of each vCPU
}

// testGuest is a VM with code at testCodeAddr and its vCPUs ready to run it in
// 64-bit mode.
type testGuest struct {
	vm    *VM
	vcpus []*VCPU
}

// openKVM opens /dev/kvm, or skips t where KVM is unavailable (fails in CI).
func openKVM(t testing.TB) *System {
	t.Helper()
	testenv.MustHaveKVM(t)
	sys, err := Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { sys.Close() })
	return sys
}

// newTestGuest builds a guest running code, or fails t.
func newTestGuest(t testing.TB, sys *System, code []byte, opts guestOptions) *testGuest {
	t.Helper()
	g, err := buildGuest(sys, code, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.vm.Close(); err != nil {
			t.Errorf("VM.Close: %v", err)
		}
	})
	return g
}

// buildGuest creates a VM with 2 MiB of memory, writes the GDT, identity page
// tables and code, and creates the vCPUs in 64-bit mode at testCodeAddr.
func buildGuest(sys *System, code []byte, opts guestOptions) (*testGuest, error) {
	vm, err := sys.CreateVM()
	if err != nil {
		return nil, err
	}
	g := &testGuest{vm: vm}
	if err := g.setup(code, opts); err != nil {
		vm.Close()
		return nil, err
	}
	return g, nil
}

func (g *testGuest) setup(code []byte, opts guestOptions) error {
	if opts.irqchip {
		if err := g.vm.CreateIRQChip(); err != nil {
			return err
		}
	}
	if err := g.vm.AddMemory(0, testMemSize); err != nil {
		return err
	}

	gdt := FlatGDT()
	if opts.ring3 {
		gdt = BuildGDT(flatCode64, flatData, userCode64, userData)
	}
	tables, err := IdentityMap{TablesAddr: testPML4Addr, End: testMapEnd, User: opts.ring3}.Build()
	if err != nil {
		return err
	}
	mem := g.vm.Memory()
	for _, w := range []struct {
		addr uint64
		data []byte
	}{{testGDTAddr, gdt}, {testPML4Addr, tables}, {testCodeAddr, code}} {
		if _, err := mem.WriteAt(w.data, int64(w.addr)); err != nil {
			return err
		}
	}

	for i := range max(opts.vcpus, 1) {
		v, err := g.vm.CreateVCPU(i)
		if err != nil {
			return err
		}
		g.vcpus = append(g.vcpus, v)

		s, err := v.SRegs()
		if err != nil {
			return err
		}
		s.SetLongMode(testGDTAddr, testPML4Addr)
		regs := Regs{RIP: testCodeAddr, RSP: testCodeAddr, RDX: testPort, RFLAGS: RFLAGSReserved}
		if opts.ring3 {
			s.GDT.Limit = uint16(len(gdt) - 1)
			s.CS = userCode64.Segment(selectorUserCode64)
			data := userData.Segment(selectorUserData)
			s.DS, s.ES, s.SS = data, data, data
			regs.RFLAGS |= RFLAGSIOPL3
		}
		if opts.sregs != nil {
			opts.sregs(i, &s)
		}
		if opts.regs != nil {
			opts.regs(i, &regs)
		}
		if err := v.SetSRegs(s); err != nil {
			return err
		}
		if err := v.SetRegs(regs); err != nil {
			return err
		}
	}
	return nil
}

// packString returns s, at most 8 bytes, as a little-endian register value,
// the form codeOutString writes out.
func packString(s string) uint64 {
	if len(s) > 8 {
		panic(fmt.Sprintf("packString: %q is longer than 8 bytes", s))
	}
	var b [8]byte
	copy(b[:], s)
	return binary.LittleEndian.Uint64(b[:])
}
