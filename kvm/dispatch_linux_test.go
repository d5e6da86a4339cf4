//go:build amd64

package kvm

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// fakeRun is a kvm_run mapping in ordinary memory, for testing dispatch
// without KVM. It is two pages, like the real mapping, with port I/O data in
// the second page.
type fakeRun struct {
	words []uint64 // backing store, 8-byte aligned like the real mapping
	buf   []byte
}

const fakeIODataOffset = 4096

func newFakeRun(reason ExitReason) *fakeRun {
	words := make([]uint64, 8192/8)
	f := &fakeRun{words: words, buf: unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), 8192)}
	f.header().ExitReason = uint32(reason)
	return f
}

func (f *fakeRun) header() *kvmRun      { return (*kvmRun)(unsafe.Pointer(&f.buf[0])) }
func (f *fakeRun) exit() unsafe.Pointer { return unsafe.Pointer(&f.header().Exit[0]) }

func (f *fakeRun) setIO(direction uint8, port uint16, size uint8, count uint32, offset uint64) {
	io := (*runIO)(f.exit())
	*io = runIO{Direction: direction, Size: size, Port: port, Count: count, DataOffset: offset}
}

func TestDispatchPortOut(t *testing.T) {
	f := newFakeRun(ExitIO)
	f.setIO(ioDirectionOut, 0x3f8, 1, 3, fakeIODataOffset)
	copy(f.buf[fakeIODataOffset:], "abc")

	var got PortIO
	err := dispatch(0, f.buf, &Handlers{PortOut: func(io PortIO) error {
		got = io
		return nil
	}})
	if err != nil {
		t.Fatalf("dispatch: %v", err)
	}
	if got.Port != 0x3f8 || got.Size != 1 || got.Count != 3 {
		t.Errorf("PortOut got port %#x size %d count %d, want port 0x3f8 size 1 count 3", got.Port, got.Size, got.Count)
	}
	if string(got.Data) != "abc" {
		t.Errorf("PortOut got data %q, want %q", got.Data, "abc")
	}
}

func TestDispatchPortInFillsMapping(t *testing.T) {
	f := newFakeRun(ExitIO)
	f.setIO(ioDirectionIn, 0x71, 2, 2, fakeIODataOffset)

	err := dispatch(0, f.buf, &Handlers{PortIn: func(io PortIO) error {
		if len(io.Data) != 4 {
			t.Errorf("PortIn got %d data bytes, want 4 (size 2, count 2)", len(io.Data))
		}
		copy(io.Data, "wxyz")
		return nil
	}})
	if err != nil {
		t.Fatalf("dispatch: %v", err)
	}
	if got := string(f.buf[fakeIODataOffset : fakeIODataOffset+4]); got != "wxyz" {
		t.Errorf("mapping holds %q after PortIn, want %q", got, "wxyz")
	}
}

func TestDispatchPortIOErrors(t *testing.T) {
	handlers := &Handlers{
		PortIn:  func(PortIO) error { return nil },
		PortOut: func(PortIO) error { return nil },
	}
	tests := []struct {
		name      string
		direction uint8
		size      uint8
		count     uint32
		offset    uint64
		h         *Handlers
		wantErr   string
	}{
		{"data past the mapping end", ioDirectionOut, 4, 1, 8190, handlers, "outside the 8192-byte kvm_run mapping"},
		{"offset past the mapping end", ioDirectionOut, 1, 1, 1 << 40, handlers, "outside"},
		{"size times count past the mapping", ioDirectionIn, 4, 0xffffffff, fakeIODataOffset, handlers, "outside"},
		{"invalid direction", 7, 1, 1, fakeIODataOffset, handlers, "invalid direction 7"},
		{"IN without handler", ioDirectionIn, 1, 1, fakeIODataOffset, &Handlers{}, "IN from port 0x80"},
		{"OUT without handler", ioDirectionOut, 1, 1, fakeIODataOffset, &Handlers{}, "OUT to port 0x80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRun(ExitIO)
			f.setIO(tt.direction, 0x80, tt.size, tt.count, tt.offset)
			err := dispatch(2, f.buf, tt.h)
			if err == nil {
				t.Fatal("dispatch succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "vCPU 2") {
				t.Errorf("error = %q, want it to name vCPU 2 and say %q", err, tt.wantErr)
			}
		})
	}
}

