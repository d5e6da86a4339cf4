package hermit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/osvm-project/osvm/internal/fakemem"
	"github.com/osvm-project/osvm/kvm/paging"
)

// params builds a parameter struct from (offset, value, size) triples.
func params(size int, fields ...any) []byte {
	b := make([]byte, size)
	for i := 0; i < len(fields); i += 2 {
		off := fields[i].(int)
		switch v := fields[i+1].(type) {
		case int32:
			binary.LittleEndian.PutUint32(b[off:], uint32(v))
		case uint32:
			binary.LittleEndian.PutUint32(b[off:], v)
		case int64:
			binary.LittleEndian.PutUint64(b[off:], uint64(v))
		case uint64:
			binary.LittleEndian.PutUint64(b[off:], v)
		default:
			panic("params: unsupported field type")
		}
	}
	return b
}

var noCR3 = func() (uint64, error) { return 0, errors.New("CR3 must not be read for this call") }

func walkCR3() (uint64, error) { return 0x1000, nil }

func TestDecodeHypercallV1(t *testing.T) {
	const paramsAt, strAt = 0x20000, 0x21000
	tests := []struct {
		name  string
		port  uint16
		arg   uint64
		setup func(m *fakemem.Memory)
		check func(t *testing.T, r request)
	}{
		{
			name: "SerialWriteByte", port: 0x800, arg: 'A',
			check: func(t *testing.T, r request) {
				if r.Call != callSerialWriteByte || !bytes.Equal(r.Data, []byte("A")) {
					t.Errorf("got %v %q", r.Call, r.Data)
				}
			},
		},
		{
			name: "Exit", port: 0x540, arg: paramsAt,
			setup: func(m *fakemem.Memory) { m.Put(paramsAt, params(4, 0, int32(-3))) },
			check: func(t *testing.T, r request) {
				if r.Call != callExit || r.Code != -3 {
					t.Errorf("got %v code %d", r.Call, r.Code)
				}
			},
		},
		{
			name: "FileWrite through the page tables", port: 0x400, arg: paramsAt,
			setup: func(m *fakemem.Memory) {
				m.Put(paramsAt, params(20, 0, int32(1), 4, uint64(0x5ffc), 12, uint64(8)))
				m.Put(0x7ffc, []byte("abcd"))
				m.Put(0x9000, []byte("efgh"))
			},
			check: func(t *testing.T, r request) {
				if r.FD != 1 || string(r.Data) != "abcdefgh" || r.Params != paramsAt {
					t.Errorf("got fd %d data %q params %#x", r.FD, r.Data, r.Params)
				}
			},
		},
		{
			name: "FileWrite longer than maxTransfer is shortened", port: 0x400, arg: paramsAt,
			setup: func(m *fakemem.Memory) { m.Put(paramsAt, params(20, 0, int32(1), 4, uint64(1<<39), 12, uint64(5<<20))) },
			check: func(t *testing.T, r request) {
				if len(r.Data) != maxTransfer {
					t.Errorf("got %d bytes, want %d", len(r.Data), maxTransfer)
				}
			},
		},
		{
			name: "FileRead", port: 0x500, arg: paramsAt,
			setup: func(m *fakemem.Memory) { m.Put(paramsAt, params(28, 0, int32(3), 4, uint64(0x5ff0), 12, uint64(0x20))) },
			check: func(t *testing.T, r request) {
				want := []paging.Run{{Addr: 0x7ff0, Len: 0x10}, {Addr: 0x9000, Len: 0x10}}
				if r.FD != 3 || r.Len != 0x20 || len(r.Buf) != 2 || r.Buf[0] != want[0] || r.Buf[1] != want[1] {
					t.Errorf("got fd %d len %d runs %+v", r.FD, r.Len, r.Buf)
				}
			},
		},
		{
			name: "FileOpen", port: 0x440, arg: paramsAt,
			setup: func(m *fakemem.Memory) {
				m.Put(paramsAt, params(20, 0, uint64(strAt), 8, int32(0o101), 12, int32(0o644)))
				m.Put(strAt, []byte("/data/out.txt\x00junk"))
			},
			check: func(t *testing.T, r request) {
				if r.Path != "/data/out.txt" || r.Flags != 0o101 || r.Mode != 0o644 || r.PathTooLong {
					t.Errorf("got path %q flags %o mode %o too long %v", r.Path, r.Flags, r.Mode, r.PathTooLong)
				}
			},
		},
		{
			name: "FileOpen with a path of PATH_MAX bytes", port: 0x440, arg: paramsAt,
			setup: func(m *fakemem.Memory) {
				m.Put(paramsAt, params(20, 0, uint64(strAt)))
				m.Put(strAt, bytes.Repeat([]byte("a"), maxPath))
			},
			check: func(t *testing.T, r request) {
				if !r.PathTooLong {
					t.Errorf("PathTooLong not set for a path without NUL in %d bytes", maxPath)
				}
			},
		},
		{
			name: "FileClose", port: 0x480, arg: paramsAt,
			setup: func(m *fakemem.Memory) { m.Put(paramsAt, params(8, 0, int32(7))) },
			check: func(t *testing.T, r request) {
				if r.Call != callFileClose || r.FD != 7 {
					t.Errorf("got %v fd %d", r.Call, r.FD)
				}
			},
		},
		{
			name: "FileLseek", port: 0x580, arg: paramsAt,
			setup: func(m *fakemem.Memory) { m.Put(paramsAt, params(16, 0, int32(4), 4, int64(-6), 12, int32(2))) },
			check: func(t *testing.T, r request) {
				if r.FD != 4 || r.Offset != -6 || r.Whence != 2 {
					t.Errorf("got fd %d offset %d whence %d", r.FD, r.Offset, r.Whence)
				}
			},
		},
		{
			name: "FileUnlink", port: 0x840, arg: paramsAt,
			setup: func(m *fakemem.Memory) {
				m.Put(paramsAt, params(12, 0, uint64(strAt)))
				m.Put(strAt, []byte("/data/x\x00"))
			},
			check: func(t *testing.T, r request) {
				if r.Path != "/data/x" {
					t.Errorf("got path %q", r.Path)
				}
			},
		},
		{
			name: "SerialWriteBuffer", port: 0x880, arg: paramsAt,
			setup: func(m *fakemem.Memory) {
				m.Put(paramsAt, params(16, 0, uint64(strAt), 8, uint64(3)))
				m.Put(strAt, []byte("log"))
			},
			check: func(t *testing.T, r request) {
				if string(r.Data) != "log" {
					t.Errorf("got %q", r.Data)
				}
			},
		},
		{
			name: "Cmdsize", port: 0x740, arg: paramsAt,
			check: func(t *testing.T, r request) {
				if r.Call != callCmdsize || r.Params != paramsAt {
					t.Errorf("got %v at %#x", r.Call, r.Params)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := fakemem.WithPageTables()
			if tt.setup != nil {
				tt.setup(mem)
			}
			r, err := decodeHypercall(mem, tt.port, tt.arg, walkCR3)
			if err != nil {
				t.Fatalf("decodeHypercall: %v", err)
			}
			if r.ABI != 1 || r.Port != tt.port {
				t.Errorf("ABI %d port %#x, want 1 %#x", r.ABI, r.Port, tt.port)
			}
			tt.check(t, r)
		})
	}
}

func TestDecodeHypercallV2(t *testing.T) {
	const g = 1 << 32
	const paramsAt, strAt, bufAt = g + 0x1000, g + 0x2000, g + 0x3000
	tests := []struct {
		name  string
		port  uint16
		arg   uint64
		setup func(m *fakemem.Memory)
		check func(t *testing.T, r request)
	}{
		{
			name: "Exit takes the status from RDI", port: 0x1010, arg: 0xffff_ffff,
			check: func(t *testing.T, r request) {
				if r.Call != callExit || r.Code != -1 {
					t.Errorf("got %v code %d", r.Call, r.Code)
				}
			},
		},
		{
			name: "SerialWriteByte", port: 0x1020, arg: 0x142,
			check: func(t *testing.T, r request) {
				if !bytes.Equal(r.Data, []byte{0x42}) {
					t.Errorf("got % x", r.Data)
				}
			},
		},
		{
			name: "SerialWriteBuffer", port: 0x1030, arg: paramsAt,
			setup: func(m *fakemem.Memory) {
				m.Put(paramsAt, params(16, 0, uint64(2), 8, uint64(strAt)))
				m.Put(strAt, []byte("ok"))
			},
			check: func(t *testing.T, r request) {
				if string(r.Data) != "ok" {
					t.Errorf("got %q", r.Data)
				}
			},
		},
		{
			name: "FileWrite", port: 0x1100, arg: paramsAt,
			setup: func(m *fakemem.Memory) {
				m.Put(paramsAt, params(32, 0, uint64(5), 16, uint64(bufAt), 24, int32(2)))
				m.Put(bufAt, []byte("hello"))
			},
			check: func(t *testing.T, r request) {
				if r.FD != 2 || string(r.Data) != "hello" {
					t.Errorf("got fd %d data %q", r.FD, r.Data)
				}
			},
		},
		{
			name: "FileRead", port: 0x1130, arg: paramsAt,
			setup: func(m *fakemem.Memory) { m.Put(paramsAt, params(32, 0, uint64(100), 16, uint64(bufAt), 24, int32(3))) },
			check: func(t *testing.T, r request) {
				if r.FD != 3 || r.Len != 100 || len(r.Buf) != 1 || r.Buf[0] != (paging.Run{Addr: bufAt, Len: 100}) {
					t.Errorf("got fd %d len %d runs %+v", r.FD, r.Len, r.Buf)
				}
			},
		},
		{
			name: "FileLseek", port: 0x1140, arg: paramsAt,
			setup: func(m *fakemem.Memory) { m.Put(paramsAt, params(16, 0, int64(9), 8, uint32(1), 12, int32(5))) },
			check: func(t *testing.T, r request) {
				if r.FD != 5 || r.Offset != 9 || r.Whence != 1 {
					t.Errorf("got fd %d offset %d whence %d", r.FD, r.Offset, r.Whence)
				}
			},
		},
		{
			name: "Getdents", port: 0x1160, arg: paramsAt,
			setup: func(m *fakemem.Memory) { m.Put(paramsAt, params(40, 0, int32(6), 8, uint64(bufAt), 16, uint64(256))) },
			check: func(t *testing.T, r request) {
				if r.FD != 6 || r.Len != 256 || r.Buf[0] != (paging.Run{Addr: bufAt, Len: 256}) {
					t.Errorf("got fd %d len %d runs %+v", r.FD, r.Len, r.Buf)
				}
			},
		},
		{
			name: "Mkdir limits the path to len", port: 0x1190, arg: paramsAt,
			setup: func(m *fakemem.Memory) {
				m.Put(paramsAt, params(24, 0, uint64(strAt), 8, uint64(3)))
				m.Put(strAt, []byte("/dir\x00"))
			},
			check: func(t *testing.T, r request) {
				if !r.PathTooLong || r.Path != "/di" {
					t.Errorf("got path %q too long %v, want the first 3 bytes and PathTooLong", r.Path, r.PathTooLong)
				}
			},
		},
		{
			name: "FileStat", port: 0x1170, arg: paramsAt,
			setup: func(m *fakemem.Memory) {
				m.Put(paramsAt, params(32, 0, uint64(strAt), 8, uint32(1), 16, uint64(bufAt)))
				m.Put(strAt, []byte("/data\x00"))
			},
			check: func(t *testing.T, r request) {
				if r.Path != "/data" || r.Kind != 1 || r.Attr != bufAt {
					t.Errorf("got path %q kind %d attr %#x", r.Path, r.Kind, r.Attr)
				}
			},
		},
		{
			name: "FileFstat", port: 0x1180, arg: paramsAt,
			setup: func(m *fakemem.Memory) { m.Put(paramsAt, params(24, 0, int32(3), 8, uint64(bufAt))) },
			check: func(t *testing.T, r request) {
				if r.FD != 3 || r.Attr != bufAt {
					t.Errorf("got fd %d attr %#x", r.FD, r.Attr)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := fakemem.New(g, 1<<20)
			if tt.setup != nil {
				tt.setup(mem)
			}
			r, err := decodeHypercall(mem, tt.port, tt.arg, noCR3)
			if err != nil {
				t.Fatalf("decodeHypercall: %v", err)
			}
			if r.ABI != 2 {
				t.Errorf("ABI %d, want 2", r.ABI)
			}
			tt.check(t, r)
		})
	}
}

func TestDecodeHypercallErrors(t *testing.T) {
	const g = 1 << 32
	tests := []struct {
		name    string
		port    uint16
		arg     uint64
		setup   func(m *fakemem.Memory)
		wantBad bool
		want    string
	}{
		{"unknown port", 0x1234, 0, nil, false, "unknown hypercall port 0x1234"},
		{"unsupported SerialReadByte", 0x1040, 0, nil, false, "SerialReadByte on port 0x1040 is not supported"},
		{"unsupported Netwrite", 0x640, 0, nil, false, "not supported"},
		{"parameters outside memory", 0x1110, 0xdead_0000_0000, nil, true, "0xdead00000000"},
		{"parameters past the end", 0x1110, g + 1<<20 - 8, nil, true, "outside guest memory"},
		{"parameters at a negative offset", 0x1110, 1 << 63, nil, true, "outside guest memory"},
		{"write buffer outside memory", 0x1100, g, func(m *fakemem.Memory) {
			m.Put(g, params(32, 0, uint64(16), 16, uint64(0x1000)))
		}, true, "buffer at guest-physical 0x1000"},
		{"read buffer wraps", 0x1130, g, func(m *fakemem.Memory) {
			m.Put(g, params(32, 0, uint64(16), 16, ^uint64(0)-4))
		}, true, "wraps"},
		{"path outside memory", 0x1110, g, func(m *fakemem.Memory) {
			m.Put(g, params(20, 0, uint64(0x5000)))
		}, true, "path at guest-physical 0x5000"},
		{"path runs off the end", 0x1110, g, func(m *fakemem.Memory) {
			m.Put(g, params(20, 0, uint64(g+1<<20-3)))
			m.Put(g+1<<20-3, []byte("abc"))
		}, true, "runs outside guest memory"},
		{"stat destination outside memory", 0x1170, g, func(m *fakemem.Memory) {
			m.Put(g, params(32, 0, uint64(g+0x100), 16, uint64(g+1<<20-8)))
		}, true, "outside guest memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := fakemem.New(g, 1<<20)
			if tt.setup != nil {
				tt.setup(mem)
			}
			_, err := decodeHypercall(mem, tt.port, tt.arg, noCR3)
			if err == nil {
				t.Fatal("decodeHypercall succeeded")
			}
			if errors.Is(err, ErrBadHypercall) != tt.wantBad {
				t.Errorf("errors.Is(err, ErrBadHypercall) = %v, want %v (err %v)", !tt.wantBad, tt.wantBad, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestDecodeHypercallV1Errors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(m *fakemem.Memory)
		cr3   func() (uint64, error)
		want  string
	}{
		{"unmapped buffer", func(m *fakemem.Memory) {
			m.Put(0x20000, params(20, 0, int32(1), 4, uint64(0x400000), 12, uint64(4)))
		}, walkCR3, "not mapped"},
		{"CR3 unreadable", func(m *fakemem.Memory) {
			m.Put(0x20000, params(20, 0, int32(1), 4, uint64(0x5000), 12, uint64(4)))
		}, func() (uint64, error) { return 0, errors.New("vCPU gone") }, "read CR3: vCPU gone"},
	}
	for _, tt := range tests {
		mem := fakemem.WithPageTables()
		tt.setup(mem)
		_, err := decodeHypercall(mem, 0x400, 0x20000, tt.cr3)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
}

func TestHypercallPortsDistinct(t *testing.T) {
	seen := map[hypercallPort]uint16{}
	for port, p := range hypercallPorts {
		if other, ok := seen[p]; ok {
			t.Errorf("%v ABI %d on ports %#x and %#x", p.Call, p.ABI, port, other)
		}
		seen[p] = port
		if size, ok := paramSizes[p]; p.Call != callSerialWriteByte && p.Call != callExit && !ok && !strings.Contains("SerialReadByte SerialReadBuffer SharedMemOpen SharedMemClose Netwrite Netread Netstat", p.Call.String()) {
			t.Errorf("%v ABI %d has no parameter size (%d)", p.Call, p.ABI, size)
		}
	}
}
