package hermit

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osvm-project/osvm/internal/fakemem"
)

// testServices returns services over mem with the mounts of testMounts,
// and the buffers standing for stdout, stderr and the console.
func testServices(t *testing.T, mem GuestMemory) (s *services, stdout, stderr, console *bytes.Buffer, data string) {
	t.Helper()
	fs, data, _, _ := testMounts(t)
	stdout, stderr, console = new(bytes.Buffer), new(bytes.Buffer), new(bytes.Buffer)
	s = &services{
		mem: mem, fs: fs, stdout: stdout, stderr: stderr, console: &lineWriter{w: console},
		argv: []string{"app", "-v"}, env: []string{"A=1", "HERMIT_ENV_PADDING_0=1"},
	}
	return s, stdout, stderr, console, data
}

// call decodes and serves one hypercall and fails t on an error.
func call(t *testing.T, s *services, mem GuestMemory, port uint16, arg uint64, cr3 func() (uint64, error)) (exit bool, code int32) {
	t.Helper()
	req, err := decodeHypercall(mem, port, arg, cr3)
	if err != nil {
		t.Fatalf("decode port %#x: %v", port, err)
	}
	exit, code, err = s.serve(req)
	if err != nil {
		t.Fatalf("serve %v: %v", req.Call, err)
	}
	return exit, code
}

