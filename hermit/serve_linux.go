package hermit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// services carries out decoded hypercalls on the host. Its methods are safe
// for concurrent use by the vCPUs.
type services struct {
	mem GuestMemory

	mu      sync.Mutex // serializes hypercalls
	fs      *fileSystem
	stdout  io.Writer
	stderr  io.Writer
	console *lineWriter

	argv []string // Cmdval's argv, the program name first
	env  []string // Cmdval's environment, "KEY=VALUE"
}

// Results of the v3 calls with a tagged result (uhyve-interface 0.3
// GetdentResult, MkdirResult and StatResult).
const (
	tagSuccess       = 1
	tagEndOfDir      = 2 // Getdents only
	tagGetdentsError = 3
	tagError         = 2 // Mkdir, FileStat, FileFstat
)

// serve carries out req. It returns exit set for the Exit hypercall, with
// its status, and an error only if the guest must stop: guest-level
// failures go back to the guest as -errno in the parameter struct.
func (s *services) serve(req request) (exit bool, code int32, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	switch req.Call {
	case callExit:
		return true, req.Code, nil
	case callSerialWriteByte, callSerialWriteBuffer:
		s.console.Write(req.Data)
		return false, 0, nil
	case callFileWrite:
		return false, 0, s.write(req)
	case callFileRead:
		return false, 0, s.read(req)
	case callFileOpen:
		ret := int32(-eNAMETOOLONG)
		if !req.PathTooLong {
			ret = s.fs.open(req.Path, req.Flags, req.Mode)
		}
		return false, 0, s.putI32(req, 16, ret)
	case callFileClose:
		return false, 0, s.putI32(req, 4, s.fs.closeFD(req.FD))
	case callFileLseek:
		return false, 0, s.lseek(req)
	case callFileUnlink:
		ret := int32(-eNAMETOOLONG)
		if !req.PathTooLong {
			ret = s.fs.unlink(req.Path)
		}
		return false, 0, s.putI32(req, 8, ret)
	case callCmdsize:
		return false, 0, s.cmdsize(req)
	case callCmdval:
		return false, 0, s.cmdval(req)
	case callGetdents:
		return false, 0, s.getdents(req)
	case callMkdir:
		errno := int32(eNAMETOOLONG)
		if !req.PathTooLong {
			errno = -s.fs.mkdir(req.Path)
		}
		return false, 0, s.putStatus(req, 16, errno)
	case callFileStat:
		return false, 0, s.stat(req)
	case callFileFstat:
		return false, 0, s.fstat(req)
	}
	return false, 0, fmt.Errorf("%v on port %#x has no host implementation", req.Call, req.Port)
}

// put writes b into the parameter struct at offset off.
func (s *services) put(req request, off uint64, b []byte) error {
	if _, err := s.mem.WriteAt(b, int64(req.Params+off)); err != nil {
		return badf(req.Call, req.Port, "write result to %#x: %v", req.Params+off, err)
	}
	return nil
}

func (s *services) putI32(req request, off uint64, v int32) error {
	return s.put(req, off, binary.LittleEndian.AppendUint32(nil, uint32(v)))
}

func (s *services) putI64(req request, off uint64, v int64) error {
	return s.put(req, off, binary.LittleEndian.AppendUint64(nil, uint64(v)))
}

// putStatus writes a Mkdir, FileStat or FileFstat result {u32 tag, i32
// errno} at off: success for errno 0, otherwise the error.
func (s *services) putStatus(req request, off uint64, errno int32) error {
	tag := uint32(tagSuccess)
	if errno != 0 {
		tag = tagError
	}
	b := binary.LittleEndian.AppendUint32(nil, tag)
	b = binary.LittleEndian.AppendUint32(b, uint32(errno))
	return s.put(req, off, b)
}

// write serves FileWrite. ABI 1 has no error field: the kernel reads len
// back as the count written, so an error leaves 0 there.
func (s *services) write(req request) error {
	n, errno := s.writeFD(req.FD, req.Data)
	if req.ABI == 1 {
		if errno != 0 {
			n = 0
		}
		return s.putI64(req, 12, int64(n))
	}
	if errno != 0 {
		return s.putI64(req, 8, -int64(errno))
	}
	return s.putI64(req, 8, int64(n))
}

