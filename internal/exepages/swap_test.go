package exepages

import "testing"

// smapsSwappedRelro is the smaps of a position-independent build whose
// relocated read-only data (RELRO) has been swapped out: its copy-on-write
// pages show under Swap, not Anonymous.
const smapsSwappedRelro = `55efbe7db000-55efbe954000 r-xp 00000000 fe:00 77 /usr/bin/osvm-launch
Rss:                 832 kB
Anonymous:             0 kB
Swap:                  0 kB
VmFlags: rd ex mr mw me 
55efbeaf8000-55efbeb4b000 r--p 0031d000 fe:00 77 /usr/bin/osvm-launch
Rss:                  36 kB
Anonymous:             0 kB
Swap:                296 kB
VmFlags: rd mr mw me ac 
`

func TestExecutableReadOnlySkipsSwappedCopies(t *testing.T) {
	mappings, err := parseSmaps(newReader(smapsSwappedRelro), nil)
	if err != nil {
		t.Fatal(err)
	}
	selected := executableReadOnly(mappings, 0x55efbe7db000+0x100, nil)
	for _, m := range selected {
		if m.Start == 0x55efbeaf8000 {
			t.Errorf("mapping %x-%x with 296 KiB of swapped copy-on-write pages is selected for MADV_DONTNEED, which frees those pages", m.Start, m.End)
		}
	}
}
