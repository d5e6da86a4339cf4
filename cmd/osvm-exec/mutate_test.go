package osvmexec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/osvm-project/osvm/sandbox"
)

// recordLayout holds the offsets of an encoded exec record's 32-bit
// lengths and counts, and where its seccomp program starts.
type recordLayout struct {
	sizes   []int
	program int
}

// layoutOf walks data as osvm-exec parses it (ExecRecord.MarshalBinary
// wrote it) and returns its layout.
func layoutOf(t *testing.T, data []byte) recordLayout {
	t.Helper()
	var l recordLayout
	at := 8 // the magic
	u32 := func() int {
		v := int(binary.LittleEndian.Uint32(data[at:]))
		l.sizes = append(l.sizes, at)
		at += 4
		return v
	}
	str := func() { at += u32() }

	str()           // component
	str()           // source
	at += 2*4 + 3*8 // Landlock ABIs and the ruleset's attributes
	for range u32() {
		kind := sandbox.RuleKind(data[at])
		at += 1 + 8
		if kind == sandbox.RulePort {
			at += 8
		} else {
			str()
		}
	}
	at += 8 // capabilities
	for range u32() {
		str()
		str()
	}
	for range u32() {
		str()
	}
	for range u32() {
		str()
	}
	n := u32()
	l.program = at
	if at+n != len(data) {
		t.Fatalf("layoutOf ends at %d+%d, the record at %d", at, n, len(data))
	}
	return l
}

// TestExecStageSurvivesMutatedRecords runs osvm-exec on records with one
// length or count replaced by extreme values, and with one bit flipped in
// every byte before the seccomp program. osvm-exec must decline or run
// the command, and never die from a signal. Changes to the seccomp
// program are left out: osvmd compiles it, and a program that denies
// exit_group(2) kills osvm-exec legitimately.
func TestExecStageSurvivesMutatedRecords(t *testing.T) {
	// The command and the control socket are harmless whatever a
	// mutation makes of them.
	c := newComponent(t, "exit 0", "")
	r := c.record(t)
	r.ControlSockets = []string{filepath.Join(c.dir, "no-socket")}
	data := marshal(t, r)
	layout := layoutOf(t, data)

	run := func(name string, mutated []byte) {
		t.Helper()
		writeRaw(t, c, mutated)
		cmd := exec.Command(buildStage(t), c.planPath)
		cmd.Dir = c.dir
		out, err := cmd.CombinedOutput()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			// Other exit statuses come from the shell, run with a
			// mutated argument.
			if status := exitErr.Sys().(syscall.WaitStatus); status.Signaled() {
				t.Errorf("%s: osvm-exec killed by %v:\n%s", name, status.Signal(), out)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.HasPrefix(string(out), "osvm-exec: "+c.planPath+": ") && !strings.Contains(string(out), "\nosvm-launch "+c.planPath+"\n") {
			t.Errorf("%s: osvm-exec declined without running osvm-launch:\n%s", name, out)
		}
	}

	for _, at := range layout.sizes {
		old := binary.LittleEndian.Uint32(data[at:])
		for _, v := range []uint32{0, old - 1, old + 1, 1 << 31, 1<<32 - 1, 1<<32 - 8, uint32(len(data))} {
			mutated := append([]byte(nil), data...)
			binary.LittleEndian.PutUint32(mutated[at:], v)
			run(fmt.Sprintf("size at %d set to %#x", at, v), mutated)
		}
	}
	for at := range layout.program {
		mutated := append([]byte(nil), data...)
		mutated[at] ^= 1 << (at % 8)
		run(fmt.Sprintf("bit %d of byte %d flipped", at%8, at), mutated)
	}
}
