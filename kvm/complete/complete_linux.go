package complete

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/arch/x86/x86asm"
	"golang.org/x/sys/cpu"

	"github.com/osvm-project/osvm/kvm"
	"github.com/osvm-project/osvm/kvm/paging"
)

// rflagsTF is RFLAGS.TF, single-step.
const rflagsTF = 1 << 8

// cr4LA57 is CR4.LA57, 5-level paging.
const cr4LA57 = 1 << 12

// markSSEInUse sets the SSE bit of XSTATE_BV in the vCPU's XSAVE area
// after the monitor changed XMM registers or MXCSR there. KVM_SET_XSAVE
// takes the legacy region's SSE state only with that bit set, and would
// otherwise drop the change without an error.
func markSSEInUse(area []byte) {
	bv := binary.LittleEndian.Uint64(area[xsaveHeader:])
	binary.LittleEndian.PutUint64(area[xsaveHeader:], bv|componentSSE)
}

// maxBatch is the maximum number of consecutive SSE instructions one exit
// completes. An exit costs far more than an instruction, and copy loops
// of SSE moves are common.
const maxBatch = 64

// Completer does, for one virtual machine, what the CPU would for the
// instructions KVM's emulator rejects. Its methods may be called from
// several vCPU threads at once.
type Completer struct {
	mem       paging.Memory
	completed *atomic.Uint64

	nativeOnce sync.Once
	native     *nativeExecutor
	nativeErr  error
}

// New returns a Completer for the guest memory mem. It adds the number of
// instructions it completes to completed.
func New(mem paging.Memory, completed *atomic.Uint64) *Completer {
	return &Completer{mem: mem, completed: completed}
}

// UncompletedError is the error of a rejected instruction the monitor does
// not complete: the exit, and the reason.
type UncompletedError struct {
	Exit   *kvm.ExitError
	Reason error
}

// Error returns the exit's message; Reason holds why the instruction was
// not completed, which a caller may add.
func (u *UncompletedError) Error() string { return u.Exit.Error() }

// Unwrap returns the exit and the reason.
func (u *UncompletedError) Unwrap() []error { return []error{u.Exit, u.Reason} }

// Close releases the memory of the native executor, if one was made. Call
// it once every vCPU has stopped; later calls do nothing.
func (c *Completer) Close() error {
	c.nativeOnce.Do(func() { c.nativeErr = errors.New("the completer is closed") })
	if c.native == nil {
		return nil
	}
	err := c.native.close()
	c.native = nil
	return err
}

// executor returns the native executor, making it on first use.
func (c *Completer) executor() (*nativeExecutor, error) {
	c.nativeOnce.Do(func() { c.native, c.nativeErr = newNativeExecutor() })
	return c.native, c.nativeErr
}

// Complete handles an emulation failure of vCPU v. It returns nil when
// the guest may go on: the instruction was completed, or the exception the
// CPU would raise for it was injected. Otherwise it returns the exit
// error, wrapped in an *UncompletedError with the reason when the monitor
// chose not to complete the instruction.
func (c *Completer) Complete(v *kvm.VCPU, exit *kvm.ExitError) error {
	instruction := exit.RejectedInstruction()
	if instruction == nil {
		return exit
	}
	sregs, err := v.SRegs()
	if err != nil {
		return err
	}
	regs, err := v.Regs()
	if err != nil {
		return err
	}
	// Decoding assumes 64-bit mode, the page walk 4-level paging and
	// supervisor accesses, and nothing here raises the single-step trap.
	switch {
	case sregs.CS.L != 1 || sregs.CS.Selector&3 != 0:
		return withReason(exit, notCompletedf("the vCPU is not in 64-bit ring 0"))
	case sregs.CR4&cr4LA57 != 0:
		return withReason(exit, notCompletedf("the guest uses 5-level paging (CR4.LA57)"))
	case regs.RFLAGS&rflagsTF != 0:
		return withReason(exit, notCompletedf("RFLAGS.TF is set, and the monitor does not raise the single-step trap"))
	}

	// #UD takes priority over #NM (Intel SDM volume 2, the exception
	// tables of SSE, VEX and XSAVE instructions).
	kind := fpuKind(instruction)
	switch {
	case kind != fpuNone && lockPrefixed(instruction):
		// LOCK is valid on read-modify-write integer instructions only.
		return inject(v, exception{vector: vectorUD})
	case kind == fpuSSE && sseUndefined(&sregs),
		kind == fpuXSave && sregs.CR4&kvm.CR4OSXSAVE == 0:
		return inject(v, exception{vector: vectorUD})
	case kind == fpuVEX:
		if handled, err := c.vexUndefined(v, &sregs, instruction); handled {
			return withReason(exit, err)
		}
	}
	switch {
	case kind != fpuNone && sregs.CR0&kvm.CR0TS != 0:
		return inject(v, exception{vector: vectorNM})
	case isXGETBV(instruction):
		return completeXGETBV(v, &sregs)
	}
	if handled, err := c.completeXSave(v, &sregs, instruction); handled {
		return withReason(exit, err)
	}
	if handled, err := c.completeMXCSR(v, &sregs, instruction); handled {
		return withReason(exit, err)
	}
	return withReason(exit, c.completeData(v, &sregs, instruction))
}

