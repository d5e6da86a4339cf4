package exepages

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// smapsPath is the calling process's smaps file.
const smapsPath = "/proc/self/smaps"

// readBufferSize holds the longest smaps line: a header of about 80 bytes
// with a path of up to PATH_MAX (4096) bytes and " (deleted)".
// NOTE: smaps escapes a newline in a path as "\012", so a mapped file with
// many newlines in its name can make a longer line, and Drop then fails.
// The monitor maps no file whose name a component chooses.
const readBufferSize = 8 << 10

// Dropper releases the resident pages of the running executable's
// read-only mappings. Its methods must not be called concurrently. After
// the first Drop, later calls allocate nothing unless the process has
// gained mappings, so that dropping again and again adds no garbage to the
// heap.
type Dropper struct {
	smaps  *os.File
	reader *bufio.Reader
	text   uint64 // an address in the executable's text
	faults uint64 // minor faults of the process at the end of the last Drop

	mappings, selected []Mapping // reused by each Drop
}

// Open opens /proc/self/smaps for later calls of Drop. The kernel checks
// access when the file is opened (proc_maps_open in Linux's
// fs/proc/task_mmu.c), and Landlock checks file access on open too, so
// the open file stays readable after the process has restricted itself
// with a Landlock ruleset that lacks /proc.
func Open() (*Dropper, error) {
	f, err := os.Open(smapsPath)
	if err != nil {
		return nil, fmt.Errorf("exepages: %w", err)
	}
	return &Dropper{
		smaps:  f,
		reader: bufio.NewReaderSize(f, readBufferSize),
		// The entry of a function in this package is an address in the
		// executable's text.
		text: uint64(reflect.ValueOf(Open).Pointer()),
	}, nil
}

// Dropped describes the mappings that one Drop released.
type Dropped struct {
	Mappings int    // mappings passed to madvise
	Resident uint64 // their Rss in bytes before the drop
}

// Drop applies madvise(MADV_DONTNEED) to every private mapping of the
// running executable that lacks write permission, holds no anonymous page
// and is not locked. Pages that the program uses afterwards come back
// from the page cache on their next access.
//
// Other goroutines may keep running: a thread that executes a dropped
// page takes a minor page fault, as after the kernel's own reclaim.
func (d *Dropper) Drop() (Dropped, error) {
	// A seek to 0 makes the kernel generate the file again (seq_lseek in
	// Linux's fs/seq_file.c), so each Drop reads the current mappings.
	if _, err := d.smaps.Seek(0, io.SeekStart); err != nil {
		return Dropped{}, fmt.Errorf("exepages: rewind %s: %w", smapsPath, err)
	}
	d.reader.Reset(d.smaps)
	var err error
	if d.mappings, err = parseSmaps(d.reader, d.mappings); err != nil {
		return Dropped{}, fmt.Errorf("exepages: %s: %w", smapsPath, err)
	}
	d.selected = executableReadOnly(d.mappings, d.text, d.selected)
	if len(d.selected) == 0 {
		return Dropped{}, fmt.Errorf("exepages: %s has no read-only private file mapping at text address %#x", smapsPath, d.text)
	}

	var dropped Dropped
	for i := range d.selected {
		m := &d.selected[i] // a copy would escape to the heap through the error
		// A raw system call, because the range is no Go memory that a
		// []byte for unix.Madvise could describe. The comment of
		// minorFaults explains why it comes from package syscall.
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(m.Start), uintptr(m.End-m.Start), unix.MADV_DONTNEED)
		if errno != 0 {
			return dropped, fmt.Errorf("exepages: madvise(%#x, %d, MADV_DONTNEED) on the executable's %s mapping at offset %#x: %w", m.Start, m.End-m.Start, m.Perms[:], m.Offset, errno)
		}
		dropped.Mappings++
		dropped.Resident += m.Rss
	}
	if d.faults, err = minorFaults(); err != nil {
		return dropped, err
	}
	return dropped, nil
}

// Repeat drops whenever the process has taken a page fault since the end
// of the last Drop, and at the first check when there was none. It checks
// first after first, then at intervals that double up to max. Faults that
// refill dropped pages are minor faults, and getrusage(2) counts those for
// the whole process. Drop takes the count, so that faults between a Drop
// and Repeat's start, such as those of a guest's boot, lead to a drop at
// the first check. Repeat returns nil at the first check after ctx ends,
// up to max later, or the error of a failed drop or getrusage call. Once
// it has dropped, it allocates nothing unless the process gains mappings.
//
// The minor fault count also grows with faults the kernel takes for the
// process on memory it reaches through get_user_pages, such as KVM on the
// guest's memory. So a guest that touches new memory leads to drops with
// nothing to release, at most one per max once the interval has grown.
//
// It returns an error for a first interval that is not positive or a max
// below first.
func (d *Dropper) Repeat(ctx context.Context, first, max time.Duration) error {
	if first <= 0 || max < first {
		return fmt.Errorf("exepages: Repeat with first %v and max %v: want 0 < first <= max", first, max)
	}
	sleep, stop := sleeper(ctx)
	defer stop()
	drop := func() error {
		_, err := d.Drop()
		return err
	}
	return repeat(schedule{first: first, max: max, settle: settleTime}, d.faults, sleep, minorFaults, drop)
}

// minorFaults returns the minor page faults the process has taken.
//
// It and Drop call package syscall rather than x/sys/unix, whose functions
// wrap syscall's. The code that runs after a drop comes back into memory
// in 64 KiB fault-around windows, so each further package that runs then
// keeps more of the text resident. In osvm-launch, x/sys/unix's code kept
// 128 KiB more.
func minorFaults() (uint64, error) {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0, fmt.Errorf("exepages: getrusage(RUSAGE_SELF): %w", err)
	}
	return uint64(usage.Minflt), nil
}

// Close closes /proc/self/smaps.
func (d *Dropper) Close() error {
	return d.smaps.Close()
}
