package integration

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
	"github.com/osvm-project/osvm/internal/testenv"
	"github.com/osvm-project/osvm/internal/testguest"
	"github.com/osvm-project/osvm/units"
)

// guestMemory is the guest size of the unikernel benchmarks.
const guestMemory = 32 << 20

// unikernelPlan writes a plan that boots the test kernel with args and
// returns its path.
func unikernelPlan(b *testing.B, args ...string) string {
	b.Helper()
	testenv.MustHaveKVM(b)
	dir := b.TempDir()
	kernel, err := testguest.Build(dir, testguest.Variant{Interface: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range []string{"data", "ro"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "input.txt"), []byte("input file content\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	text := fmt.Sprintf(`isolation = "unikernel"
[unikernel]
image = %q
args = [%s]
mounts = [{ host = %q, guest = "/data", writable = true }, { host = %q, guest = "/ro" }]
[resources]
memory = "32MiB"
`, kernel, strings.Join(quoted, ", "), filepath.Join(dir, "data"), filepath.Join(dir, "ro"))
	c, err := config.Parse(filepath.Join(dir, "guest.toml"), []byte(text))
	if err != nil {
		b.Fatal(err)
	}
	p, err := plan.New(c, config.IsolationUnikernel, filepath.Join(dir, "guest.toml"))
	if err != nil {
		b.Fatal(err)
	}
	path, err := plan.Write(dir, p)
	if err != nil {
		b.Fatal(err)
	}
	return path
}

// unitEnvironment returns this process's environment with the
// Environment= of the unit that osvmd would start for the plan at
// planPath, so that a launcher run by a benchmark gets the settings it
// gets in a unit.
func unitEnvironment(b *testing.B, planPath, launcher string) []string {
	b.Helper()
	p, err := plan.Read(planPath)
	if err != nil {
		b.Fatal(err)
	}
	env := os.Environ()
	for _, prop := range units.New(p, planPath, launcher).Properties {
		if prop.Name == "Environment" {
			env = append(env, prop.Value.Value().([]string)...)
		}
	}
	return env
}

// BenchmarkUnikernelBoot runs the test kernel through osvm-launch, from
// exec to the guest's exit hypercall, and reports the median. make bench
// runs it with -benchtime 20x.
func BenchmarkUnikernelBoot(b *testing.B) {
	launcher := filepath.Join(build(b), "osvm-launch")
	planPath := unikernelPlan(b, "exit=0")
	var times []time.Duration
	for b.Loop() {
		cmd := exec.Command(launcher, planPath)
		cmd.Env = unitEnvironment(b, planPath, launcher)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("osvm-launch: %v\n%s", err, out)
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "boot-to-exit-ms")
}

// BenchmarkMonitorMemory reports osvm-launch's resident memory beyond the
// guest memory the guest touched, for a 32 MiB guest that halts, from the
// run with the median overhead. Resident memory is the Rss of every mapping
// in /proc/PID/smaps, which sums to VmRSS: RssAnon, RssFile and RssShmem.
// It also reports two parts of the overhead. The pages of osvm-launch's own
// file (text, read-only data and data not yet written) are shared by all
// launchers through the page cache. The anonymous memory outside the
// guest's is each launcher's own.
//
// The figures are taken 1 s after the launcher starts, or after the time
// that OSVM_BENCH_MEMORY_WAIT sets (a Go duration such as "10s"), to check
// that the memory stays low. An additional figure, overhead-pss-MiB, is the
// overhead's proportional share (Pss): with one launcher it is nearly the
// same as the overhead, and with many launchers it divides the shared file
// pages among them.
func BenchmarkMonitorMemory(b *testing.B) {
	launcher := filepath.Join(build(b), "osvm-launch")
	planPath := unikernelPlan(b, "mode=halt")
	wait := time.Second
	if s := os.Getenv("OSVM_BENCH_MEMORY_WAIT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			b.Fatalf("OSVM_BENCH_MEMORY_WAIT=%q is not a positive duration such as 10s", s)
		}
		wait = d
	}
	var runs []monitorMemory
	for b.Loop() {
		cmd := exec.Command(launcher, planPath)
		cmd.Env = unitEnvironment(b, planPath, launcher)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(wait)
		m, err := residentMemory(cmd.Process.Pid, launcher, guestMemory)
		cmd.Process.Kill()
		cmd.Wait()
		if err != nil {
			b.Fatal(err)
		}
		runs = append(runs, m)
	}

	// The run with the median overhead, so that its parts add up.
	slices.SortFunc(runs, func(x, y monitorMemory) int { return cmp.Compare(x.total-x.guest, y.total-y.guest) })
	m := runs[len(runs)/2]
	b.ReportMetric(float64(m.total)/(1<<20), "launcher-rss-MiB")
	b.ReportMetric(float64(m.guest)/(1<<20), "guest-touched-MiB")
	b.ReportMetric(float64(m.total-m.guest)/(1<<20), "overhead-MiB")
	b.ReportMetric(float64(m.binary)/(1<<20), "binary-file-MiB")
	b.ReportMetric(float64(m.anonymous)/(1<<20), "anon-overhead-MiB")
	b.ReportMetric(float64(m.overheadPss)/(1<<20), "overhead-pss-MiB")
}

// monitorMemory is the resident memory of a running osvm-launch in bytes.
type monitorMemory struct {
	total       uint64 // every mapping
	guest       uint64 // the guest's memory
	binary      uint64 // file pages of osvm-launch's own mappings
	anonymous   uint64 // anonymous pages outside the guest's memory
	overheadPss uint64 // Pss of every mapping but the guest's memory
}

// residentMemory reads the resident memory of process pid, which runs the
// executable at binary, from /proc/PID/smaps. The guest's memory is the one
// mapping of guestSize bytes that package kvm marked MADV_DONTDUMP (VmFlags
// "dd"). The flag keeps the kernel from merging it with an adjacent mapping
// of the Go runtime, which would hide the guest's pages in a larger mapping,
// and the runtime has mappings of guestSize bytes of its own.
func residentMemory(pid int, binary string, guestSize uint64) (monitorMemory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return monitorMemory{}, err
	}
	defer f.Close()

	// A mapping's fields follow its header line and end with VmFlags.
	type mapping struct {
		path                      string
		size, rss, pss, anonymous uint64
	}
	var m monitorMemory
	var cur mapping
	guestMappings := 0
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") {
			cur = mapping{}
			if len(fields) >= 6 {
				cur.path = fields[5]
			}
			continue
		}
		var kib uint64
		if len(fields) >= 2 {
			kib, _ = strconv.ParseUint(fields[1], 10, 64)
		}
		switch fields[0] {
		case "Size:":
			cur.size = kib << 10
		case "Rss:":
			cur.rss = kib << 10
		case "Pss:":
			cur.pss = kib << 10
		case "Anonymous:":
			cur.anonymous = kib << 10
		case "VmFlags:":
			m.total += cur.rss
			if cur.size == guestSize && slices.Contains(fields[1:], "dd") {
				m.guest += cur.rss
				guestMappings++
			} else {
				m.anonymous += cur.anonymous
				m.overheadPss += cur.pss
			}
			if cur.path == binary {
				m.binary += cur.rss - cur.anonymous
			}
		}
	}
	if err := scanner.Err(); err != nil {
		return monitorMemory{}, err
	}
	if guestMappings != 1 {
		return monitorMemory{}, fmt.Errorf("/proc/%d/smaps has %d mappings of %d bytes marked dd (MADV_DONTDUMP), want exactly one for the guest's memory", pid, guestMappings, guestSize)
	}
	return m, nil
}

// BenchmarkManyGuests starts OSVM_BENCH_GUESTS (default 500) components of
// 32 MiB guests that halt, as transient units under osvmd in the sandbox,
// and reports how many ran at once and their launchers' mean resident
// memory. It runs once (-benchtime 1x).
func BenchmarkManyGuests(b *testing.B) {
	testenv.MustHaveKVM(b)
	want := 500
	if n, err := strconv.Atoi(os.Getenv("OSVM_BENCH_GUESTS")); err == nil && n > 0 {
		want = n
	}
	e := newEnv(b)
	kernel, err := testguest.Build(e.bin, testguest.Variant{Interface: 1})
	if err != nil {
		b.Fatal(err)
	}
	e.shell(`install -D -m 0644 ` + filepath.Base(kernel) + ` /var/lib/osvm-test/kernel
mkdir -p /var/lib/osvm-test/data /var/lib/osvm-test/ro`)
	component := `isolation = "unikernel"
[unikernel]
image = "/var/lib/osvm-test/kernel"
user = "root"
args = ["mode=halt"]
[resources]
memory = "32MiB"
`
	for b.Loop() {
		start := time.Now()
		for i := range want {
			e.writeComponent(fmt.Sprintf("g%d", i), component)
		}
		var active int
		deadline := time.Now().Add(10 * time.Minute)
		for time.Now().Before(deadline) {
			out := e.output("systemctl", "list-units", "--no-legend", "--state=active", "osvm-g*.service")
			active = strings.Count(out, ".service")
			if active >= want {
				break
			}
			time.Sleep(time.Second)
		}
		elapsed := time.Since(start)
		rss := e.shell(`for p in $(systemctl show -p MainPID --value 'osvm-g*.service'); do [ "$p" != 0 ] && grep VmRSS /proc/$p/status; done | awk '{s+=$2; n++} END {if (n) print s/n/1024; else print 0}'`)
		meanRSS, _ := strconv.ParseFloat(strings.TrimSpace(rss), 64)
		b.ReportMetric(float64(active), "guests-at-once")
		b.ReportMetric(elapsed.Seconds(), "seconds-to-start")
		b.ReportMetric(meanRSS, "launcher-rss-MiB")
		b.Logf("%d of %d guests active after %v; launchers' mean RSS %.1f MiB", active, want, elapsed.Round(time.Second), meanRSS)
		if active < want {
			b.Errorf("only %d of %d guests ran at once", active, want)
		}
	}
}
