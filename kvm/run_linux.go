//go:build amd64

package kvm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Bits of the first 32-bit word of struct kvm_run on little-endian x86:
// request_interrupt_window is byte 0, immediate_exit byte 1, and bytes 2 and
// 3 are padding. Setting and clearing immediate_exit through atomic
// operations on this word orders it against the stop flag (see kick).
const (
	immediateExitSet   = 1 << 8
	immediateExitClear = ^uint32(0xff << 8)
)

// runState is the stop request of one Run call.
type runState struct {
	once    sync.Once
	stopped atomic.Bool
	cause   error // written before stopped is set
}

// stop records cause as the reason to stop, and returns false if a reason was
// recorded before.
func (rs *runState) stop(cause error) bool {
	first := false
	rs.once.Do(func() {
		rs.cause = cause
		rs.stopped.Store(true)
		first = true
	})
	return first
}

// err returns the reason to stop, or nil while none is recorded.
func (rs *runState) err() error {
	if rs.stopped.Load() {
		return rs.cause
	}
	return nil
}

// Run runs the guest on this vCPU and passes its exits to h until a handler
// returns ErrStop or an error, the vCPU meets an exit it cannot continue
// from, ctx is done, or the vCPU is closed. It returns:
//
//   - nil after a handler returned ErrStop.
//   - Another error of a handler, wrapped with the vCPU and the exit. The
//     error of Handlers.InternalError comes back unwrapped.
//   - An *ExitError for KVM_EXIT_SHUTDOWN, KVM_EXIT_FAIL_ENTRY and
//     KVM_EXIT_UNKNOWN, for KVM_EXIT_INTERNAL_ERROR and KVM_EXIT_SYSTEM_EVENT
//     without a handler, and for exit reasons Run does not dispatch.
//   - An error wrapping ErrUnhandledExit for a port I/O, MMIO or HLT exit
//     whose handler is nil.
//   - An error wrapping context.Cause(ctx) when ctx ends the run, and one
//     wrapping ErrClosed when Close ends it.
//
// KVM_RUN interrupted by a signal (EINTR), for example by the Go runtime's
// preemption signal, is simply issued again.
//
// Run executes on the vCPU's own thread, and calls on one VCPU run one after
// another. Several vCPUs run in parallel when Run is called for each from its
// own goroutine.
//
// NOTE: KVM completes a port or MMIO read with the data from the handler only
// on the next KVM_RUN. If Run ends right after such an exit, the guest
// registers show the read as not yet done until Run is called again.
func (v *VCPU) Run(ctx context.Context, h Handlers) error {
	return v.do(func() error { return v.runLoop(ctx, &h) })
}

