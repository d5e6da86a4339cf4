//go:build amd64

package hermit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osvm-project/osvm/internal/testenv"
	"github.com/osvm-project/osvm/internal/testguest"
	"github.com/osvm-project/osvm/kvm"
)

// The test kernel in testdata/guest is built with gcc while the tests run,
// once per variant, into a folder that TestMain removes.

// guestVariant selects how the test kernel is built.
type guestVariant = testguest.Variant

var guestBuilds struct {
	sync.Mutex
	dir    string
	images map[guestVariant][]byte
}

func TestMain(m *testing.M) {
	code := m.Run()
	if guestBuilds.dir != "" {
		os.RemoveAll(guestBuilds.dir)
	}
	os.Exit(code)
}

// buildGuest returns the test kernel of variant v, building it on first use.
func buildGuest(t testing.TB, v guestVariant) *Image {
	t.Helper()
	testenv.MustHaveExecPath(t, "gcc")

	guestBuilds.Lock()
	defer guestBuilds.Unlock()
	if data, ok := guestBuilds.images[v]; ok {
		return mustInspectTB(t, data)
	}
	if guestBuilds.dir == "" {
		dir, err := os.MkdirTemp("", "hermit-test-guest-")
		if err != nil {
			t.Fatal(err)
		}
		guestBuilds.dir = dir
		guestBuilds.images = map[guestVariant][]byte{}
	}

	out, err := testguest.Build(guestBuilds.dir, v)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	guestBuilds.images[v] = data
	return mustInspectTB(t, data)
}

func mustInspectTB(t testing.TB, data []byte) *Image {
	t.Helper()
	img, err := Inspect(data)
	if err != nil {
		t.Fatalf("Inspect of the test kernel: %v", err)
	}
	return img
}

// guestRun is the result of one test-kernel run.
type guestRun struct {
	code                    int
	err                     error
	stdout, stderr, console string
	data, ro, outside       string // host folders of /data, /ro and the link target
	stats                   *Stats
}

