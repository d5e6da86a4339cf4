//go:build amd64

package kvm

import "fmt"

// kvmGetTSCKHz is KVM_GET_TSC_KHZ, _IO(KVMIO, 0xa3) on a vCPU descriptor.
// It returns the frequency as the ioctl's result.
const kvmGetTSCKHz = 0xaea3

// TSCKHz returns the frequency of the vCPU's time-stamp counter in kHz
// (KVM_GET_TSC_KHZ), which KVM sets to the host's TSC frequency unless a VMM
// changed it. It needs CapGetTSCKHz.
func (v *VCPU) TSCKHz() (uint32, error) {
	var khz int
	err := v.do(func() error {
		var err error
		if khz, err = ioctl(v.fd, kvmGetTSCKHz, 0); err != nil {
			return fmt.Errorf("KVM_GET_TSC_KHZ on vCPU %d: %w", v.id, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if khz <= 0 {
		return 0, fmt.Errorf("KVM_GET_TSC_KHZ on vCPU %d returned %d kHz, not a frequency", v.id, khz)
	}
	return uint32(khz), nil
}
