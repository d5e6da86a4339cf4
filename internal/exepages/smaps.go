package exepages

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
)

// Mapping is one entry of /proc/PID/smaps (proc_pid_smaps(5)), with the
// fields Drop decides on. It keeps no path, so that reading smaps again
// and again allocates no strings.
type Mapping struct {
	Start, End   uint64  // virtual address range [Start, End)
	Perms        [4]byte // such as "r-xp": read, write, execute, p(rivate) or s(hared)
	Offset       uint64  // offset in the file
	Major, Minor uint32  // device of the file
	Inode        uint64  // inode of the file, 0 for anonymous memory

	Rss       uint64 // resident bytes
	Anonymous uint64 // resident bytes not backed by the file
	Swap      uint64 // bytes of anonymous (copy-on-write) pages swapped out
	Locked    bool   // VmFlags has "lo" (mlock(2))
}

// errLineTooLong reports a smaps line longer than the reader's buffer.
var errLineTooLong = errors.New("line longer than the read buffer")

// parseSmaps reads the mappings of /proc/PID/smaps from r and appends them
// to mappings[:0]. r's buffer must hold the longest line, a header with a
// path of up to PATH_MAX (4096) bytes.
func parseSmaps(r *bufio.Reader, mappings []Mapping) ([]Mapping, error) {
	mappings = mappings[:0]
	for {
		line, readErr := r.ReadSlice('\n')
		if errors.Is(readErr, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("smaps: %w (%d bytes)", errLineTooLong, r.Size())
		}
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return nil, fmt.Errorf("read smaps: %w", readErr)
		}

		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) > 0 {
			var err error
			if mappings, err = parseLine(line, mappings); err != nil {
				return nil, err
			}
		}
		if readErr != nil { // io.EOF
			return mappings, nil
		}
	}
}

// parseLine applies one line of smaps to mappings: a header starts a new
// mapping, and a field line sets a field of the last one.
func parseLine(line []byte, mappings []Mapping) ([]Mapping, error) {
	key, value, isField := cutField(line)
	if !isField {
		m, err := parseHeader(line)
		if err != nil {
			return nil, err
		}
		return append(mappings, m), nil
	}
	if len(mappings) == 0 {
		return nil, fmt.Errorf("smaps field %q before the first mapping", line)
	}
	m := &mappings[len(mappings)-1]
	var err error
	switch string(key) { // the conversion allocates nothing in a switch
	case "Rss":
		m.Rss, err = parseKiB(value)
	case "Anonymous":
		m.Anonymous, err = parseKiB(value)
	case "Swap":
		m.Swap, err = parseKiB(value)
	case "VmFlags":
		m.Locked = hasFlag(value, "lo")
	}
	if err != nil {
		return nil, fmt.Errorf("smaps line %q: %w", line, err)
	}
	return mappings, nil
}

// cutField splits a field line such as "Rss:  1728 kB" into its key and
// value. A header line starts with an address range, whose first word
// does not end in a colon.
func cutField(line []byte) (key, value []byte, ok bool) {
	first, rest, _ := bytes.Cut(line, []byte(" "))
	if !bytes.HasSuffix(first, []byte(":")) {
		return nil, nil, false
	}
	return first[:len(first)-1], bytes.TrimSpace(rest), true
}

// parseHeader parses a mapping's first line, in the format of
// /proc/PID/maps: "00400000-005b0000 r-xp 00000000 fe:00 9982345 /path".
func parseHeader(line []byte) (Mapping, error) {
	var fields [5][]byte
	rest := line
	for i := range fields {
		rest = bytes.TrimLeft(rest, " ")
		fields[i], rest, _ = bytes.Cut(rest, []byte(" "))
		if len(fields[i]) == 0 {
			return Mapping{}, fmt.Errorf("smaps header %q has %d fields, want at least 5", line, i)
		}
	}

	start, end, ok := bytes.Cut(fields[0], []byte("-"))
	if !ok {
		return Mapping{}, fmt.Errorf("smaps header %q: address range lacks '-'", line)
	}
	major, minor, ok := bytes.Cut(fields[3], []byte(":"))
	if !ok {
		return Mapping{}, fmt.Errorf("smaps header %q: device lacks ':'", line)
	}

	var m Mapping
	var err error
	if m.Start, err = parseUint(start, 16); err != nil {
		return Mapping{}, fmt.Errorf("smaps header %q: start address: %w", line, err)
	}
	if m.End, err = parseUint(end, 16); err != nil {
		return Mapping{}, fmt.Errorf("smaps header %q: end address: %w", line, err)
	}
	if m.Offset, err = parseUint(fields[2], 16); err != nil {
		return Mapping{}, fmt.Errorf("smaps header %q: offset: %w", line, err)
	}
	if m.Major, err = parseUint32(major); err != nil {
		return Mapping{}, fmt.Errorf("smaps header %q: device: %w", line, err)
	}
	if m.Minor, err = parseUint32(minor); err != nil {
		return Mapping{}, fmt.Errorf("smaps header %q: device: %w", line, err)
	}
	if m.Inode, err = parseUint(fields[4], 10); err != nil {
		return Mapping{}, fmt.Errorf("smaps header %q: inode: %w", line, err)
	}

	if m.End <= m.Start {
		return Mapping{}, fmt.Errorf("smaps header %q: empty or reversed address range", line)
	}
	if len(fields[1]) != len(m.Perms) {
		return Mapping{}, fmt.Errorf("smaps header %q: permissions are not %d characters", line, len(m.Perms))
	}
	copy(m.Perms[:], fields[1])
	return m, nil
}