// runGuest boots the test kernel with the arguments args on cpus vCPUs. The
// guest gets a writable /data holding input.txt and a link to a folder
// outside the mount, and an empty read-only /ro.
func runGuest(t testing.TB, ctx context.Context, img *Image, cpus int, args ...string) guestRun {
	t.Helper()
	r := guestRun{data: t.TempDir(), ro: t.TempDir(), outside: t.TempDir(), stats: new(Stats)}
	if err := os.WriteFile(filepath.Join(r.data, "input.txt"), []byte("input file content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(r.outside, filepath.Join(r.data, "link")); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr, console bytes.Buffer
	r.code, r.err = Run(ctx, img, Config{
		Memory:  32 << 20,
		CPUs:    cpus,
		Program: "/bin/test-kernel",
		Args:    args,
		Env:     []string{"GREETING=hello world", "EMPTY="},
		Mounts:  map[string]Mount{"/data": {Dir: r.data, Writable: true}, "/ro": {Dir: r.ro}},
		Stdout:  &stdout, Stderr: &stderr, Console: &console,
		Stats: r.stats,
	})
	r.stdout, r.stderr, r.console = stdout.String(), stderr.String(), console.String()
	return r
}

func (r guestRun) String() string {
	return fmt.Sprintf("exit code %d, error %v\nstdout:\n%s\nstderr:\n%s\nconsole:\n%s", r.code, r.err, r.stdout, r.stderr, r.console)
}

func TestRunGuest(t *testing.T) {
	testenv.MustHaveKVM(t)
	tests := []struct {
		name    string
		variant guestVariant
		cpus    int
		wantOut []string
	}{
		{"interface 1, two CPUs", guestVariant{Interface: 1, KernelMinor: 0}, 2, []string{
			"argv[0]=/bin/test-kernel", "argv[1]=first", "argv[2]=exit=42",
			"envc=4", "env=GREETING=hello world", "env=EMPTY=",
		}},
		{"interface 1, one CPU", guestVariant{Interface: 1, KernelMinor: 0}, 1, nil},
		{"interface 2", guestVariant{Interface: 2, KernelMinor: 13}, 2, []string{
			"bootargs=env=GREETING='hello world' env=EMPTY='' -- first exit=42",
		}},
		{"interface 3", guestVariant{Interface: 3, KernelMinor: 14}, 2, []string{
			"bootargs=env=GREETING='hello world' env=EMPTY='' -- first exit=42",
			"stat size 19", "directory entries: 4",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := buildGuest(t, tt.variant)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r := runGuest(t, ctx, img, tt.cpus, "first", "exit=42")
			if r.err != nil || r.code != 42 {
				t.Fatalf("Run = %d, %v; want 42, nil\n%s", r.code, r.err, r)
			}

			wantOut := append([]string{
				fmt.Sprintf("hello from the test kernel, uhyve interface %d", tt.variant.Interface),
				"hello from the test kernel",
				fmt.Sprintf("cpus online: %d", tt.cpus),
				"read 19 bytes: input file content",
				"after lseek: file ",
				"output size 27",
				"unlink ok",
				"read-only mount: open for writing returns -30",
				"exiting with 42",
			}, tt.wantOut...)
			for _, line := range wantOut {
				if !strings.Contains(r.stdout, line+"\n") {
					t.Errorf("stdout lacks the line %q", line)
				}
			}
			if r.stderr != "stderr works\n" {
				t.Errorf("stderr = %q, want %q", r.stderr, "stderr works\n")
			}
			for _, line := range []string{"test kernel: console byte output", "test kernel: console buffer output"} {
				if !strings.Contains(r.console, line+"\n") {
					t.Errorf("console lacks %q", line)
				}
			}
			if tt.cpus > 1 && !strings.Contains(r.console, "cpu 1 is up\n") {
				t.Errorf("console lacks the application processor's line")
			}
			if t.Failed() {
				t.Logf("%s", r)
			}

			out, err := os.ReadFile(filepath.Join(r.data, "output.txt"))
			if err != nil || string(out) != "written by the test kernel\n" {
				t.Errorf("output.txt = %q, %v", out, err)
			}
			if _, err := os.Stat(filepath.Join(r.data, "tmp.txt")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("tmp.txt was not unlinked: %v", err)
			}
			if entries, _ := os.ReadDir(r.ro); len(entries) != 0 {
				t.Errorf("the read-only mount gained files: %v", entries)
			}
			if tt.variant.Interface >= 3 {
				if info, err := os.Stat(filepath.Join(r.data, "newdir")); err != nil || !info.IsDir() {
					t.Errorf("Mkdir did not create newdir: %v", err)
				}
			}
			if r.stats.Hypercalls.Load() == 0 || r.stats.Exits.Load() < r.stats.Hypercalls.Load() {
				t.Errorf("stats: %d exits, %d hypercalls", r.stats.Exits.Load(), r.stats.Hypercalls.Load())
			}
		})
	}
}

func TestRunGuestEscapeDenied(t *testing.T) {
	testenv.MustHaveKVM(t)
	for _, version := range []int{1, 3} {
		t.Run(fmt.Sprintf("interface %d", version), func(t *testing.T) {
			img := buildGuest(t, guestVariant{Interface: version, KernelMinor: 0})
			r := runGuest(t, context.Background(), img, 1, "mode=escape")
			if r.err != nil || r.code != 0 {
				t.Fatalf("Run = %d, %v; want 0 (every escape denied)\n%s", r.code, r.err, r)
			}
			for _, line := range []string{
				"open /outside.txt -> -2",
				"open /data/../outside.txt -> -2",
				"open /data/link/escaped.txt -> -13",
				"open /ro/new.txt -> -30",
				"open relative.txt -> -2",
			} {
				if !strings.Contains(r.stdout, line+"\n") {
					t.Errorf("stdout lacks %q\n%s", line, r)
				}
			}
			for _, dir := range []string{r.outside, r.ro} {
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Errorf("files were created in %s: %v", dir, entries)
				}
			}
			for _, name := range []string{"outside.txt", "victim.txt"} {
				if _, err := os.Stat(filepath.Join(filepath.Dir(r.data), name)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists next to the mount folder", name)
				}
			}
		})
	}
}

func TestRunGuestBadHypercallAddress(t *testing.T) {
	testenv.MustHaveKVM(t)
	for _, tt := range []struct {
		version int
		addr    string
	}{{1, "0xfffff000"}, {3, "0xdead00000000"}} {
		t.Run(fmt.Sprintf("interface %d", tt.version), func(t *testing.T) {
			r := runGuest(t, context.Background(), buildGuest(t, guestVariant{Interface: tt.version, KernelMinor: 0}), 1, "mode=badptr")
			if r.err == nil {
				t.Fatalf("Run succeeded with exit code %d\n%s", r.code, r)
			}
			if !errors.Is(r.err, ErrBadHypercall) {
				t.Errorf("error does not wrap ErrBadHypercall: %v", r.err)
			}
			var ve *VCPUError
			if !errors.As(r.err, &ve) || !ve.HaveRegs {
				t.Fatalf("error is no *VCPUError with registers: %v", r.err)
			}
			msg := r.err.Error()
			for _, want := range []string{"FileOpen", tt.addr, "outside guest memory", "rip ", "cr3 "} {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q:\n%s", want, msg)
				}
			}
			if r.code != -1 {
				t.Errorf("exit code %d, want -1", r.code)
			}
		})
	}
}

