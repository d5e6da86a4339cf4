//go:build amd64

package hermit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/osvm-project/osvm/kvm"
	"github.com/osvm-project/osvm/kvm/complete"
)

// Config describes the virtual machine Run starts for a kernel.
type Config struct {
	// Memory is the guest RAM in bytes, a multiple of 2 MiB. 0 means
	// DefaultMemory (64 MiB). Interface version 1 allows up to 3 GiB,
	// versions 2 and 3 up to 60 GiB.
	Memory uint64

	// CPUs is the number of vCPUs, each run by its own goroutine. 0 means
	// 1.
	CPUs int

	// Program is argv[0] of the application, as the Cmdsize and Cmdval
	// hypercalls pass it. Empty means "hermit-app".
	Program string

	// Args are the application's arguments after argv[0].
	Args []string

	// Env is the application's environment, entries of the form
	// "KEY=VALUE".
	Env []string

	// Mounts maps guest path prefixes, such as "/data", to host folders
	// that the file hypercalls may use. Paths outside every mount fail with
	// ENOENT. nil gives the guest no files.
	Mounts map[string]Mount

	// Stdout and Stderr receive the application's writes to descriptors 1
	// and 2. nil discards them.
	Stdout, Stderr io.Writer

	// Console receives the kernel's log, which kernels write through the
	// serial hypercalls, line by line. nil means Stdout.
	Console io.Writer

	// Stats, if not nil, receives counts of the run's VM exits.
	Stats *Stats
}

// Stats counts what happened during one Run. Run updates it with atomic
// operations, and the counts are final when Run returns.
type Stats struct {
	// Exits counts the exits to user space that Run handled: port I/O,
	// MMIO and internal errors, over all vCPUs.
	Exits atomic.Uint64
	// Hypercalls counts the hypercalls among them.
	Hypercalls atomic.Uint64
	// Completed counts the instructions that KVM's emulator rejected and
	// package kvm/complete completed (on PVM hosts: SSE data
	// instructions, the XSAVE family, LDMXCSR and STMXCSR; XGETBV is not
	// counted).
	Completed atomic.Uint64
}

// minEnvEntries is how many environment entries Cmdval always passes.
// Hermit 0.6.9 kernels build their environment array from Cmdval without a
// NULL terminator and fault (#GP in the C library) with zero to two entries.
// uhyve passes the host's whole environment and never meets this. Four
// entries leave a margin.
const minEnvEntries = 4

// defaultProgram is argv[0] when Config.Program is empty.
const defaultProgram = "hermit-app"

// cmdline returns argv and the padded environment for Cmdsize and Cmdval,
// and checks them.
func (c Config) cmdline() (argv, env []string, err error) {
	program := c.Program
	if program == "" {
		program = defaultProgram
	}
	argv = append([]string{program}, c.Args...)
	if len(argv) > maxArgs {
		return nil, nil, fmt.Errorf("hermit: %d arguments, at most %d fit the Cmdsize hypercall", len(argv), maxArgs)
	}
	if len(c.Env) > maxArgs {
		return nil, nil, fmt.Errorf("hermit: %d environment entries, at most %d fit the Cmdsize hypercall", len(c.Env), maxArgs)
	}
	for _, e := range c.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return nil, nil, fmt.Errorf("hermit: environment entry %q is not of the form KEY=VALUE", e)
		}
	}
	for _, s := range append(append([]string(nil), argv...), c.Env...) {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, nil, fmt.Errorf("hermit: argument or environment entry %q contains a NUL byte", s)
		}
	}
	env = append([]string(nil), c.Env...)
	for i := 0; len(env) < minEnvEntries; i++ {
		env = append(env, fmt.Sprintf("HERMIT_ENV_PADDING_%d=1", i))
	}
	return argv, env, nil
}

// Run boots img in a new KVM virtual machine configured by cfg and serves
// its hypercalls until the kernel makes the Exit hypercall, whose status it
// returns with a nil error. It returns -1 and an error when the guest
// cannot go on: a triple fault, an instruction KVM cannot emulate, a
// hypercall with bad parameters or on an unknown port, an access to an
// unbacked guest-physical address, or ctx ending. Errors from a vCPU are
// *VCPUError values that include the vCPU's registers.
//
// Run needs read-write access to /dev/kvm. It closes the VM and every file
// the guest opened before it returns.
func Run(ctx context.Context, img *Image, cfg Config) (int, error) {
	m, err := Boot(img, cfg)
	if err != nil {
		return -1, err
	}
	defer m.Close()
	return m.Run(ctx)
}

