package complete

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"github.com/osvm-project/osvm/kvm"
	"github.com/osvm-project/osvm/kvm/paging"
)

// XSAVE and XRSTOR in their standard (uncompacted) form, which KVM's
// emulator rejects on PVM hosts. KVM_GET_XSAVE returns the vCPU's state in
// that same layout (Intel SDM volume 1, 13.4), so the monitor copies the
// requested components between it and guest memory.

// The part of the XSAVE layout the monitor handles: the legacy region (x87
// and SSE), the header, and the AVX component.
const (
	xsaveLegacySize = 512
	xsaveHeader     = 512 // XSTATE_BV at +0, XCOMP_BV at +8
	xsaveAVXOffset  = 576
	xsaveAVXSize    = 256
	xsaveAreaSize   = xsaveAVXOffset + xsaveAVXSize

	componentX87 = 1 << 0
	componentSSE = 1 << 1
	componentAVX = 1 << 2
)

// legacyRanges are the byte ranges of the legacy region each component
// owns: x87 control, status and registers; SSE's MXCSR and XMM registers.
var legacyRanges = map[uint64][][2]int{
	componentX87: {{0, 24}, {32, 160}},
	componentSSE: {{160, 416}},
}

// mxcsrRange holds MXCSR and MXCSR_MASK, which XSAVE stores when SSE or
// AVX is requested (Intel SDM volume 1, 13.7).
var mxcsrRange = [2]int{24, 32}

// xsaveForm reports whether op is a form of XSAVE (store) or XRSTOR that
// the monitor completes, and whether it stores in the compacted form
// (XSAVEC). XSAVEOPT may skip components in their
// initial state but need not (Intel SDM volume 1, 13.9), so a full XSAVE
// is a valid XSAVEOPT. The 64-bit forms differ in the layout of the x87
// instruction and data pointers only, which KVM keeps in the 64-bit
// layout.
func xsaveForm(op x86asm.Op) (store, compacted, ok bool) {
	switch op {
	case x86asm.XSAVE, x86asm.XSAVE64, x86asm.XSAVEOPT, x86asm.XSAVEOPT64:
		return true, false, true
	case x86asm.XSAVEC, x86asm.XSAVEC64:
		return true, true, true
	case x86asm.XRSTOR, x86asm.XRSTOR64:
		return false, false, true
	}
	return false, false, false
}

// xsaveHeaderSize is the size of the XSAVE header: XSTATE_BV, XCOMP_BV and
// 48 reserved bytes.
const xsaveHeaderSize = 64