func TestRunGuestTripleFault(t *testing.T) {
	testenv.MustHaveKVM(t)
	r := runGuest(t, context.Background(), buildGuest(t, guestVariant{Interface: 1, KernelMinor: 0}), 2, "mode=triple")
	var exit *kvm.ExitError
	if !errors.As(r.err, &exit) || exit.Reason != kvm.ExitShutdown {
		t.Fatalf("Run error = %v, want a KVM_EXIT_SHUTDOWN ExitError\n%s", r.err, r)
	}
	var ve *VCPUError
	if !errors.As(r.err, &ve) || ve.VCPU != 0 || !ve.HaveRegs {
		t.Errorf("error is no *VCPUError of vCPU 0 with registers: %v", r.err)
	}
	if !strings.Contains(r.err.Error(), "triple fault") || !strings.Contains(r.err.Error(), "rip ") {
		t.Errorf("error does not explain the shutdown with a register dump:\n%v", r.err)
	}
}

func TestRunGuestStoppedByContext(t *testing.T) {
	testenv.MustHaveKVM(t)
	img := buildGuest(t, guestVariant{Interface: 3, KernelMinor: 0})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := runGuest(t, ctx, img, 2, "mode=spin")
	elapsed := time.Since(start)
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("Run error = %v, want one wrapping context.DeadlineExceeded\n%s", r.err, r)
	}
	if elapsed > 10*time.Second {
		t.Errorf("Run returned %v after the deadline of 500ms", elapsed)
	}
	var ve *VCPUError
	if !errors.As(r.err, &ve) || ve.VCPU != 0 || !ve.HaveRegs || ve.Regs.RIP == 0 {
		t.Errorf("error does not carry vCPU 0's registers: %v", r.err)
	}
}

func TestRunGuestUnknownPort(t *testing.T) {
	testenv.MustHaveKVM(t)
	r := runGuest(t, context.Background(), buildGuest(t, guestVariant{Interface: 1, KernelMinor: 0}), 1, "mode=badport")
	if r.err == nil || !strings.Contains(r.err.Error(), "unknown port 0x1234") {
		t.Fatalf("Run error = %v, want one naming port 0x1234\n%s", r.err, r)
	}
}

func TestRunRejectsConfig(t *testing.T) {
	img := mustInspect(t, testKernel(kernelOptions{}))
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"odd memory size", Config{Memory: 5 << 19}, "multiple of 2 MiB"},
		{"bad environment", Config{Env: []string{"NOVALUE"}}, "KEY=VALUE"},
		{"NUL in an argument", Config{Args: []string{"a\x00b"}}, "NUL"},
		{"too many arguments", Config{Args: make([]string, maxArgs)}, "at most 128"},
		{"relative mount point", Config{Mounts: map[string]Mount{"data": {Dir: t.TempDir()}}}, "not an absolute guest path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := Run(context.Background(), img, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || code != -1 {
				t.Errorf("Run = %d, %v; want -1 and an error mentioning %q", code, err, tt.want)
			}
		})
	}
}

