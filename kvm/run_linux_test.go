//go:build amd64

package kvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runTimeout bounds every Run in these tests, so that a guest that never
// exits fails the test instead of hanging it.
const runTimeout = 20 * time.Second

func runContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestRunPortOutThenHalt(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeOutString, guestOptions{
		regs: func(_ int, r *Regs) { r.RAX = packString("hello") },
	})
	v := g.vcpus[0]

	var out bytes.Buffer
	var halts int
	err := v.Run(runContext(t), Handlers{
		PortOut: func(io PortIO) error {
			if io.Port != testPort || io.Size != 1 || io.Count != 1 {
				return fmt.Errorf("got OUT port %#x size %d count %d, want port %#x size 1 count 1", io.Port, io.Size, io.Count, testPort)
			}
			// A handler may read the registers of its own vCPU.
			regs, err := v.Regs()
			if err != nil {
				return err
			}
			if byte(regs.RAX) != io.Data[0] {
				return fmt.Errorf("AL = %#x during OUT of %#x", byte(regs.RAX), io.Data[0])
			}
			out.Write(io.Data)
			return nil
		},
		Halt: func() error {
			halts++
			return ErrStop
		},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	if got := out.String(); got != "hello" {
		t.Errorf("port %#x received %q, want %q", testPort, got, "hello")
	}
	if halts != 1 {
		t.Errorf("Halt called %d times, want 1", halts)
	}
	regs, err := v.Regs()
	if err != nil {
		t.Fatalf("Regs: %v", err)
	}
	if want := uint64(testCodeAddr + len(codeOutString)); regs.RIP != want {
		t.Errorf("RIP after HLT = %#x, want %#x", regs.RIP, want)
	}
}

func TestRunTwoVCPUs(t *testing.T) {
	sys := openKVM(t)
	markers := []string{"vcpu0", "vcpu1"}
	g := newTestGuest(t, sys, codeOutString, guestOptions{
		vcpus: len(markers),
		regs:  func(i int, r *Regs) { r.RAX = packString(markers[i]) },
	})

	type result struct {
		out  bytes.Buffer
		tids map[int]bool
		err  error
	}
	results := make([]result, len(g.vcpus))
	var wg sync.WaitGroup
	for i, v := range g.vcpus {
		res := &results[i]
		res.tids = map[int]bool{}
		wg.Go(func() {
			res.err = v.Run(runContext(t), Handlers{
				PortOut: func(io PortIO) error {
					res.tids[unix.Gettid()] = true
					res.out.Write(io.Data)
					return nil
				},
				Halt: func() error { return ErrStop },
			})
		})
	}
	wg.Wait()

	for i, res := range results {
		if res.err != nil {
			t.Errorf("vCPU %d: Run: %v", i, res.err)
		}
		if got := res.out.String(); got != markers[i] {
			t.Errorf("vCPU %d wrote %q, want %q", i, got, markers[i])
		}
		if len(res.tids) != 1 {
			t.Errorf("vCPU %d handled its exits on %d threads, want 1", i, len(res.tids))
		}
	}
	for tid := range results[0].tids {
		if results[1].tids[tid] {
			t.Errorf("vCPUs 0 and 1 both ran on thread %d", tid)
		}
	}
}

func TestRunDeviceExits(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeDevices, guestOptions{
		regs: func(_ int, r *Regs) {
			r.RBX = testMMIOAddr
			r.RSI = testDataAddr
			r.RCX = 3
		},
	})
	if _, err := g.vm.Memory().WriteAt([]byte("abc"), testDataAddr); err != nil {
		t.Fatal(err)
	}

	const inValue, mmioValue = 0x7e, 0x5a
	var events []string
	var out bytes.Buffer
	err := g.vcpus[0].Run(runContext(t), Handlers{
		PortIn: func(io PortIO) error {
			events = append(events, fmt.Sprintf("in %#x size %d", io.Port, io.Size))
			io.Data[0] = inValue
			return nil
		},
		PortOut: func(io PortIO) error {
			out.Write(io.Data)
			return nil
		},
		MMIOWrite: func(addr uint64, data []byte) error {
			events = append(events, fmt.Sprintf("mmio write %#x % x", addr, data))
			return nil
		},
		MMIORead: func(addr uint64, data []byte) error {
			events = append(events, fmt.Sprintf("mmio read %#x len %d", addr, len(data)))
			data[0] = mmioValue
			return nil
		},
		Halt: func() error {
			events = append(events, "hlt")
			return ErrStop
		},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	wantEvents := []string{
		"in 0xe9 size 1",
		fmt.Sprintf("mmio write %#x %x", testMMIOAddr, inValue),
		fmt.Sprintf("mmio read %#x len 1", testMMIOAddr),
		"hlt",
	}
	if fmt.Sprint(events) != fmt.Sprint(wantEvents) {
		t.Errorf("events = %q, want %q", events, wantEvents)
	}
	if want := []byte{inValue, mmioValue, 'a', 'b', 'c'}; !bytes.Equal(out.Bytes(), want) {
		t.Errorf("port output = % x, want % x", out.Bytes(), want)
	}
}

func TestRunTripleFaultIsShutdown(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeUD2, guestOptions{
		// An IDT with limit 0 has no entries, so #UD escalates to #GP,
		// then #DF, then a triple fault.
		sregs: func(_ int, s *SRegs) { s.IDT = DTable{} },
	})

	err := g.vcpus[0].Run(runContext(t), Handlers{})
	var exitErr *ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("Run returned %v, want an *ExitError", err)
	}
	if exitErr.Reason != ExitShutdown {
		t.Errorf("exit reason = %v, want %v (error: %v)", exitErr.Reason, ExitShutdown, err)
	}
}

