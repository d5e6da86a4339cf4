package kvm

import "testing"

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
