package kvm

import "errors"

var (
	// ErrStop is returned by a Handlers func to end VCPU.Run with a nil
	// error, for example when the guest asked to exit.
	ErrStop = errors.New("kvm: exit handler stopped the run")

	// ErrUnhandledExit is wrapped by the error of VCPU.Run when an exit
	// arrives whose Handlers func is nil.
	ErrUnhandledExit = errors.New("kvm: no handler for this exit")

	// ErrOutOfRange is wrapped by the errors of Memory for a guest-physical
	// range that is not backed by the guest's memory slots.
	ErrOutOfRange = errors.New("kvm: guest-physical range outside guest memory")

	// ErrClosed is returned by methods of a closed VM, VCPU or Memory, and
	// wrapped by the error of a VCPU.Run that Close stopped.
	ErrClosed = errors.New("kvm: use of a closed VM or vCPU")
)
