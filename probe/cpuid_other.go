//go:build !amd64

package probe

// cpuidAvailable reports whether this architecture has the CPUID
// instruction.
const cpuidAvailable = false

// cpuid is never called where cpuidAvailable is false.
func cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32) {
	panic("probe: CPUID called on an architecture without it")
}
