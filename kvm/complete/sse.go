package complete

import (
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// Completing SSE data instructions that KVM's emulator rejects.
//
// The monitor does not reimplement SSE arithmetic. It runs the guest's
// instruction on the host CPU, in user mode, against the vCPU's registers.
// The instruction is re-encoded so that its memory operand, if any, becomes
// a RIP-relative reference to a buffer with a copy of the guest bytes. A
// trampoline loads the vCPU's general-purpose registers, flags, XMM
// registers and MXCSR around it (see native_linux_amd64.go). That is safe
// only for instructions that compute on registers and that one operand:
// no control flow, no system state, no implicit memory access. planData
// decides that from the instruction bytes alone.

// extension is the CPUID feature an instruction needs beyond SSE2, which
// every x86-64 CPU has.
type extension uint8

const (
	extSSE2 extension = iota
	extSSE3
	extSSSE3
	extSSE41
	extSSE42
)

func (e extension) String() string {
	return [...]string{"SSE2", "SSE3", "SSSE3", "SSE4.1", "SSE4.2"}[e]
}

// dataAllowlist maps the SSE to SSE4.2 instructions the monitor completes
// to the extension each needs: moves, arithmetic, logic, compares,
// shuffles and conversions on XMM registers, general-purpose registers and
// one memory operand. MMX register forms are left out because they change
// x87 state, and MASKMOVDQU because it writes to [RDI] implicitly.
// LDMXCSR, STMXCSR, prefetches and fences are not completed either.
var dataAllowlist = map[x86asm.Op]extension{
	// Moves.
	x86asm.MOVAPS: extSSE2, x86asm.MOVAPD: extSSE2, x86asm.MOVUPS: extSSE2, x86asm.MOVUPD: extSSE2,
	x86asm.MOVSS: extSSE2, x86asm.MOVSD_XMM: extSSE2, x86asm.MOVDQA: extSSE2, x86asm.MOVDQU: extSSE2,
	x86asm.MOVD: extSSE2, x86asm.MOVQ: extSSE2, x86asm.MOVHPS: extSSE2, x86asm.MOVHPD: extSSE2,
	x86asm.MOVLPS: extSSE2, x86asm.MOVLPD: extSSE2, x86asm.MOVHLPS: extSSE2, x86asm.MOVLHPS: extSSE2,
	x86asm.MOVMSKPS: extSSE2, x86asm.MOVMSKPD: extSSE2, x86asm.PMOVMSKB: extSSE2,
	x86asm.MOVNTPS: extSSE2, x86asm.MOVNTPD: extSSE2, x86asm.MOVNTDQ: extSSE2,

	// Floating-point arithmetic.
	x86asm.ADDPS: extSSE2, x86asm.ADDPD: extSSE2, x86asm.ADDSS: extSSE2, x86asm.ADDSD: extSSE2,
	x86asm.SUBPS: extSSE2, x86asm.SUBPD: extSSE2, x86asm.SUBSS: extSSE2, x86asm.SUBSD: extSSE2,
	x86asm.MULPS: extSSE2, x86asm.MULPD: extSSE2, x86asm.MULSS: extSSE2, x86asm.MULSD: extSSE2,
	x86asm.DIVPS: extSSE2, x86asm.DIVPD: extSSE2, x86asm.DIVSS: extSSE2, x86asm.DIVSD: extSSE2,
	x86asm.MINPS: extSSE2, x86asm.MINPD: extSSE2, x86asm.MINSS: extSSE2, x86asm.MINSD: extSSE2,
	x86asm.MAXPS: extSSE2, x86asm.MAXPD: extSSE2, x86asm.MAXSS: extSSE2, x86asm.MAXSD: extSSE2,
	x86asm.SQRTPS: extSSE2, x86asm.SQRTPD: extSSE2, x86asm.SQRTSS: extSSE2, x86asm.SQRTSD: extSSE2,
	x86asm.RCPPS: extSSE2, x86asm.RCPSS: extSSE2, x86asm.RSQRTPS: extSSE2, x86asm.RSQRTSS: extSSE2,

	// Logic.
	x86asm.ANDPS: extSSE2, x86asm.ANDPD: extSSE2, x86asm.ANDNPS: extSSE2, x86asm.ANDNPD: extSSE2,
	x86asm.ORPS: extSSE2, x86asm.ORPD: extSSE2, x86asm.XORPS: extSSE2, x86asm.XORPD: extSSE2,

	// Compares.
	x86asm.CMPPS: extSSE2, x86asm.CMPPD: extSSE2, x86asm.CMPSS: extSSE2, x86asm.CMPSD_XMM: extSSE2,
	x86asm.COMISS: extSSE2, x86asm.COMISD: extSSE2, x86asm.UCOMISS: extSSE2, x86asm.UCOMISD: extSSE2,

	// Shuffles and unpacking.
	x86asm.SHUFPS: extSSE2, x86asm.SHUFPD: extSSE2,
	x86asm.UNPCKHPS: extSSE2, x86asm.UNPCKHPD: extSSE2, x86asm.UNPCKLPS: extSSE2, x86asm.UNPCKLPD: extSSE2,

	// Conversions.
	x86asm.CVTDQ2PD: extSSE2, x86asm.CVTDQ2PS: extSSE2, x86asm.CVTPD2DQ: extSSE2, x86asm.CVTPD2PS: extSSE2,
	x86asm.CVTPS2DQ: extSSE2, x86asm.CVTPS2PD: extSSE2, x86asm.CVTSD2SI: extSSE2, x86asm.CVTSD2SS: extSSE2,
	x86asm.CVTSI2SD: extSSE2, x86asm.CVTSI2SS: extSSE2, x86asm.CVTSS2SD: extSSE2, x86asm.CVTSS2SI: extSSE2,
	x86asm.CVTTPD2DQ: extSSE2, x86asm.CVTTPS2DQ: extSSE2, x86asm.CVTTSD2SI: extSSE2, x86asm.CVTTSS2SI: extSSE2,

	// Integer SSE2.
	x86asm.PADDB: extSSE2, x86asm.PADDW: extSSE2, x86asm.PADDD: extSSE2, x86asm.PADDQ: extSSE2,
	x86asm.PADDSB: extSSE2, x86asm.PADDSW: extSSE2, x86asm.PADDUSB: extSSE2, x86asm.PADDUSW: extSSE2,
	x86asm.PSUBB: extSSE2, x86asm.PSUBW: extSSE2, x86asm.PSUBD: extSSE2, x86asm.PSUBQ: extSSE2,
	x86asm.PSUBSB: extSSE2, x86asm.PSUBSW: extSSE2, x86asm.PSUBUSB: extSSE2, x86asm.PSUBUSW: extSSE2,
	x86asm.PMULLW: extSSE2, x86asm.PMULHW: extSSE2, x86asm.PMULHUW: extSSE2, x86asm.PMULUDQ: extSSE2,
	x86asm.PMADDWD: extSSE2, x86asm.PSADBW: extSSE2, x86asm.PAVGB: extSSE2, x86asm.PAVGW: extSSE2,
	x86asm.PMINUB: extSSE2, x86asm.PMAXUB: extSSE2, x86asm.PMINSW: extSSE2, x86asm.PMAXSW: extSSE2,
	x86asm.PAND: extSSE2, x86asm.PANDN: extSSE2, x86asm.POR: extSSE2, x86asm.PXOR: extSSE2,
	x86asm.PCMPEQB: extSSE2, x86asm.PCMPEQW: extSSE2, x86asm.PCMPEQD: extSSE2,
	x86asm.PCMPGTB: extSSE2, x86asm.PCMPGTW: extSSE2, x86asm.PCMPGTD: extSSE2,
	x86asm.PSLLW: extSSE2, x86asm.PSLLD: extSSE2, x86asm.PSLLQ: extSSE2, x86asm.PSLLDQ: extSSE2,
	x86asm.PSRLW: extSSE2, x86asm.PSRLD: extSSE2, x86asm.PSRLQ: extSSE2, x86asm.PSRLDQ: extSSE2,
	x86asm.PSRAW: extSSE2, x86asm.PSRAD: extSSE2,
	x86asm.PACKSSWB: extSSE2, x86asm.PACKSSDW: extSSE2, x86asm.PACKUSWB: extSSE2,
	x86asm.PUNPCKHBW: extSSE2, x86asm.PUNPCKHWD: extSSE2, x86asm.PUNPCKHDQ: extSSE2, x86asm.PUNPCKHQDQ: extSSE2,
	x86asm.PUNPCKLBW: extSSE2, x86asm.PUNPCKLWD: extSSE2, x86asm.PUNPCKLDQ: extSSE2, x86asm.PUNPCKLQDQ: extSSE2,
	x86asm.PSHUFD: extSSE2, x86asm.PSHUFHW: extSSE2, x86asm.PSHUFLW: extSSE2,
	x86asm.PEXTRW: extSSE2, x86asm.PINSRW: extSSE2,

	// SSE3.
	x86asm.ADDSUBPS: extSSE3, x86asm.ADDSUBPD: extSSE3, x86asm.HADDPS: extSSE3, x86asm.HADDPD: extSSE3,
	x86asm.HSUBPS: extSSE3, x86asm.HSUBPD: extSSE3, x86asm.MOVSHDUP: extSSE3, x86asm.MOVSLDUP: extSSE3,
	x86asm.MOVDDUP: extSSE3, x86asm.LDDQU: extSSE3,

	// SSSE3.
	x86asm.PSHUFB: extSSSE3, x86asm.PHADDW: extSSSE3, x86asm.PHADDD: extSSSE3, x86asm.PHADDSW: extSSSE3,
	x86asm.PHSUBW: extSSSE3, x86asm.PHSUBD: extSSSE3, x86asm.PHSUBSW: extSSSE3, x86asm.PMADDUBSW: extSSSE3,
	x86asm.PMULHRSW: extSSSE3, x86asm.PSIGNB: extSSSE3, x86asm.PSIGNW: extSSSE3, x86asm.PSIGND: extSSSE3,
	x86asm.PABSB: extSSSE3, x86asm.PABSW: extSSSE3, x86asm.PABSD: extSSSE3, x86asm.PALIGNR: extSSSE3,

	// SSE4.1.
	x86asm.PMULLD: extSSE41, x86asm.PMULDQ: extSSE41, x86asm.PMINSB: extSSE41, x86asm.PMINSD: extSSE41,
	x86asm.PMINUW: extSSE41, x86asm.PMINUD: extSSE41, x86asm.PMAXSB: extSSE41, x86asm.PMAXSD: extSSE41,
	x86asm.PMAXUW: extSSE41, x86asm.PMAXUD: extSSE41, x86asm.PCMPEQQ: extSSE41, x86asm.PACKUSDW: extSSE41,
	x86asm.PMOVSXBW: extSSE41, x86asm.PMOVSXBD: extSSE41, x86asm.PMOVSXBQ: extSSE41, x86asm.PMOVSXWD: extSSE41,
	x86asm.PMOVSXWQ: extSSE41, x86asm.PMOVSXDQ: extSSE41, x86asm.PMOVZXBW: extSSE41, x86asm.PMOVZXBD: extSSE41,
	x86asm.PMOVZXBQ: extSSE41, x86asm.PMOVZXWD: extSSE41, x86asm.PMOVZXWQ: extSSE41, x86asm.PMOVZXDQ: extSSE41,
	x86asm.PBLENDW: extSSE41, x86asm.PBLENDVB: extSSE41, x86asm.BLENDPS: extSSE41, x86asm.BLENDPD: extSSE41,
	x86asm.BLENDVPS: extSSE41, x86asm.BLENDVPD: extSSE41, x86asm.PEXTRB: extSSE41, x86asm.PEXTRD: extSSE41,
	x86asm.PEXTRQ: extSSE41, x86asm.PINSRB: extSSE41, x86asm.PINSRD: extSSE41, x86asm.PINSRQ: extSSE41,
	x86asm.EXTRACTPS: extSSE41, x86asm.INSERTPS: extSSE41, x86asm.PTEST: extSSE41, x86asm.PHMINPOSUW: extSSE41,
	x86asm.MPSADBW: extSSE41, x86asm.DPPS: extSSE41, x86asm.DPPD: extSSE41, x86asm.ROUNDPS: extSSE41,
	x86asm.ROUNDPD: extSSE41, x86asm.ROUNDSS: extSSE41, x86asm.ROUNDSD: extSSE41, x86asm.MOVNTDQA: extSSE41,

	// SSE4.2.
	x86asm.PCMPGTQ: extSSE42, x86asm.PCMPESTRI: extSSE42, x86asm.PCMPESTRM: extSSE42,
	x86asm.PCMPISTRI: extSSE42, x86asm.PCMPISTRM: extSSE42,
}

// unalignedOps are the legacy SSE instructions whose 16-byte memory
// operand may be unaligned. With every other one, the CPU raises #GP unless
// the operand is 16-byte aligned (Intel SDM volume 1, 12.4 and 12.10).
var unalignedOps = map[x86asm.Op]bool{
	x86asm.MOVUPS: true, x86asm.MOVUPD: true, x86asm.MOVDQU: true, x86asm.LDDQU: true,
	x86asm.PCMPESTRI: true, x86asm.PCMPESTRM: true, x86asm.PCMPISTRI: true, x86asm.PCMPISTRM: true,
}

// dataInsn is a rejected instruction the monitor can complete: the
// decoded instruction and its re-encoding for the host, with the memory
// operand turned into a RIP-relative reference.
type dataInsn struct {
	Inst x86asm.Inst
	Ext  extension

	// Code is the instruction as the host runs it. With a memory operand,
	// its ModRM byte selects RIP-relative addressing and the four bytes at
	// DispOffset hold the displacement, which the executor fills in.
	Code       []byte
	DispOffset int

	// Mem is the guest's memory operand, if HasMem: MemBytes bytes that
	// the instruction reads, and writes back if Store.
	HasMem   bool
	Mem      x86asm.Mem
	MemBytes int
	Store    bool
	Aligned  bool // the operand must be 16-byte aligned
}

// errNotData is the error of an instruction the monitor does not complete.
var errNotData = errors.New("not an SSE data instruction the monitor completes")

// planData decodes the instruction at the start of b and decides whether
// the monitor may complete it by running it on the host. When it may not,
// the error wraps errNotData and gives the reason.
func planData(b []byte) (dataInsn, error) {
	inst, err := x86asm.Decode(b, 64)
	if err != nil {
		return dataInsn{}, fmt.Errorf("%w: %v", errNotData, err)
	}
	if inst.Op == 0 {
		return dataInsn{}, fmt.Errorf("%w: the decoder does not recognize these bytes", errNotData)
	}
	ext, ok := dataAllowlist[inst.Op]
	if !ok {
		return dataInsn{}, fmt.Errorf("%w: %s is not on the allowlist", errNotData, inst.Op)
	}
	d := dataInsn{Inst: inst, Ext: ext}

	for _, arg := range inst.Args {
		switch a := arg.(type) {
		case nil, x86asm.Imm:
		case x86asm.Reg:
			if err := checkRegister(a); err != nil {
				return dataInsn{}, fmt.Errorf("%w: %s: %v", errNotData, inst.Op, err)
			}
		case x86asm.Mem:
			if d.HasMem {
				return dataInsn{}, fmt.Errorf("%w: %s has two memory operands", errNotData, inst.Op)
			}
			d.HasMem, d.Mem = true, a
		default:
			return dataInsn{}, fmt.Errorf("%w: %s has an operand of type %T", errNotData, inst.Op, arg)
		}
	}

	if err := checkForm(&inst, ext, d.HasMem); err != nil {
		return dataInsn{}, fmt.Errorf("%w: %s: %v", errNotData, inst.Op, err)
	}
	layout, err := scanEncoding(b[:inst.Len])
	if err != nil {
		return dataInsn{}, fmt.Errorf("%w: %s: %v", errNotData, inst.Op, err)
	}
	if d.HasMem != layout.hasMem {
		return dataInsn{}, fmt.Errorf("%w: %s: the decoder and the ModRM byte disagree on a memory operand", errNotData, inst.Op)
	}
	if !d.HasMem {
		d.Code = append([]byte(nil), b[:inst.Len]...)
		d.DispOffset = -1
		return d, nil
	}

	d.MemBytes = inst.MemBytes
	if d.MemBytes <= 0 || d.MemBytes > 16 {
		return dataInsn{}, fmt.Errorf("%w: %s: memory operand of %d bytes", errNotData, inst.Op, d.MemBytes)
	}
	_, d.Store = inst.Args[0].(x86asm.Mem)
	d.Aligned = d.MemBytes == 16 && !unalignedOps[inst.Op]
	d.Code, d.DispOffset = layout.ripRelative(b[:inst.Len])
	return d, nil
}

// memoryOnly are the instructions whose register form raises #UD.
var memoryOnly = map[x86asm.Op]bool{
	x86asm.MOVLPS: true, x86asm.MOVHPS: true, x86asm.MOVLPD: true, x86asm.MOVHPD: true,
	x86asm.MOVNTPS: true, x86asm.MOVNTPD: true, x86asm.MOVNTDQ: true, x86asm.LDDQU: true, x86asm.MOVNTDQA: true,
}

// registerOnly are the instructions whose memory form raises #UD or is
// another instruction. checkForm also checks the shifts by an immediate and
// PEXTRW's 0F C5 form.
var registerOnly = map[x86asm.Op]bool{
	x86asm.MOVHLPS: true, x86asm.MOVLHPS: true, x86asm.MOVMSKPS: true, x86asm.MOVMSKPD: true,
	x86asm.PMOVMSKB: true, x86asm.PSLLDQ: true, x86asm.PSRLDQ: true,
}

// immediateShifts are the shifts whose immediate forms (0F 71 to 73) take
// a register only.
var immediateShifts = map[x86asm.Op]bool{
	x86asm.PSLLW: true, x86asm.PSLLD: true, x86asm.PSLLQ: true, x86asm.PSRLW: true,
	x86asm.PSRLD: true, x86asm.PSRLQ: true, x86asm.PSRAW: true, x86asm.PSRAD: true,
}

// checkForm rejects encodings that x86asm decodes but for which the CPU
// raises #UD, which would be SIGILL in the monitor (Intel SDM volume 2,
// chapters 3 to 5, each instruction's encoding table). Those are a 66, F2
// or F3 prefix that is not the instruction's mandatory prefix, an SSSE3 or
// SSE4 instruction without its 66 prefix, and register or memory forms the
// instruction does not have. FuzzPlanData runs what planData accepts on
// the host.
func checkForm(inst *x86asm.Inst, ext extension, hasMem bool) error {
	has66 := false
	for _, p := range inst.Prefix {
		if p == 0 {
			break
		}
		switch c := byte(p); c {
		case 0x66, 0xf2, 0xf3:
			if p&x86asm.PrefixImplicit == 0 {
				return fmt.Errorf("prefix %02x is not its mandatory prefix", c)
			}
			has66 = has66 || c == 0x66
		}
	}
	hasImm := false
	for _, a := range inst.Args {
		if _, ok := a.(x86asm.Imm); ok {
			hasImm = true
		}
	}
	pextrwC5 := inst.Op == x86asm.PEXTRW && inst.Opcode>>16 == 0x0fc5
	switch {
	case ext >= extSSSE3 && !has66:
		return errors.New("the 66 prefix it needs is missing")
	case memoryOnly[inst.Op] && !hasMem:
		return errors.New("its register form does not exist")
	case hasMem && (registerOnly[inst.Op] || pextrwC5 || immediateShifts[inst.Op] && hasImm):
		return errors.New("its memory form does not exist")
	}
	return nil
}

// checkRegister accepts the registers the executor can hold the guest's
// values in: XMM0 to XMM15 and the general-purpose registers but the
// stack pointer, which is the host's while the instruction runs.
func checkRegister(r x86asm.Reg) error {
	switch {
	case r >= x86asm.X0 && r <= x86asm.X15:
		return nil
	case r == x86asm.SPB || r == x86asm.SP || r == x86asm.ESP || r == x86asm.RSP:
		return errors.New("uses the stack pointer")
	case r >= x86asm.AL && r <= x86asm.R15:
		return nil
	}
	return fmt.Errorf("uses register %s", r)
}

// encoding is the layout of a legacy-encoded (not VEX) SSE instruction:
// the offsets of its prefixes, opcode, ModRM byte and immediate.
type encoding struct {
	keep     []int // offsets of the prefix bytes the re-encoding keeps
	rex      int   // offset of the REX prefix, or -1
	opcode   int   // offset of the 0F escape byte
	modrm    int   // offset of the ModRM byte
	hasMem   bool  // ModRM selects a memory operand
	immStart int   // offset of the immediate, or the length without one
}

// scanEncoding finds the parts of the instruction b, which must be exactly
// one instruction: legacy prefixes, an optional REX prefix, the 0F, 0F 38
// or 0F 3A opcode, ModRM, optional SIB and displacement, and at most one
// immediate byte. Segment overrides and the address-size prefix are left
// out of keep, since the re-encoded operand is RIP-relative and the guest
// address is computed apart; LOCK makes SSE instructions raise #UD, so it
// is refused.
func scanEncoding(b []byte) (encoding, error) {
	e := encoding{rex: -1}
	i := 0
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case 0x66, 0xf2, 0xf3:
			e.keep = append(e.keep, i)
			continue
		case 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0x67:
			continue
		case 0xf0:
			return encoding{}, errors.New("a LOCK prefix makes it raise #UD")
		}
		break
	}

	if i < len(b) && b[i]&0xf0 == 0x40 {
		e.rex = i
		i++
	}

	if i >= len(b) || b[i] != 0x0f {
		return encoding{}, errors.New("not a two- or three-byte opcode after the prefixes")
	}
	e.opcode = i
	i++
	if i < len(b) && (b[i] == 0x38 || b[i] == 0x3a) {
		i++
	}
	i++ // the opcode byte itself

	if i >= len(b) {
		return encoding{}, errors.New("no ModRM byte")
	}
	e.modrm = i
	modrm := b[i]
	i++
	mod, rm := modrm>>6, modrm&7
	if mod != 3 {
		e.hasMem = true
		if rm == 4 { // a SIB byte follows
			if i >= len(b) {
				return encoding{}, errors.New("no SIB byte")
			}
			sib := b[i]
			i++
			if mod == 0 && sib&7 == 5 {
				i += 4
			}
		}
		switch {
		case mod == 1:
			i++
		case mod == 2, mod == 0 && rm == 5:
			i += 4
		}
	}

	if i > len(b) || len(b)-i > 1 {
		return encoding{}, fmt.Errorf("%d bytes do not end in at most one immediate byte after ModRM", len(b))
	}
	e.immStart = i
	return e, nil
}

// ripRelative re-encodes b with its memory operand as [RIP+disp32]: ModRM's
// mod 00 and r/m 101 select RIP-relative addressing in 64-bit mode (Intel
// SDM volume 2, 2.2.1.6), with no SIB byte. REX.X and REX.B no longer
// name registers and are cleared. The displacement is zero; it returns
// where it lies.
func (e encoding) ripRelative(b []byte) (code []byte, dispOffset int) {
	for _, k := range e.keep {
		code = append(code, b[k])
	}
	if e.rex >= 0 {
		code = append(code, b[e.rex]&^0x03)
	}
	code = append(code, b[e.opcode:e.modrm]...)
	code = append(code, b[e.modrm]&0x38|0x05)
	dispOffset = len(code)
	code = append(code, 0, 0, 0, 0)
	code = append(code, b[e.immStart:]...)
	return code, dispOffset
}