// runLoop is Run on the vCPU's thread.
func (v *VCPU) runLoop(ctx context.Context, h *Handlers) error {
	rs := &runState{}
	if !v.active.CompareAndSwap(nil, rs) {
		return fmt.Errorf("vCPU %d: Run called from an exit handler of the same vCPU", v.id)
	}
	defer v.active.Store(nil)

	// Close closes quit before it loads v.active, and Run sets v.active
	// before it checks quit, so either Close stops this run or Run finds
	// that Close has begun.
	select {
	case <-v.quit:
		return fmt.Errorf("vCPU %d: %w", v.id, ErrClosed)
	default:
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vCPU %d stopped before it ran: %w", v.id, context.Cause(ctx))
	}

	// A stop that arrived after an earlier Run returned may have left
	// immediate_exit set.
	word := v.runWord()
	atomic.AndUint32(word, immediateExitClear)
	stopAfter := context.AfterFunc(ctx, func() { v.kick(rs, context.Cause(ctx)) })
	defer stopAfter()

	for {
		if cause := rs.err(); cause != nil {
			return fmt.Errorf("vCPU %d stopped: %w", v.id, cause)
		}

		err := ioctlRun(v.fd)
		if errors.Is(err, unix.EINTR) {
			// A signal that was not a stop request, or a late stop of an
			// earlier Run: clear immediate_exit so that the next KVM_RUN
			// enters the guest. The loop condition then catches a stop that
			// raced with this clear (see kick).
			if rs.err() == nil {
				atomic.AndUint32(word, immediateExitClear)
			}
			continue
		}
		if err != nil {
			return runError(v.id, err)
		}

		if err := dispatch(v.id, v.run, h); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
}

// runError wraps an error of KVM_RUN itself with what it usually means.
func runError(id int, err error) error {
	hint := ""
	switch {
	case errors.Is(err, unix.EFAULT):
		hint = " (KVM could not access guest memory or kvm_run: a memory slot's host mapping may be gone)"
	case errors.Is(err, unix.ENOEXEC):
		hint = " (the vCPU state is invalid for entry, check SRegs)"
	case errors.Is(err, unix.EINVAL):
		hint = " (the vCPU or VM setup is incomplete or invalid)"
	}
	return fmt.Errorf("KVM_RUN on vCPU %d: %w%s", id, err, hint)
}

// runWord returns the first 32-bit word of kvm_run, which holds
// immediate_exit.
func (v *VCPU) runWord() *uint32 {
	return (*uint32)(unsafe.Pointer(&v.run[0]))
}

// kick stops the Run whose state is rs with cause, from any goroutine.
//
// The order of steps makes the stop reliable. KVM reads immediate_exit when
// KVM_RUN starts and returns EINTR without entering the guest if it is set
// (api.rst, "immediate_exit"), and a signal interrupts a KVM_RUN that is
// already in the guest. Setting the flag before sending the signal leaves no
// moment at which the vCPU thread can enter the guest and miss both. The stop
// flag is set before immediate_exit, and the loop clears immediate_exit with
// an atomic operation and then checks the stop flag, so a clear can never
// hide a stop.
//
// The signal is SIGURG, which the Go runtime already handles on every thread
// for goroutine preemption and ignores when it did not ask for it.
func (v *VCPU) kick(rs *runState, cause error) {
	if !rs.stop(cause) {
		return
	}

	v.kickMu.Lock()
	defer v.kickMu.Unlock()

	if v.unmapped {
		return
	}
	atomic.OrUint32(v.runWord(), immediateExitSet)
	// An error here (ESRCH) means the thread is gone, and a gone thread runs
	// no guest, so there is nothing left to stop.
	_ = unix.Tgkill(unix.Getpid(), v.tid, unix.SIGURG)
}

// dispatch passes the exit described by the kvm_run mapping run to h. It
// returns nil to resume the guest, ErrStop or another error to end Run.
func dispatch(id int, run []byte, h *Handlers) error {
	hdr := (*kvmRun)(unsafe.Pointer(&run[0]))
	reason := ExitReason(hdr.ExitReason)
	exit := unsafe.Pointer(&hdr.Exit[0])

	switch reason {
	case ExitIO:
		return dispatchIO(id, run, (*runIO)(exit), h)

	case ExitMMIO:
		return dispatchMMIO(id, (*runMMIO)(exit), h)

	case ExitHLT:
		if h.Halt == nil {
			return fmt.Errorf("vCPU %d: exit %v: %w", id, reason, ErrUnhandledExit)
		}
		return handlerError(id, h.Halt(), func() string { return "HLT" })

	case ExitIntr:
		// KVM reports a signal this way only together with EINTR, which the
		// run loop handles. Resume if it ever arrives alone.
		return nil

	case ExitShutdown:
		return &ExitError{VCPU: id, Reason: reason}

	case ExitFailEntry:
		f := (*runFailEntry)(exit)
		return &ExitError{VCPU: id, Reason: reason, HardwareReason: f.HardwareEntryFailureReason, CPU: f.CPU}

	case ExitUnknown:
		return &ExitError{VCPU: id, Reason: reason, HardwareReason: (*runHW)(exit).HardwareExitReason}

	case ExitInternalError:
		in := (*runInternal)(exit)
		n := min(int(in.NData), len(in.Data))
		e := &ExitError{VCPU: id, Reason: reason, Suberror: in.Suberror, Data: append([]uint64(nil), in.Data[:n]...)}
		if h.InternalError == nil {
			return e
		}
		return h.InternalError(e)

	case ExitSystemEvent:
		ev := (*runSystemEvent)(exit)
		n := min(max(int(ev.NData), 1), len(ev.Data))
		data := append([]uint64(nil), ev.Data[:n]...)
		typ := SystemEventType(ev.Type)
		if h.SystemEvent == nil {
			return &ExitError{VCPU: id, Reason: reason, SystemEvent: typ, Data: data}
		}
		return handlerError(id, h.SystemEvent(typ, data), typ.String)

	default:
		return &ExitError{VCPU: id, Reason: reason}
	}
}

// dispatchIO passes a KVM_EXIT_IO exit to h after checking that its data lies
// inside the kvm_run mapping.
func dispatchIO(id int, run []byte, io *runIO, h *Handlers) error {
	n := uint64(io.Size) * uint64(io.Count)
	if io.DataOffset > uint64(len(run)) || n > uint64(len(run))-io.DataOffset {
		return fmt.Errorf("vCPU %d: exit %v on port %#x: data at offset %#x, %d bytes, lies outside the %d-byte kvm_run mapping",
			id, ExitIO, io.Port, io.DataOffset, n, len(run))
	}
	p := PortIO{
		Port:  io.Port,
		Size:  int(io.Size),
		Count: int(io.Count),
		Data:  run[io.DataOffset : io.DataOffset+n : io.DataOffset+n],
	}

	switch io.Direction {
	case ioDirectionIn:
		if h.PortIn == nil {
			return fmt.Errorf("vCPU %d: exit %v, IN from port %#x: %w", id, ExitIO, io.Port, ErrUnhandledExit)
		}
		return handlerError(id, h.PortIn(p), func() string { return fmt.Sprintf("IN from port %#x", io.Port) })
	case ioDirectionOut:
		if h.PortOut == nil {
			return fmt.Errorf("vCPU %d: exit %v, OUT to port %#x: %w", id, ExitIO, io.Port, ErrUnhandledExit)
		}
		return handlerError(id, h.PortOut(p), func() string { return fmt.Sprintf("OUT to port %#x", io.Port) })
	default:
		return fmt.Errorf("vCPU %d: exit %v on port %#x: invalid direction %d", id, ExitIO, io.Port, io.Direction)
	}
}

// dispatchMMIO passes a KVM_EXIT_MMIO exit to h.
func dispatchMMIO(id int, m *runMMIO, h *Handlers) error {
	if m.Len > uint32(len(m.Data)) {
		return fmt.Errorf("vCPU %d: exit %v at %#x: length %d exceeds %d bytes", id, ExitMMIO, m.PhysAddr, m.Len, len(m.Data))
	}
	data := m.Data[:m.Len:m.Len]

	if m.IsWrite != 0 {
		if h.MMIOWrite == nil {
			return fmt.Errorf("vCPU %d: exit %v, write to %#x: %w", id, ExitMMIO, m.PhysAddr, ErrUnhandledExit)
		}
		return handlerError(id, h.MMIOWrite(m.PhysAddr, data), func() string { return fmt.Sprintf("MMIO write to %#x", m.PhysAddr) })
	}
	if h.MMIORead == nil {
		return fmt.Errorf("vCPU %d: exit %v, read from %#x: %w", id, ExitMMIO, m.PhysAddr, ErrUnhandledExit)
	}
	return handlerError(id, h.MMIORead(m.PhysAddr, data), func() string { return fmt.Sprintf("MMIO read from %#x", m.PhysAddr) })
}

// handlerError wraps the error of a handler with the vCPU and the exit it
// handled, which exit describes. ErrStop and nil pass unchanged. exit runs
// only when there is an error to wrap, so a handled exit allocates nothing
// and a guest's exits leave no garbage in the VMM's heap.
func handlerError(id int, err error, exit func() string) error {
	if err == nil || errors.Is(err, ErrStop) {
		return err
	}
	return fmt.Errorf("vCPU %d: handler for %s: %w", id, exit(), err)
}
