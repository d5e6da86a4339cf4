package hermit

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/osvm-project/osvm/kvm/paging"
)

// hypercall identifies a uhyve hypercall, independent of its port.
type hypercall int

const (
	callExit hypercall = iota + 1
	callSerialWriteByte
	callSerialWriteBuffer
	callSerialReadByte
	callSerialReadBuffer
	callFileWrite
	callFileOpen
	callFileClose
	callFileRead
	callFileLseek
	callFileUnlink
	callCmdsize
	callCmdval
	callGetdents
	callFileStat
	callFileFstat
	callMkdir
	callSharedMemOpen
	callSharedMemClose
	callNetwrite
	callNetread
	callNetstat
)

var hypercallNames = map[hypercall]string{
	callExit:              "Exit",
	callSerialWriteByte:   "SerialWriteByte",
	callSerialWriteBuffer: "SerialWriteBuffer",
	callSerialReadByte:    "SerialReadByte",
	callSerialReadBuffer:  "SerialReadBuffer",
	callFileWrite:         "FileWrite",
	callFileOpen:          "FileOpen",
	callFileClose:         "FileClose",
	callFileRead:          "FileRead",
	callFileLseek:         "FileLseek",
	callFileUnlink:        "FileUnlink",
	callCmdsize:           "Cmdsize",
	callCmdval:            "Cmdval",
	callGetdents:          "Getdents",
	callFileStat:          "FileStat",
	callFileFstat:         "FileFstat",
	callMkdir:             "Mkdir",
	callSharedMemOpen:     "SharedMemOpen",
	callSharedMemClose:    "SharedMemClose",
	callNetwrite:          "Netwrite",
	callNetread:           "Netread",
	callNetstat:           "Netstat",
}

func (c hypercall) String() string {
	if name, ok := hypercallNames[c]; ok {
		return name
	}
	return fmt.Sprintf("hypercall(%d)", int(c))
}

// hypercallPort is the meaning of one hypercall port. ABI 1 is the
// convention of interface version 1: OUT of a 32-bit guest-physical address
// of a packed parameter struct. ABI 2 is that of versions 2 and 3: the
// argument is in RDI and structs have C layout.
type hypercallPort struct {
	Call hypercall
	ABI  int
}

// hypercallPorts maps both port tables, as uhyve does: the ranges do not
// overlap, so a kernel of any interface version reaches the call it means.
// Sources: uhyve-interface 0.3 (src/v1/mod.rs, src/v2/mod.rs).
var hypercallPorts = map[uint16]hypercallPort{
	0x400: {callFileWrite, 1},
	0x440: {callFileOpen, 1},
	0x480: {callFileClose, 1},
	0x500: {callFileRead, 1},
	0x540: {callExit, 1},
	0x580: {callFileLseek, 1},
	0x640: {callNetwrite, 1},
	0x680: {callNetread, 1},
	0x700: {callNetstat, 1},
	0x740: {callCmdsize, 1},
	0x780: {callCmdval, 1},
	0x800: {callSerialWriteByte, 1},
	0x840: {callFileUnlink, 1},
	0x880: {callSerialWriteBuffer, 1},

	0x1010: {callExit, 2},
	0x1020: {callSerialWriteByte, 2},
	0x1030: {callSerialWriteBuffer, 2},
	0x1040: {callSerialReadByte, 2},
	0x1050: {callSerialReadBuffer, 2},
	0x1100: {callFileWrite, 2},
	0x1110: {callFileOpen, 2},
	0x1120: {callFileClose, 2},
	0x1130: {callFileRead, 2},
	0x1140: {callFileLseek, 2},
	0x1150: {callFileUnlink, 2},
	0x1160: {callGetdents, 2},
	0x1170: {callFileStat, 2},
	0x1180: {callFileFstat, 2},
	0x1190: {callMkdir, 2},
	0x1200: {callSharedMemOpen, 2},
	0x1210: {callSharedMemClose, 2},
}

// Ports of the serial byte hypercalls, which kernels also get as
// serial_port_base in the boot information.
const (
	portSerialV1 = 0x800
	portSerialV2 = 0x1030 // uhyve 0.9 passes SerialWriteBuffer here; kernel main ignores it
)

