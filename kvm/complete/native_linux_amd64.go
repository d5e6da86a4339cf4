package complete

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/cpu"
	"golang.org/x/sys/unix"

	"github.com/osvm-project/osvm/kvm"
)

// callTrampoline calls the trampoline at entry (native_amd64.s).
//
//go:noescape
func callTrampoline(entry uintptr)

// nativeExecutor runs guests' SSE instructions on the host CPU, one at a
// time. Its code region is a memfd mapped read-only and executable; slots
// are written with pwrite(2) and reused for the same instruction bytes.
type nativeExecutor struct {
	mu    sync.Mutex
	memfd int
	code  unsafe.Pointer      // start of the code region
	data  []byte              // the data page, right after the code region
	slots map[string]int      // slot number by instruction bytes
	owner [nativeSlots]string // instruction bytes by slot number
	next  int                 // the slot to fill next, round robin once all are used
}

// newNativeExecutor maps the code region and the data page and writes the
// trampoline. The host must save SSE state with XSAVE.
func newNativeExecutor() (*nativeExecutor, error) {
	if !cpu.X86.HasOSXSAVE {
		return nil, errors.New("the host CPU or kernel does not enable XSAVE, which running guest SSE instructions needs")
	}
	// MFD_EXEC requests an executable memfd where the vm.memfd_noexec
	// sysctl would seal it non-executable (Linux 6.3 and later). Older
	// kernels reject the flag with EINVAL and make every memfd executable
	// (memfd_create(2)).
	fd, err := unix.MemfdCreate("osvm-sse-completion", unix.MFD_CLOEXEC|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate("osvm-sse-completion", unix.MFD_CLOEXEC)
	}
	if errors.Is(err, unix.EACCES) {
		return nil, fmt.Errorf("memfd_create for the SSE completion code: %w (the sysctl vm.memfd_noexec=2 forbids executable memfds; set it to 0 or 1)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create for the SSE completion code: %w", err)
	}
	x := &nativeExecutor{memfd: fd, slots: make(map[string]int)}
	if err := x.mapRegions(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if _, err := unix.Pwrite(fd, trampolineCode(), 0); err != nil {
		x.close()
		return nil, fmt.Errorf("write the SSE completion trampoline: %w", err)
	}
	return x, nil
}

// mapRegions reserves the code region and the data page together, so
// that RIP-relative displacements between them stay small, then maps the
// memfd over the first and anonymous memory over the second.
func (x *nativeExecutor) mapRegions() error {
	if err := unix.Ftruncate(x.memfd, nativeCodeSize); err != nil {
		return fmt.Errorf("size the SSE completion memfd: %w", err)
	}
	total := uintptr(nativeCodeSize + nativeDataSize)
	base, err := unix.MmapPtr(-1, 0, nil, total, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("reserve %d bytes for SSE completion: %w", total, err)
	}
	if _, err := unix.MmapPtr(x.memfd, 0, base, nativeCodeSize, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_SHARED|unix.MAP_FIXED); err != nil {
		unix.MunmapPtr(base, total)
		return fmt.Errorf("map the SSE completion code executable: %w", err)
	}
	dataAddr := unsafe.Add(base, nativeCodeSize)
	if _, err := unix.MmapPtr(-1, 0, dataAddr, nativeDataSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED); err != nil {
		unix.MunmapPtr(base, total)
		return fmt.Errorf("map the SSE completion data page: %w", err)
	}
	x.code = base
	x.data = unsafe.Slice((*byte)(dataAddr), nativeDataSize)
	return nil
}

// close unmaps both regions and closes the memfd. It takes the lock, so
// that no vCPU is inside the trampoline, and does nothing a second time.
func (x *nativeExecutor) close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.memfd < 0 {
		return nil
	}
	var errs []error
	if x.code != nil {
		if err := unix.MunmapPtr(x.code, nativeCodeSize+nativeDataSize); err != nil {
			errs = append(errs, fmt.Errorf("unmap the SSE completion regions: %w", err))
		}
		x.code, x.data = nil, nil
	}
	if err := unix.Close(x.memfd); err != nil {
		errs = append(errs, fmt.Errorf("close the SSE completion memfd: %w", err))
	}
	x.memfd = -1
	return errors.Join(errs...)
}

