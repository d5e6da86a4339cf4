package exepages

import (
	"bufio"
	"strings"
	"testing"
)

// smapsSample is /proc/PID/smaps of osvm-launch running a guest, cut to
// the fields parseSmaps reads and a few it skips. The last mapping's path
// contains spaces.
const smapsSample = `00400000-005b4000 r-xp 00000000 fe:00 9980664                            /usr/bin/osvm-launch
Size:               1744 kB
Rss:                 832 kB
Pss:                 832 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me 
005b4000-00793000 r--p 001b4000 fe:00 9980664                            /usr/bin/osvm-launch
Size:               1916 kB
Rss:                  64 kB
Anonymous:             0 kB
VmFlags: rd mr mw me 
00793000-007fd000 rw-p 00393000 fe:00 9980664                            /usr/bin/osvm-launch
Size:                424 kB
Rss:                 304 kB
Anonymous:            44 kB
VmFlags: rd wr mr mw me ac 
7f0780da0000-7f0780f00000 rw-p 00000000 00:00 0 
Size:               1408 kB
Rss:                   4 kB
Anonymous:             4 kB
VmFlags: rd wr mr mw me ac 
7f07c7844000-7f07c7847000 rw-s 00000000 00:10 1030                       anon_inode:kvm-vcpu:0
Size:                 12 kB
Rss:                   8 kB
Anonymous:             0 kB
VmFlags: rd wr sh mr mw me ms dc de 
7f07c7900000-7f07c7a00000 r--p 00010000 fe:00 1234                       /srv/my data/file name
Size:               1024 kB
Rss:                  12 kB
Anonymous:             0 kB
VmFlags: rd mr mw me lo 
`

// newReader returns a reader over text with parseSmaps's buffer size.
func newReader(text string) *bufio.Reader {
	return bufio.NewReaderSize(strings.NewReader(text), readBufferSize)
}

// perms returns p as the Perms field of a Mapping.
func perms(p string) (b [4]byte) {
	copy(b[:], p)
	return b
}

func TestParseSmapsSample(t *testing.T) {
	got, err := parseSmaps(newReader(smapsSample), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Start: 0x400000, End: 0x5b4000, Perms: perms("r-xp"), Major: 0xfe, Inode: 9980664, Rss: 832 << 10},
		{Start: 0x5b4000, End: 0x793000, Perms: perms("r--p"), Offset: 0x1b4000, Major: 0xfe, Inode: 9980664, Rss: 64 << 10},
		{Start: 0x793000, End: 0x7fd000, Perms: perms("rw-p"), Offset: 0x393000, Major: 0xfe, Inode: 9980664, Rss: 304 << 10, Anonymous: 44 << 10},
		{Start: 0x7f0780da0000, End: 0x7f0780f00000, Perms: perms("rw-p"), Rss: 4 << 10, Anonymous: 4 << 10},
		{Start: 0x7f07c7844000, End: 0x7f07c7847000, Perms: perms("rw-s"), Minor: 0x10, Inode: 1030, Rss: 8 << 10},
		{Start: 0x7f07c7900000, End: 0x7f07c7a00000, Perms: perms("r--p"), Offset: 0x10000, Major: 0xfe, Inode: 1234, Rss: 12 << 10, Locked: true},
	}
	if len(got) != len(want) {
		t.Fatalf("parseSmaps returned %d mappings, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mapping %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestParseSmapsReusesSlice(t *testing.T) {
	first, err := parseSmaps(newReader(smapsSample), nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := parseSmaps(newReader(smapsSample), first)
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != len(first) {
		t.Fatalf("second parse returned %d mappings, want %d", len(second), len(first))
	}
	if &second[0] != &first[0] {
		t.Error("second parse allocated a new slice instead of reusing the one passed in")
	}
}

func TestParseSmapsAllocations(t *testing.T) {
	mappings, err := parseSmaps(newReader(smapsSample), nil)
	if err != nil {
		t.Fatal(err)
	}
	reader := newReader(smapsSample)
	text := strings.NewReader(smapsSample)
	allocs := testing.AllocsPerRun(100, func() {
		text.Reset(smapsSample)
		reader.Reset(text)
		mappings, err = parseSmaps(reader, mappings)
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("parseSmaps with a reused slice made %v allocations, want 0", allocs)
	}
}

func TestParseSmapsLongPath(t *testing.T) {
	path := "/" + strings.Repeat("d", 4095)
	text := "7f07c7900000-7f07c7a00000 r--p 00000000 fe:00 1234 " + path + " (deleted)\nRss: 4 kB\n"
	got, err := parseSmaps(newReader(text), nil)
	if err != nil {
		t.Fatalf("header with a %d-byte path: %v", len(path), err)
	}
	if len(got) != 1 || got[0].Rss != 4<<10 {
		t.Errorf("got %+v, want one mapping with Rss 4 KiB", got)
	}
}

func TestParseSmapsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, text string
	}{
		{"field before header", "Rss: 4 kB\n"},
		{"four fields", "00400000-005b4000 r-xp 00000000 fe:00\n"},
		{"no dash in range", "00400000 r-xp 00000000 fe:00 1 /x\n"},
		{"reversed range", "005b4000-00400000 r-xp 00000000 fe:00 1 /x\n"},
		{"bad hex", "0040000g-005b4000 r-xp 00000000 fe:00 1 /x\n"},
		{"address overflow", "10000000000000000-10000000000000001 r-xp 00000000 fe:00 1 /x\n"},
		{"bad inode", "00400000-005b4000 r-xp 00000000 fe:00 1a /x\n"},
		{"device without colon", "00400000-005b4000 r-xp 00000000 fe00 1 /x\n"},
		{"short permissions", "00400000-005b4000 r-x 00000000 fe:00 1 /x\n"},
		{"size not in kB", "00400000-005b4000 r-xp 00000000 fe:00 1 /x\nRss: 4 MB\n"},
		{"size not a number", "00400000-005b4000 r-xp 00000000 fe:00 1 /x\nRss: four kB\n"},
		{"line longer than the buffer", "00400000-005b4000 r-xp 00000000 fe:00 1 /" + strings.Repeat("d", readBufferSize) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := parseSmaps(newReader(tc.text), nil); err == nil {
				t.Errorf("parseSmaps(%.80q) = %+v, want an error", tc.text, got)
			}
		})
	}
}

