package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osvm-project/osvm/internal/testenv"
)

// osvm run needs no systemd: it runs the launcher in the foreground.
func TestRunForeground(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "hello.toml")
	text := `[exec]
command = ["/bin/sh", "-c", "echo hello from $GREETING; echo x > /etc/osvm-run-escape; exit 7"]
environment = { GREETING = "osvm" }
`
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(filepath.Join(bin, "osvm"), "run", file).CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 7 {
		t.Fatalf("osvm run: %v, want exit status 7\n%s", err, out)
	}
	if !strings.Contains(string(out), "hello from osvm") {
		t.Errorf("output lacks the component's line:\n%s", out)
	}
	// The sandbox applies: the write to /etc fails, whoever runs the test.
	if !strings.Contains(string(out), "Permission denied") {
		t.Errorf("the write outside the sandbox's paths was not refused:\n%s", out)
	}
	if _, err := os.Stat("/etc/osvm-run-escape"); err == nil {
		os.Remove("/etc/osvm-run-escape")
		t.Error("the component wrote /etc/osvm-run-escape")
	}

	// An invalid file is reported with its position and runs nothing.
	if err := os.WriteFile(file, []byte("[exec]\ncomand = [\"/bin/true\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(filepath.Join(bin, "osvm"), "run", file).CombinedOutput()
	if err == nil || !strings.Contains(string(out), file+`:2: unknown key "exec.comand"`) {
		t.Errorf("osvm run of an invalid file: %v\n%s", err, out)
	}
}

// TestRunRealImages runs uhyve's prebuilt Hermit images with osvm run when
// OSVM_HERMIT_IMAGES names their folder (they are not in the repository).
// On a PVM host they boot only through the monitor's instruction
// completion. rusty_demo is stopped once it printed its greetings,
// arguments, environment and floating-point results. Its number crunching
// takes tens of minutes under emulation, and its sleep test panics when a
// 100 ms sleep overruns by a few milliseconds on a busy host.
func TestRunRealImages(t *testing.T) {
	testenv.MustHaveKVM(t)
	images := testenv.HermitImagesDir(t)
	bin := build(t)
	tests := []struct {
		image  string
		extra  string
		want   []string
		stopAt string
	}{
		{image: "hello_world", want: []string{"Hello, world!"}},
		{image: "hello_c", want: []string{"Hello World!!!"}},
		{
			image: "rusty_demo", extra: "args = [\"first\", \"second\"]\nenvironment = { GREETING = \"hello\" }\n",
			want:   []string{"Hello, Hermit!", "Arguments:\nrusty_demo\nfirst\nsecond\n", "GREETING: hello", "ln(e^x) = 6.283185307179586"},
			stopAt: "ln(e^x) = 6.283185307179586",
		},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), strings.ReplaceAll(tt.image, "_", "-")+".toml")
			text := "isolation = \"unikernel\"\n[unikernel]\nimage = \"" + filepath.Join(images, tt.image) + "\"\n" + tt.extra +
				"[resources]\nmemory = \"64M\"\n"
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "osvm"), "run", file)
			out := &stopWriter{needle: tt.stopAt, stop: cancel}
			cmd.Stdout, cmd.Stderr = out, out
			err := cmd.Run()
			if tt.stopAt == "" || !out.found() {
				if err != nil {
					t.Errorf("osvm run %s: %v, want exit status 0", tt.image, err)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", out.String())
			}
		})
	}
}

// stopWriter collects a command's output and calls stop once it holds
// needle.
type stopWriter struct {
	mu     sync.Mutex
	buf    strings.Builder
	needle string
	stop   func()
	hit    bool
}

func (w *stopWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.needle != "" && !w.hit && strings.Contains(w.buf.String(), w.needle) {
		w.hit = true
		w.stop()
	}
	return len(p), nil
}

func (w *stopWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *stopWriter) found() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hit
}