// slot returns the address of a slot holding d, writing one if needed.
func (x *nativeExecutor) slot(d *dataInsn) (uintptr, error) {
	key := string(d.Code)
	n, ok := x.slots[key]
	if !ok {
		n = x.next
		x.next = (x.next + 1) % nativeSlots
		if old, used := x.owner[n], x.slots[x.owner[n]] == n; used {
			delete(x.slots, old)
		}
		if _, err := unix.Pwrite(x.memfd, slotCode(d, n), int64(nativeSlotBase+n*nativeSlotSize)); err != nil {
			return 0, fmt.Errorf("write %s into an SSE completion slot: %w", d.Inst.Op, err)
		}
		x.slots[key], x.owner[n] = n, key
	}
	return uintptr(x.code) + uintptr(nativeSlotBase+n*nativeSlotSize), nil
}

// guestRegOrder lists the vCPU's general-purpose registers by x86 register
// number.
func guestRegOrder(r *kvm.Regs) [16]*uint64 {
	return [16]*uint64{
		&r.RAX, &r.RCX, &r.RDX, &r.RBX, &r.RSP, &r.RBP, &r.RSI, &r.RDI,
		&r.R8, &r.R9, &r.R10, &r.R11, &r.R12, &r.R13, &r.R14, &r.R15,
	}
}

// Arithmetic flags of RFLAGS: CF, PF, AF, ZF, SF and OF. Bit 1 is always
// set.
const (
	flagsArithmetic = 0x8d5
	flagsReserved   = 0x2
)

// run executes d on the host with the guest's registers regs, its SSE
// state in legacy (the 512-byte legacy region of an XSAVE area, whose
// MXCSR must have every exception masked) and its memory operand in
// operand. It updates all three with the results.
func (x *nativeExecutor) run(d *dataInsn, regs *kvm.Regs, legacy, operand []byte) error {
	x.mu.Lock()
	defer x.mu.Unlock()

	entry, err := x.slot(d)
	if err != nil {
		return err
	}

	gprs := guestRegOrder(regs)
	for r, p := range gprs {
		binary.LittleEndian.PutUint64(x.data[dataGuestRegs+8*r:], *p)
	}
	binary.LittleEndian.PutUint64(x.data[dataFlagsIn:], regs.RFLAGS&flagsArithmetic|flagsReserved)
	binary.LittleEndian.PutUint64(x.data[dataTarget:], uint64(entry))

	in := x.data[dataGuestIn : dataGuestIn+xsaveAVXOffset]
	copy(in[:xsaveLegacySize], legacy)
	clear(in[xsaveHeader:])
	binary.LittleEndian.PutUint64(in[xsaveHeader:], xsaveSSEOnly)
	out := x.data[dataGuestOut : dataGuestOut+xsaveAVXOffset]
	clear(out)
	// XSAVE writes only XSTATE_BV of the host area's header; XRSTOR
	// raises #GP unless the rest is zero.
	clear(x.data[dataHostArea+xsaveHeader+8 : dataHostArea+xsaveHeader+xsaveHeaderSize])

	mem := x.data[dataMemory : dataMemory+16]
	clear(mem)
	copy(mem, operand)

	callTrampoline(uintptr(x.code))

	for r, p := range gprs {
		if r != regRSP {
			*p = binary.LittleEndian.Uint64(x.data[dataGuestRegs+8*r:])
		}
	}
	flags := binary.LittleEndian.Uint64(x.data[dataFlagsOut:])
	regs.RFLAGS = regs.RFLAGS&^flagsArithmetic | flags&flagsArithmetic

	// MXCSR, then XMM0 to XMM15 (Intel SDM volume 1, table 10-2).
	copy(legacy[24:28], out[24:28])
	copy(legacy[160:416], out[160:416])
	copy(operand, mem)
	return nil
}