func TestDispatchMMIO(t *testing.T) {
	t.Run("write", func(t *testing.T) {
		f := newFakeRun(ExitMMIO)
		*(*runMMIO)(f.exit()) = runMMIO{PhysAddr: 0xfee00300, Data: [8]byte{1, 2, 3, 4}, Len: 4, IsWrite: 1}
		var gotAddr uint64
		var gotData []byte
		err := dispatch(0, f.buf, &Handlers{MMIOWrite: func(addr uint64, data []byte) error {
			gotAddr, gotData = addr, append([]byte(nil), data...)
			return nil
		}})
		if err != nil {
			t.Fatalf("dispatch: %v", err)
		}
		if gotAddr != 0xfee00300 || string(gotData) != "\x01\x02\x03\x04" {
			t.Errorf("MMIOWrite got %#x % x, want 0xfee00300 01 02 03 04", gotAddr, gotData)
		}
	})

	t.Run("read", func(t *testing.T) {
		f := newFakeRun(ExitMMIO)
		m := (*runMMIO)(f.exit())
		*m = runMMIO{PhysAddr: 0xd0000000, Len: 2}
		err := dispatch(0, f.buf, &Handlers{MMIORead: func(_ uint64, data []byte) error {
			copy(data, []byte{0xaa, 0xbb, 0xcc})
			return nil
		}})
		if err != nil {
			t.Fatalf("dispatch: %v", err)
		}
		if m.Data != [8]byte{0xaa, 0xbb} {
			t.Errorf("mmio.data after MMIORead = % x, want aa bb and zeros (the handler's slice has length 2)", m.Data)
		}
	})

	t.Run("length over 8", func(t *testing.T) {
		f := newFakeRun(ExitMMIO)
		*(*runMMIO)(f.exit()) = runMMIO{PhysAddr: 0x1000, Len: 9}
		err := dispatch(0, f.buf, &Handlers{MMIORead: func(uint64, []byte) error { return nil }})
		if err == nil || !strings.Contains(err.Error(), "length 9") {
			t.Errorf("dispatch error = %v, want one naming length 9", err)
		}
	})

	t.Run("without handler", func(t *testing.T) {
		f := newFakeRun(ExitMMIO)
		*(*runMMIO)(f.exit()) = runMMIO{PhysAddr: 0x1000, Len: 1, IsWrite: 1}
		if err := dispatch(0, f.buf, &Handlers{}); !errors.Is(err, ErrUnhandledExit) {
			t.Errorf("dispatch error = %v, want ErrUnhandledExit", err)
		}
	})
}

func TestDispatchHalt(t *testing.T) {
	f := newFakeRun(ExitHLT)
	if err := dispatch(0, f.buf, &Handlers{Halt: func() error { return ErrStop }}); err != ErrStop {
		t.Errorf("dispatch with Halt returning ErrStop = %v, want ErrStop unwrapped", err)
	}
	if err := dispatch(0, f.buf, &Handlers{}); !errors.Is(err, ErrUnhandledExit) {
		t.Errorf("dispatch without Halt = %v, want ErrUnhandledExit", err)
	}
}

