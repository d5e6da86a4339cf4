package probe

// cpuidAvailable reports whether this architecture has the CPUID
// instruction.
const cpuidAvailable = true

// cpuid executes CPUID with EAX = leaf and ECX = subleaf.
//
//go:noescape
func cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)
