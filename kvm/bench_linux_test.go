//go:build amd64

package kvm

import (
	"context"
	"testing"
)

// BenchmarkBootToExit measures starting the tiny guest and running it until
// its HLT exit, after one OUT exit. "full" also creates the VM, 2 MiB of
// memory, the page tables and a vCPU, and closes them afterwards. "run" only
// resets the registers of an existing vCPU and runs the same code again.
func BenchmarkBootToExit(b *testing.B) {
	sys := openKVM(b)
	opts := guestOptions{regs: func(_ int, r *Regs) { r.RAX = '!' }}
	handlers := Handlers{
		PortOut: func(PortIO) error { return nil },
		Halt:    func() error { return ErrStop },
	}

	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			g, err := buildGuest(sys, codeOutString, opts)
			if err != nil {
				b.Fatal(err)
			}
			if err := g.vcpus[0].Run(context.Background(), handlers); err != nil {
				b.Fatal(err)
			}
			if err := g.vm.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("run", func(b *testing.B) {
		g := newTestGuest(b, sys, codeOutString, opts)
		v := g.vcpus[0]
		start, err := v.Regs()
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := v.SetRegs(start); err != nil {
				b.Fatal(err)
			}
			if err := v.Run(context.Background(), handlers); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPortIORoundTrip measures one OUT exit handled in Go and the return
// to the guest, with the guest loop at privilege level 0 and 3. Where KVM
// emulates ring 0 (PVM), the ring-0 figure includes emulating the OUT and JMP
// instructions.
func BenchmarkPortIORoundTrip(b *testing.B) {
	sys := openKVM(b)
	for _, ring3 := range []bool{false, true} {
		name := "ring0"
		if ring3 {
			name = "ring3"
		}
		b.Run(name, func(b *testing.B) {
			g := newTestGuest(b, sys, codeOutLoop, guestOptions{
				ring3: ring3,
				regs:  func(_ int, r *Regs) { r.RAX = 'x' },
			})

			exits := 0
			b.ResetTimer()
			err := g.vcpus[0].Run(context.Background(), Handlers{PortOut: func(PortIO) error {
				exits++
				if exits >= b.N {
					return ErrStop
				}
				return nil
			}})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRegs measures a KVM_GET_REGS issued from another goroutine, which
// hands the call to the vCPU's thread, and from an exit handler on that
// thread.
func BenchmarkRegs(b *testing.B) {
	sys := openKVM(b)

	b.Run("other goroutine", func(b *testing.B) {
		g := newTestGuest(b, sys, codeHalt, guestOptions{})
		for b.Loop() {
			if _, err := g.vcpus[0].Regs(); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("exit handler", func(b *testing.B) {
		g := newTestGuest(b, sys, codeHalt, guestOptions{})
		v := g.vcpus[0]
		err := v.Run(context.Background(), Handlers{Halt: func() error {
			for b.Loop() {
				if _, err := v.Regs(); err != nil {
					return err
				}
			}
			return ErrStop
		}})
		if err != nil {
			b.Fatal(err)
		}
	})
}
