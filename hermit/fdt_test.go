package hermit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// parseFDT decodes an FDT blob into node paths and their properties, checking
// the header and the block layout on the way.
func parseFDT(blob []byte) (map[string]map[string][]byte, error) {
	be := binary.BigEndian
	if len(blob) < fdtHeaderSize || be.Uint32(blob) != fdtMagic {
		return nil, fmt.Errorf("no FDT header")
	}
	if total := be.Uint32(blob[4:]); int(total) != len(blob) {
		return nil, fmt.Errorf("totalsize %d, blob has %d bytes", total, len(blob))
	}
	structOff, stringsOff, rsvOff := be.Uint32(blob[8:]), be.Uint32(blob[12:]), be.Uint32(blob[16:])
	if v, last := be.Uint32(blob[20:]), be.Uint32(blob[24:]); v != 17 || last != 16 {
		return nil, fmt.Errorf("version %d, last compatible %d", v, last)
	}
	if rsvOff%8 != 0 || !bytes.Equal(blob[rsvOff:rsvOff+16], make([]byte, 16)) {
		return nil, fmt.Errorf("memory reservation map is not one terminating entry")
	}
	sizeStrings, sizeStruct := be.Uint32(blob[32:]), be.Uint32(blob[36:])
	if structOff%4 != 0 || structOff+sizeStruct > stringsOff || stringsOff+sizeStrings != uint32(len(blob)) {
		return nil, fmt.Errorf("block offsets are inconsistent")
	}
	strs := blob[stringsOff:]
	p := blob[structOff : structOff+sizeStruct]

	nodes := map[string]map[string][]byte{}
	var path []string
	for off := 0; ; {
		tok := be.Uint32(p[off:])
		off += 4
		switch tok {
		case fdtBeginNode:
			end := bytes.IndexByte(p[off:], 0)
			path = append(path, string(p[off:off+end]))
			nodes["/"+strings.Join(path[1:], "/")] = map[string][]byte{}
			off = int(alignUp(uint64(off+end+1), 4))
		case fdtEndNode:
			path = path[:len(path)-1]
		case fdtProp:
			n := be.Uint32(p[off:])
			nameOff := be.Uint32(p[off+4:])
			name := string(strs[nameOff : nameOff+uint32(bytes.IndexByte(strs[nameOff:], 0))])
			off += 8
			nodes["/"+strings.Join(path[1:], "/")][name] = p[off : off+int(n)]
			off = int(alignUp(uint64(off)+uint64(n), 4))
		case fdtEnd:
			if len(path) != 0 || off != len(p) {
				return nil, fmt.Errorf("FDT_END with %d open nodes at %d of %d", len(path), off, len(p))
			}
			return nodes, nil
		default:
			return nil, fmt.Errorf("unknown token %d at %d", tok, off-4)
		}
	}
}

func TestDeviceTreeEncode(t *testing.T) {
	blob, err := DeviceTree{
		MemoryStart: 1 << 32, MemorySize: 64 << 20,
		BootArgs: "env=A=1 -- x",
		TSCKHz:   2_400_000,
		Mounts:   []string{"/data", "/ro"},
		CPUs:     2,
	}.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	nodes, err := parseFDT(blob)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}

	be := binary.BigEndian
	u32 := func(v uint32) []byte { return be.AppendUint32(nil, v) }
	tests := []struct {
		node, prop string
		want       []byte
	}{
		{"/", "compatible", []byte("hermit,uhyve\x00")},
		{"/", "#address-cells", u32(2)},
		{"/", "#size-cells", u32(2)},
		{"/memory@100000000", "device_type", []byte("memory\x00")},
		{"/memory@100000000", "reg", be.AppendUint64(be.AppendUint64(nil, 1<<32), 64<<20)},
		{"/chosen", "bootargs", []byte("env=A=1 -- x\x00")},
		{"/hermit,tsc", "khz", u32(2_400_000)},
		{"/uhyve,mounts", "mounts", []byte("/data\x00/ro\x00")},
		{"/cpus", "#address-cells", u32(1)},
		{"/cpus", "#size-cells", u32(0)},
		{"/cpus/cpu@0", "device_type", []byte("cpu\x00")},
		{"/cpus/cpu@1", "device_type", []byte("cpu\x00")},
	}
	for _, tt := range tests {
		props, ok := nodes[tt.node]
		if !ok {
			t.Errorf("node %s missing; nodes: %v", tt.node, keys(nodes))
			continue
		}
		if got := props[tt.prop]; !bytes.Equal(got, tt.want) {
			t.Errorf("%s %s = %q, want %q", tt.node, tt.prop, got, tt.want)
		}
	}
	if len(nodes) != 8 {
		t.Errorf("%d nodes, want 8: %v", len(nodes), keys(nodes))
	}
}

func keys(m map[string]map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDeviceTreeEncodeOptionalNodes(t *testing.T) {
	blob, err := DeviceTree{MemorySize: 32 << 20}.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	nodes, err := parseFDT(blob)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, absent := range []string{"/hermit,tsc", "/uhyve,mounts", "/cpus"} {
		if _, ok := nodes[absent]; ok {
			t.Errorf("node %s present without its value", absent)
		}
	}
	if got := nodes["/chosen"]["bootargs"]; !bytes.Equal(got, []byte{0}) {
		t.Errorf("empty bootargs = %q, want a lone NUL", got)
	}
	if _, ok := nodes["/memory@0"]; !ok {
		t.Errorf("node /memory@0 missing: %v", keys(nodes))
	}
}

func TestDeviceTreeEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		tree DeviceTree
	}{
		{"no memory", DeviceTree{}},
		{"NUL in bootargs", DeviceTree{MemorySize: 1 << 20, BootArgs: "a\x00b"}},
		{"empty mount point", DeviceTree{MemorySize: 1 << 20, Mounts: []string{""}}},
	}
	for _, tt := range tests {
		if _, err := tt.tree.Encode(); err == nil {
			t.Errorf("%s: Encode succeeded", tt.name)
		}
	}
}

func TestBootArgs(t *testing.T) {
	tests := []struct {
		name      string
		env, args []string
		want      string
	}{
		{"nothing", nil, nil, ""},
		{"args only", nil, []string{"a", "b"}, "-- a b"},
		{"env only", []string{"HOME=/root"}, nil, "env=HOME=/root"},
		{"both", []string{"A=1", "B=2"}, []string{"x"}, "env=A=1 env=B=2 -- x"},
		{"quoted value", []string{"GREETING=hello world"}, nil, "env=GREETING='hello world'"},
		{"empty value", []string{"EMPTY="}, nil, "env=EMPTY=''"},
		{"value with =", []string{"K=a=b"}, nil, "env=K=a=b"},
		{"single quote", nil, []string{"it's"}, `-- 'it'\''s'`},
		{"empty argument", nil, []string{""}, "-- ''"},
		{"shell characters", nil, []string{"$HOME", "a;b", "*"}, "-- '$HOME' 'a;b' '*'"},
	}
	for _, tt := range tests {
		got, err := BootArgs(tt.env, tt.args)
		if err != nil {
			t.Errorf("%s: BootArgs: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: BootArgs = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestBootArgsRejectsBadEnv(t *testing.T) {
	for _, env := range []string{"NOEQUALS", "=value"} {
		if _, err := BootArgs([]string{env}, nil); err == nil {
			t.Errorf("BootArgs accepted environment entry %q", env)
		}
	}
}
