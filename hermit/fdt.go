package hermit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// DeviceTree is the flattened device tree (FDT) uhyve gives a kernel. Kernels
// from 0.11 take guest memory and arguments from it, and kernels after 0.13.2
// detect uhyve by its root "compatible" property. Encode produces the blob.
type DeviceTree struct {
	// MemoryStart and MemorySize describe guest RAM for the /memory node.
	MemoryStart, MemorySize uint64

	// BootArgs is /chosen/bootargs, "kernel args -- app args"; see
	// BootArgs.
	BootArgs string

	// TSCKHz is the TSC frequency for /hermit,tsc, omitted if 0.
	TSCKHz uint32

	// Mounts lists the guest paths served by the file hypercalls, for
	// /uhyve,mounts; omitted if empty, and then kernels mount /root.
	Mounts []string

	// CPUs is the number of cpu@N nodes under /cpus.
	CPUs int
}

// FDT format constants, from the Devicetree Specification v0.4, chapter 5.
const (
	fdtMagic          = 0xd00dfeed
	fdtVersion        = 17
	fdtLastCompatible = 16
	fdtHeaderSize     = 40
	fdtBeginNode      = 1
	fdtEndNode        = 2
	fdtProp           = 3
	fdtEnd            = 9
)

// Encode returns the tree as a version 17 FDT blob with an empty memory
// reservation map:
//
//	/ compatible = "hermit,uhyve", #address-cells = <2>, #size-cells = <2>
//	/memory@<start> device_type = "memory", reg = <start size>
//	/chosen bootargs
//	/hermit,tsc khz
//	/uhyve,mounts mounts (a string list)
//	/cpus #address-cells = <1>, #size-cells = <0>, with cpu@N device_type = "cpu"
func (d DeviceTree) Encode() ([]byte, error) {
	if d.MemorySize == 0 {
		return nil, errors.New("hermit: device tree: MemorySize is 0")
	}
	if strings.IndexByte(d.BootArgs, 0) >= 0 {
		return nil, errors.New("hermit: device tree: BootArgs contains a NUL byte")
	}
	for _, m := range d.Mounts {
		if m == "" || strings.IndexByte(m, 0) >= 0 {
			return nil, fmt.Errorf("hermit: device tree: mount point %q is empty or contains a NUL byte", m)
		}
	}

	w := newFDTWriter()
	w.beginNode("")
	w.propString("compatible", "hermit,uhyve")
	w.propU32("#address-cells", 2)
	w.propU32("#size-cells", 2)

	w.beginNode(fmt.Sprintf("memory@%x", d.MemoryStart))
	w.propString("device_type", "memory")
	w.propU64s("reg", d.MemoryStart, d.MemorySize)
	w.endNode()

	w.beginNode("chosen")
	w.propString("bootargs", d.BootArgs)
	w.endNode()

	if d.TSCKHz != 0 {
		w.beginNode("hermit,tsc")
		w.propU32("khz", d.TSCKHz)
		w.endNode()
	}

	if len(d.Mounts) > 0 {
		w.beginNode("uhyve,mounts")
		w.prop("mounts", []byte(strings.Join(d.Mounts, "\x00")+"\x00"))
		w.endNode()
	}

	if d.CPUs > 0 {
		w.beginNode("cpus")
		w.propU32("#address-cells", 1)
		w.propU32("#size-cells", 0)
		for i := range d.CPUs {
			w.beginNode(fmt.Sprintf("cpu@%d", i))
			w.propString("device_type", "cpu")
			w.endNode()
		}
		w.endNode()
	}

	w.endNode()
	return w.finish(), nil
}

// fdtWriter builds the structure and strings blocks of an FDT.
type fdtWriter struct {
	structure []byte
	strings   []byte
	offsets   map[string]uint32 // property name -> offset in strings
}

func newFDTWriter() *fdtWriter {
	return &fdtWriter{offsets: make(map[string]uint32)}
}

func (w *fdtWriter) token(t uint32) {
	w.structure = binary.BigEndian.AppendUint32(w.structure, t)
}

// pad aligns the structure block to 4 bytes with zeros.
func (w *fdtWriter) pad() {
	for len(w.structure)%4 != 0 {
		w.structure = append(w.structure, 0)
	}
}

func (w *fdtWriter) beginNode(name string) {
	w.token(fdtBeginNode)
	w.structure = append(w.structure, name...)
	w.structure = append(w.structure, 0)
	w.pad()
}

func (w *fdtWriter) endNode() {
	w.token(fdtEndNode)
}

func (w *fdtWriter) prop(name string, value []byte) {
	off, ok := w.offsets[name]
	if !ok {
		off = uint32(len(w.strings))
		w.offsets[name] = off
		w.strings = append(w.strings, name...)
		w.strings = append(w.strings, 0)
	}
	w.token(fdtProp)
	w.token(uint32(len(value)))
	w.token(off)
	w.structure = append(w.structure, value...)
	w.pad()
}

func (w *fdtWriter) propString(name, value string) {
	w.prop(name, append([]byte(value), 0))
}

func (w *fdtWriter) propU32(name string, v uint32) {
	w.prop(name, binary.BigEndian.AppendUint32(nil, v))
}

func (w *fdtWriter) propU64s(name string, values ...uint64) {
	var b []byte
	for _, v := range values {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	w.prop(name, b)
}

// finish returns the blob: header, memory reservation map (only its
// terminating empty entry), structure block, strings block.
func (w *fdtWriter) finish() []byte {
	w.token(fdtEnd)

	const rsvmapOffset = fdtHeaderSize // 8-byte aligned, as required
	structOffset := rsvmapOffset + 16
	stringsOffset := structOffset + len(w.structure)
	total := stringsOffset + len(w.strings)

	out := make([]byte, total)
	be := binary.BigEndian
	for i, v := range []uint32{
		fdtMagic, uint32(total), uint32(structOffset), uint32(stringsOffset), rsvmapOffset,
		fdtVersion, fdtLastCompatible, 0, uint32(len(w.strings)), uint32(len(w.structure)),
	} {
		be.PutUint32(out[4*i:], v)
	}
	copy(out[structOffset:], w.structure)
	copy(out[stringsOffset:], w.strings)
	return out
}

// BootArgs returns /chosen/bootargs as uhyve builds it: each environment
// entry as a kernel argument env=KEY=VALUE, then "--" and the application
// arguments. Kernels split the string with shell rules (the shlex crate),
// so BootArgs quotes each part that needs it. env entries have the form
// "KEY=VALUE".
func BootArgs(env, args []string) (string, error) {
	var words []string
	for _, e := range env {
		key, value, ok := strings.Cut(e, "=")
		if !ok || key == "" {
			return "", fmt.Errorf("hermit: environment entry %q is not of the form KEY=VALUE", e)
		}
		words = append(words, "env="+shellQuote(key)+"="+shellQuote(value))
	}
	if len(args) > 0 {
		words = append(words, "--")
		for _, a := range args {
			words = append(words, shellQuote(a))
		}
	}
	return strings.Join(words, " "), nil
}

// shellQuote returns s unchanged if the shell would read it as one word as
// is, and otherwise in single quotes, with each ' written as '\”.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, c := range []byte(s) {
		if !isShellSafe(c) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func isShellSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_=+,./:@%^", c) >= 0
}
