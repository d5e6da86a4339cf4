package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const webComponent = `description = "integration web server"
isolation = "process"

[exec]
command = ["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", "/usr/share/doc", "8080"]
environment = { PYTHONUNBUFFERED = "1" }

[sandbox]
network = "loopback"
bind_ports = [8080]
read_only_paths = ["/usr/lib/python3.11", "/usr/share/doc"]

[resources]
memory = "64MiB"
cpus = 0.5
tasks = 16
`

// fetchScript fetches the web component's root page inside the sandbox and
// prints the HTTP status.
const fetchScript = `import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:8080/", timeout=5).status)`

func TestComponentLifecycle(t *testing.T) {
	e := newEnv(t)
	const unit = "osvm-web.service"

	// A new file starts a unit with the file's limits.
	e.writeComponent("web", webComponent)
	first := e.waitActive(unit)
	for name, want := range map[string]string{
		"MemoryMax":          "67108864",
		"TasksMax":           "16",
		"CPUQuotaPerSecUSec": "500ms",
		"Slice":              "osvm.slice",
		"Type":               "exec",
		"DynamicUser":        "yes",
		"NoNewPrivileges":    "yes",
		"ProtectSystem":      "strict",
	} {
		if got := e.property(unit, name); got != want {
			t.Errorf("%s: %s = %q, want %q", unit, name, got, want)
		}
	}

	// The kernel enforces the limit, not only systemd's bookkeeping: on
	// this cgroup v1 host the memory controller holds it.
	cgroup := e.property(unit, "ControlGroup")
	if limit := strings.TrimSpace(e.output("cat", "/sys/fs/cgroup/memory"+cgroup+"/memory.limit_in_bytes")); limit != "67108864" {
		t.Errorf("memory.limit_in_bytes of %s = %s, want 67108864", cgroup, limit)
	}

	// The program answers, and its output reaches the journal.
	e.waitFor("the web server to answer", func() (bool, string) {
		out, err := e.command(t.Context(), "python3", "-c", fetchScript).CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) == "200", string(out)
	})
	e.waitFor("the request in the journal", func() (bool, string) {
		j := e.journal(unit)
		return strings.Contains(j, `"GET / HTTP/1.1" 200`), j
	})

	// An edit restarts the unit with the new settings.
	e.writeComponent("web", strings.Replace(webComponent, `memory = "64MiB"`, `memory = "96MiB"`, 1))
	e.waitFor("MemoryMax to follow the edit", func() (bool, string) {
		got := e.property(unit, "MemoryMax")
		return got == "100663296", "MemoryMax=" + got
	})
	second := e.waitActive(unit)
	if second == first {
		t.Errorf("InvocationID unchanged after an edit (%s): the unit was not restarted", first)
	}

	// A vim-style save (rename the file away, write it anew, remove the
	// backup) with only a new comment changes nothing.
	path := filepath.Join(e.configDir, "web.toml")
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+"~"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append([]byte("# saved by an editor\n"), content...), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + "~")
	time.Sleep(500 * time.Millisecond) // well past the 100ms debounce window
	if id := e.property(unit, "InvocationID"); id != second {
		t.Errorf("InvocationID changed from %s to %s after a comment-only editor save", second, id)
	}

	// An invalid edit changes nothing and is logged with its position.
	e.writeComponent("web", strings.Replace(webComponent, "tasks = 16", "taks = 16", 1))
	e.waitFor("the invalid file in the journal", func() (bool, string) {
		j := e.journal(unit)
		return strings.Contains(j, `web.toml:16: unknown key \"resources.taks\" (did you mean \"tasks\"?)`), j
	})
	if id := e.property(unit, "InvocationID"); id != second {
		t.Errorf("InvocationID changed from %s to %s after an invalid edit", second, id)
	}
	if state := e.property(unit, "ActiveState"); state != "active" {
		t.Errorf("ActiveState = %s after an invalid edit, want active", state)
	}
	list := e.output("osvm", "list")
	if !strings.Contains(list, "invalid") {
		t.Errorf("osvm list does not show the invalid file:\n%s", list)
	}

	// systemd 252 loses RestrictNamespaces=yes of transient units at a
	// daemon-reload; osvmd's drop-in keeps it.
	e.output("systemctl", "daemon-reload")
	if got := e.property(unit, "RestrictNamespaces"); got != "yes" {
		t.Errorf("after daemon-reload: RestrictNamespaces = %q, want yes", got)
	}

	// Killing osvmd leaves the unit alone; the restarted osvmd adopts it.
	osvmdBefore := e.property("osvmd.service", "InvocationID")
	e.output("systemctl", "kill", "--signal=SIGKILL", "osvmd.service")
	e.waitFor("osvmd to be restarted", func() (bool, string) {
		id, state := e.property("osvmd.service", "InvocationID"), e.property("osvmd.service", "ActiveState")
		return id != osvmdBefore && state == "active", "ActiveState=" + state
	})
	if id := e.property(unit, "InvocationID"); id != second {
		t.Errorf("InvocationID changed from %s to %s when osvmd was killed and restarted", second, id)
	}

	// Removing the file stops the unit, and systemd unloads it.
	if err := os.Remove(filepath.Join(e.configDir, "web.toml")); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the unit to stop", func() (bool, string) {
		state := e.property(unit, "ActiveState")
		return state == "inactive", "ActiveState=" + state
	})
	if plans := e.output("ls", "/run/osvm/components"); strings.TrimSpace(plans) != "" {
		t.Errorf("plans left after the component was removed: %s", plans)
	}
}