func TestExecutableReadOnly(t *testing.T) {
	exe := func(start, end uint64, p string) Mapping {
		return Mapping{Start: start, End: end, Perms: perms(p), Major: 0xfe, Inode: 42, Rss: 4096}
	}
	text := exe(0x400000, 0x5b4000, "r-xp")
	rodata := exe(0x5b4000, 0x793000, "r--p")
	data := exe(0x793000, 0x7fd000, "rw-p")
	anonymous := Mapping{Start: 0x7fd000, End: 0x2845000, Perms: perms("rw-p")}
	readOnlyAnonymous := Mapping{Start: 0x7f0000000000, End: 0x7f0000001000, Perms: perms("r--p")}
	otherFile := Mapping{Start: 0x7f0000100000, End: 0x7f0000200000, Perms: perms("r-xp"), Major: 0xfe, Inode: 43}
	otherDevice := text
	otherDevice.Start, otherDevice.End, otherDevice.Minor = 0x7f0000300000, 0x7f0000400000, 1
	shared := exe(0x7f0000500000, 0x7f0000600000, "r--s")
	written := exe(0x7f0000700000, 0x7f0000800000, "r-xp")
	written.Anonymous = 4096
	locked := exe(0x7f0000900000, 0x7f0000a00000, "r--p")
	locked.Locked = true
	all := []Mapping{text, rodata, data, anonymous, readOnlyAnonymous, otherFile, otherDevice, shared, written, locked}

	for _, tc := range []struct {
		name        string
		mappings    []Mapping
		textAddress uint64
		want        []Mapping
	}{
		{"text and read-only data", all, 0x48a240, []Mapping{text, rodata}},
		{"address at the start of text", all, 0x400000, []Mapping{text, rodata}},
		{"address in read-only data", all, 0x600000, []Mapping{text, rodata}},
		{"address at the end of text", all, 0x5b4000 - 1, []Mapping{text, rodata}},
		{"address outside every mapping", all, 0x1000, nil},
		{"address in anonymous memory", all, 0x800000, nil},
		{"address in another file", all, 0x7f0000100000, []Mapping{otherFile}},
		{"no mappings", nil, 0x48a240, nil},
		{"only writable", []Mapping{data}, 0x793000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := executableReadOnly(tc.mappings, tc.textAddress, nil)
			if len(got) != len(tc.want) {
				t.Fatalf("executableReadOnly selected %d mappings, want %d: %+v", len(got), len(tc.want), got)
			}
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Errorf("mapping %d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestParseSmapsLastLineWithoutNewline(t *testing.T) {
	text := "00400000-005b4000 r-xp 00000000 fe:00 1 /x\nRss: 8 kB"
	got, err := parseSmaps(newReader(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Rss != 8<<10 {
		t.Errorf("got %+v, want one mapping with Rss 8 KiB", got)
	}
}