func (s *services) writeFD(fd int32, data []byte) (int, int32) {
	var w io.Writer
	switch fd {
	case 0:
		return 0, eBADF
	case 1:
		w = s.stdout
	case 2:
		w = s.stderr
	default:
		f := s.fs.file(fd)
		if f == nil {
			return 0, eBADF
		}
		w = f
	}
	n, err := w.Write(data)
	if err != nil && n == 0 {
		return 0, guestErrno(err)
	}
	return n, 0
}

// read serves FileRead. Standard input is empty.
func (s *services) read(req request) error {
	var n int
	var errno int32
	switch f := s.fs.file(req.FD); {
	case req.FD == 0:
	case f == nil:
		errno = eBADF
	default:
		buf := make([]byte, req.Len)
		var err error
		n, err = f.Read(buf)
		if err != nil && !errors.Is(err, io.EOF) {
			n, errno = 0, guestErrno(err)
		}
		if err := s.scatter(req, buf[:n]); err != nil {
			return err
		}
	}

	off := uint64(8)
	if req.ABI == 1 {
		off = 20
	}
	if errno != 0 {
		return s.putI64(req, off, -int64(errno))
	}
	return s.putI64(req, off, int64(n))
}

// scatter writes data over the guest-physical runs of req.Buf in order.
func (s *services) scatter(req request, data []byte) error {
	for _, r := range req.Buf {
		if len(data) == 0 {
			break
		}
		chunk := data[:min(uint64(len(data)), r.Len)]
		if _, err := s.mem.WriteAt(chunk, int64(r.Addr)); err != nil {
			return badf(req.Call, req.Port, "write data to %#x: %v", r.Addr, err)
		}
		data = data[len(chunk):]
	}
	return nil
}

// lseek serves FileLseek. ABI 1 reports any error as offset -1, ABI 2 as
// -errno.
func (s *services) lseek(req request) error {
	var pos int64
	var errno int32
	if f := s.fs.file(req.FD); f != nil {
		pos, errno = seek(f, req.Offset, req.Whence)
	} else if req.FD >= 0 && req.FD < firstFD {
		errno = eSPIPE
	} else {
		errno = eBADF
	}
	if req.ABI == 1 {
		if errno != 0 {
			pos = -1
		}
		return s.putI64(req, 4, pos)
	}
	if errno != 0 {
		pos = -int64(errno)
	}
	return s.putI64(req, 0, pos)
}

// cmdsize serves Cmdsize: the number and sizes (with NUL) of the argument
// and environment strings.
func (s *services) cmdsize(req request) error {
	b := make([]byte, cmdsizeSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(len(s.argv)))
	for i, a := range s.argv {
		le.PutUint32(b[4+4*i:], uint32(len(a)+1))
	}
	envOff := 4 + 4*maxArgs
	le.PutUint32(b[envOff:], uint32(len(s.env)))
	for i, e := range s.env {
		le.PutUint32(b[envOff+4+4*i:], uint32(len(e)+1))
	}
	return s.put(req, 0, b)
}

// cmdval serves Cmdval: the struct holds the guest-physical addresses of two
// arrays of string addresses, allocated by the guest with Cmdsize's sizes,
// and the host copies each string there. argv[0] is the program name.
func (s *services) cmdval(req request) error {
	params := make([]byte, 16)
	if _, err := s.mem.ReadAt(params, int64(req.Params)); err != nil {
		return badf(req.Call, req.Port, "read parameters: %v", err)
	}
	argv := binary.LittleEndian.Uint64(params[0:])
	envp := binary.LittleEndian.Uint64(params[8:])
	if err := s.copyStrings(req, "argv", argv, s.argv); err != nil {
		return err
	}
	return s.copyStrings(req, "envp", envp, s.env)
}

func (s *services) copyStrings(req request, what string, array uint64, strs []string) error {
	if len(strs) == 0 {
		return nil
	}
	ptrs := make([]byte, 8*len(strs))
	if _, err := s.mem.ReadAt(ptrs, int64(array)); err != nil || int64(array) < 0 {
		return badf(req.Call, req.Port, "%s array at guest-physical %#x (%d entries) is outside guest memory", what, array, len(strs))
	}
	for i, str := range strs {
		dst := binary.LittleEndian.Uint64(ptrs[8*i:])
		if _, err := s.mem.WriteAt(append([]byte(str), 0), int64(dst)); err != nil || int64(dst) < 0 {
			return badf(req.Call, req.Port, "%s[%d] at guest-physical %#x (%d bytes) is outside guest memory: %v", what, i, dst, len(str)+1, err)
		}
	}
	return nil
}

