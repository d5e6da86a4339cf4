package probe

// readCPUID executes CPUID for the leaves that parse uses, skipping those
// beyond the limits the CPU reports. It returns false where the
// architecture has no CPUID.
func readCPUID() (map[uint32]cpuidRegisters, bool) {
	if !cpuidAvailable {
		return nil, false
	}
	leaves := map[uint32]cpuidRegisters{}
	read := func(leaf uint32) cpuidRegisters {
		var r cpuidRegisters
		r.EAX, r.EBX, r.ECX, r.EDX = cpuid(leaf, 0)
		leaves[leaf] = r
		return r
	}

	maxLeaf := read(leafVendor).EAX
	if maxLeaf >= leafFeatures && read(leafFeatures).ECX&bitHypervisor != 0 {
		read(leafHypervisor)
	}
	maxExtended := read(leafExtendedMax).EAX
	for _, leaf := range []uint32{leafExtendedFeatures, leafMemoryEncryption} {
		if leaf <= maxExtended {
			read(leaf)
		}
	}
	return leaves, true
}
