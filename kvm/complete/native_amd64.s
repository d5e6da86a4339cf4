#include "textflag.h"

// func callTrampoline(entry uintptr)
//
// The trampoline saves and restores every general-purpose register but
// RSP itself and uses 16 bytes of stack (its return address and one
// PUSHFQ), so this needs no frame of its own.
TEXT ·callTrampoline(SB), NOSPLIT, $0-8
	MOVQ entry+0(FP), AX
	CALL AX
	RET