// getdents serves Getdents with the host's getdents64(2), whose records
// have the layout of uhyve's Dirent64.
func (s *services) getdents(req request) error {
	put := func(tag uint32, payload uint64) error {
		b := binary.LittleEndian.AppendUint32(nil, tag)
		b = append(b, 0, 0, 0, 0)
		b = binary.LittleEndian.AppendUint64(b, payload)
		return s.put(req, 24, b)
	}
	f := s.fs.file(req.FD)
	if f == nil {
		return put(tagGetdentsError, uint64(eBADF))
	}
	buf := make([]byte, req.Len)
	n, err := unix.Getdents(int(f.Fd()), buf)
	switch {
	case err != nil:
		return put(tagGetdentsError, uint64(guestErrno(err)))
	case n == 0:
		return put(tagEndOfDir, 0)
	}
	if err := s.scatter(req, buf[:n]); err != nil {
		return err
	}
	return put(tagSuccess, uint64(n))
}

func (s *services) stat(req request) error {
	if req.PathTooLong {
		return s.putStatus(req, 24, eNAMETOOLONG)
	}
	info, errno := s.fs.stat(req.Path, req.Kind == 1)
	if errno == 0 {
		if err := s.putAttr(req, info); err != nil {
			return err
		}
	}
	return s.putStatus(req, 24, errno)
}

func (s *services) fstat(req request) error {
	f := s.fs.file(req.FD)
	if f == nil {
		return s.putStatus(req, 16, eBADF)
	}
	info, err := f.Stat()
	if err != nil {
		return s.putStatus(req, 16, guestErrno(err))
	}
	if err := s.putAttr(req, info); err != nil {
		return err
	}
	return s.putStatus(req, 16, 0)
}

// putAttr writes info as a FileAttr at req.Attr.
func (s *services) putAttr(req request, info os.FileInfo) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%v: host file information of %s has no stat data", req.Call, info.Name())
	}
	b := encodeFileAttr(st)
	if _, err := s.mem.WriteAt(b, int64(req.Attr)); err != nil {
		return badf(req.Call, req.Port, "write FileAttr to %#x: %v", req.Attr, err)
	}
	return nil
}

// encodeFileAttr returns st in the 120-byte layout of uhyve-interface 0.3
// FileAttr.
func encodeFileAttr(st *syscall.Stat_t) []byte {
	b := make([]byte, fileAttrSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], st.Dev)
	le.PutUint64(b[8:], st.Ino)
	le.PutUint64(b[16:], uint64(st.Nlink))
	le.PutUint32(b[24:], st.Mode)
	le.PutUint32(b[28:], st.Uid)
	le.PutUint32(b[32:], st.Gid)
	le.PutUint64(b[40:], st.Rdev)
	le.PutUint64(b[48:], uint64(st.Size))
	le.PutUint64(b[56:], uint64(st.Blksize))
	le.PutUint64(b[64:], uint64(st.Blocks))
	for i, ts := range []syscall.Timespec{st.Atim, st.Mtim, st.Ctim} {
		le.PutUint64(b[72+16*i:], uint64(ts.Sec))
		le.PutUint32(b[80+16*i:], uint32(ts.Nsec))
	}
	return b
}

// lineWriter passes the kernel's console output on line by line, because
// kernels write it one byte per hypercall. Write has no error result, so
// errors of the underlying writer are dropped, as a serial port drops bytes.
type lineWriter struct {
	w   io.Writer
	buf []byte
}

// maxConsoleLine flushes lines longer than this without a newline.
const maxConsoleLine = 4096

func (l *lineWriter) Write(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.buf = append(l.buf, p...)
			if len(l.buf) >= maxConsoleLine {
				l.Flush()
			}
			return
		}
		l.buf = append(l.buf, p[:i+1]...)
		l.Flush()
		p = p[i+1:]
	}
}

// Flush writes out a partial line.
func (l *lineWriter) Flush() {
	if len(l.buf) > 0 {
		l.w.Write(l.buf)
		l.buf = l.buf[:0]
	}
}