func TestCommandLine(t *testing.T) {
	e := newEnv(t)
	e.writeComponent("clock", "[exec]\ncommand = [\"/bin/sleep\", \"infinity\"]\n")
	first := e.waitActive("osvm-clock.service")

	var list []struct{ Name, Unit, ActiveState, SubState, File string }
	if err := json.Unmarshal([]byte(e.output("osvm", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "clock" || list[0].ActiveState != "active" || list[0].File != "valid" {
		t.Errorf("osvm list --json = %+v, want clock active with a valid file", list)
	}

	var status map[string]any
	if err := json.Unmarshal([]byte(e.output("osvm", "status", "--json", "clock")), &status); err != nil {
		t.Fatal(err)
	}
	if status["InvocationID"] != first || status["ActiveState"] != "active" {
		t.Errorf("osvm status: InvocationID=%v ActiveState=%v, want %s active", status["InvocationID"], status["ActiveState"], first)
	}

	// stop keeps the component stopped across a reload; start brings it back.
	e.output("osvm", "stop", "clock")
	if state := e.property("osvm-clock.service", "ActiveState"); state != "inactive" {
		t.Errorf("after osvm stop: ActiveState = %s, want inactive", state)
	}
	e.output("osvm", "reload")
	if state := e.property("osvm-clock.service", "ActiveState"); state != "inactive" {
		t.Errorf("after osvm stop and reload: ActiveState = %s, want inactive", state)
	}
	e.output("osvm", "start", "clock")
	restarted := e.waitActive("osvm-clock.service")
	e.output("osvm", "restart", "clock")
	if id := e.waitActive("osvm-clock.service"); id == restarted {
		t.Errorf("osvm restart left InvocationID %s unchanged", id)
	}

	// Errors name the component; unknown components fail.
	out, err := e.command(t.Context(), "osvm", "status", "nosuch").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `no such component "nosuch"`) {
		t.Errorf("osvm status nosuch: err=%v output=%q, want a failure naming the component", err, out)
	}

	// Only root may change components; everyone may list them.
	if out, err := e.command(t.Context(), "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "osvm", "list").CombinedOutput(); err != nil {
		t.Errorf("osvm list as nobody: %v\n%s", err, out)
	}
	out, err = e.command(t.Context(), "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "osvm", "stop", "clock").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "permission denied") {
		t.Errorf("osvm stop as nobody: err=%v output=%q, want permission denied", err, out)
	}
	if state := e.property("osvm-clock.service", "ActiveState"); state != "active" {
		t.Errorf("after a denied stop: ActiveState = %s, want active", state)
	}
}

func TestReloadKeepsStoppedUnits(t *testing.T) {
	e := newEnv(t)
	e.writeComponent("clock", "[exec]\ncommand = [\"/bin/sleep\", \"infinity\"]\n")
	first := e.waitActive("osvm-clock.service")
	e.writeComponent("broken", "[exec]\ncomand = [\"/bin/true\"]\n")
	e.waitFor("the invalid file in the journal", func() (bool, string) {
		j := e.journal("osvm-broken.service")
		return strings.Count(j, `unknown key \"exec.comand\"`) == 1, j
	})

	// A unit stopped with systemctl stays stopped: a reload reads the
	// folder again (the invalid file is reported a second time) but does
	// not start a plan that already ran.
	e.output("systemctl", "stop", "osvm-clock.service")
	e.output("systemctl", "reload", "osvmd.service")
	e.waitFor("the reload to read the folder again", func() (bool, string) {
		j := e.journal("osvm-broken.service")
		return strings.Count(j, `unknown key \"exec.comand\"`) == 2, j
	})
	if state := e.property("osvm-clock.service", "ActiveState"); state != "inactive" {
		t.Errorf("after systemctl stop and a reload: ActiveState = %s, want inactive", state)
	}
	if state := e.property("osvmd.service", "ActiveState"); state != "active" {
		t.Errorf("osvmd.service is %s after the reload, want active", state)
	}

	e.output("osvm", "start", "clock")
	if id := e.waitActive("osvm-clock.service"); id == first {
		t.Errorf("InvocationID %s unchanged after osvm start", id)
	}
}

func TestFailingComponent(t *testing.T) {
	e := newEnv(t)
	const unit = "osvm-crash.service"
	e.writeComponent("crash", `[exec]
command = ["/nonexistent/program"]
[restart]
policy = "on-failure"
delay = "100ms"
burst = 3
interval = "1m"
`)

	// osvm-launch cannot execute the command: it exits 127, systemd
	// restarts it per the policy, and gives up at the start limit.
	e.waitFor("the unit to hit its start limit", func() (bool, string) {
		j := e.journal(unit)
		return strings.Contains(j, "Start request repeated too quickly"), j
	})
	if state, restarts := e.property(unit, "ActiveState"), e.property(unit, "NRestarts"); state != "failed" || restarts != "3" {
		t.Errorf("at the start limit: ActiveState=%s NRestarts=%s, want failed and 3", state, restarts)
	}
	if status := e.property(unit, "ExecMainStatus"); status != "127" {
		t.Errorf("ExecMainStatus = %s, want 127", status)
	}
	if j := e.journal(unit); !strings.Contains(j, "exec /nonexistent/program: no such file or directory") {
		t.Errorf("journal lacks the launcher's error:\n%s", j)
	}
	list := e.output("osvm", "list")
	if !strings.Contains(list, "failed") {
		t.Errorf("osvm list does not show the failed component:\n%s", list)
	}

	// osvm restart clears the start limit and starts it again.
	restarts := e.property(unit, "NRestarts")
	e.output("osvm", "restart", "crash")
	e.waitFor("a new attempt after osvm restart", func() (bool, string) {
		n := e.property(unit, "NRestarts")
		return n != restarts, "NRestarts=" + n
	})
}

func TestValidate(t *testing.T) {
	e := newEnv(t)
	e.writeComponent("typo", "[exec]\ncommand = [\"/bin/true\"]\n[resources]\nmemmory = \"64MiB\"\n")
	out, err := e.command(t.Context(), "osvm", "validate", filepath.Join(e.configDir, "typo.toml")).CombinedOutput()
	want := filepath.Join(e.configDir, "typo.toml") + `:4: unknown key "resources.memmory" (did you mean "memory"?)`
	if err == nil || !strings.Contains(string(out), want) {
		t.Errorf("osvm validate: err=%v output=%q, want a failure containing %q", err, out, want)
	}
	if out, err := e.command(t.Context(), "osvm", "validate", "examples/web.toml", "examples/clock.toml").CombinedOutput(); err != nil {
		t.Errorf("osvm validate of the examples: %v\n%s", err, out)
	}
}