// Limits that bound the work and the memory one hypercall can cause.
const (
	// maxTransfer is the most bytes one FileRead, FileWrite or Getdents
	// moves. Larger requests are shortened, which read(2) and write(2)
	// allow; kernels and C libraries loop over short counts.
	maxTransfer = 1 << 20

	// maxPath is PATH_MAX, including the terminating NUL.
	maxPath = 4096

	// maxArgs bounds argc and envc, the capacity of the Cmdsize struct.
	maxArgs = 128
)

// ErrBadHypercall is wrapped by the errors of hypercalls whose parameters
// the guest got wrong in a way that leaves no result to return: a parameter
// struct, buffer or string outside guest memory or unmapped. Run stops the
// guest on them.
var ErrBadHypercall = errors.New("hermit: invalid hypercall parameters")

// request is one decoded hypercall. Which fields are set depends on Call.
type request struct {
	Call   hypercall
	ABI    int
	Port   uint16
	Params uint64 // guest-physical address of the parameter struct, if any

	Code   int32  // Exit: the exit status
	Data   []byte // SerialWrite*, FileWrite: the bytes to write
	Buf    []paging.Run
	Len    uint64 // FileRead, Getdents: bytes requested, at most maxTransfer
	FD     int32
	Path   string // FileOpen, FileUnlink, FileStat, Mkdir
	Flags  int32
	Mode   int32
	Offset int64 // FileLseek
	Whence int32
	Kind   uint32 // FileStat: 0 stat, 1 lstat
	Attr   uint64 // FileStat, FileFstat: guest-physical address of the FileAttr

	// PathTooLong is set when Path had no NUL within maxPath bytes.
	PathTooLong bool
}

// badf returns an error wrapping ErrBadHypercall for the call on port.
func badf(call hypercall, port uint16, format string, args ...any) error {
	return fmt.Errorf("%v on port %#x: %s: %w", call, port, fmt.Sprintf(format, args...), ErrBadHypercall)
}

// Sizes of the parameter structs, by interface ABI.
var paramSizes = map[hypercallPort]uint64{
	{callExit, 1}:              4,
	{callFileWrite, 1}:         20,
	{callFileRead, 1}:          28,
	{callFileOpen, 1}:          20,
	{callFileClose, 1}:         8,
	{callFileLseek, 1}:         16,
	{callFileUnlink, 1}:        12,
	{callCmdsize, 1}:           cmdsizeSize,
	{callCmdval, 1}:            16,
	{callSerialWriteBuffer, 1}: 16,

	{callFileWrite, 2}:         32,
	{callFileRead, 2}:          32,
	{callFileOpen, 2}:          20,
	{callFileClose, 2}:         8,
	{callFileLseek, 2}:         16,
	{callFileUnlink, 2}:        12,
	{callSerialWriteBuffer, 2}: 16,
	{callGetdents, 2}:          40,
	{callMkdir, 2}:             24,
	{callFileStat, 2}:          32,
	{callFileFstat, 2}:         24,
}

// fileAttrSize is the size of uhyve-interface 0.3 FileAttr, which FileStat
// and FileFstat fill in.
const fileAttrSize = 120

// cmdsizeSize is the packed CmdsizeParams: argc, argsz[128], envc,
// envsz[128], all i32.
const cmdsizeSize = 4 + 4*maxArgs + 4 + 4*maxArgs

// decodeHypercall decodes the hypercall that the guest made by writing to
// port. arg is the 32-bit value of the OUT for ABI 1 and RDI for ABI 2. cr3
// returns the vCPU's CR3; it is called only for the ABI 1 FileRead and
// FileWrite, whose buffers are guest-virtual. Every guest address is read
// through mem, and the function has no other effect. An unknown port, an
// unsupported hypercall and parameters outside guest memory are errors.
func decodeHypercall(mem GuestMemory, port uint16, arg uint64, cr3 func() (uint64, error)) (request, error) {
	p, ok := hypercallPorts[port]
	if !ok {
		return request{}, fmt.Errorf("unknown hypercall port %#x (value %#x): it is in no port table of uhyve interface versions 1 to 3", port, arg)
	}
	req := request{Call: p.Call, ABI: p.ABI, Port: port}

	switch p.Call {
	case callSerialWriteByte:
		req.Data = []byte{byte(arg)}
		return req, nil
	case callExit:
		if p.ABI == 2 {
			req.Code = int32(uint32(arg))
			return req, nil
		}
	case callSerialReadByte, callSerialReadBuffer, callSharedMemOpen, callSharedMemClose,
		callNetwrite, callNetread, callNetstat:
		return request{}, fmt.Errorf("hypercall %v on port %#x is not supported (uhyve does not implement it either)", p.Call, port)
	}

	size := paramSizes[p]
	req.Params = arg
	params := make([]byte, size)
	if _, err := mem.ReadAt(params, int64(arg)); err != nil || int64(arg) < 0 {
		return request{}, badf(p.Call, port, "parameter struct at guest-physical %#x (%d bytes) is outside guest memory", arg, size)
	}
	if err := req.decodeParams(mem, params, cr3); err != nil {
		return request{}, err
	}
	return req, nil
}