func TestConfigCmdlinePadsEnvironment(t *testing.T) {
	argv, env, err := Config{Env: []string{"A=1"}}.cmdline()
	if err != nil {
		t.Fatal(err)
	}
	if len(argv) != 1 || argv[0] != defaultProgram {
		t.Errorf("argv = %q, want the default program name only", argv)
	}
	if len(env) != minEnvEntries || env[0] != "A=1" || !strings.HasPrefix(env[1], "HERMIT_ENV_PADDING_") {
		t.Errorf("env = %q, want A=1 padded to %d entries", env, minEnvEntries)
	}
}

// TestRunRealImages boots uhyve's prebuilt images when OSVM_HERMIT_IMAGES
// names their folder. On hosts whose KVM emulates guest ring 0 (PVM) they
// boot only because the monitor completes the XGETBV, XSAVE and SSE
// instructions the emulator rejects. The test stops rusty_demo once it
// printed its greetings, arguments, environment and floating-point results.
// Its number crunching takes tens of minutes under that emulation, and its
// sleep test panics when a 100 ms sleep overruns by a few milliseconds, as
// it does on a busy host.
func TestRunRealImages(t *testing.T) {
	testenv.MustHaveKVM(t)
	dir := testenv.HermitImagesDir(t)
	tests := []struct {
		file      string
		args, env []string
		want      []string
		stopAt    string // stop the guest once stdout holds this, if set
	}{
		{file: "hello_world", want: []string{"Hello, world!"}},
		{file: "hello_c", want: []string{"Hello World!!!", "argv[0] = hello_c"}},
		{
			file: "rusty_demo", args: []string{"first", "second"}, env: []string{"GREETING=hello"},
			want: []string{
				"Hello, Hermit!", "Привет, мир!", "Arguments:\nrusty_demo\nfirst\nsecond\n", "GREETING: hello",
				"x = 6.283185307179586", "e^x = 535.4916555247646", "ln(e^x) = 6.283185307179586",
			},
			stopAt: "ln(e^x) = 6.283185307179586",
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			img, err := InspectFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// rusty_demo prints to standard error.
			stdout := &watchWriter{needle: tt.stopAt, seen: cancel}
			var console bytes.Buffer
			stats := new(Stats)
			code, err := Run(ctx, img, Config{
				Memory: 64 << 20, Program: tt.file, Args: tt.args, Env: tt.env,
				Stdout: stdout, Stderr: stdout, Console: &console, Stats: stats,
			})
			out := stdout.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			switch {
			case tt.stopAt != "" && stdout.found():
			case err != nil:
				t.Errorf("Run: %v", err)
			case code != 0:
				t.Errorf("exit code %d, want 0", code)
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nconsole:\n%s", out, console.String())
			}
			t.Logf("%s: %d exits, %d instructions completed by the monitor", tt.file, stats.Exits.Load(), stats.Completed.Load())
		})
	}
}

// watchWriter collects a guest's output and calls seen once it holds
// needle.
type watchWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	needle string
	seen   func()
	hit    bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.needle != "" && !w.hit && strings.Contains(w.buf.String(), w.needle) {
		w.hit = true
		w.seen()
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *watchWriter) found() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hit
}