func TestRunUnhandledExit(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeOutString, guestOptions{
		regs: func(_ int, r *Regs) { r.RAX = 'x' },
	})

	err := g.vcpus[0].Run(runContext(t), Handlers{})
	if !errors.Is(err, ErrUnhandledExit) {
		t.Errorf("Run without PortOut returned %v, want an error wrapping ErrUnhandledExit", err)
	}
}

func TestRunHandlerErrorEndsRun(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeOutString, guestOptions{
		regs: func(_ int, r *Regs) { r.RAX = 'x' },
	})

	errDevice := errors.New("device failed")
	err := g.vcpus[0].Run(runContext(t), Handlers{
		PortOut: func(PortIO) error { return errDevice },
	})
	if !errors.Is(err, errDevice) {
		t.Errorf("Run returned %v, want an error wrapping %v", err, errDevice)
	}
}

// maxStopLatency bounds how long a stopped Run may take to return. The
// measured latency on the development machine is well under a millisecond.
const maxStopLatency = 2 * time.Second

func TestRunStopsOnCancel(t *testing.T) {
	sys := openKVM(t)
	tests := []struct {
		name string
		code []byte
		opts guestOptions
	}{
		{"ring 0 loop", codeSpin, guestOptions{}},
		{"ring 3 loop", codeSpin, guestOptions{ring3: true}},
		{"halted with IRQ chip", codeHalt, guestOptions{irqchip: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGuest(t, sys, tt.code, tt.opts)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- g.vcpus[0].Run(ctx, Handlers{}) }()

			// Give the guest time to enter its loop or halt.
			time.Sleep(100 * time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("Run returned before the cancel: %v", err)
			default:
			}

			start := time.Now()
			cancel()
			select {
			case err := <-done:
				latency := time.Since(start)
				t.Logf("Run returned %v after the cancel", latency)
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run returned %v, want an error wrapping context.Canceled", err)
				}
			case <-time.After(maxStopLatency):
				t.Fatalf("Run did not return within %v of the cancel", maxStopLatency)
			}
		})
	}
}

func TestRunWithDoneContext(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeSpin, guestOptions{})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.vcpus[0].Run(ctx, Handlers{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context returned %v, want an error wrapping context.Canceled", err)
	}
}

func TestRunAgainAfterStop(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeOutLoop, guestOptions{
		regs: func(_ int, r *Regs) { r.RAX = 'x' },
	})
	v := g.vcpus[0]

	// The first Run is stopped by its context while the guest loops.
	ctx, cancel := context.WithCancel(context.Background())
	outs := 0
	err := v.Run(ctx, Handlers{PortOut: func(PortIO) error {
		outs++
		if outs == 3 {
			cancel()
		}
		return nil
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first Run returned %v, want an error wrapping context.Canceled", err)
	}

	// The stop must not leak into the next Run.
	outs = 0
	err = v.Run(runContext(t), Handlers{PortOut: func(PortIO) error {
		outs++
		if outs == 5 {
			return ErrStop
		}
		return nil
	}})
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if outs != 5 {
		t.Errorf("second Run saw %d OUT exits, want 5", outs)
	}
}

func TestCloseStopsRun(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeSpin, guestOptions{})
	v := g.vcpus[0]

	done := make(chan error, 1)
	go func() { done <- v.Run(context.Background(), Handlers{}) }()
	time.Sleep(100 * time.Millisecond)

	if err := g.vm.Close(); err != nil {
		t.Fatalf("VM.Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Run returned %v, want an error wrapping ErrClosed", err)
		}
	case <-time.After(maxStopLatency):
		t.Fatalf("Run did not return within %v of Close", maxStopLatency)
	}

	if _, err := v.Regs(); !errors.Is(err, ErrClosed) {
		t.Errorf("Regs after Close returned %v, want ErrClosed", err)
	}
	if _, err := g.vm.Memory().Slice(0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Memory.Slice after Close returned %v, want ErrClosed", err)
	}
}