func TestServeFilesV2(t *testing.T) {
	const g = 1 << 32
	const p, str, buf = g + 0x1000, g + 0x2000, g + 0x3000
	mem := fakemem.New(g, 1<<20)
	s, stdout, stderr, console, data := testServices(t, mem)
	i64 := func(addr uint64) int64 { return int64(mem.U64(addr)) }
	i32 := func(addr uint64) int32 { return int32(mem.U32(addr)) }

	// Console and standard streams.
	call(t, s, mem, 0x1020, 'h', noCR3)
	call(t, s, mem, 0x1020, '\n', noCR3)
	mem.Put(buf, []byte("to stdout"))
	mem.Put(p, params(32, 0, uint64(9), 16, uint64(buf), 24, int32(1)))
	call(t, s, mem, 0x1100, p, noCR3)
	if i64(p+8) != 9 || stdout.String() != "to stdout" {
		t.Errorf("write to stdout: ret %d, stdout %q", i64(p+8), stdout)
	}
	mem.Put(p, params(32, 0, uint64(3), 16, uint64(buf), 24, int32(2)))
	call(t, s, mem, 0x1100, p, noCR3)
	if stderr.String() != "to " {
		t.Errorf("stderr = %q", stderr)
	}
	if console.String() != "h\n" {
		t.Errorf("console = %q", console)
	}

	// Open, read, lseek, write, close.
	mem.Put(str, []byte("/data/input.txt\x00"))
	mem.Put(p, params(20, 0, uint64(str), 8, int32(oRDONLY)))
	call(t, s, mem, 0x1110, p, noCR3)
	fd := i32(p + 16)
	if fd != firstFD {
		t.Fatalf("open ret = %d", fd)
	}
	mem.Put(p, params(32, 0, uint64(64), 16, uint64(buf), 24, fd))
	call(t, s, mem, 0x1130, p, noCR3)
	if n := i64(p + 8); n != 12 || string(mem.At(buf, 12)) != "hello input\n" {
		t.Errorf("read ret %d data %q", n, mem.At(buf, 12))
	}
	mem.Put(p, params(16, 0, int64(-6), 8, uint32(2), 12, fd))
	call(t, s, mem, 0x1140, p, noCR3)
	if pos := i64(p); pos != 6 {
		t.Errorf("lseek SEEK_END-6 = %d, want 6", pos)
	}
	mem.Put(p, params(16, 0, int64(0), 8, uint32(9), 12, fd))
	call(t, s, mem, 0x1140, p, noCR3)
	if pos := i64(p); pos != -eINVAL {
		t.Errorf("lseek with whence 9 = %d, want -EINVAL", pos)
	}
	mem.Put(p, params(32, 0, uint64(4), 16, uint64(buf), 24, fd))
	call(t, s, mem, 0x1100, p, noCR3)
	if n := i64(p + 8); n != -eBADF {
		t.Errorf("write to a read-only descriptor = %d, want -EBADF", n)
	}
	mem.Put(p, params(8, 0, fd))
	call(t, s, mem, 0x1120, p, noCR3)
	if ret := i32(p + 4); ret != 0 {
		t.Errorf("close = %d", ret)
	}
	mem.Put(p, params(32, 0, uint64(4), 16, uint64(buf), 24, fd))
	call(t, s, mem, 0x1130, p, noCR3)
	if n := i64(p + 8); n != -eBADF {
		t.Errorf("read after close = %d, want -EBADF", n)
	}

	// Stat, Fstat, Mkdir, Getdents, Unlink.
	mem.Put(p, params(32, 0, uint64(str), 8, uint32(0), 16, uint64(buf)))
	call(t, s, mem, 0x1170, p, noCR3)
	if tag, size := mem.U32(p+24), i64(buf+48); tag != tagSuccess || size != 12 {
		t.Errorf("stat: tag %d size %d", tag, size)
	}
	if mode := mem.U32(buf + 24); mode&0o170000 != 0o100000 {
		t.Errorf("stat mode %o is not a regular file", mode)
	}
	mem.Put(str, []byte("/data/absent\x00"))
	call(t, s, mem, 0x1170, p, noCR3)
	if tag, errno := mem.U32(p+24), i32(p+28); tag != tagError || errno != eNOENT {
		t.Errorf("stat of a missing file: tag %d errno %d", tag, errno)
	}
	mem.Put(str, []byte("/data/newdir\x00"))
	mem.Put(p, params(24, 0, uint64(str), 8, uint64(64)))
	call(t, s, mem, 0x1190, p, noCR3)
	if tag := mem.U32(p + 16); tag != tagSuccess {
		t.Errorf("mkdir tag %d errno %d", tag, i32(p+20))
	}

	mem.Put(str, []byte("/data\x00"))
	mem.Put(p, params(20, 0, uint64(str), 8, int32(oDIRECTORY)))
	call(t, s, mem, 0x1110, p, noCR3)
	dir := i32(p + 16)
	names := map[string]bool{}
	for range 10 {
		mem.Put(p, params(40, 0, dir, 8, uint64(buf), 16, uint64(512)))
		call(t, s, mem, 0x1160, p, noCR3)
		tag, n := mem.U32(p+24), mem.U64(p+32)
		if tag == tagEndOfDir {
			break
		}
		if tag != tagSuccess {
			t.Fatalf("getdents tag %d value %d", tag, n)
		}
		for off := uint64(0); off < n; {
			reclen := uint64(binary.LittleEndian.Uint16(mem.At(buf+off+16, 2)))
			name := mem.At(buf+off+19, reclen-19)
			names[string(name[:bytes.IndexByte(name, 0)])] = true
			off += reclen
		}
	}
	for _, want := range []string{".", "..", "input.txt", "link", "newdir"} {
		if !names[want] {
			t.Errorf("getdents lacks %q: %v", want, names)
		}
	}
	mem.Put(p, params(24, 0, dir, 8, uint64(buf)))
	call(t, s, mem, 0x1180, p, noCR3)
	if tag, mode := mem.U32(p+16), mem.U32(buf+24); tag != tagSuccess || mode&0o170000 != 0o040000 {
		t.Errorf("fstat of the folder: tag %d mode %o", tag, mode)
	}

	mem.Put(str, []byte("/data/input.txt\x00"))
	mem.Put(p, params(12, 0, uint64(str)))
	call(t, s, mem, 0x1150, p, noCR3)
	if ret := i32(p + 8); ret != 0 {
		t.Errorf("unlink = %d", ret)
	}
	if _, err := os.Stat(filepath.Join(data, "input.txt")); !os.IsNotExist(err) {
		t.Errorf("input.txt still exists: %v", err)
	}

	if exit, code := call(t, s, mem, 0x1010, 7, noCR3); !exit || code != 7 {
		t.Errorf("Exit = %v %d", exit, code)
	}
}