func TestDispatchHandlerErrorWrapped(t *testing.T) {
	f := newFakeRun(ExitIO)
	f.setIO(ioDirectionOut, 0x402, 1, 1, fakeIODataOffset)
	errDevice := errors.New("device failed")

	err := dispatch(3, f.buf, &Handlers{PortOut: func(PortIO) error { return errDevice }})
	if !errors.Is(err, errDevice) {
		t.Fatalf("dispatch error = %v, want it to wrap %v", err, errDevice)
	}
	if want := "vCPU 3: handler for OUT to port 0x402: device failed"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestDispatchHandledExitAllocatesNothing(t *testing.T) {
	portOut := newFakeRun(ExitIO)
	portOut.setIO(ioDirectionOut, 0x402, 1, 1, fakeIODataOffset)
	portIn := newFakeRun(ExitIO)
	portIn.setIO(ioDirectionIn, 0x71, 1, 1, fakeIODataOffset)
	mmioWrite := newFakeRun(ExitMMIO)
	*(*runMMIO)(mmioWrite.exit()) = runMMIO{PhysAddr: 0xfee00300, Len: 4, IsWrite: 1}
	mmioRead := newFakeRun(ExitMMIO)
	*(*runMMIO)(mmioRead.exit()) = runMMIO{PhysAddr: 0xd0000000, Len: 4}
	halt := newFakeRun(ExitHLT)
	handlers := &Handlers{
		PortIn:    func(PortIO) error { return nil },
		PortOut:   func(PortIO) error { return nil },
		MMIORead:  func(uint64, []byte) error { return nil },
		MMIOWrite: func(uint64, []byte) error { return nil },
		Halt:      func() error { return nil },
	}

	for name, f := range map[string]*fakeRun{"OUT": portOut, "IN": portIn, "MMIO write": mmioWrite, "MMIO read": mmioRead, "HLT": halt} {
		allocs := testing.AllocsPerRun(100, func() {
			if err := dispatch(0, f.buf, handlers); err != nil {
				t.Fatalf("dispatch %s: %v", name, err)
			}
		})
		if allocs != 0 {
			t.Errorf("dispatch of a handled %s exit allocates %v times, want 0", name, allocs)
		}
	}
}

func TestDispatchExitErrors(t *testing.T) {
	tests := []struct {
		name    string
		reason  ExitReason
		fill    func(exit unsafe.Pointer)
		want    ExitError
		wantMsg string
	}{
		{
			name:    "shutdown",
			reason:  ExitShutdown,
			want:    ExitError{VCPU: 1, Reason: ExitShutdown},
			wantMsg: "vCPU 1: exit KVM_EXIT_SHUTDOWN: the guest shut down, usually after a triple fault",
		},
		{
			name:   "fail entry",
			reason: ExitFailEntry,
			fill: func(p unsafe.Pointer) {
				*(*runFailEntry)(p) = runFailEntry{HardwareEntryFailureReason: 0x80000021, CPU: 3}
			},
			want:    ExitError{VCPU: 1, Reason: ExitFailEntry, HardwareReason: 0x80000021, CPU: 3},
			wantMsg: "vCPU 1: exit KVM_EXIT_FAIL_ENTRY: hardware entry failure reason 0x80000021 on host cpu 3",
		},
		{
			name:    "unknown",
			reason:  ExitUnknown,
			fill:    func(p unsafe.Pointer) { (*runHW)(p).HardwareExitReason = 0x30 },
			want:    ExitError{VCPU: 1, Reason: ExitUnknown, HardwareReason: 0x30},
			wantMsg: "vCPU 1: exit KVM_EXIT_UNKNOWN: hardware exit reason 0x30",
		},
		{
			name:   "internal error without handler",
			reason: ExitInternalError,
			fill: func(p unsafe.Pointer) {
				*(*runInternal)(p) = runInternal{Suberror: InternalErrorEmulation, NData: 2, Data: [16]uint64{0x1, 0xc0570f}}
			},
			want:    ExitError{VCPU: 1, Reason: ExitInternalError, Suberror: 1, Data: []uint64{0x1, 0xc0570f}},
			wantMsg: "vCPU 1: exit KVM_EXIT_INTERNAL_ERROR: suberror 1 (KVM_INTERNAL_ERROR_EMULATION), data [0x1 0xc0570f]",
		},
		{
			name:   "internal error with too many data words",
			reason: ExitInternalError,
			fill: func(p unsafe.Pointer) {
				*(*runInternal)(p) = runInternal{Suberror: 9, NData: 200}
			},
			want:    ExitError{VCPU: 1, Reason: ExitInternalError, Suberror: 9, Data: make([]uint64, 16)},
			wantMsg: "suberror 9 (unknown)",
		},
		{
			name:   "system event without handler",
			reason: ExitSystemEvent,
			fill: func(p unsafe.Pointer) {
				*(*runSystemEvent)(p) = runSystemEvent{Type: uint32(SystemEventReset), Data: [16]uint64{0x4}}
			},
			want:    ExitError{VCPU: 1, Reason: ExitSystemEvent, SystemEvent: SystemEventReset, Data: []uint64{0x4}},
			wantMsg: "vCPU 1: exit KVM_EXIT_SYSTEM_EVENT: KVM_SYSTEM_EVENT_RESET, data [0x4]",
		},
		{
			name:    "reason Run does not dispatch",
			reason:  ExitIRQWindowOpen,
			want:    ExitError{VCPU: 1, Reason: ExitIRQWindowOpen},
			wantMsg: "vCPU 1: exit KVM_EXIT_IRQ_WINDOW_OPEN: Run does not handle this exit reason",
		},
		{
			name:    "reason newer than this package",
			reason:  99,
			want:    ExitError{VCPU: 1, Reason: 99},
			wantMsg: "vCPU 1: exit KVM_EXIT(99): Run does not handle this exit reason",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRun(tt.reason)
			if tt.fill != nil {
				tt.fill(f.exit())
			}

			err := dispatch(1, f.buf, &Handlers{})
			var e *ExitError
			if !errors.As(err, &e) {
				t.Fatalf("dispatch error = %v, want an *ExitError", err)
			}
			if e.VCPU != tt.want.VCPU || e.Reason != tt.want.Reason || e.Suberror != tt.want.Suberror ||
				e.SystemEvent != tt.want.SystemEvent || e.HardwareReason != tt.want.HardwareReason || e.CPU != tt.want.CPU {
				t.Errorf("ExitError = %+v, want %+v", *e, tt.want)
			}
			if hexWords(e.Data) != hexWords(tt.want.Data) {
				t.Errorf("ExitError.Data = %s, want %s", hexWords(e.Data), hexWords(tt.want.Data))
			}
			if !strings.Contains(e.Error(), tt.wantMsg) {
				t.Errorf("Error() = %q, want it to contain %q", e.Error(), tt.wantMsg)
			}
		})
	}
}