// withReason wraps exit in an *UncompletedError when err is the reason
// the monitor did not complete the instruction, and returns other errors
// as they are.
func withReason(exit *kvm.ExitError, err error) error {
	if reason, ok := errors.AsType[*notCompleted](err); ok {
		return &UncompletedError{Exit: exit, Reason: reason}
	}
	return err
}

// vexUndefined injects #UD for a VEX- or EVEX-encoded instruction in the
// cases where the CPU raises it whatever the instruction (Intel SDM volume
// 2, 2.4.2 and 2.7.2). Those are CR4.OSXSAVE clear, XCR0 without the state
// the encoding uses (SSE and AVX for VEX, also the AVX-512 state for
// EVEX), and a 66, F2, F3 or REX prefix before it. It reports false
// otherwise, since the monitor completes no VEX or EVEX instruction.
func (c *Completer) vexUndefined(v *kvm.VCPU, sregs *kvm.SRegs, instruction []byte) (bool, error) {
	i := 0
	badPrefix := false
	for i < len(instruction) {
		b := instruction[i]
		if !isLegacyPrefix(b) && b&0xf0 != 0x40 {
			break
		}
		if b == 0x66 || b == 0xf2 || b == 0xf3 || b&0xf0 == 0x40 {
			badPrefix = true
		}
		i++
	}
	if i >= len(instruction) {
		return false, nil
	}

	var needed uint64
	switch instruction[i] {
	case 0xc4, 0xc5:
		needed = componentSSE | componentAVX
	case 0x62:
		needed = componentSSE | componentAVX | 0xe0 // opmask, ZMM_Hi256, Hi16_ZMM
	default:
		return false, nil
	}
	if badPrefix || sregs.CR4&kvm.CR4OSXSAVE == 0 {
		return true, inject(v, exception{vector: vectorUD})
	}

	xcrs, err := v.XCRs()
	if err != nil {
		return true, err
	}
	for _, x := range xcrs {
		if x.XCR == 0 && x.Value&needed != needed {
			return true, inject(v, exception{vector: vectorUD})
		}
	}
	return false, nil
}

// lockPrefixed reports whether the instruction's prefixes include LOCK.
func lockPrefixed(instruction []byte) bool {
	for _, b := range instruction {
		if b == 0xf0 {
			return true
		}
		if !isLegacyPrefix(b) {
			return false
		}
	}
	return false
}

// notCompleted is the reason the monitor does not complete an instruction.
type notCompleted struct{ err error }

func (n *notCompleted) Error() string { return n.err.Error() }
func (n *notCompleted) Unwrap() error { return n.err }

// notCompletedf returns a *notCompleted with a formatted reason.
func notCompletedf(format string, args ...any) error {
	return &notCompleted{fmt.Errorf(format, args...)}
}

// completeXGETBV reads the extended control register that ECX names into
// EDX:EAX from the vCPU's XCRs, and for ECX = 1 the in-use bitmap, which
// it takes to be XCR0.
func completeXGETBV(v *kvm.VCPU, sregs *kvm.SRegs) error {
	if sregs.CR4&kvm.CR4OSXSAVE == 0 {
		return inject(v, exception{vector: vectorUD})
	}
	regs, err := v.Regs()
	if err != nil {
		return err
	}
	xcrs, err := v.XCRs()
	if err != nil {
		return err
	}
	index := uint32(regs.RCX)
	for _, xcr := range xcrs {
		switch {
		case index == 1 && xcr.XCR == 0:
			// XGETBV with ECX = 1 reads XINUSE, the components not in
			// their initial state. KVM does not report it; XCR0 is a
			// superset, and a component reported in use when it is
			// not only makes software save it.
		case xcr.XCR != index:
			continue
		}
		// XGETBV writes EDX:EAX, which clears the upper halves of RDX
		// and RAX.
		regs.RAX = xcr.Value & 0xffffffff
		regs.RDX = xcr.Value >> 32
		regs.RIP += uint64(len(xgetbvBytes))
		if err := v.SetRegs(regs); err != nil {
			return fmt.Errorf("complete XGETBV: %w", err)
		}
		return nil
	}
	// An extended control register the CPU does not have.
	return inject(v, exception{vector: vectorGP, hasCode: true})
}