// Machine is a kernel loaded into a new virtual machine, ready to run. Boot
// and Machine.Run split Run in two, so that a caller can confine itself in
// between: after Boot, running the guest needs no new access to /dev/kvm
// or to the image, only to the mounts' folders.
type Machine struct {
	m *machine
}

// Boot opens /dev/kvm, creates the virtual machine for img and loads it as
// cfg specifies, without running it.
func Boot(img *Image, cfg Config) (*Machine, error) {
	m, err := newMachine(img, cfg)
	if err != nil {
		return nil, err
	}
	return &Machine{m: m}, nil
}

// BootFile boots the kernel at path as Boot does, after the checks of
// InspectFile. It reads the file into an anonymous mapping outside the Go
// heap and unmaps it once the kernel is in guest memory. InspectFile's copy
// lives in the Go heap, whose pages the runtime keeps after the copy is
// garbage, so it would stay resident for as long as the guest runs. With
// InspectFile and Boot, osvm-launch stayed 7 MiB larger for a 3 MB kernel.
func BootFile(path string, cfg Config) (*Machine, error) {
	data, unmap, err := readImageFile(path)
	if err != nil {
		return nil, err
	}
	defer unmap()
	img, err := Inspect(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m, err := Boot(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("boot %s: %w", path, err)
	}
	return m, nil
}

// readImageFile reads the regular file at path, at most MaxImageSize bytes,
// into a private anonymous mapping. It returns the file's contents and a
// function that unmaps them.
func readImageFile(path string) (data []byte, unmap func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("hermit: open kernel image: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("hermit: kernel image: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("hermit: kernel image %s is not a regular file (mode %v)", path, info.Mode())
	}
	if info.Size() > MaxImageSize {
		return nil, nil, fmt.Errorf("hermit: kernel image %s has %d bytes, more than the %d bytes BootFile reads", path, info.Size(), MaxImageSize)
	}

	// mmap rejects a length of 0. An empty file still gets a mapping, so
	// that Inspect rejects it with the reason.
	mapping, err := unix.Mmap(-1, 0, max(int(info.Size()), 1), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, fmt.Errorf("hermit: map %d bytes for kernel image %s: %w", info.Size(), path, err)
	}
	unmap = func() { unix.Munmap(mapping) }
	data = mapping[:info.Size()]
	if _, err := io.ReadFull(f, data); err != nil {
		unmap()
		return nil, nil, fmt.Errorf("hermit: read kernel image %s (%d bytes): %w", path, len(data), err)
	}
	return data, unmap, nil
}

// Run runs the guest as Run does. Call it once.
func (m *Machine) Run(ctx context.Context) (int, error) {
	return m.m.run(ctx)
}

// Close releases the virtual machine and every file the guest opened.
func (m *Machine) Close() {
	m.m.close()
}

// machine is one booted kernel: its VM, vCPUs, hypercall services and
// state shared by the vCPU goroutines.
type machine struct {
	vm               *kvm.VM
	vcpus            []*kvm.VCPU
	layout           layout
	interfaceVersion int
	services         *services
	stats            *Stats
	completer        *complete.Completer

	pciAddress atomic.Uint32 // the last value written to port 0xcf8
	exitCode   atomic.Int32
	exited     atomic.Bool
}

// newMachine creates the VM, writes the kernel and its boot structures and
// sets up the vCPUs.
func newMachine(img *Image, cfg Config) (m *machine, err error) {
	memSize := cfg.Memory
	if memSize == 0 {
		memSize = DefaultMemory
	}
	cpus := max(cfg.CPUs, 1)
	l, err := planLayout(img, memSize)
	if err != nil {
		return nil, err
	}
	argv, env, err := cfg.cmdline()
	if err != nil {
		return nil, err
	}
	bootargs, err := BootArgs(cfg.Env, cfg.Args)
	if err != nil {
		return nil, err
	}
	fs, err := newFileSystem(cfg.Mounts)
	if err != nil {
		return nil, err
	}

	m = &machine{layout: l, interfaceVersion: img.InterfaceVersion, stats: cfg.Stats}
	if m.stats == nil {
		m.stats = new(Stats)
	}
	stdout, stderr, console := orDiscard(cfg.Stdout), orDiscard(cfg.Stderr), cfg.Console
	if console == nil {
		console = stdout
	}
	m.services = &services{fs: fs, stdout: stdout, stderr: stderr, console: &lineWriter{w: console}, argv: argv, env: env}
	defer func() {
		if err != nil {
			m.close()
		}
	}()

	sys, err := kvm.Open()
	if err != nil {
		return nil, fmt.Errorf("hermit: %w", err)
	}
	defer sys.Close()
	if m.vm, err = sys.CreateVM(); err != nil {
		return nil, fmt.Errorf("hermit: %w", err)
	}
	m.services.mem = m.vm.Memory()
	m.completer = complete.New(m.vm.Memory(), &m.stats.Completed)
	if err := m.createDevices(sys, cpus); err != nil {
		return nil, err
	}
	if err := m.vm.AddMemory(l.RAMStart, l.RAMSize); err != nil {
		return nil, fmt.Errorf("hermit: guest RAM: %w", err)
	}
	loaded, err := img.Load(m.vm.Memory(), l.KernelBias)
	if err != nil {
		return nil, err
	}

	for i := range cpus {
		v, err := m.vm.CreateVCPU(i)
		if err != nil {
			return nil, fmt.Errorf("hermit: %w", err)
		}
		m.vcpus = append(m.vcpus, v)
	}
	tscKHz, err := m.vcpus[0].TSCKHz()
	if err != nil {
		return nil, fmt.Errorf("hermit: TSC frequency for the boot information: %w", err)
	}
	if err := m.writeBootData(loaded, cpus, tscKHz, bootargs, fs.mountPoints()); err != nil {
		return nil, err
	}

	supported, err := sys.SupportedCPUID()
	if err != nil {
		return nil, fmt.Errorf("hermit: %w", err)
	}
	for _, v := range m.vcpus {
		if err := setupVCPU(v, l, loaded.Entry, guestCPUID(supported, v.ID(), tscKHz)); err != nil {
			return nil, fmt.Errorf("hermit: set up vCPU %d: %w", v.ID(), err)
		}
	}
	return m, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// createDevices creates the in-kernel interrupt controllers, which Hermit
// programs directly (PIC ports, IOAPIC and LAPIC), and enables 32-bit x2APIC
// ids, as uhyve does.
func (m *machine) createDevices(sys *kvm.System, cpus int) error {
	maxCPUs, err := sys.CheckExtension(kvm.CapMaxVCPUs)
	if err != nil {
		return fmt.Errorf("hermit: %w", err)
	}
	if maxCPUs > 0 && cpus > maxCPUs {
		return fmt.Errorf("hermit: %d vCPUs requested, but KVM allows at most %d (KVM_CAP_MAX_VCPUS)", cpus, maxCPUs)
	}
	if err := m.vm.CreateIRQChip(); err != nil {
		return fmt.Errorf("hermit: %w", err)
	}
	if n, err := m.vm.CheckExtension(kvm.CapX2APICAPI); err == nil && n > 0 {
		if err := m.vm.EnableCap(kvm.CapX2APICAPI, kvm.X2APICUse32BitIDs|kvm.X2APICDisableBroadcastQuirk); err != nil {
			return fmt.Errorf("hermit: %w", err)
		}
	}
	return nil
}

// writeBootData writes the GDT, the page tables, the FDT and the boot
// information into guest memory.
func (m *machine) writeBootData(loaded Loaded, cpus int, tscKHz uint32, bootargs string, mounts []string) error {
	l := m.layout
	tables, err := l.pageTables()
	if err != nil {
		return err
	}
	fdt, err := DeviceTree{
		MemoryStart: l.RAMStart, MemorySize: l.RAMSize, BootArgs: bootargs,
		TSCKHz: tscKHz, Mounts: mounts, CPUs: cpus,
	}.Encode()
	if err != nil {
		return err
	}
	if len(fdt) > maxFDTSize {
		return fmt.Errorf("hermit: device tree of %d bytes exceeds the %d bytes reserved for it: shorten the arguments and environment", len(fdt), maxFDTSize)
	}
	serial := uint16(portSerialV1)
	if m.interfaceVersion >= 2 {
		serial = portSerialV2
	}
	bootInfo, err := BootInfo{
		PhysStart: l.RAMStart, PhysEnd: l.RAMStart + l.RAMSize,
		SerialPortBase: serial,
		DeviceTree:     l.FDT,
		KernelStart:    loaded.Start, KernelEnd: loaded.End,
		TLS:        loaded.TLS,
		NumCPUs:    uint64(cpus),
		CPUFreqKHz: tscKHz,
		BootTime:   time.Now(),
	}.Encode()
	if err != nil {
		return err
	}

	mem := m.vm.Memory()
	for _, w := range []struct {
		what string
		addr uint64
		data []byte
	}{
		{"GDT", l.GDT, kvm.FlatGDT()},
		{"page tables", l.PML4, tables},
		{"device tree", l.FDT, fdt},
		{"boot information", l.BootInfo, bootInfo},
	} {
		if _, err := mem.WriteAt(w.data, int64(w.addr)); err != nil {
			return fmt.Errorf("hermit: write %s: %w", w.what, err)
		}
	}
	return nil
}

// close releases the VM and the guest's files.
func (m *machine) close() {
	if m.completer != nil {
		m.completer.Close()
	}
	if m.vm != nil {
		m.vm.Close()
	}
	if m.services != nil && m.services.fs != nil {
		m.services.fs.close()
	}
}

// run runs every vCPU on its own goroutine until the guest exits or one
// vCPU fails, and then stops the others.
func (m *machine) run(ctx context.Context) (int, error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	errs := make([]error, len(m.vcpus))
	var wg sync.WaitGroup
	for i, v := range m.vcpus {
		wg.Go(func() {
			err := v.Run(runCtx, m.handlers(v))
			if err == nil {
				cancel(errGuestExited)
				return
			}
			errs[i] = m.vcpuError(v, err)
			cancel(errs[i])
		})
	}
	wg.Wait()
	m.services.console.Flush()

	if m.exited.Load() {
		return int(m.exitCode.Load()), nil
	}
	var first *VCPUError
	if errors.As(context.Cause(runCtx), &first) {
		return -1, first
	}
	// ctx ended the run: report the boot CPU, where the guest's main work
	// usually runs.
	return -1, errs[0]
}

// vcpuError wraps the error that ended v's Run with v's registers.
func (m *machine) vcpuError(v *kvm.VCPU, err error) *VCPUError {
	e := &VCPUError{VCPU: v.ID(), Err: err}
	var exit *kvm.ExitError
	if errors.As(err, &exit) {
		e.Instruction = exit.RejectedInstruction()
	}
	regs, rerr := v.Regs()
	sregs, serr := v.SRegs()
	if rerr == nil && serr == nil {
		e.Regs = Registers{
			RAX: regs.RAX, RBX: regs.RBX, RCX: regs.RCX, RDX: regs.RDX,
			RSI: regs.RSI, RDI: regs.RDI, RSP: regs.RSP, RBP: regs.RBP,
			R8: regs.R8, R9: regs.R9, R10: regs.R10, R11: regs.R11,
			R12: regs.R12, R13: regs.R13, R14: regs.R14, R15: regs.R15,
			RIP: regs.RIP, RFLAGS: regs.RFLAGS,
			CR0: sregs.CR0, CR2: sregs.CR2, CR3: sregs.CR3, CR4: sregs.CR4, EFER: sregs.EFER,
			CS: sregs.CS.Selector, SS: sregs.SS.Selector,
		}
		e.HaveRegs = true
	}
	return e
}

// PCI configuration mechanism #1 ports. No PCI device exists, so reads of
// the data port return all ones, which means "no device" to a bus scan.
const (
	portPCIAddress = 0xcf8
	portPCIData    = 0xcfc
)

// handlers returns the exit handlers for vCPU v.
func (m *machine) handlers(v *kvm.VCPU) kvm.Handlers {
	return kvm.Handlers{
		PortOut: func(p kvm.PortIO) error {
			m.stats.Exits.Add(1)
			return m.portOut(v, p)
		},
		PortIn: func(p kvm.PortIO) error {
			m.stats.Exits.Add(1)
			return m.portIn(p)
		},
		MMIORead: func(addr uint64, data []byte) error {
			m.stats.Exits.Add(1)
			return fmt.Errorf("the guest read %d bytes at guest-physical %#x, which is neither RAM nor an emulated device", len(data), addr)
		},
		MMIOWrite: func(addr uint64, data []byte) error {
			m.stats.Exits.Add(1)
			return fmt.Errorf("the guest wrote %d bytes (% x) at guest-physical %#x, which is neither RAM nor an emulated device", len(data), data, addr)
		},
		InternalError: func(e *kvm.ExitError) error {
			m.stats.Exits.Add(1)
			if e.Suberror == kvm.InternalErrorEmulation {
				return m.completer.Complete(v, e)
			}
			return e
		},
	}
}

// portIn serves IN instructions: only the PCI configuration ports exist.
func (m *machine) portIn(p kvm.PortIO) error {
	switch {
	case p.Port == portPCIAddress && p.Size == 4:
		for i := 0; i+4 <= len(p.Data); i += 4 {
			binary.LittleEndian.PutUint32(p.Data[i:], m.pciAddress.Load())
		}
		return nil
	case p.Port >= portPCIData && p.Port < portPCIData+4:
		for i := range p.Data {
			p.Data[i] = 0xff
		}
		return nil
	}
	return fmt.Errorf("IN from unknown port %#x (%d bytes): no emulated device uses it", p.Port, p.Size)
}

// portOut serves OUT instructions: hypercalls and the PCI configuration
// ports.
func (m *machine) portOut(v *kvm.VCPU, p kvm.PortIO) error {
	switch {
	case p.Port == portPCIAddress && p.Size == 4:
		m.pciAddress.Store(binary.LittleEndian.Uint32(p.Data[len(p.Data)-4:]))
		return nil
	case p.Port >= portPCIData && p.Port < portPCIData+4:
		return nil // configuration writes to absent devices are dropped
	}

	// One argument, the usual case, fits the array on the stack, so that a
	// hypercall leaves no garbage here.
	var buf [1]uint64
	args, err := m.hypercallArgs(v, p, buf[:0])
	if err != nil {
		return err
	}
	for _, arg := range args {
		m.stats.Hypercalls.Add(1)
		if err := m.hypercall(v, p.Port, arg); err != nil {
			return err
		}
	}
	return nil
}

// hypercall decodes and serves one hypercall. It returns kvm.ErrStop after
// the Exit hypercall.
func (m *machine) hypercall(v *kvm.VCPU, port uint16, arg uint64) error {
	req, err := decodeHypercall(m.vm.Memory(), port, arg, func() (uint64, error) {
		s, err := v.SRegs()
		return s.CR3, err
	})
	if err != nil {
		return err
	}
	exit, code, err := m.services.serve(req)
	if err != nil {
		return err
	}
	if exit {
		if m.exited.CompareAndSwap(false, true) {
			m.exitCode.Store(code)
		}
		return kvm.ErrStop
	}
	return nil
}

// hypercallArgs appends the arguments of a hypercall OUT to args and returns
// the result: for interface version 1 the value written, for versions 2 and
// 3 RDI. A REP OUTS to the version 1 serial port writes several bytes, one
// hypercall each.
func (m *machine) hypercallArgs(v *kvm.VCPU, p kvm.PortIO, args []uint64) ([]uint64, error) {
	hp, ok := hypercallPorts[p.Port]
	if !ok {
		return nil, fmt.Errorf("OUT to unknown port %#x (%d bytes, % x): no emulated device or hypercall uses it", p.Port, p.Size, p.Data)
	}
	if hp.ABI == 2 {
		regs, err := v.Regs()
		if err != nil {
			return nil, err
		}
		return append(args, regs.RDI), nil
	}
	if hp.Call == callSerialWriteByte {
		for i := range p.Count {
			args = append(args, uint64(p.Data[i*p.Size]))
		}
		return args, nil
	}
	if p.Size != 4 || p.Count != 1 {
		return nil, badf(hp.Call, p.Port, "a %d-byte OUT (count %d), but interface version 1 passes a 32-bit address with one OUT", p.Size, p.Count)
	}
	return append(args, uint64(binary.LittleEndian.Uint32(p.Data))), nil
}
