package plan

import (
	"encoding/json"
	"errors"
	"fmt"
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

func TestReadChecksWrittenBytes(t *testing.T) {
	// Every kind of value, and characters that Marshal escapes.
	c := testComponent(t, `description = "<tags> & ünïcode"
[exec]
command = ["/usr/bin/python3", "-m", "http.server"]
environment = { GREETING = "a <b> & c", EMPTY = "" }
working_directory = "/srv/www"
user = "www-data"
[resources]
memory = "64M"
cpus = 0.5
tasks = 32
[restart]
policy = "always"
delay = "2s"
[sandbox]
read_only_paths = ["/srv/www"]
network = "loopback"
bind_ports = [8080]
capabilities = ["CAP_NET_BIND_SERVICE"]
`)
	p, err := New(c, config.IsolationProcess, "/etc/osvm/web.toml")
	if err != nil {
		t.Fatal(err)
	}
	path, err := Write(t.TempDir(), p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Read(path)
	if err != nil {
		t.Fatalf("Read of the plan as written: %v", err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("Read = %+v, want %+v", back, p)
	}

	// White space is all that Read ignores.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	spaced := strings.Replace(string(data), `"component": {`, "\"component\":\n\n  {", 1)
	if err := os.WriteFile(path, []byte(spaced), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err != nil {
		t.Errorf("Read after a change of white space: %v", err)
	}
	escaped := strings.Replace(string(data), `\u003ctags\u003e`, `<tags>`, 1)
	if escaped == string(data) {
		t.Fatalf("the plan does not contain the escaped description:\n%s", data)
	}
	if err := os.WriteFile(path, []byte(escaped), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); !errors.Is(err, ErrModified) {
		t.Errorf("Read after a change of escaping: %v, want ErrModified", err)
	}
}

func TestReadRejectsUnknownComponentField(t *testing.T) {
	p, _ := New(testComponent(t, `exec.command = ["/bin/true"]`), config.IsolationProcess, "/etc/osvm/web.toml")
	component, err := json.Marshal(p.Component)
	if err != nil {
		t.Fatal(err)
	}
	component = []byte(strings.Replace(string(component), `"name":"web",`, `"name":"web","extra":1,`, 1))
	if !strings.Contains(string(component), `"extra"`) {
		t.Fatalf("no name field to extend in %s", component)
	}
	// A hash that matches the changed component, so that only the
	// unknown field is wrong.
	hash, err := writtenContentHash(component, []byte(`"process"`))
	if err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf(`{"version": 1, "component": %s, "level": "process", "source": "/etc/osvm/web.toml", "hash": %q}`, component, hash)
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Read(path)
	if err == nil || errors.Is(err, ErrModified) {
		t.Fatalf("Read = %v, want an error about the unknown field", err)
	}
	if !strings.Contains(err.Error(), "extra") {
		t.Errorf("the error %q does not name the unknown field", err)
	}
}

func TestExecRecordNames(t *testing.T) {
	planPath := "/run/osvm/components/web-0123456789abcdef.json"
	if got, want := ExecRecordPath(planPath), "/run/osvm/components/web-0123456789abcdef.exec"; got != want {
		t.Errorf("ExecRecordPath(%q) = %q, want %q", planPath, got, want)
	}
	if got, ok := PlanFileOfRecord("web-0123456789abcdef.exec"); !ok || got != "web-0123456789abcdef.json" {
		t.Errorf("PlanFileOfRecord = %q, %v; want the plan's name", got, ok)
	}
	if _, ok := PlanFileOfRecord("web-0123456789abcdef.json"); ok {
		t.Error("PlanFileOfRecord accepts a plan's name")
	}
}

func TestWriteExecRecord(t *testing.T) {
	dir := t.TempDir()
	planPath := filepath.Join(dir, "web-0123456789abcdef.json")
	if err := WriteExecRecord(planPath, []byte("record")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(ExecRecordPath(planPath))
	if err != nil || string(data) != "record" {
		t.Fatalf("record file = %q, %v", data, err)
	}
	info, err := os.Stat(ExecRecordPath(planPath))
	if err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("record file mode = %v, %v; want 0644", info.Mode(), err)
	}
	if err := RemoveExecRecord(planPath); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ExecRecordPath(planPath)); !os.IsNotExist(err) {
		t.Errorf("record file still there after RemoveExecRecord: %v", err)
	}
	if err := RemoveExecRecord(planPath); err != nil {
		t.Errorf("RemoveExecRecord of a missing record: %v", err)
	}
}
