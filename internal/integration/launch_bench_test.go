package integration

import (
	"fmt"
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
// osvm-exec and through osvm-launch with the default process sandbox
// (capabilities, Landlock and seccomp), and through bubblewrap with the
// host's root bound read-only. It reports the median time of each, the
// overheads over the plain run, and each launcher's overhead as a ratio to
// bubblewrap's. make bench runs it with -benchtime 200x.
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
	writeExecRecord(b, p, planPath)

	// osvm-exec runs from a folder without osvm-launch, so that a record
	// it declines fails the benchmark instead of timing osvm-launch.
	execStage := filepath.Join(b.TempDir(), "osvm-exec")
	if out, err := exec.Command("cp", filepath.Join(bin, "osvm-exec"), execStage).CombinedOutput(); err != nil {
		b.Fatalf("copy osvm-exec: %v\n%s", err, out)
	}

	type runner struct {
		name string
		argv []string
	}
	runners := []runner{
		{"plain", []string{"/bin/true"}},
		{"osvm-exec", []string{execStage, planPath}},
		{"osvm-launch", []string{filepath.Join(bin, "osvm-launch"), planPath}},
	}
	if bwrap, err := exec.LookPath("bwrap"); err == nil {
		runners = append(runners, runner{"bwrap", []string{bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all", "/bin/true"}})
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

	medians := map[string]time.Duration{}
	for i, r := range runners {
		slices.Sort(times[i])
		medians[r.name] = times[i][len(times[i])/2]
		b.ReportMetric(milliseconds(medians[r.name]), r.name+"-ms")
	}
	overhead := func(name string) time.Duration { return medians[name] - medians["plain"] }
	b.ReportMetric(milliseconds(overhead("osvm-exec")), "exec-overhead-ms")
	b.ReportMetric(milliseconds(overhead("osvm-launch")), "launch-overhead-ms")
	line := fmt.Sprintf("median: plain %v, osvm-exec %v (+%v), osvm-launch %v (+%v)",
		medians["plain"], medians["osvm-exec"], overhead("osvm-exec"), medians["osvm-launch"], overhead("osvm-launch"))
	if _, ok := medians["bwrap"]; ok {
		b.ReportMetric(milliseconds(overhead("bwrap")), "bwrap-overhead-ms")
		b.ReportMetric(float64(overhead("osvm-exec"))/float64(overhead("bwrap")), "exec/bwrap-overhead")
		b.ReportMetric(float64(overhead("osvm-launch"))/float64(overhead("bwrap")), "launch/bwrap-overhead")
		line += fmt.Sprintf(", bwrap %v (+%v)", medians["bwrap"], overhead("bwrap"))
	}
	b.Log(line)
}

func milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// writeExecRecord writes the exec record of plan p, stored at planPath, as
// osvmd does.
func writeExecRecord(t testing.TB, p *plan.Plan, planPath string) {
	t.Helper()
	record, err := sandbox.NewExecRecord(p, sandbox.DetectLandlock(), func(path string) (bool, error) {
		info, err := os.Stat(path)
		return err == nil && info.IsDir(), err
	})
	if err != nil || record == nil {
		t.Fatalf("exec record of %s: %v, %v", p.Component.Name, record, err)
	}
	data, err := record.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.WriteExecRecord(planPath, data); err != nil {
		t.Fatal(err)
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