func TestDispatchInternalErrorHandler(t *testing.T) {
	f := newFakeRun(ExitInternalError)
	*(*runInternal)(f.exit()) = runInternal{Suberror: InternalErrorEmulation, NData: 1, Data: [16]uint64{0xabc}}

	var seen *ExitError
	err := dispatch(0, f.buf, &Handlers{InternalError: func(e *ExitError) error {
		seen = e
		return nil
	}})
	if err != nil {
		t.Errorf("dispatch with a handler that returns nil = %v, want nil", err)
	}
	if seen == nil || seen.Suberror != InternalErrorEmulation || hexWords(seen.Data) != "[0xabc]" {
		t.Errorf("InternalError handler saw %+v, want suberror 1 and data [0xabc]", seen)
	}
}

func TestDispatchSystemEventHandler(t *testing.T) {
	f := newFakeRun(ExitSystemEvent)
	*(*runSystemEvent)(f.exit()) = runSystemEvent{Type: uint32(SystemEventShutdown), NData: 3, Data: [16]uint64{1, 2, 3}}

	var gotType SystemEventType
	var gotData []uint64
	err := dispatch(0, f.buf, &Handlers{SystemEvent: func(typ SystemEventType, data []uint64) error {
		gotType, gotData = typ, data
		return ErrStop
	}})
	if err != ErrStop {
		t.Errorf("dispatch = %v, want ErrStop", err)
	}
	if gotType != SystemEventShutdown || hexWords(gotData) != "[0x1 0x2 0x3]" {
		t.Errorf("SystemEvent handler got %v %s, want %v [0x1 0x2 0x3]", gotType, hexWords(gotData), SystemEventShutdown)
	}
}

func TestDispatchIntrResumes(t *testing.T) {
	if err := dispatch(0, newFakeRun(ExitIntr).buf, &Handlers{}); err != nil {
		t.Errorf("dispatch of KVM_EXIT_INTR = %v, want nil", err)
	}
}