// completeData completes the SSE data instruction first, which the
// emulator rejected, and then up to maxBatch-1 SSE instructions that
// follow it, by running them on the host (see planData). When the first
// instruction would fault on the CPU, its exception is injected instead. A
// later one that would fault ends the batch, so it comes back as the next
// exit.
func (c *Completer) completeData(v *kvm.VCPU, sregs *kvm.SRegs, first []byte) error {
	d, err := planData(first)
	if err != nil {
		return &notCompleted{err}
	}
	switch {
	case sseUndefined(sregs):
		return inject(v, exception{vector: vectorUD})
	case !hostHas(d.Ext):
		// The guest's CPUID comes from the host's, so it does not
		// announce the extension either.
		return inject(v, exception{vector: vectorUD})
	}
	x, err := c.executor()
	if err != nil {
		return &notCompleted{err}
	}

	regs, err := v.Regs()
	if err != nil {
		return err
	}
	state, err := v.XSave()
	if err != nil {
		return err
	}
	area := state.Bytes()

	done := 0
	op := d.Inst.Op // the last instruction completed, for errors
	for {
		fault, err := c.step(x, &d, &regs, sregs, area)
		if done > 0 && (err != nil || fault != nil) {
			// The exit that this instruction causes next reports it.
			break
		}
		if err != nil {
			return err
		}
		if fault != nil {
			if fault.mxcsr != nil {
				binary.LittleEndian.PutUint32(area[24:], *fault.mxcsr)
				markSSEInUse(area)
				if err := v.SetXSave(state); err != nil {
					return fmt.Errorf("complete %s: %w", d.Inst.Op, err)
				}
			}
			return injectFault(v, sregs, *fault)
		}
		op = d.Inst.Op
		done++
		if done == maxBatch {
			break
		}
		next, ok := c.fetch(sregs, regs.RIP)
		if !ok {
			break
		}
		if d, err = planData(next); err != nil || !hostHas(d.Ext) {
			break
		}
	}

	markSSEInUse(area)
	if err := v.SetXSave(state); err != nil {
		return fmt.Errorf("complete %s: %w", op, err)
	}
	if err := v.SetRegs(regs); err != nil {
		return fmt.Errorf("complete %s: %w", op, err)
	}
	c.completed.Add(uint64(done))
	return nil
}

// sseUndefined reports whether SSE instructions raise #UD: while CR0.EM is
// set or CR4.OSFXSR clear (Intel SDM volume 3A, 13.1.3).
func sseUndefined(sregs *kvm.SRegs) bool {
	return sregs.CR0&kvm.CR0EM != 0 || sregs.CR4&kvm.CR4OSFXSR == 0
}

// completeMXCSR performs LDMXCSR and STMXCSR, which load and store MXCSR
// from and to a 32-bit memory operand, against the vCPU's XSAVE state.
// LDMXCSR of a value with bits outside the MXCSR mask raises #GP(0). It
// reports false for other instructions.
func (c *Completer) completeMXCSR(v *kvm.VCPU, sregs *kvm.SRegs, instruction []byte) (bool, error) {
	inst, err := x86asm.Decode(instruction, 64)
	if err != nil || inst.Op != x86asm.LDMXCSR && inst.Op != x86asm.STMXCSR {
		return false, nil
	}
	store := inst.Op == x86asm.STMXCSR
	operand, isMem := inst.Args[0].(x86asm.Mem)
	if !isMem || inst.AddrSize != 64 {
		return true, notCompletedf("%s without a 64-bit memory operand", inst.Op)
	}
	if sseUndefined(sregs) {
		return true, inject(v, exception{vector: vectorUD})
	}

	regs, err := v.Regs()
	if err != nil {
		return true, err
	}
	gva, ok := effectiveAddress(operand, inst.Len, &regs, sregs)
	if !ok {
		return true, notCompletedf("%s: cannot compute the address of its memory operand", inst.Op)
	}
	runs, fault, err := c.access(sregs, gva, 4, store)
	if fault != nil {
		return true, injectFault(v, sregs, *fault)
	}
	if err != nil {
		return true, fmt.Errorf("%s at guest-virtual %#x: %w", inst.Op, gva, err)
	}
	state, err := v.XSave()
	if err != nil {
		return true, err
	}
	area := state.Bytes()

	if store {
		if err := paging.Write(c.mem, runs, area[24:28]); err != nil {
			return true, fmt.Errorf("%s at guest-virtual %#x: %w", inst.Op, gva, err)
		}
	} else {
		var value [4]byte
		if err := paging.Read(c.mem, runs, value[:]); err != nil {
			return true, fmt.Errorf("%s at guest-virtual %#x: %w", inst.Op, gva, err)
		}
		mask := binary.LittleEndian.Uint32(area[28:])
		if mask == 0 {
			mask = defaultMXCSRMask
		}
		if binary.LittleEndian.Uint32(value[:])&^mask != 0 {
			return true, inject(v, exception{vector: vectorGP, hasCode: true})
		}
		copy(area[24:28], value[:])
		markSSEInUse(area)
		if err := v.SetXSave(state); err != nil {
			return true, fmt.Errorf("complete LDMXCSR: %w", err)
		}
	}
	return true, c.retire(v, regs, &inst)
}

