package plan

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/osvm-project/osvm/internal/config"
)

func testComponent(t *testing.T, text string) *config.Component {
	t.Helper()
	c, err := config.Parse("/etc/osvm/web.toml", []byte(text))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return c
}

func TestWriteRead(t *testing.T) {
	c := testComponent(t, `exec.command = ["/bin/true"]`)
	p, err := New(c, c.Isolation, "/etc/osvm/web.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path, err := Write(dir, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := filepath.Base(path); got != "web-"+p.Hash[:16]+".json" {
		t.Errorf("file name = %q", got)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o644 {
		t.Errorf("mode = %v, want 0644", mode)
	}
	back, err := Read(path)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("Read = %+v, want %+v", back, p)
	}
	if again, err := Write(dir, p); err != nil || again != path {
		t.Errorf("second Write = %q, %v; want %q", again, err, path)
	}
}

func TestHashFollowsContent(t *testing.T) {
	a, _ := New(testComponent(t, `exec.command = ["/bin/true"]`), config.IsolationProcess, "/etc/osvm/web.toml")
	b, _ := New(testComponent(t, "# a comment changes nothing\nexec.command = [\"/bin/true\"]"), config.IsolationProcess, "/srv/osvm/web.toml")
	c, _ := New(testComponent(t, "exec.command = [\"/bin/true\"]\nresources.tasks = 50"), config.IsolationProcess, "/etc/osvm/web.toml")
	if a.Hash != b.Hash {
		t.Errorf("a comment or a moved folder changed the hash: %s vs %s", a.Hash, b.Hash)
	}
	if a.Hash == c.Hash {
		t.Errorf("a new limit left the hash unchanged: %s", a.Hash)
	}
}

func TestReadRejectsModifiedPlan(t *testing.T) {
	p, _ := New(testComponent(t, `exec.command = ["/bin/true"]`), config.IsolationProcess, "/etc/osvm/web.toml")
	path, err := Write(t.TempDir(), p)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	data = []byte(strings.Replace(string(data), "/bin/true", "/bin/evil", 1))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); !errors.Is(err, ErrModified) {
		t.Errorf("Read of a modified plan: %v, want ErrModified", err)
	}
}

func TestParseFileName(t *testing.T) {
	tests := []struct {
		path, name, hash string
		ok               bool
	}{
		{"/run/osvm/components/web-0123456789abcdef.json", "web", "0123456789abcdef", true},
		{"my-app-0123456789abcdef.json", "my-app", "0123456789abcdef", true},
		{"web-0123.json", "", "", false},
		{"web-0123456789abcdeg.json", "", "", false},
		{"web.json", "", "", false},
		{"Web-0123456789abcdef.json", "", "", false},
	}
	for _, tt := range tests {
		name, hash, ok := ParseFileName(tt.path)
		if name != tt.name || hash != tt.hash || ok != tt.ok {
			t.Errorf("ParseFileName(%q) = %q, %q, %v; want %q, %q, %v", tt.path, name, hash, ok, tt.name, tt.hash, tt.ok)
		}
	}
}

func TestStartupRoundTrip(t *testing.T) {
	c := testComponent(t, `exec.command = ["/bin/true"]`)
	p, err := New(c, config.IsolationProcess, "/etc/osvm/web.toml")
	if err != nil {
		t.Fatal(err)
	}
	hash := p.Hash
	p.Startup = &Startup{
		Paths: map[string]string{"/bin/true": "read+exec", "/dev/null": "read+write"},
		Files: map[string]string{"/bin/true": "2049:12:100755:35664:1:2", "/usr/local/lib/libc.so.6": ""},
	}
	path, err := Write(t.TempDir(), p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Read(path)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !reflect.DeepEqual(back.Startup, p.Startup) {
		t.Errorf("Startup = %+v, want %+v", back.Startup, p.Startup)
	}
	if back.Hash != hash {
		t.Errorf("Startup changed the hash: %s, want %s", back.Hash, hash)
	}
}