// decodeParams fills req from the parameter struct b and the memory it
// points to.
func (req *request) decodeParams(mem GuestMemory, b []byte, cr3 func() (uint64, error)) error {
	le := binary.LittleEndian
	i32 := func(off int) int32 { return int32(le.Uint32(b[off:])) }
	u64 := func(off int) uint64 { return le.Uint64(b[off:]) }

	var err error
	switch req.Call {
	case callExit:
		req.Code = i32(0)

	case callSerialWriteBuffer:
		buf, n := u64(0), u64(8) // ABI 1: {buf, len}
		if req.ABI == 2 {
			buf, n = u64(8), u64(0) // {len, buf}
		}
		req.Data, err = req.readPhys(mem, buf, min(n, maxTransfer))

	case callFileWrite:
		if req.ABI == 1 {
			req.FD = i32(0)
			req.Data, err = req.readVirt(mem, cr3, u64(4), min(u64(12), maxTransfer))
		} else {
			req.FD = i32(24)
			req.Data, err = req.readPhys(mem, u64(16), min(u64(0), maxTransfer))
		}

	case callFileRead:
		if req.ABI == 1 {
			req.FD = i32(0)
			req.Len = min(u64(12), maxTransfer)
			req.Buf, err = req.virtRange(mem, cr3, u64(4), req.Len)
		} else {
			req.FD = i32(24)
			req.Len = min(u64(0), maxTransfer)
			req.Buf, err = req.physRange(mem, u64(16), req.Len)
		}

	case callFileOpen:
		req.Flags, req.Mode = i32(8), i32(12)
		err = req.readPath(mem, u64(0), maxPath)

	case callFileClose:
		req.FD = i32(0)

	case callFileUnlink:
		err = req.readPath(mem, u64(0), maxPath)

	case callFileLseek:
		if req.ABI == 1 {
			req.FD, req.Offset, req.Whence = i32(0), int64(u64(4)), i32(12)
		} else {
			req.Offset, req.Whence, req.FD = int64(u64(0)), i32(8), i32(12)
		}

	case callGetdents:
		req.FD = i32(0)
		req.Len = min(u64(16), maxTransfer)
		req.Buf, err = req.physRange(mem, u64(8), req.Len)

	case callMkdir:
		err = req.readPath(mem, u64(0), min(u64(8), maxPath))

	case callFileStat:
		req.Kind, req.Attr = uint32(i32(8)), u64(16)
		if err = req.readPath(mem, u64(0), maxPath); err == nil {
			err = req.checkAttr(mem)
		}

	case callFileFstat:
		req.FD, req.Attr = i32(0), u64(8)
		err = req.checkAttr(mem)

	case callCmdsize, callCmdval:
		// The host fills these structs; Cmdval's pointers are read when
		// the strings are copied (see copyCmdval).
	}
	return err
}

// readPhys copies n bytes of guest-physical memory at gpa.
func (req *request) readPhys(mem GuestMemory, gpa, n uint64) ([]byte, error) {
	if _, err := req.physRange(mem, gpa, n); err != nil {
		return nil, err
	}
	data := make([]byte, n)
	if _, err := mem.ReadAt(data, int64(gpa)); err != nil {
		return nil, badf(req.Call, req.Port, "buffer at guest-physical %#x (%d bytes) is outside guest memory", gpa, n)
	}
	return data, nil
}

