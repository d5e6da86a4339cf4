#include "textflag.h"

// func callTrampoline(entry uintptr)
//
// The trampoline saves and restores every general-purpose register but
// RSP itself, so this needs no frame of its own. On this goroutine's
// stack it uses its return address and, one at a time, a word for the
// PUSH before POPFQ, the CALL to the slot and PUSHFQ: 16 bytes at most.
//
// Signals may arrive while guest values are in the registers. Go's
// handler runs on the signal stack, takes g from thread-local storage
// rather than R14 and clears X15 itself, and the kernel saves and
// restores the interrupted registers and FPU state around it. The
// interrupted PC lies outside Go's text, so the runtime never preempts
// the goroutine there.
TEXT ·callTrampoline(SB), NOSPLIT, $0-8
	MOVQ entry+0(FP), AX
	CALL AX
	RET
