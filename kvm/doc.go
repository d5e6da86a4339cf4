// Package kvm is a thin, typed layer over the Linux KVM API for x86-64: it
// opens /dev/kvm, creates VMs with guest memory and in-kernel devices, sets
// up vCPUs and runs them, passing their exits to handlers supplied by the
// caller. It deals with KVM and the x86 architecture only, not with any guest
// operating system. Linux Documentation/virt/kvm/api.rst describes the ioctls
// it wraps.
//
// # Usage
//
// A VMM opens the system, creates a VM, backs guest-physical memory, writes
// its guest into that memory, creates vCPUs, sets their registers and runs
// each vCPU from its own goroutine:
//
//	sys, err := kvm.Open()
//	vm, err := sys.CreateVM()
//	err = vm.AddMemory(0, 64<<20)
//	_, err = vm.Memory().WriteAt(image, loadAddr)
//	vcpu, err := vm.CreateVCPU(0)
//	err = vcpu.SetSRegs(sregs)
//	err = vcpu.SetRegs(kvm.Regs{RIP: entry, RFLAGS: kvm.RFLAGSReserved})
//	err = vcpu.Run(ctx, kvm.Handlers{PortOut: ..., Halt: ...})
//
// To start a guest directly in 64-bit mode, write FlatGDT and the page tables
// of IdentityMap.Build into guest memory and call SRegs.SetLongMode. These
// helpers compute plain values and need no privileges.
//
// # Guest memory
//
// AddMemory backs each memory slot with an anonymous private mapping, which
// takes host memory only for the pages the guest or the VMM touches. All VMM
// access to guest memory goes through Memory, which checks every
// guest-physical range against the slots (including ranges that would wrap
// past 2^64) and fails with ErrOutOfRange instead of touching host memory
// outside the guest's.
//
// # Threads and stopping
//
// Each VCPU owns a goroutine locked to its own OS thread, which creates the
// vCPU and issues all of its ioctls, as api.rst recommends. Run dispatches
// exits to the Handlers on that thread. KVM_RUN interrupted by a signal
// (EINTR), such as the Go runtime's preemption signal, is issued again.
//
// Cancelling Run's context stops the vCPU from any goroutine, whether the
// guest is looping, waiting in a HLT or the VMM is in a handler. The package
// then sets kvm_run.immediate_exit and sends SIGURG to the vCPU's thread. The
// Go runtime already handles SIGURG for preemption and ignores extra ones.
// Programs that subscribe to SIGURG with os/signal see these signals too.
//
// # Privileges and kernel requirements
//
// The process needs read-write access to /dev/kvm, through membership in the
// group that owns it (usually kvm) or by running as root. Nothing else needs
// privileges.
//
// Open requires KVM API version 12, KVM_CAP_USER_MEMORY and
// KVM_CAP_IMMEDIATE_EXIT (Linux 4.11 or newer). The package builds only for
// linux/amd64. For other targets it contains only the parts that need no
// kernel: Memory, IdentityMap, the GDT helpers, the exit and capability
// types, and the errors.
//
// # Limitations
//
// The package wraps the ioctls that booting a simple x86-64 guest needs. It
// has no interrupt injection (KVM_IRQ_LINE, KVM_INTERRUPT), no ioeventfd or
// irqfd, no dirty-page logging, no removal of memory slots and no
// KVM_GET_XSAVE2, so guests with AMX state cannot use XSave.
//
// Some hosts run KVM on PVM (CONFIG_KVM_PVM), where guest ring 3 runs
// natively but every guest ring-0 instruction goes through KVM's instruction
// emulator. There ring-0 code is slow (about 0.6 µs per instruction measured
// on one such host), and the emulator rejects many instructions, including
// XGETBV, XSAVE and most SSE instructions. Each ends Run with a
// KVM_EXIT_INTERNAL_ERROR ExitError (suberror InternalErrorEmulation) unless
// Handlers.InternalError handles it. With CR0.TS set, an SSE instruction fails
// this way too instead of raising #NM. A guest meant to run on such hosts
// should keep its ring-0 code short.
//
// The package never logs. Errors of ioctls name the ioctl and the values
// involved, and errors wrap the underlying errno or sentinel error, so that
// errors.Is and errors.As work.
package kvm
