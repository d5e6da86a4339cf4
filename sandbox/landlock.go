package sandbox

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Access is a set of rights a Landlock path rule grants.
type Access int

const (
	// AccessRead allows reading files and listing folders.
	AccessRead Access = 1 << iota

	// AccessWrite allows writing, truncating, creating, removing and
	// renaming files and folders.
	AccessWrite

	// AccessExec allows executing files.
	AccessExec
)

// accessNames are the words Access.String joins with "+".
var accessNames = []struct {
	bit  Access
	name string
}{{AccessRead, "read"}, {AccessWrite, "write"}, {AccessExec, "exec"}}

func (a Access) String() string {
	var names []string
	for _, n := range accessNames {
		if a&n.bit != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}

// parseAccess returns the Access that Access.String writes as text.
func parseAccess(text string) (Access, error) {
	if text == "none" {
		return 0, nil
	}
	var a Access
	for _, word := range strings.Split(text, "+") {
		var bit Access
		for _, n := range accessNames {
			if n.name == word {
				bit = n.bit
			}
		}
		if bit == 0 {
			return 0, fmt.Errorf("invalid access %q: %q is none of read, write and exec", text, word)
		}
		a |= bit
	}
	return a, nil
}

// PathRule allows access below one path, a file or a folder.
type PathRule struct {
	Path   string
	Access Access
}

// Landlock ABI versions at which features appear (landlock(7)).
const (
	ABIFilesystem = 1 // file system access rights
	ABINetwork    = 4 // TCP bind and connect
	ABIScope      = 6 // abstract Unix sockets and signals
)

// LandlockPolicy is a Landlock ruleset as data. Every file system access
// that no path rule allows is denied, and so are TCP binds and connects to
// ports not listed.
type LandlockPolicy struct {
	// Required refuses to apply the policy when the kernel's Landlock ABI
	// is lower than MinABI; otherwise the kernel's best is applied.
	Required bool

	// MinABI is the lowest ABI the policy accepts: at least ABINetwork,
	// because TCP is always restricted, or the component's own minimum.
	MinABI int

	Paths      []PathRule
	BindTCP    []uint16
	ConnectTCP []uint16

	// Scoped restricts abstract Unix sockets and signals to the sandbox,
	// where the kernel supports it (ABI 6); it is never a reason to refuse.
	Scoped bool
}

// ABIError reports a kernel whose Landlock is too old for a policy.
type ABIError struct {
	Have, Need int
}

func (e *ABIError) Error() string {
	if e.Have == 0 {
		return fmt.Sprintf("Landlock is not available on this kernel, and the component needs Landlock ABI %d (set sandbox.landlock = \"best-effort\" to run without it)", e.Need)
	}
	return fmt.Sprintf("the kernel's Landlock ABI is %d, and the component needs ABI %d (set sandbox.landlock = \"best-effort\" or lower sandbox.landlock_min_abi to accept less)", e.Have, e.Need)
}

// CheckABI returns an *ABIError when a required policy needs a higher ABI
// than have, the kernel's.
func (p *LandlockPolicy) CheckABI(have int) error {
	if p.Required && have < p.MinABI {
		return &ABIError{Have: have, Need: p.MinABI}
	}
	return nil
}

// mergePaths returns rules with one rule per path, granting the union of
// the rights given to that path, sorted by path.
func mergePaths(rules []PathRule) []PathRule {
	union := map[string]Access{}
	for _, r := range rules {
		union[r.Path] |= r.Access
	}
	merged := make([]PathRule, 0, len(union))
	for _, path := range slices.Sorted(maps.Keys(union)) {
		merged = append(merged, PathRule{Path: path, Access: union[path]})
	}
	return merged
}