// access translates the n bytes at guest-virtual gva that an instruction
// reads, or writes if store is set. Where the CPU would raise an exception
// for the page walk, it returns that exception.
func (c *Completer) access(sregs *kvm.SRegs, gva, n uint64, store bool) ([]paging.Run, *exception, error) {
	// TODO: set the accessed and dirty bits of the page-table entries, as
	// the CPU does.
	runs, err := paging.Access(c.mem, sregs.CR3, gva, n, store, store && sregs.CR0&kvm.CR0WP != 0)
	if f, ok := errors.AsType[*paging.Fault](err); ok {
		return nil, faultFor(f), nil
	}
	return runs, nil, err
}

// retire moves the vCPU's RIP past inst, as the CPU does when an
// instruction completes, and counts it.
func (c *Completer) retire(v *kvm.VCPU, regs kvm.Regs, inst *x86asm.Inst) error {
	regs.RIP += uint64(inst.Len)
	if err := v.SetRegs(regs); err != nil {
		return fmt.Errorf("complete %s: %w", inst.Op, err)
	}
	c.completed.Add(1)
	return nil
}

// hostHas reports whether the host CPU has extension e.
func hostHas(e extension) bool {
	switch e {
	case extSSE3:
		return cpu.X86.HasSSE3
	case extSSSE3:
		return cpu.X86.HasSSSE3
	case extSSE41:
		return cpu.X86.HasSSE41
	case extSSE42:
		return cpu.X86.HasSSE42
	}
	return true
}

// MXCSR fields (Intel SDM volume 1, 10.2.3): six exception flags and, seven
// bits up, their masks.
const (
	mxcsrFlags = 0x3f
	mxcsrMasks = mxcsrFlags << 7
)

