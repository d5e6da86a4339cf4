// Package hermit runs Hermit (HermitCore) unikernels in KVM virtual machines
// for isolation level "unikernel", speaking the boot and hypercall protocol
// of uhyve, Hermit's own hypervisor. It inspects and loads a kernel image and
// builds the boot information, device tree, page tables and CPU state the
// kernel expects. While the kernel runs, it serves the kernel's hypercalls:
// console output, standard output and error, arguments and environment,
// files in host folders, and exit.
//
// # Usage
//
//	img, err := hermit.InspectFile("app")
//	code, err := hermit.Run(ctx, img, hermit.Config{
//		Memory: 64 << 20,
//		CPUs:   2,
//		Args:   []string{"--verbose"},
//		Env:    []string{"LANG=C"},
//		Mounts: map[string]hermit.Mount{"/data": {Dir: "/srv/app", Writable: true}},
//		Stdout: os.Stdout,
//		Stderr: os.Stderr,
//	})
//
// Run returns the status of the kernel's Exit hypercall. Anything that stops
// the guest otherwise is an error: a *VCPUError carries the vCPU's registers
// and, when KVM's instruction emulator rejected an instruction, that
// instruction's bytes and address.
//
// A long-running VMM boots with BootFile and runs the guest with
// Machine.Run. BootFile keeps no copy of the image after loading it, where
// the Image of InspectFile holds the whole file in the Go heap.
//
// The parts that need no kernel are plain functions and values: Inspect
// (image checks), Image.Load (into any GuestMemory), BootInfo.Encode,
// DeviceTree.Encode and BootArgs.
//
// # Kernels
//
// Inspect applies uhyve 0.9's acceptance rules and names the reason when it
// rejects a file. A kernel is a little-endian ELF64 file for x86-64, of type
// ET_DYN or ET_EXEC, whose first PT_NOTE segment declares Hermit entry
// version 4 (hermit-entry 0.10 and newer). Of the relocation types uhyve
// applies, only R_X86_64_RELATIVE is supported, the only type in uhyve's
// prebuilt Hermit 0.6.9 images. The UHYVEIF note selects the uhyve interface
// version, 1 if absent, as in every released kernel up to 0.13.2:
//
//   - Version 1: guest RAM starts at guest-physical 0 and ends below 3 GiB. A
//     hypercall is an OUT of the 32-bit guest-physical address of a packed
//     parameter struct to ports 0x400 to 0x880. FileRead and FileWrite pass
//     guest-virtual buffers, which Run translates through the vCPU's page
//     tables. Arguments and environment come through Cmdsize and Cmdval.
//   - Versions 2 and 3: guest RAM starts at 4 GiB. The parameter address or
//     value is in RDI, the ports are 0x1010 to 0x1190, and every address is
//     guest-physical. Arguments and environment come from /chosen/bootargs
//     in the device tree. Version 3 adds FileStat, FileFstat, Mkdir and
//     Getdents.
//
// Run serves both port tables for every kernel, as uhyve does; the ranges do
// not overlap. Like uhyve it also passes the arguments both ways, and
// provides both the device tree and the Uhyve platform tag in the boot
// information: released kernels detect uhyve by the tag, the development
// branch by the device tree's "compatible" property. PCI configuration reads
// return all ones (no devices), and has_pci is 0.
//
// A position-independent kernel is loaded 0x40000 bytes above the start of
// guest RAM. Below it sit the GDT, the device tree, the boot information,
// the page tables (with PML4 entry 511 pointing to the PML4 itself) and the
// 32 KiB boot stack. Kernels without a version note or older than 0.10 get
// the whole first GiB identity-mapped, newer ones RAM up to their end.
//
// # Files
//
// The file hypercalls see only the folders in Config.Mounts. Guest paths are
// cleaned and resolved below the longest matching mount point with os.Root,
// so neither ".." nor symbolic links reach outside the folder (such attempts
// fail with EACCES), and paths outside every mount fail with ENOENT. A mount
// is read-only unless Mount.Writable is set. Descriptors 0, 1 and 2 are the
// standard streams: reads of 0 see end of file, writes to 1 and 2 go to
// Config.Stdout and Config.Stderr. os.Root does not stop device files or
// /proc inside a mounted folder, so mount only folders meant for the guest.
//
// # Privileges and requirements
//
// Run needs read-write access to /dev/kvm, through the group that owns it
// (usually kvm) or root, and package kvm's kernel requirements (KVM API 12,
// Linux 4.11 or newer) plus an in-kernel IRQ chip, KVM_SET_MP_STATE and
// KVM_GET_TSC_KHZ, which x86-64 KVM has. It builds for linux/amd64; on
// other targets the package has only the functions that need no kernel.
// The package never logs.
//
// # Limitations
//
//   - Hermit image archives (gzip with a config file) are not unpacked: pass
//     the kernel ELF file.
//   - No networking (virtio-net), no PCI devices, no serial input, no shared
//     memory: the SerialRead*, SharedMem* and Net* hypercalls, like any
//     unknown port, stop the guest with an error naming the port.
//   - The kernel is always loaded at the same address: there is no address
//     space layout randomization, which uhyve offers for relocatable kernels.
//   - An error on a hypercall's guest addresses (a parameter struct, buffer
//     or string outside guest memory, or an unmapped buffer) stops the guest
//     instead of returning EFAULT.
//   - On PVM hosts, the instructions that KVM's emulator rejects and
//     package kvm/complete does not complete (AVX, x87 and MMX among
//     them) stop the guest with a *VCPUError naming the instruction and
//     its address. The guest's CPUID hides XSAVES, which that package does
//     not complete. (On the PVM host this was tested on, the guest saw the
//     host's leaf 0xD subleaf 1 whatever KVM_SET_CPUID2 set.)
//
// On hosts whose KVM emulates guest ring 0 (PVM, CONFIG_KVM_PVM), KVM's
// instruction emulator rejects XGETBV, XSAVE and most SSE instructions,
// which every Hermit kernel uses. Run hands those exits to a
// complete.Completer, which does what the CPU would.
//
// NOTE: uhyve's prebuilt Hermit 0.6.9 images (hello_world, hello_c,
// rusty_demo) were run on a PVM host only, where they boot through
// completion. On VMX or SVM hardware they are untested.
package hermit