// completeXSave performs an XSAVE, XSAVEOPT or XRSTOR in the standard
// form that KVM's emulator rejected, for the x87, SSE and AVX components,
// and injects the exceptions the CPU would raise instead (Intel SDM volume
// 2, XSAVE and XRSTOR). It reports false for anything else.
func (c *Completer) completeXSave(v *kvm.VCPU, sregs *kvm.SRegs, instruction []byte) (bool, error) {
	inst, err := x86asm.Decode(instruction, 64)
	if err != nil {
		return false, nil
	}
	store, compacted, ok := xsaveForm(inst.Op)
	if !ok {
		return false, nil
	}
	operand, isMem := inst.Args[0].(x86asm.Mem)
	if !isMem || inst.AddrSize != 64 {
		return true, notCompletedf("%s without a 64-bit memory operand", inst.Op)
	}
	if sregs.CR4&kvm.CR4OSXSAVE == 0 || hasLock(&inst) {
		return true, inject(v, exception{vector: vectorUD})
	}

	regs, err := v.Regs()
	if err != nil {
		return true, err
	}
	xcrs, err := v.XCRs()
	if err != nil {
		return true, err
	}
	var xcr0 uint64
	for _, x := range xcrs {
		if x.XCR == 0 {
			xcr0 = x.Value
		}
	}
	rfbm := xcr0 & (regs.RDX<<32 | regs.RAX&0xffffffff)
	if rfbm&^(componentX87|componentSSE|componentAVX) != 0 {
		return true, notCompletedf("%s of state components %#x: the monitor handles x87, SSE and AVX only", inst.Op, rfbm)
	}

	gva, ok := effectiveAddress(operand, inst.Len, &regs, sregs)
	if !ok {
		return true, notCompletedf("%s: cannot compute the address of its memory operand", inst.Op)
	}
	// The operand must be 64-byte aligned, or the CPU raises #GP.
	if gva%64 != 0 {
		return true, inject(v, exception{vector: vectorGP, hasCode: true})
	}
	// The instruction accesses the legacy region and the header, then the
	// AVX component if it is requested and, for XRSTOR of a compacted
	// area, in the area. With x87, SSE and AVX only, the compacted layout
	// puts AVX where the standard one does (Intel SDM volume 1, 13.4.3).
	read := func(size uint64) ([]paging.Run, []byte, *exception, error) {
		runs, fault, err := c.access(sregs, gva, size, store)
		if fault != nil || err != nil {
			return nil, nil, fault, err
		}
		guest := make([]byte, size)
		return runs, guest, nil, paging.Read(c.mem, runs, guest)
	}
	runs, guest, fault, err := read(xsaveLegacySize + xsaveHeaderSize)
	if err == nil && fault == nil && rfbm&componentAVX != 0 &&
		(store || !compactedArea(guest) || binary.LittleEndian.Uint64(guest[xsaveHeader+8:])&componentAVX != 0) {
		runs, guest, fault, err = read(xsaveAreaSize)
	}
	if fault != nil {
		return true, injectFault(v, sregs, *fault)
	}
	if err != nil {
		return true, fmt.Errorf("%s at guest-virtual %#x: %w (the monitor completes accesses to guest RAM only)", inst.Op, gva, err)
	}

	state, err := v.XSave()
	if err != nil {
		return true, err
	}
	area := state.Bytes()
	if store {
		xsaveStore(guest, area, rfbm)
		if compacted {
			// XSAVEC writes XSTATE_BV with the saved components only,
			// and XCOMP_BV with bit 63 and the requested ones.
			inUse := binary.LittleEndian.Uint64(area[xsaveHeader:])
			binary.LittleEndian.PutUint64(guest[xsaveHeader:], inUse&rfbm)
			binary.LittleEndian.PutUint64(guest[xsaveHeader+8:], 1<<63|rfbm)
		}
		if err := paging.Write(c.mem, runs, guest); err != nil {
			return true, fmt.Errorf("%s at guest-virtual %#x: %w", inst.Op, gva, err)
		}
	} else {
		if !validXRSTOR(guest, area, xcr0, rfbm) {
			return true, inject(v, exception{vector: vectorGP, hasCode: true})
		}
		if components := binary.LittleEndian.Uint64(guest[xsaveHeader+8:]) &^ (1 << 63); components&^(componentX87|componentSSE|componentAVX) != 0 {
			return true, notCompletedf("%s of a compacted area with state components %#x: the monitor handles x87, SSE and AVX only", inst.Op, components)
		}
		xrstorLoad(area, guest, rfbm)
		if rfbm&(componentSSE|componentAVX) != 0 {
			// MXCSR was loaded even if SSE is in its initial state.
			markSSEInUse(area)
		}
		if err := v.SetXSave(state); err != nil {
			return true, fmt.Errorf("complete XRSTOR: %w", err)
		}
	}
	return true, c.retire(v, regs, &inst)
}

// validXRSTOR reports whether XRSTOR of the area guest, with
// requested-feature bitmap rfbm, runs without #GP (Intel SDM volume 1,
// 13.8). The header's reserved bytes must be zero. In the standard form,
// XCOMP_BV must be zero and XSTATE_BV set no bit outside XCR0. In the
// compacted form (bit 63 of XCOMP_BV), XCOMP_BV must set no other bit
// outside XCR0 and XSTATE_BV none outside XCOMP_BV. MXCSR, when loaded,
// must set no bit outside the vCPU's MXCSR_MASK, read from vcpu.
func validXRSTOR(guest, vcpu []byte, xcr0, rfbm uint64) bool {
	header := guest[xsaveHeader : xsaveHeader+xsaveHeaderSize]
	for _, b := range header[16:] {
		if b != 0 {
			return false
		}
	}
	xstateBV := binary.LittleEndian.Uint64(header)
	xcompBV := binary.LittleEndian.Uint64(header[8:])
	if compactedArea(guest) {
		if xcompBV&^(1<<63)&^xcr0 != 0 || xstateBV&^xcompBV != 0 {
			return false
		}
	} else if xcompBV != 0 || xstateBV&^xcr0 != 0 {
		return false
	}
	if loadsMXCSR(guest, rfbm) {
		mask := binary.LittleEndian.Uint32(vcpu[28:])
		if mask == 0 {
			mask = defaultMXCSRMask
		}
		if binary.LittleEndian.Uint32(guest[24:])&^mask != 0 {
			return false
		}
	}
	return true
}

// compactedArea reports whether the XSAVE area guest is in the compacted
// form: bit 63 of XCOMP_BV.
func compactedArea(guest []byte) bool {
	return binary.LittleEndian.Uint64(guest[xsaveHeader+8:])&(1<<63) != 0
}

