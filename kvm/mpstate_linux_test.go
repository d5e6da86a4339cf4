//go:build amd64

package kvm

import (
	"testing"
	"unsafe"
)

func TestMPStateIoctlNumbers(t *testing.T) {
	var s MPState
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"KVM_GET_MP_STATE", kvmGetMPState, ioc(iocRead, 0x98, unsafe.Sizeof(s))},
		{"KVM_SET_MP_STATE", kvmSetMPState, ioc(iocWrite, 0x99, unsafe.Sizeof(s))},
		{"KVM_GET_TSC_KHZ", kvmGetTSCKHz, ioc(iocNone, 0xa3, 0)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

func TestSetMPStateWakesAP(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeHalt, guestOptions{vcpus: 2, irqchip: true})

	ap := g.vcpus[1]
	before, err := ap.MPState()
	if err != nil {
		t.Fatalf("MPState: %v", err)
	}
	if before != MPStateUninitialized {
		t.Errorf("AP state with an IRQ chip = %v, want %v", before, MPStateUninitialized)
	}
	if err := ap.SetMPState(MPStateRunnable); err != nil {
		t.Fatalf("SetMPState: %v", err)
	}
	after, err := ap.MPState()
	if err != nil {
		t.Fatalf("MPState: %v", err)
	}
	if after != MPStateRunnable {
		t.Errorf("AP state after SetMPState = %v, want %v", after, MPStateRunnable)
	}
}

func TestTSCKHz(t *testing.T) {
	sys := openKVM(t)
	g := newTestGuest(t, sys, codeHalt, guestOptions{})

	khz, err := g.vcpus[0].TSCKHz()
	if err != nil {
		t.Fatalf("TSCKHz: %v", err)
	}
	// Any x86-64 CPU that runs KVM has a TSC between 100 MHz and 10 GHz.
	if khz < 100_000 || khz > 10_000_000 {
		t.Errorf("TSCKHz = %d kHz, outside 100 MHz to 10 GHz", khz)
	}
}

func TestMPStateString(t *testing.T) {
	if got := MPStateRunnable.String(); got != "KVM_MP_STATE_RUNNABLE" {
		t.Errorf("MPStateRunnable.String() = %q", got)
	}
	if got := MPState(99).String(); got != "KVM_MP_STATE(99)" {
		t.Errorf("MPState(99).String() = %q", got)
	}
}