func TestRunRing3PortOut(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeOutLoop, guestOptions{
		ring3: true,
		regs:  func(_ int, r *Regs) { r.RAX = 'u' },
	})

	outs := 0
	err := g.vcpus[0].Run(runContext(t), Handlers{PortOut: func(io PortIO) error {
		if io.Data[0] != 'u' {
			return fmt.Errorf("OUT wrote %q, want 'u'", io.Data[0])
		}
		outs++
		if outs == 3 {
			return ErrStop
		}
		return nil
	}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	s, err := g.vcpus[0].SRegs()
	if err != nil {
		t.Fatal(err)
	}
	if cpl := s.SS.DPL; cpl != 3 {
		t.Errorf("SS.DPL (the CPL) = %d after running, want 3", cpl)
	}
}

// TestRunStopRace cancels runs at varying moments, while the guest is in
// KVM_RUN, in a handler or between exits, to catch a stop that gets lost.
func TestRunStopRace(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeOutLoop, guestOptions{
		regs: func(_ int, r *Regs) { r.RAX = 'x' },
	})
	v := g.vcpus[0]

	const rounds = 200
	for i := range rounds {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- v.Run(ctx, Handlers{PortOut: func(PortIO) error { return nil }})
		}()
		time.Sleep(time.Duration(i%20) * 10 * time.Microsecond)
		cancel()

		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("round %d: Run returned %v, want an error wrapping context.Canceled", i, err)
			}
		case <-time.After(maxStopLatency):
			t.Fatalf("round %d: Run did not return within %v of the cancel", i, maxStopLatency)
		}
	}
}

func TestHandlerCannotCloseOrRerun(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeHalt, guestOptions{})
	v := g.vcpus[0]

	var closeErr, vmCloseErr, runErr error
	err := v.Run(runContext(t), Handlers{Halt: func() error {
		closeErr = v.Close()
		vmCloseErr = g.vm.Close()
		runErr = v.Run(context.Background(), Handlers{})
		return ErrStop
	}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	if closeErr == nil {
		t.Error("VCPU.Close from its own handler succeeded, want an error")
	}
	if vmCloseErr == nil {
		t.Error("VM.Close from a handler succeeded, want an error")
	}
	if runErr == nil {
		t.Error("Run from a handler of the same vCPU succeeded, want an error")
	}
	if _, err := v.Regs(); err != nil {
		t.Errorf("Regs after the handler's failed Close calls: %v, want the vCPU still open", err)
	}
}

func TestRegistersFromHandlerAllocateNothing(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeHalt, guestOptions{})
	v := g.vcpus[0]

	var allocs float64
	var regsErr error
	err := v.Run(runContext(t), Handlers{Halt: func() error {
		allocs = testing.AllocsPerRun(100, func() {
			regs, err := v.Regs()
			if err == nil {
				err = v.SetRegs(regs)
			}
			if err == nil {
				_, err = v.SRegs()
			}
			if err != nil {
				regsErr = err
			}
		})
		return ErrStop
	}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if regsErr != nil {
		t.Fatalf("register access from the Halt handler: %v", regsErr)
	}
	if allocs != 0 {
		t.Errorf("Regs, SetRegs and SRegs from an exit handler allocate %v times, want 0", allocs)
	}

	// From another goroutine the calls still work, on a copy.
	regs, err := v.Regs()
	if err != nil {
		t.Fatalf("Regs from the test goroutine: %v", err)
	}
	regs.RBX = 0x1234
	if err := v.SetRegs(regs); err != nil {
		t.Fatalf("SetRegs from the test goroutine: %v", err)
	}
	if got, err := v.Regs(); err != nil || got.RBX != 0x1234 {
		t.Errorf("Regs after SetRegs = RBX %#x, %v; want 0x1234", got.RBX, err)
	}
}

// TestRunInternalErrorHandler runs an SSE instruction in ring 0. Hardware
// virtualization executes it, and KVM on PVM, whose emulator rejects most SSE
// instructions, reports an emulation failure that the handler skips. Either
// way the guest must go on to its OUT and HLT.
func TestRunInternalErrorHandler(t *testing.T) {
	sys := openKVM(t)
	code := []byte{
		0x0f, 0x57, 0xc0, // xorps xmm0, xmm0
		0xee, //             out dx, al
		0xf4, //             hlt
	}
	g := newTestGuest(t, sys, code, guestOptions{
		regs:  func(_ int, r *Regs) { r.RAX = 'k' },
		sregs: func(_ int, s *SRegs) { s.CR4 |= CR4OSFXSR | CR4OSXMMEXCPT },
	})
	v := g.vcpus[0]

	var out bytes.Buffer
	var failures []*ExitError
	err := v.Run(runContext(t), Handlers{
		PortOut: func(io PortIO) error {
			out.Write(io.Data)
			return nil
		},
		Halt: func() error { return ErrStop },
		InternalError: func(e *ExitError) error {
			failures = append(failures, e)
			regs, err := v.Regs()
			if err != nil {
				return err
			}
			if regs.RIP != testCodeAddr {
				return fmt.Errorf("emulation failure at RIP %#x, want %#x: %w", regs.RIP, testCodeAddr, e)
			}
			regs.RIP += 3 // skip the xorps
			return v.SetRegs(regs)
		},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	if out.String() != "k" {
		t.Errorf("port output = %q, want %q", out.String(), "k")
	}
	for _, e := range failures {
		if e.Suberror != InternalErrorEmulation {
			t.Errorf("InternalError got suberror %d, want %d: %v", e.Suberror, InternalErrorEmulation, e)
		}
	}
	t.Logf("%d emulation failures handled: %v", len(failures), failures)
}