// BenchmarkBootToExit measures Run of the test kernel from creating the VM
// to the Exit hypercall, and reports the VM exits per boot.
func BenchmarkBootToExit(b *testing.B) {
	testenv.MustHaveKVM(b)
	for _, tt := range []struct {
		variant guestVariant
		cpus    int
	}{{guestVariant{Interface: 1, KernelMinor: 0}, 1}, {guestVariant{Interface: 3, KernelMinor: 14}, 1}, {guestVariant{Interface: 3, KernelMinor: 14}, 2}} {
		b.Run(fmt.Sprintf("interface%d/cpus%d", tt.variant.Interface, tt.cpus), func(b *testing.B) {
			img := buildGuest(b, tt.variant)
			var exits, hypercalls uint64
			b.ResetTimer()
			for b.Loop() {
				r := runGuest(b, context.Background(), img, tt.cpus, "exit=3")
				if r.err != nil || r.code != 3 {
					b.Fatalf("Run = %d, %v", r.code, r.err)
				}
				exits += r.stats.Exits.Load()
				hypercalls += r.stats.Hypercalls.Load()
			}
			b.ReportMetric(float64(exits)/float64(b.N), "exits/boot")
			b.ReportMetric(float64(hypercalls)/float64(b.N), "hypercalls/boot")
		})
	}
}

// BenchmarkBootRealImage boots uhyve's hello_world (OSVM_HERMIT_IMAGES)
// from creating the VM to its exit, and reports the median boot time, the
// VM exits and hypercalls per boot and the instructions the monitor
// completed per boot.
// On PVM hosts those are the XGETBV, XSAVE and SSE instructions KVM's
// emulator rejects.
func BenchmarkBootRealImage(b *testing.B) {
	testenv.MustHaveKVM(b)
	dir := testenv.HermitImagesDir(b)
	img, err := InspectFile(filepath.Join(dir, "hello_world"))
	if err != nil {
		b.Fatal(err)
	}
	var times []time.Duration
	var exits, hypercalls, completed uint64
	for b.Loop() {
		stats := new(Stats)
		start := time.Now()
		code, err := Run(context.Background(), img, Config{Memory: 64 << 20, Stats: stats})
		times = append(times, time.Since(start))
		if err != nil || code != 0 {
			b.Fatalf("hello_world: exit code %d, %v", code, err)
		}
		exits += stats.Exits.Load()
		hypercalls += stats.Hypercalls.Load()
		completed += stats.Completed.Load()
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(exits)/float64(len(times)), "exits/boot")
	b.ReportMetric(float64(hypercalls)/float64(len(times)), "hypercalls/boot")
	b.ReportMetric(float64(completed)/float64(len(times)), "completed/boot")
}

func TestRunGuestXGETBV(t *testing.T) {
	testenv.MustHaveKVM(t)
	r := runGuest(t, context.Background(), buildGuest(t, guestVariant{Interface: 1}), 1, "mode=xgetbv")
	if r.err != nil || r.code != 0 {
		t.Fatalf("Run = %d, %v; want exit 0 after XGETBV\n%s", r.code, r.err, r)
	}
	if !strings.Contains(r.console+r.stdout, "xgetbv xcr0=") {
		t.Errorf("the guest did not print XCR0:\n%s", r)
	}
}

func TestRunGuestNMWithTaskSwitched(t *testing.T) {
	testenv.MustHaveKVM(t)
	r := runGuest(t, context.Background(), buildGuest(t, guestVariant{Interface: 1}), 1, "mode=nm")
	// The injected #NM finds no IDT in the test kernel, so the guest ends
	// in a triple fault, not in an emulation failure naming xorps.
	var exit *kvm.ExitError
	if !errors.As(r.err, &exit) || exit.Reason != kvm.ExitShutdown {
		t.Fatalf("Run error = %v, want a KVM_EXIT_SHUTDOWN after the injected #NM\n%s", r.err, r)
	}
}

func TestRunGuestXSAVEAndXRSTOR(t *testing.T) {
	testenv.MustHaveKVM(t)
	r := runGuest(t, context.Background(), buildGuest(t, guestVariant{Interface: 1}), 1, "mode=xsave")
	if r.err != nil || r.code != 0 {
		t.Fatalf("Run = %d, %v; want exit 0 after XSAVE and XRSTOR\n%s", r.code, r.err, r)
	}
	for _, want := range []string{"xsave mxcsr=8064 fcw=895", "xrstor loaded mxcsr=40832"} {
		if !strings.Contains(r.console+r.stdout, want) {
			t.Errorf("guest output lacks %q:\n%s", want, r)
		}
	}
}

