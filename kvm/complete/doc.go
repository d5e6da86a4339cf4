// Package complete does what the CPU would for instructions that KVM's
// instruction emulator rejects (KVM_EXIT_INTERNAL_ERROR with suberror
// KVM_INTERNAL_ERROR_EMULATION). That happens on hosts whose KVM runs
// guest ring 0 through the emulator, such as KVM on PVM (CONFIG_KVM_PVM),
// offered by cloud VMs without nested VMX or SVM: the emulator lacks
// XGETBV, the XSAVE family and most SSE instructions. On VMX and SVM
// hosts the exits never happen and nothing here runs.
//
// A Completer takes XGETBV's result from the vCPU's extended control
// registers (for ECX = 1, the in-use bitmap, it reports XCR0). It performs
// XSAVE, XSAVEOPT (as XSAVE), XSAVEC and XRSTOR of the x87, SSE and AVX
// state in the standard and compacted forms, and LDMXCSR and STMXCSR. It
// raises #NM for an x87, SSE or AVX instruction while CR0.TS is set, and
// injects #UD where the CPU would for a LOCK prefix or a VEX or EVEX
// instruction.
//
// SSE data instructions (SSE to SSE4.2 moves, arithmetic, logic,
// compares, shuffles and conversions; planData decides which) run on the
// host CPU. A trampoline loads the vCPU's general-purpose registers,
// arithmetic flags, XMM registers and MXCSR, calls the instruction
// re-encoded with its memory operand turned into a RIP-relative reference
// to a copy of the guest's bytes, and saves the results. The Completer
// then copies a stored operand back through the guest's page tables
// (package kvm/paging). The exceptions the CPU would raise instead (#GP for a
// misaligned operand, #PF, #XM or #UD for an unmasked SIMD exception) are
// injected, and a faulting instruction changes nothing. One exit
// completes up to 64 consecutive SSE instructions.
//
// It needs an x86-64 host with XSAVE, memfd_create(2) (Linux 3.17) and no
// privileges: the code runs from a memfd mapped read-only and executable
// and is written with pwrite(2), so no mapping is ever writable and
// executable, and systemd's MemoryDenyWriteExecute= can stay on. With the
// sysctl vm.memfd_noexec=2 (Linux 6.3 and later) it cannot map the memfd
// and completes no SSE instruction.
//
// Limitations:
//   - AVX, AVX-512, x87 and MMX instructions are not completed, nor SSE
//     encodings with redundant prefixes or a 32-bit address. They stop
//     the guest with an *UncompletedError that gives the reason.
//   - Memory operands must be guest RAM: MMIO is not reached.
//   - The page walk does not check reserved bits (an entry the CPU would
//     answer with #PF stops the guest instead) and does not set accessed
//     and dirty bits.
//   - Nothing is completed outside 64-bit ring 0, with 5-level paging, or
//     while RFLAGS.TF is set.
//   - The XSAVE family handles the x87, SSE and AVX components only; a
//     monitor should offer no others in the guest's CPUID leaf 0xD.
//   - XSAVES and XRSTORS are not completed; a monitor should hide them in
//     the guest's CPUID. XGETBV with ECX = 1 is answered even where the
//     guest's CPUID does not offer it, where the CPU would raise #GP.
package complete
