package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