// step runs one instruction d on the host against regs and the XSAVE area
// area, and advances RIP past it. If the CPU would raise an exception
// instead, it returns that exception and changes nothing.
func (c *Completer) step(x *nativeExecutor, d *dataInsn, regs *kvm.Regs, sregs *kvm.SRegs, area []byte) (*exception, error) {
	var operand []byte
	var runs []paging.Run
	if d.HasMem {
		if d.Inst.AddrSize != 64 {
			return nil, notCompletedf("%s uses a %d-bit address", d.Inst.Op, d.Inst.AddrSize)
		}
		gva, ok := effectiveAddress(d.Mem, d.Inst.Len, regs, sregs)
		if !ok {
			return nil, notCompletedf("%s: cannot compute the address of its memory operand", d.Inst.Op)
		}
		if d.Aligned && gva%16 != 0 {
			return &exception{vector: vectorGP, hasCode: true}, nil
		}
		var fault *exception
		var err error
		runs, fault, err = c.access(sregs, gva, uint64(d.MemBytes), d.Store)
		if fault != nil {
			return fault, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s at guest-virtual %#x: %w", d.Inst.Op, gva, err)
		}
		operand = make([]byte, d.MemBytes)
		if err := paging.Read(c.mem, runs, operand); err != nil {
			return nil, fmt.Errorf("%s at guest-virtual %#x: %w (the monitor completes accesses to guest RAM only)", d.Inst.Op, gva, err)
		}
	}

	// Run with every exception masked and the flags clear, so that the
	// host never takes a SIMD exception and the flags afterwards are the
	// conditions this instruction detected.
	r := *regs
	var legacy [xsaveLegacySize]byte
	copy(legacy[:], area)
	mxcsr := binary.LittleEndian.Uint32(legacy[24:])
	binary.LittleEndian.PutUint32(legacy[24:], mxcsr&^mxcsrFlags|mxcsrMasks)
	if err := x.run(d, &r, legacy[:], operand); err != nil {
		return nil, err
	}
	detected := binary.LittleEndian.Uint32(legacy[24:]) & mxcsrFlags
	if unmasked := detected &^ (mxcsr >> 7); unmasked != 0 {
		// The CPU sets the flags and raises #XM, or #UD when the OS has
		// not set CR4.OSXMMEXCPT, before writing any result. An unmasked
		// pre-computation exception (invalid operation, denormal
		// operand, divide by zero) stops it before it looks for the
		// post-computation ones (SDM volume 1, 11.5.1 and 11.5.2).
		const preComputation = 0b111
		if unmasked&preComputation != 0 {
			detected &= preComputation
		}
		updated := mxcsr | detected
		if sregs.CR4&kvm.CR4OSXMMEXCPT == 0 {
			return &exception{vector: vectorUD, mxcsr: &updated}, nil
		}
		return &exception{vector: vectorXM, mxcsr: &updated}, nil
	}
	binary.LittleEndian.PutUint32(legacy[24:], mxcsr|detected)

	if d.Store {
		if err := paging.Write(c.mem, runs, operand); err != nil {
			return nil, fmt.Errorf("%s: %w", d.Inst.Op, err)
		}
	}
	copy(area, legacy[:])
	r.RIP += uint64(d.Inst.Len)
	*regs = r
	return nil, nil
}

// fetch reads the instruction bytes at guest-virtual rip: up to 15, fewer
// where the next page is not mapped.
func (c *Completer) fetch(sregs *kvm.SRegs, rip uint64) ([]byte, bool) {
	var b [15]byte
	n := 0
	for n < len(b) {
		gpa, rest, err := paging.Translate(c.mem, sregs.CR3, rip+uint64(n))
		if err != nil {
			break
		}
		chunk := min(int(rest), len(b)-n)
		if _, err := c.mem.ReadAt(b[n:n+chunk], int64(gpa)); err != nil {
			break
		}
		n += chunk
	}
	return b[:n], n > 0
}

// exception is an exception the monitor raises in the guest as the CPU
// would: its vector, error code, the address for CR2 of a page fault,
// and the MXCSR value a SIMD exception leaves.
type exception struct {
	vector  uint8
	hasCode bool
	code    uint32
	cr2     *uint64
	mxcsr   *uint32
}

// faultFor returns the exception of a failed page walk: #GP(0) for a
// non-canonical address, #PF with CR2 and the error code otherwise (bit 0
// set for a protection violation, bit 1 for a write; Intel SDM volume 3A,
// 4.7).
func faultFor(f *paging.Fault) *exception {
	if f.NonCanonical {
		return &exception{vector: vectorGP, hasCode: true}
	}
	var code uint32
	if f.Protection {
		code |= 1
	}
	if f.Write {
		code |= 2
	}
	addr := f.Addr
	return &exception{vector: vectorPF, hasCode: true, code: code, cr2: &addr}
}

// injectFault sets CR2 for a page fault and injects e.
func injectFault(v *kvm.VCPU, sregs *kvm.SRegs, e exception) error {
	if e.cr2 != nil {
		s := *sregs
		s.CR2 = *e.cr2
		if err := v.SetSRegs(s); err != nil {
			return fmt.Errorf("set CR2 for a page fault at %#x: %w", *e.cr2, err)
		}
	}
	return inject(v, e)
}

// inject makes e the vCPU's next exception, as the CPU would raise it at
// the current instruction.
func inject(v *kvm.VCPU, e exception) error {
	events, err := v.Events()
	if err != nil {
		return fmt.Errorf("inject exception %d: %w", e.vector, err)
	}
	events.Exception.Injected = 1
	events.Exception.Nr = e.vector
	events.Exception.HasErrorCode = 0
	if e.hasCode {
		events.Exception.HasErrorCode = 1
	}
	events.Exception.ErrorCode = e.code
	events.Exception.Pending = 0
	if err := v.SetEvents(events); err != nil {
		return fmt.Errorf("inject exception %d: %w", e.vector, err)
	}
	return nil
}