// loadsMXCSR reports whether XRSTOR of guest with requested-feature bitmap
// rfbm loads MXCSR from memory, which it does when SSE or AVX is requested.
// The exception is a compacted area without SSE state (XSTATE_BV bit 1
// clear), which puts MXCSR in its initial state (Intel SDM volume 1,
// 13.8.2).
func loadsMXCSR(guest []byte, rfbm uint64) bool {
	if rfbm&(componentSSE|componentAVX) == 0 {
		return false
	}
	return !compactedArea(guest) || binary.LittleEndian.Uint64(guest[xsaveHeader:])&componentSSE != 0
}

// defaultMXCSRMask is the MXCSR mask of processors whose FXSAVE area
// reports 0 there (Intel SDM volume 1, 11.6.6).
const defaultMXCSRMask = 0xffbf

// hasLock reports whether inst has a LOCK prefix.
func hasLock(inst *x86asm.Inst) bool {
	for _, p := range inst.Prefix {
		if p == 0 {
			break
		}
		if p&0xff == x86asm.PrefixLOCK {
			return true
		}
	}
	return false
}

// xsaveStore writes the components in rfbm from area, the vCPU's state,
// into guest, the memory operand, and updates the header's XSTATE_BV as
// XSAVE does: bits outside rfbm are kept.
func xsaveStore(guest, area []byte, rfbm uint64) {
	for component, ranges := range legacyRanges {
		if rfbm&component == 0 {
			continue
		}
		for _, r := range ranges {
			copy(guest[r[0]:r[1]], area[r[0]:r[1]])
		}
	}
	if rfbm&(componentSSE|componentAVX) != 0 {
		copy(guest[mxcsrRange[0]:mxcsrRange[1]], area[mxcsrRange[0]:mxcsrRange[1]])
	}
	if rfbm&componentAVX != 0 {
		copy(guest[xsaveAVXOffset:xsaveAreaSize], area[xsaveAVXOffset:xsaveAreaSize])
	}
	inUse := binary.LittleEndian.Uint64(area[xsaveHeader:])
	old := binary.LittleEndian.Uint64(guest[xsaveHeader:])
	binary.LittleEndian.PutUint64(guest[xsaveHeader:], old&^rfbm|inUse&rfbm)
}

// xrstorLoad loads the components in rfbm from guest into area: a
// component whose XSTATE_BV bit is set comes from memory, the others are
// put in their initial state, as XRSTOR does.
func xrstorLoad(area, guest []byte, rfbm uint64) {
	present := binary.LittleEndian.Uint64(guest[xsaveHeader:])
	for component, ranges := range legacyRanges {
		if rfbm&component == 0 {
			continue
		}
		for _, r := range ranges {
			if present&component != 0 {
				copy(area[r[0]:r[1]], guest[r[0]:r[1]])
			} else {
				clear(area[r[0]:r[1]])
			}
		}
		if present&component == 0 && component == componentX87 {
			binary.LittleEndian.PutUint16(area[0:], 0x037f) // FCW's initial value
		}
	}
	switch {
	case loadsMXCSR(guest, rfbm):
		copy(area[24:28], guest[24:28])
	case rfbm&(componentSSE|componentAVX) != 0:
		binary.LittleEndian.PutUint32(area[24:], 0x1f80) // MXCSR's initial value
	}
	if rfbm&componentAVX != 0 {
		if present&componentAVX != 0 {
			copy(area[xsaveAVXOffset:xsaveAreaSize], guest[xsaveAVXOffset:xsaveAreaSize])
		} else {
			clear(area[xsaveAVXOffset:xsaveAreaSize])
		}
	}
	header := binary.LittleEndian.Uint64(area[xsaveHeader:])
	binary.LittleEndian.PutUint64(area[xsaveHeader:], header&^rfbm|present&rfbm)
}

// effectiveAddress computes the guest-virtual address of a memory operand
// from the vCPU's registers: segment base (FS and GS only, the others are
// 0 in long mode), base, index times scale, displacement. RIP-relative
// operands count from the end of the instruction.
func effectiveAddress(m x86asm.Mem, length int, regs *kvm.Regs, sregs *kvm.SRegs) (uint64, bool) {
	value := func(r x86asm.Reg) (uint64, bool) {
		switch r {
		case 0:
			return 0, true
		case x86asm.RIP:
			return regs.RIP + uint64(length), true
		}
		// x86asm lists RAX to R15 in the order of their register numbers.
		if r < x86asm.RAX || r > x86asm.R15 {
			return 0, false
		}
		return *guestRegOrder(regs)[r-x86asm.RAX], true
	}
	base, ok := value(m.Base)
	if !ok {
		return 0, false
	}
	index, ok := value(m.Index)
	if !ok {
		return 0, false
	}
	address := base + index*uint64(m.Scale) + uint64(m.Disp)
	switch m.Segment {
	case x86asm.FS:
		address += sregs.FS.Base
	case x86asm.GS:
		address += sregs.GS.Base
	}
	return address, true
}