// physRange checks that n bytes at guest-physical gpa are guest memory and
// returns them as one run.
func (req *request) physRange(mem GuestMemory, gpa, n uint64) ([]paging.Run, error) {
	if n == 0 {
		return nil, nil
	}
	if gpa+n < gpa || gpa+n > 1<<63 {
		return nil, badf(req.Call, req.Port, "buffer at guest-physical %#x (%d bytes) wraps past the top of the address space", gpa, n)
	}
	// Both ends inside the single memory slot means the whole range is.
	var probe [1]byte
	for _, addr := range []uint64{gpa, gpa + n - 1} {
		if _, err := mem.ReadAt(probe[:], int64(addr)); err != nil {
			return nil, badf(req.Call, req.Port, "buffer at guest-physical %#x (%d bytes) is outside guest memory", gpa, n)
		}
	}
	return []paging.Run{{Addr: gpa, Len: n}}, nil
}

// virtRange translates n bytes at guest-virtual gva through the page tables
// at the vCPU's CR3.
func (req *request) virtRange(mem GuestMemory, cr3 func() (uint64, error), gva, n uint64) ([]paging.Run, error) {
	if n == 0 {
		return nil, nil
	}
	root, err := cr3()
	if err != nil {
		return nil, fmt.Errorf("%v on port %#x: read CR3: %w", req.Call, req.Port, err)
	}
	runs, err := paging.Range(mem, root, gva, n)
	if err != nil {
		return nil, badf(req.Call, req.Port, "buffer at guest-virtual %#x (%d bytes): %v", gva, n, err)
	}
	for _, r := range runs {
		if _, err := req.physRange(mem, r.Addr, r.Len); err != nil {
			return nil, err
		}
	}
	return runs, nil
}

// readVirt copies n bytes of guest-virtual memory at gva.
func (req *request) readVirt(mem GuestMemory, cr3 func() (uint64, error), gva, n uint64) ([]byte, error) {
	runs, err := req.virtRange(mem, cr3, gva, n)
	if err != nil {
		return nil, err
	}
	data := make([]byte, 0, n)
	for _, r := range runs {
		chunk := make([]byte, r.Len)
		if _, err := mem.ReadAt(chunk, int64(r.Addr)); err != nil {
			return nil, badf(req.Call, req.Port, "buffer run at guest-physical %#x (%d bytes): %v", r.Addr, r.Len, err)
		}
		data = append(data, chunk...)
	}
	return data, nil
}

// readPath reads the NUL-terminated string at gpa into req.Path, looking at
// most limit bytes far. Without a NUL within limit bytes it sets
// PathTooLong, and the call then returns ENAMETOOLONG to the guest.
func (req *request) readPath(mem GuestMemory, gpa, limit uint64) error {
	s, ok, err := readCString(mem, gpa, limit)
	if err != nil {
		return badf(req.Call, req.Port, "path at guest-physical %#x: %v", gpa, err)
	}
	req.Path, req.PathTooLong = s, !ok
	return nil
}

// checkAttr checks that the FileAttr destination lies in guest memory.
func (req *request) checkAttr(mem GuestMemory) error {
	_, err := req.physRange(mem, req.Attr, fileAttrSize)
	return err
}

// cStringChunk is the granularity of readCString. Guest memory slots are
// page aligned, so a chunk that does not cross a multiple of it lies either
// wholly inside guest memory or wholly outside.
const cStringChunk = 256

// readCString reads the NUL-terminated string at guest-physical gpa,
// looking at most limit bytes far. ok is false if no NUL came within limit
// bytes. Bytes up to the NUL must be guest memory.
func readCString(mem GuestMemory, gpa, limit uint64) (s string, ok bool, err error) {
	var buf []byte
	var chunk [cStringChunk]byte
	for uint64(len(buf)) < limit {
		addr := gpa + uint64(len(buf))
		if addr < gpa || addr >= 1<<63 {
			return "", false, fmt.Errorf("string at %#x runs past the top of the address space", gpa)
		}
		n := min(cStringChunk-addr%cStringChunk, limit-uint64(len(buf)))
		if _, err := mem.ReadAt(chunk[:n], int64(addr)); err != nil {
			return "", false, fmt.Errorf("string at %#x runs outside guest memory at %#x: %w", gpa, addr, err)
		}
		for i := uint64(0); i < n; i++ {
			if chunk[i] == 0 {
				return string(append(buf, chunk[:i]...)), true, nil
			}
		}
		buf = append(buf, chunk[:n]...)
	}
	return string(buf), false, nil
}