func TestRunGuestXSAVEC(t *testing.T) {
	testenv.MustHaveKVM(t)
	r := runGuest(t, context.Background(), buildGuest(t, guestVariant{Interface: 1}), 1, "mode=xsavec")
	if r.err != nil || r.code != 0 {
		t.Fatalf("Run = %d, %v; want exit 0 after XSAVEC and XRSTOR\n%s", r.code, r.err, r)
	}
	out := r.console + r.stdout
	if strings.Contains(out, "xsavec not offered") {
		t.Skip("skipping: the guest's CPUID does not offer XSAVEC and XGETBV with ECX = 1 on this host")
	}
	for _, want := range []string{"xcomp_bv=9223372036854775811", "compacted xrstor loaded mxcsr=40832"} {
		if !strings.Contains(out, want) {
			t.Errorf("guest output lacks %q:\n%s", want, r)
		}
	}
	if !strings.Contains(out, "xinuse=") || strings.Contains(out, "xinuse=0\n") {
		t.Errorf("XGETBV with ECX = 1 gave no in-use bitmap:\n%s", r)
	}
}

// Exception vectors the SSE modes expect (Intel SDM volume 3A, 6.3.1).
const (
	vectorUD = 6
	vectorGP = 13
	vectorPF = 14
	vectorXM = 19
)

// TestRunGuestSSE runs the test kernel's SSE modes. On PVM hosts every SSE
// instruction in them reaches the monitor, which must complete it or
// inject the exception the CPU would raise. On VMX and SVM hosts the CPU
// runs them, and the results are the same.
func TestRunGuestSSE(t *testing.T) {
	testenv.MustHaveKVM(t)
	img := buildGuest(t, guestVariant{Interface: 1})
	_, err := os.Stat("/sys/module/kvm_pvm")
	pvm := err == nil

	tests := []struct {
		mode string
		code int
		want string
	}{
		{"sse", 0, "sse checks passed: 4629137466983448576"}, // 30.0 as bits
		{"sse-align", 100 + vectorGP, "exception 13 error code 0"},
		{"sse-pf", 100 + vectorPF, "exception 14 error code 0 cr2 140733193388032"},
		{"sse-xm", 100 + vectorXM, "exception 19"},
		{"sse-lock", 100 + vectorUD, "exception 6"},
		{"sse-batch-pf", 100 + vectorPF, "exception 14 error code 0 cr2 140733193388032"},
		{"sse-mxcsr", 100 + vectorGP, "stmxcsr 32640\nexception 13 error code 0"},
		{"sse-xsave-pf", 100 + vectorPF, "exception 14 error code 2 cr2 140733193388032"},
		{"sse-xrstor-gp", 100 + vectorGP, "exception 13 error code 0"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			r := runGuest(t, context.Background(), img, 1, "mode="+tt.mode)
			if r.err != nil || r.code != tt.code {
				t.Fatalf("Run = %d, %v; want exit %d\n%s", r.code, r.err, tt.code, r)
			}
			if !strings.Contains(r.stdout, tt.want) {
				t.Errorf("output lacks %q\n%s", tt.want, r)
			}
			if pvm && tt.code == 0 && r.stats.Completed.Load() == 0 {
				t.Errorf("on this PVM host the monitor completed no instruction")
			}
			t.Logf("%d exits, %d instructions completed", r.stats.Exits.Load(), r.stats.Completed.Load())
		})
	}

	t.Run("sse-outside", func(t *testing.T) {
		r := runGuest(t, context.Background(), img, 1, "mode=sse-outside")
		if !pvm {
			if r.code != 0 || r.err != nil {
				t.Logf("on this host maskmovdqu runs natively: %s", r)
			}
			return
		}
		var ve *VCPUError
		if !errors.As(r.err, &ve) || !isEmulationFailure(ve.Err) {
			t.Fatalf("Run = %d, %v; want an emulation failure", r.code, r.err)
		}
		msg := r.err.Error()
		for _, want := range []string{"rejected maskmovdqu", fmt.Sprintf("at RIP %#x", ve.Regs.RIP), "MASKMOVDQU is not on the allowlist"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error lacks %q:\n%s", want, msg)
			}
		}
	})
}
