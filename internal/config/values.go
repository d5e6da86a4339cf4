package config

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// UnmarshalText accepts the names in isolations. The decoder reports the
// returned error with the value's position.
func (i *Isolation) UnmarshalText(text []byte) error {
	v := Isolation(text)
	if !slices.Contains(isolations, v) {
		return fmt.Errorf("invalid isolation %q (valid: %s)", text, joinQuoted(isolations))
	}
	*i = v
	return nil
}

// UnmarshalText accepts systemd's names for the restart policies osvm offers.
func (p *RestartPolicy) UnmarshalText(text []byte) error {
	v := RestartPolicy(text)
	if !slices.Contains(restartPolicies, v) {
		return fmt.Errorf("invalid restart policy %q (valid: %s)", text, joinQuoted(restartPolicies))
	}
	*p = v
	return nil
}

// size is a byte count written as an integer or as a string with a binary
// suffix: "64MiB", "1.5GiB", "512K".
type size struct {
	bytes uint64
	set   bool
}

// sizeUnits are powers of 1024. The single letters are systemd's own
// spelling (MemoryMax=64M means 64 MiB).
var sizeUnits = []struct {
	suffix string
	factor uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

func (s *size) UnmarshalTOML(value any) error {
	switch v := value.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("invalid size %d: must not be negative", v)
		}
		*s = size{bytes: uint64(v), set: true}
		return nil
	case string:
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		*s = size{bytes: n, set: true}
		return nil
	default:
		return fmt.Errorf("invalid size %v: want a byte count or a string such as \"64MiB\"", value)
	}
}

// decimalNumber is the number syntax of sizes: digits with an optional
// fraction, no exponents, signs, underscores or hex.
var decimalNumber = lazyRegexp(`^[0-9]+(\.[0-9]+)?$`)

func parseSize(text string) (uint64, error) {
	trimmed := strings.TrimSpace(text)
	for _, decimal := range []string{"kB", "KB", "MB", "GB", "TB"} {
		if strings.HasSuffix(trimmed, decimal) {
			return 0, fmt.Errorf("invalid size %q: decimal units are ambiguous, use KiB, MiB, GiB or TiB", text)
		}
	}
	for _, unit := range sizeUnits {
		number, ok := strings.CutSuffix(trimmed, unit.suffix)
		if !ok {
			continue
		}
		number = strings.TrimSpace(number)
		if !decimalNumber().MatchString(number) {
			return 0, fmt.Errorf("invalid size %q: want a number followed by B, KiB, MiB, GiB or TiB", text)
		}
		f, err := strconv.ParseFloat(number, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, fmt.Errorf("invalid size %q: want a number followed by B, KiB, MiB, GiB or TiB", text)
		}
		bytes := f * float64(unit.factor)
		if bytes >= math.MaxUint64 {
			return 0, fmt.Errorf("invalid size %q: too large", text)
		}
		return uint64(bytes), nil
	}
	if n, err := strconv.ParseUint(trimmed, 10, 64); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("invalid size %q: want a byte count or a number followed by KiB, MiB, GiB or TiB", text)
}

// duration is a Go duration string: "500ms", "2s", "1m30s". Integers are
// rejected because a bare number has no obvious unit.
type duration struct {
	value time.Duration
	set   bool
}

func (d *duration) UnmarshalTOML(value any) error {
	text, ok := value.(string)
	if !ok {
		return fmt.Errorf("invalid duration %v: want a string with a unit, such as \"2s\" or \"500ms\"", value)
	}
	v, err := time.ParseDuration(text)
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a number with a unit (ms, s, m, h), such as \"2s\" or \"1m30s\"", text)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", text)
	}
	*d = duration{value: v, set: true}
	return nil
}

func joinQuoted[T ~string](values []T) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = strconv.Quote(string(v))
	}
	return strings.Join(quoted, ", ")
}

// UnmarshalText accepts the network modes in networks.
func (n *Network) UnmarshalText(text []byte) error {
	v := Network(text)
	if !slices.Contains(networks, v) {
		return fmt.Errorf("invalid network %q (valid: %s)", text, joinQuoted(networks))
	}
	*n = v
	return nil
}

// UnmarshalText accepts the seccomp profiles in syscallProfiles.
func (s *Syscalls) UnmarshalText(text []byte) error {
	v := Syscalls(text)
	if !slices.Contains(syscallProfiles, v) {
		return fmt.Errorf("invalid syscalls profile %q (valid: %s)", text, joinQuoted(syscallProfiles))
	}
	*s = v
	return nil
}

// UnmarshalText accepts the Landlock modes in landlockModes.
func (m *LandlockMode) UnmarshalText(text []byte) error {
	v := LandlockMode(text)
	if !slices.Contains(landlockModes, v) {
		return fmt.Errorf("invalid landlock mode %q (valid: %s)", text, joinQuoted(landlockModes))
	}
	*m = v
	return nil
}

// lazyRegexp returns a function that compiles expr on its first call and
// returns the same *regexp.Regexp on every call. Compiling at package
// initialization would cost every program that imports this package,
// osvm-launch among them, although only file loading uses the patterns.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
