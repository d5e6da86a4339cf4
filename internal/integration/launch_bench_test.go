package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
	"github.com/osvm-project/osvm/sandbox"
)

// BenchmarkLaunchOverhead compares running /bin/true plainly, through
// osvm-launch with the default process sandbox (Landlock and seccomp), and
// through bubblewrap with the host's root bound read-only. It reports the
// median time of each and the overheads over the plain run. make bench runs
// it with -benchtime 200x.
func BenchmarkLaunchOverhead(b *testing.B) {
	bin := build(b)
	c, err := config.Parse("/etc/osvm/true.toml", []byte(`exec.command = ["/bin/true"]`))
	if err != nil {
		b.Fatal(err)
	}
	p, err := plan.New(c, c.Isolation, "/etc/osvm/true.toml")
	if err != nil {
		b.Fatal(err)
	}
	if err := sandbox.CompilePlan(p); err != nil {
		b.Fatal(err)
	}
	planPath, err := plan.Write(b.TempDir(), p)
	if err != nil {
		b.Fatal(err)
	}
	bwrap, bwrapErr := exec.LookPath("bwrap")

	runners := []struct {
		name string
		argv []string
	}{
		{"plain", []string{"/bin/true"}},
		{"osvm-launch", []string{filepath.Join(bin, "osvm-launch"), planPath}},
	}
	if bwrapErr == nil {
		runners = append(runners, struct {
			name string
			argv []string
		}{"bwrap", []string{bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all", "/bin/true"}})
	} else {
		b.Logf("bubblewrap is not installed (apt-get install bubblewrap); comparing with plain exec only")
	}

	times := make([][]time.Duration, len(runners))
	for b.Loop() {
		for i, r := range runners {
			cmd := exec.Command(r.argv[0], r.argv[1:]...)
			cmd.Stderr = os.Stderr
			start := time.Now()
			if err := cmd.Run(); err != nil {
				b.Fatalf("%s: %v", r.name, err)
			}
			times[i] = append(times[i], time.Since(start))
		}
	}

	medians := make([]time.Duration, len(runners))
	for i := range runners {
		slices.Sort(times[i])
		medians[i] = times[i][len(times[i])/2]
		b.ReportMetric(float64(medians[i].Microseconds())/1000, runners[i].name+"-ms")
	}
	b.ReportMetric(float64((medians[1]-medians[0]).Microseconds())/1000, "launch-overhead-ms")
	if len(runners) == 3 {
		b.ReportMetric(float64((medians[2]-medians[0]).Microseconds())/1000, "bwrap-overhead-ms")
		b.Logf("median: plain %v, osvm-launch %v (+%v), bwrap %v (+%v)", medians[0], medians[1], medians[1]-medians[0], medians[2], medians[2]-medians[0])
	}
}

// BenchmarkExampleExposure reports systemd-analyze security's exposure
// level, from 0 (best) to 10, of each component in examples/ as a unit under
// osvmd. It measures no time; make bench runs it once (-benchtime 1x).
func BenchmarkExampleExposure(b *testing.B) {
	e := newEnv(b)
	examples, err := filepath.Glob(filepath.Join(e.bin, "examples", "*.toml"))
	if err != nil || len(examples) == 0 {
		b.Fatalf("no examples in %s: %v", e.bin, err)
	}
	for b.Loop() {
		for _, example := range examples {
			name := strings.TrimSuffix(filepath.Base(example), ".toml")
			text, err := os.ReadFile(example)
			if err != nil {
				b.Fatal(err)
			}
			e.writeComponent(name, string(text))
			unit := "osvm-" + name + ".service"
			e.waitActive(unit)
			out := e.output("systemd-analyze", "security", "--no-pager", unit)
			m := exposureLevel.FindStringSubmatch(out)
			if m == nil {
				b.Fatalf("no exposure level in:\n%s", out)
			}
			score, _ := strconv.ParseFloat(m[1], 64)
			b.ReportMetric(score, "exposure-"+name)
		}
	}
}

var exposureLevel = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