func TestServeV1(t *testing.T) {
	const p, str, out = 0x20000, 0x21000, 0x22000
	mem := fakemem.WithPageTables()
	s, stdout, _, console, _ := testServices(t, mem)

	// FileWrite with a guest-virtual buffer across two pages.
	mem.Put(0x7ffc, []byte("abcd"))
	mem.Put(0x9000, []byte("efgh\n"))
	mem.Put(p, params(20, 0, int32(1), 4, uint64(0x5ffc), 12, uint64(9)))
	call(t, s, mem, 0x400, p, walkCR3)
	if stdout.String() != "abcdefgh\n" || mem.U64(p+12) != 9 {
		t.Errorf("stdout %q, len field %d", stdout, mem.U64(p+12))
	}
	mem.Put(p, params(20, 0, int32(77), 4, uint64(0x5ffc), 12, uint64(4)))
	call(t, s, mem, 0x400, p, walkCR3)
	if got := mem.U64(p + 12); got != 0 {
		t.Errorf("write to a bad descriptor left len %d, want 0", got)
	}

	// FileRead into a guest-virtual buffer across two pages.
	mem.Put(str, []byte("/data/input.txt\x00"))
	mem.Put(p, params(20, 0, uint64(str)))
	call(t, s, mem, 0x440, p, walkCR3)
	fd := int32(mem.U32(p + 16))
	mem.Put(p, params(28, 0, fd, 4, uint64(0x5ffa), 12, uint64(64)))
	call(t, s, mem, 0x500, p, walkCR3)
	if n := int64(mem.U64(p + 20)); n != 12 {
		t.Errorf("read ret %d", n)
	}
	if got := string(mem.At(0x7ffa, 6)) + string(mem.At(0x9000, 6)); got != "hello input\n" {
		t.Errorf("read data %q", got)
	}

	// FileLseek reports errors as -1.
	mem.Put(p, params(16, 0, fd, 4, int64(2), 12, int32(0)))
	call(t, s, mem, 0x580, p, walkCR3)
	if pos := int64(mem.U64(p + 4)); pos != 2 {
		t.Errorf("lseek = %d", pos)
	}
	mem.Put(p, params(16, 0, int32(99), 4, int64(2), 12, int32(0)))
	call(t, s, mem, 0x580, p, walkCR3)
	if pos := int64(mem.U64(p + 4)); pos != -1 {
		t.Errorf("lseek on a bad descriptor = %d, want -1", pos)
	}

	// Cmdsize and Cmdval.
	call(t, s, mem, 0x740, p, walkCR3)
	le := binary.LittleEndian
	sz := mem.At(p, cmdsizeSize)
	if argc, a0, a1 := le.Uint32(sz), le.Uint32(sz[4:]), le.Uint32(sz[8:]); argc != 2 || a0 != 4 || a1 != 3 {
		t.Errorf("Cmdsize argc %d sizes %d %d, want 2, 4, 3", argc, a0, a1)
	}
	envOff := 4 + 4*maxArgs
	if envc, e0 := le.Uint32(sz[envOff:]), le.Uint32(sz[envOff+4:]); envc != 2 || e0 != 4 {
		t.Errorf("Cmdsize envc %d size %d, want 2, 4", envc, e0)
	}
	argv, envp := uint64(out), uint64(out+0x100)
	for i, dst := range []uint64{out + 0x200, out + 0x300} {
		mem.PutU64(argv+8*uint64(i), dst)
	}
	for i, dst := range []uint64{out + 0x400, out + 0x500} {
		mem.PutU64(envp+8*uint64(i), dst)
	}
	mem.Put(p, params(16, 0, argv, 8, envp))
	call(t, s, mem, 0x780, p, walkCR3)
	for addr, want := range map[uint64]string{out + 0x200: "app\x00", out + 0x300: "-v\x00", out + 0x400: "A=1\x00", out + 0x500: "HERMIT_ENV_PADDING_0=1\x00"} {
		if got := string(mem.At(addr, uint64(len(want)))); got != want {
			t.Errorf("Cmdval string at %#x = %q, want %q", addr, got, want)
		}
	}

	// Console: single bytes and a buffer, passed on by line.
	call(t, s, mem, 0x800, 'x', walkCR3)
	if console.Len() != 0 {
		t.Errorf("console wrote a partial line: %q", console)
	}
	mem.Put(str, []byte("y\nz"))
	mem.Put(p, params(16, 0, uint64(str), 8, uint64(3)))
	call(t, s, mem, 0x880, p, walkCR3)
	if console.String() != "xy\n" {
		t.Errorf("console = %q", console)
	}
	s.console.Flush()
	if console.String() != "xy\nz" {
		t.Errorf("console after Flush = %q", console)
	}
}

func TestServeCmdvalOutsideMemory(t *testing.T) {
	mem := fakemem.WithPageTables()
	s, _, _, _, _ := testServices(t, mem)
	mem.Put(0x20000, params(16, 0, uint64(0x30000), 8, uint64(0x30100)))
	mem.PutU64(0x30000, 0x7fff_0000) // argv[0] outside memory
	req, err := decodeHypercall(mem, 0x780, 0x20000, walkCR3)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.serve(req)
	if err == nil || !strings.Contains(err.Error(), "argv[0] at guest-physical 0x7fff0000") {
		t.Errorf("serve error = %v, want one naming argv[0] and its address", err)
	}
}

func TestLineWriterLongLine(t *testing.T) {
	var out bytes.Buffer
	l := &lineWriter{w: &out}
	l.Write(bytes.Repeat([]byte("x"), maxConsoleLine+1))
	if out.Len() != maxConsoleLine+1 {
		t.Errorf("a line without newline over %d bytes was held back (%d written)", maxConsoleLine, out.Len())
	}
}
