package complete

import "encoding/binary"

// The machine code that runs a guest's SSE instruction on the host.
//
// The executor maps a code region read-only and executable (filled
// through a memfd, so no mapping is ever writable and executable, which
// MemoryDenyWriteExecute= forbids) and, right after it, a data page. The
// trampoline at the start of the code region swaps the host's SSE state and
// general-purpose registers for the guest's, calls the slot that holds the
// guest's instruction followed by RET, and swaps them back. Every access to
// the data page is RIP-relative, so the fifteen general-purpose registers
// other than RSP can carry guest values while the instruction runs. This file
// builds the code as bytes; native_linux_amd64.go maps and runs it.

// Code and data layout. Offsets in the data page are from its start; the
// XSAVE areas are 64-byte aligned, as XSAVE and XRSTOR require.
const (
	nativeCodeSize = 64 << 10 // trampoline page, then the slots
	nativeSlotBase = 4 << 10  // offset of the first slot in the code region
	nativeSlotSize = 16       // an instruction of the maximum length (15 bytes) and RET

	dataGuestRegs  = 0    // guest general-purpose registers, by register number
	dataFlagsIn    = 128  // RFLAGS the instruction starts with
	dataFlagsOut   = 136  // RFLAGS after it
	dataTarget     = 144  // address of the slot to call
	dataHostRegs   = 192  // the host's general-purpose registers
	dataMemory     = 320  // the copy of the guest's memory operand
	dataHostArea   = 448  // the host's SSE state
	dataGuestIn    = 1536 // the guest's SSE state before the instruction
	dataGuestOut   = 2560 // and after it
	nativeDataSize = 4 << 10

	// xsaveSSEOnly is the requested-feature bitmap of every XSAVE and
	// XRSTOR in the trampoline: the SSE component (XMM0-15 and MXCSR). Legacy
	// SSE instructions leave x87 state and the upper halves of the YMM
	// registers alone, so nothing else needs swapping.
	xsaveSSEOnly = componentSSE
)

// x86 general-purpose register numbers; 4 is RSP, which the trampoline
// never loads.
const regRSP = 4

// nativeSlots is the number of instruction slots in the code region.
const nativeSlots = (nativeCodeSize - nativeSlotBase) / nativeSlotSize

// asm appends x86-64 instructions whose memory operands are RIP-relative
// references into the data page, which starts dataStart bytes after the
// code's first byte.
type asm struct {
	code      []byte
	base      int // offset of code[0] in the code region
	dataStart int
}

// ripOp appends an instruction whose last four bytes are a RIP-relative
// displacement to data offset target.
func (a *asm) ripOp(target int, head ...byte) {
	a.code = append(a.code, head...)
	end := a.base + len(a.code) + 4
	a.code = binary.LittleEndian.AppendUint32(a.code, uint32(int32(a.dataStart+target-end)))
}

// storeReg appends MOV [RIP+target], reg (REX.W 89 /r).
func (a *asm) storeReg(reg, target int) {
	a.ripOp(target, 0x48|byte(reg>>3)<<2, 0x89, byte(reg&7)<<3|0x05)
}

// loadReg appends MOV reg, [RIP+target] (REX.W 8B /r).
func (a *asm) loadReg(reg, target int) {
	a.ripOp(target, 0x48|byte(reg>>3)<<2, 0x8b, byte(reg&7)<<3|0x05)
}

// xsave appends XSAVE64 [RIP+target] (REX.W 0F AE /4) after loading
// EDX:EAX with the requested-feature bitmap.
func (a *asm) xsave(target int) {
	a.featureMask()
	a.ripOp(target, 0x48, 0x0f, 0xae, 0x25)
}

// xrstor appends XRSTOR64 [RIP+target] (REX.W 0F AE /5) after loading
// EDX:EAX with the requested-feature bitmap.
func (a *asm) xrstor(target int) {
	a.featureMask()
	a.ripOp(target, 0x48, 0x0f, 0xae, 0x2d)
}

// featureMask appends MOV EAX, xsaveSSEOnly and XOR EDX, EDX.
func (a *asm) featureMask() {
	a.code = append(a.code, 0xb8)
	a.code = binary.LittleEndian.AppendUint32(a.code, xsaveSSEOnly)
	a.code = append(a.code, 0x31, 0xd2)
}

// trampolineCode returns the trampoline, which starts at offset 0 of the
// code region; the data page starts at offset nativeCodeSize. The Go
// caller passes nothing in registers and finds every register as it left
// it, so the trampoline fits any calling convention.
func trampolineCode() []byte {
	a := &asm{dataStart: nativeCodeSize}

	// The host's registers first: the feature mask below overwrites RAX
	// and RDX.
	for r := range 16 {
		if r != regRSP {
			a.storeReg(r, dataHostRegs+8*r)
		}
	}

	// Swap in the guest's SSE state, then its flags (POPFQ in user mode
	// changes only the arithmetic flags, DF, TF and AC; the executor
	// passes arithmetic flags only), then its registers: after the
	// XRSTORs, which need EDX:EAX.
	a.xsave(dataHostArea)
	a.xrstor(dataGuestIn)
	a.ripOp(dataFlagsIn, 0xff, 0x35) // PUSH QWORD [RIP+flagsIn]
	a.code = append(a.code, 0x9d)    // POPFQ
	for r := range 16 {
		if r != regRSP {
			a.loadReg(r, dataGuestRegs+8*r)
		}
	}

	a.ripOp(dataTarget, 0xff, 0x15) // CALL QWORD [RIP+target]

	// Save the guest's results in the reverse order.
	for r := range 16 {
		if r != regRSP {
			a.storeReg(r, dataGuestRegs+8*r)
		}
	}
	a.code = append(a.code, 0x9c)     // PUSHFQ
	a.ripOp(dataFlagsOut, 0x8f, 0x05) // POP QWORD [RIP+flagsOut]
	a.xsave(dataGuestOut)
	a.xrstor(dataHostArea)
	for r := range 16 {
		if r != regRSP {
			a.loadReg(r, dataHostRegs+8*r)
		}
	}
	a.code = append(a.code, 0xc3) // RET
	return a.code
}

// slotCode returns the contents of slot number slot for instruction d: its
// re-encoding with the displacement aimed at the memory-operand copy,
// then RET, padded with INT3.
func slotCode(d *dataInsn, slot int) []byte {
	base := nativeSlotBase + slot*nativeSlotSize
	code := make([]byte, 0, nativeSlotSize)
	code = append(code, d.Code...)
	if d.DispOffset >= 0 {
		end := base + len(d.Code)
		disp := int32(nativeCodeSize + dataMemory - end)
		binary.LittleEndian.PutUint32(code[d.DispOffset:], uint32(disp))
	}
	code = append(code, 0xc3)
	for len(code) < nativeSlotSize {
		code = append(code, 0xcc)
	}
	return code
}