// parseUint parses text, digits in base 10 or 16 without a prefix, as
// the kernel prints numbers in smaps. Unlike strconv.ParseUint it takes
// bytes, so that parsing allocates nothing.
func parseUint(text []byte, base uint64) (uint64, error) {
	if len(text) == 0 {
		return 0, errors.New("empty number")
	}
	var n uint64
	for _, c := range text {
		var digit uint64
		switch {
		case '0' <= c && c <= '9':
			digit = uint64(c - '0')
		case 'a' <= c && c <= 'f':
			digit = uint64(c-'a') + 10
		case 'A' <= c && c <= 'F':
			digit = uint64(c-'A') + 10
		default:
			digit = base
		}
		if digit >= base {
			return 0, fmt.Errorf("invalid digit %q in %q", c, text)
		}
		if n > (math.MaxUint64-digit)/base {
			return 0, fmt.Errorf("number %q overflows 64 bits", text)
		}
		n = n*base + digit
	}
	return n, nil
}

// parseUint32 parses a hexadecimal device number, as smaps prints the
// major and minor numbers.
func parseUint32(text []byte) (uint32, error) {
	n, err := parseUint(text, 16)
	if err != nil {
		return 0, err
	}
	if n > math.MaxUint32 {
		return 0, fmt.Errorf("number %q overflows 32 bits", text)
	}
	return uint32(n), nil
}

// parseKiB parses a smaps size such as "1728 kB" into bytes.
func parseKiB(value []byte) (uint64, error) {
	number, unit, _ := bytes.Cut(value, []byte(" "))
	if string(bytes.TrimSpace(unit)) != "kB" {
		return 0, fmt.Errorf("size %q is not in kB", value)
	}
	n, err := parseUint(number, 10)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", value, err)
	}
	return n << 10, nil
}

// hasFlag reports whether the space-separated VmFlags value contains flag.
func hasFlag(value []byte, flag string) bool {
	for len(value) > 0 {
		var word []byte
		word, value, _ = bytes.Cut(bytes.TrimLeft(value, " "), []byte(" "))
		if string(word) == flag {
			return true
		}
	}
	return false
}

// executableReadOnly appends to selected[:0] the mappings that Drop may
// release and returns them. They are the mappings of the file that maps
// textAddress, an address in the running program's text, that are
// private, lack write permission, hold no anonymous (copy-on-write) pages
// and are not locked. It returns none when no file mapping contains
// textAddress.
//
// The file is matched by the device and inode numbers that smaps prints,
// not by path: the path of a replaced executable ends in " (deleted)",
// and stat(2) of the path can report another device than the mapping, as
// on overlayfs.
func executableReadOnly(mappings []Mapping, textAddress uint64, selected []Mapping) []Mapping {
	selected = selected[:0]
	var exe *Mapping
	for i := range mappings {
		if mappings[i].Start <= textAddress && textAddress < mappings[i].End {
			exe = &mappings[i]
			break
		}
	}
	if exe == nil || exe.Inode == 0 {
		return selected
	}
	for _, m := range mappings {
		switch {
		case m.Major != exe.Major || m.Minor != exe.Minor || m.Inode != exe.Inode:
		case m.Perms[1] == 'w' || m.Perms[3] != 'p':
		case m.Anonymous != 0 || m.Swap != 0:
			// Copies the process wrote, resident or swapped out, such as
			// the relocated read-only data of a position-independent
			// build. MADV_DONTNEED would discard them, swap entries too.
		case m.Locked:
		default:
			selected = append(selected, m)
		}
	}
	return selected
}
