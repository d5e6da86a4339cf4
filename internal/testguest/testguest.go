// Package testguest builds the small Hermit kernel of hermit/testdata/guest
// with gcc, for the tests of package hermit and the integration tests. The
// kernel checks the boot information it receives, prints, exercises every
// hypercall of the interface version it declares, and exits with the code
// given as the argument exit=N (see the comment at the top of guest.c).
//
// It needs gcc; the kernel is built without SSE (-mgeneral-regs-only) so
// that it runs where KVM emulates guest ring 0.
package testguest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
)

// cflags are the compiler flags of the test kernel: freestanding
// position-independent code without SSE, linked into a static PIE by
// guest.ld.
var cflags = []string{
	"-ffreestanding", "-nostdlib", "-fpie", "-mgeneral-regs-only", "-march=x86-64", "-O2",
	"-fno-stack-protector", "-fcf-protection=none", "-mno-red-zone", "-fno-asynchronous-unwind-tables",
	"-fno-builtin", "-Wall", "-Wextra", "-Werror",
	"-static-pie", "-Wl,--no-dynamic-linker", "-Wl,--build-id=none",
}

// Variant selects how the test kernel is built.
type Variant struct {
	Interface   int // the UHYVEIF note, 1 to 3
	KernelMinor int // adds a kernel version note 0.KernelMinor.0 unless 0
}

// Build compiles variant v into dir and returns the kernel's path.
func Build(dir string, v Variant) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("testguest: cannot find the guest's sources")
	}
	src := filepath.Join(filepath.Dir(self), "..", "..", "hermit", "testdata", "guest")
	out := filepath.Join(dir, fmt.Sprintf("kernel-v%d-%d", v.Interface, v.KernelMinor))
	args := append([]string{fmt.Sprintf("-DUHYVEIF=%d", v.Interface)}, cflags...)
	if v.KernelMinor != 0 {
		args = append(args, fmt.Sprintf("-DKERNEL_MINOR=%d", v.KernelMinor))
	}
	args = append(args, "-Wl,-T,"+filepath.Join(src, "guest.ld"), "-o", out,
		filepath.Join(src, "start.S"), filepath.Join(src, "guest.c"))
	cmd := exec.Command("gcc", args...)
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testguest: build the test kernel: %v\n%s\n%s", err, cmd, output)
	}
	return out, nil
}
