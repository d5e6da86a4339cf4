package kvm

import (
	"bytes"
	"testing"
)

func TestExitReasonString(t *testing.T) {
	tests := []struct {
		r    ExitReason
		want string
	}{
		{ExitUnknown, "KVM_EXIT_UNKNOWN"},
		{ExitIO, "KVM_EXIT_IO"},
		{ExitHLT, "KVM_EXIT_HLT"},
		{ExitShutdown, "KVM_EXIT_SHUTDOWN"},
		{ExitInternalError, "KVM_EXIT_INTERNAL_ERROR"},
		{ExitSystemEvent, "KVM_EXIT_SYSTEM_EVENT"},
		{ExitNotify, "KVM_EXIT_NOTIFY"},
		{ExitMemoryFault, "KVM_EXIT_MEMORY_FAULT"},
		{13, "KVM_EXIT_S390_SIEIC"},
		{40, "KVM_EXIT(40)"},
		{1 << 31, "KVM_EXIT(2147483648)"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("ExitReason(%d).String() = %q, want %q", uint32(tt.r), got, tt.want)
		}
	}
}

func TestCapString(t *testing.T) {
	tests := []struct {
		c    Cap
		want string
	}{
		{CapIRQChip, "KVM_CAP_IRQCHIP"},
		{CapImmediateExit, "KVM_CAP_IMMEDIATE_EXIT"},
		{CapXSave2, "KVM_CAP_XSAVE2"},
		{Cap(5000), "KVM_CAP(5000)"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Cap(%d).String() = %q, want %q", int(tt.c), got, tt.want)
		}
	}
}

func TestSystemEventTypeString(t *testing.T) {
	if got := SystemEventCrash.String(); got != "KVM_SYSTEM_EVENT_CRASH" {
		t.Errorf("SystemEventCrash.String() = %q, want KVM_SYSTEM_EVENT_CRASH", got)
	}
	if got := SystemEventType(77).String(); got != "KVM_SYSTEM_EVENT(77)" {
		t.Errorf("SystemEventType(77).String() = %q, want KVM_SYSTEM_EVENT(77)", got)
	}
}

func TestRejectedInstruction(t *testing.T) {
	// Data words of a real failure on xgetbv: flags, then the length byte
	// and 15 instruction bytes.
	data := []uint64{0x1, 0x20e2c148d0010f0f, 0x48ccccccc3d00948, 0x1000}
	exit := &ExitError{Reason: ExitInternalError, Suberror: InternalErrorEmulation, Data: data}
	got := exit.RejectedInstruction()
	want := []byte{0x0f, 0x01, 0xd0, 0x48, 0xc1, 0xe2, 0x20, 0x48, 0x09, 0xd0, 0xc3, 0xcc, 0xcc, 0xcc, 0x48}
	if !bytes.Equal(got, want) {
		t.Errorf("RejectedInstruction = % x, want % x", got, want)
	}
	if got := (&ExitError{Reason: ExitInternalError, Suberror: InternalErrorEmulation, Data: []uint64{0, 1, 2}}).RejectedInstruction(); got != nil {
		t.Errorf("without the instruction-bytes flag: % x, want nil", got)
	}
	if got := (&ExitError{Reason: ExitInternalError, Suberror: InternalErrorEmulation, Data: []uint64{1}}).RejectedInstruction(); got != nil {
		t.Errorf("with too few words: % x, want nil", got)
	}
}

func TestRejectedInstructionOtherExits(t *testing.T) {
	data := []uint64{0x1, 0x20e2c148d0010f0f, 0x48ccccccc3d00948}
	if got := (&ExitError{Reason: ExitShutdown, Data: data}).RejectedInstruction(); got != nil {
		t.Errorf("a shutdown exit gave instruction bytes % x", got)
	}
}
