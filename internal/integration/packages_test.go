package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/osvm-project/osvm/internal/sdsandbox"
	"github.com/osvm-project/osvm/internal/testenv"
)

// The tests build the packages twice, at these versions, with
// packaging/build-packages; the installation test upgrades from the first
// to the second.
const (
	oldVersion = "0.0.0+test1"
	newVersion = "0.0.0+test2"
)

var (
	packagesOnce sync.Once
	packagesDir  string
	packagesErr  error
)

// buildPackages builds the deb and rpm packages at oldVersion and
// newVersion once per test run, into a folder inside the build folder, and
// returns that folder.
func buildPackages(t testing.TB) string {
	t.Helper()
	testenv.MustHaveExecPath(t, "objdump")
	dir := filepath.Join(build(t), "packages")
	packagesOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			packagesErr = err
			return
		}
		for _, version := range []string{oldVersion, newVersion} {
			cmd := exec.Command(filepath.Join(root, "packaging", "build-packages"), dir)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "VERSION="+version)
			if out, err := cmd.CombinedOutput(); err != nil {
				packagesErr = fmt.Errorf("packaging/build-packages at version %s: %v\n%s", version, err, out)
				return
			}
		}
		packagesDir = dir
	})
	if packagesErr != nil {
		t.Fatal(packagesErr)
	}
	return packagesDir
}

func debPath(dir, version string) string {
	return filepath.Join(dir, "osvm_"+version+"_amd64.deb")
}

func rpmPath(dir, version string) string {
	return filepath.Join(dir, "osvm-"+version+".x86_64.rpm")
}

// packagedFiles are the files both packages install, besides those of
// debOnlyFiles and rpmOnlyFiles.
var packagedFiles = []string{
	"/etc/osvm/clock.toml.example",
	"/usr/bin/osvm",
	"/usr/lib/sysusers.d/osvm.conf",
	"/usr/lib/tmpfiles.d/osvm.conf",
	"/usr/libexec/osvm/osvm-exec",
	"/usr/libexec/osvm/osvm-launch",
	"/usr/sbin/osvmd",
	"/usr/share/bash-completion/completions/osvm",
	"/usr/share/dbus-1/system.d/org.osvm.Supervisor1.conf",
	"/usr/share/polkit-1/actions/org.osvm.policy",
	"/usr/share/man/man1/osvm.1.gz",
	"/usr/share/man/man5/osvm.toml.5.gz",
	"/usr/share/man/man8/osvmd.8.gz",
	"/usr/share/polkit-1/rules.d/50-osvm.rules",
}

var debOnlyFiles = []string{
	"/lib/systemd/system/osvmd.service",
	"/usr/share/doc/osvm/changelog.gz",
	"/usr/share/doc/osvm/copyright",
	"/usr/share/lintian/overrides/osvm",
}

var rpmOnlyFiles = []string{
	"/usr/lib/systemd/system/osvmd.service",
	"/usr/share/licenses/osvm/copyright",
}

// hostOutput runs a command on the host and returns its combined output,
// failing the test when the command fails.
func hostOutput(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nonEmptyLines splits output into its non-empty lines, without
// surrounding spaces.
func nonEmptyLines(output string) []string {
	var result []string
	for _, line := range strings.Split(output, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			result = append(result, line)
		}
	}
	return result
}

func TestDebLintian(t *testing.T) {
	testenv.MustHaveExecPath(t, "lintian")
	deb := debPath(buildPackages(t), oldVersion)

	out, err := exec.Command("lintian", "--fail-on", "error", deb).CombinedOutput()
	t.Logf("lintian %s:\n%s", filepath.Base(deb), out)
	var errors []string
	for _, line := range nonEmptyLines(string(out)) {
		if strings.HasPrefix(line, "E: ") {
			errors = append(errors, line)
		}
	}
	if len(errors) > 0 {
		t.Errorf("lintian reports %d errors:\n%s", len(errors), strings.Join(errors, "\n"))
	}
	if err != nil {
		t.Errorf("lintian failed: %v", err)
	}
}

func TestDebContents(t *testing.T) {
	testenv.MustHaveExecPath(t, "dpkg-deb")
	deb := debPath(buildPackages(t), oldVersion)

	var files []string
	for _, line := range nonEmptyLines(hostOutput(t, "dpkg-deb", "--contents", deb)) {
		fields := strings.Fields(line)
		if path := strings.TrimPrefix(fields[len(fields)-1], "."); !strings.HasSuffix(path, "/") {
			files = append(files, path)
		}
	}
	want := slices.Concat(packagedFiles, debOnlyFiles)
	slices.Sort(files)
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("the .deb contains files\n%s\nwant\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}

	fields := map[string]string{
		"Package":      "osvm",
		"Version":      oldVersion,
		"Architecture": "amd64",
	}
	for field, want := range fields {
		if got := strings.TrimSpace(hostOutput(t, "dpkg-deb", "--field", deb, field)); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	depends := hostOutput(t, "dpkg-deb", "--field", deb, "Depends")
	for _, want := range []string{"libc6 (>= 2.", "libseccomp2 (>= 2.5.0)", "systemd (>= 252)", "dbus"} {
		if !strings.Contains(depends, want) {
			t.Errorf("Depends: %s does not contain %q", strings.TrimSpace(depends), want)
		}
	}

	if got := strings.TrimSpace(hostOutput(t, "dpkg-deb", "--info", deb, "conffiles")); got != "/etc/osvm/clock.toml.example" {
		t.Errorf("conffiles = %q, want /etc/osvm/clock.toml.example", got)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if out, err := exec.Command("dpkg-deb", "--info", deb, script).CombinedOutput(); err != nil {
			t.Errorf("the .deb has no %s: %v\n%s", script, err, out)
		}
	}
}

func TestRPMQueries(t *testing.T) {
	testenv.MustHaveExecPath(t, "rpm")
	rpm := rpmPath(buildPackages(t), oldVersion)
	// Debian's rpm creates ~/.rpmdb for any query unless given a database.
	query := func(args ...string) string {
		t.Helper()
		return hostOutput(t, "rpm", append([]string{"--dbpath", t.TempDir(), "-qp"}, append(args, rpm)...)...)
	}

	info := query("-i")
	t.Logf("rpm -qip %s:\n%s", filepath.Base(rpm), info)
	for _, want := range []string{"Name        : osvm\n", "Version     : " + oldVersion + "\n", "Architecture: x86_64\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("rpm -qip does not contain %q", want)
		}
	}

	files := nonEmptyLines(query("-l"))
	want := append(slices.Concat(packagedFiles, rpmOnlyFiles), "/etc/osvm")
	slices.Sort(files)
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("rpm -qlp lists\n%s\nwant\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}

	requires := query("--requires")
	for _, want := range []string{"glibc >= 2.", "libseccomp >= 2.5.0", "systemd >= 252", "dbus"} {
		if !strings.Contains(requires, want) {
			t.Errorf("rpm -qp --requires does not contain %q:\n%s", want, requires)
		}
	}

	// c is %config and n is noreplace.
	flags := query("--queryformat", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]")
	if !strings.Contains(flags, "cn /etc/osvm/clock.toml.example\n") {
		t.Errorf("/etc/osvm/clock.toml.example is not %%config(noreplace):\n%s", flags)
	}

	scripts := query("--scripts")
	for _, want := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("rpm -qp --scripts has no %s", want)
		}
	}
}

// sleeperComponent is the smallest component at the default isolation
// level, "process": osvmd compiles its seccomp program and the launcher
// applies Landlock, so it checks that the sandbox of osvmd.service leaves
// osvmd what it needs.
const sleeperComponent = `[exec]
command = ["/bin/sleep", "infinity"]
`

// policyRC is the policy-rc.d of images built with Docker, which forbids
// maintainer scripts to start services. A real Debian system has none, so
// the tests remove it from the sandbox's root if the host has one.
const policyRC = "/usr/sbin/policy-rc.d"

// unitStates returns a unit's LoadState and ActiveState.
func (e *env) unitStates(unit string) string {
	e.t.Helper()
	return e.property(unit, "LoadState") + "/" + e.property(unit, "ActiveState")
}

// mustExist checks inside the sandbox that path exists, or with exist
// false that it does not, and marks the test failed otherwise.
func (e *env) mustExist(path string, exist bool) {
	e.t.Helper()
	err := e.command(e.t.Context(), "test", "-e", path).Run()
	if exist && err != nil {
		e.t.Errorf("%s is missing", path)
	}
	if !exist && err == nil {
		e.t.Errorf("%s exists, want it removed", path)
	}
}

// newPackageEnv boots a systemd sandbox with the package folder dir bound
// in and returns an env whose commands run in dir. Nothing is installed
// yet; the test installs a package.
func newPackageEnv(t *testing.T, dir string) *env {
	t.Helper()
	sb := sdsandbox.Start(t, sdsandbox.Options{Bind: []string{dir}, LogLevel: "info"})
	e := &env{t: t, sb: sb, bin: dir}
	t.Cleanup(func() {
		if t.Failed() {
			// t.Context is already cancelled during cleanup.
			out, _ := e.command(context.Background(), "journalctl", "--no-pager", "-n", "80").CombinedOutput()
			t.Logf("the sandbox's journal:\n%s", out)
		}
	})
	e.output("rm", "-f", policyRC)
	return e
}

// writeSleeper installs sleeperComponent as /etc/osvm/sleeper.toml with a
// rename, as configuration tools write files, and waits for its unit.
func (e *env) writeSleeper() {
	e.t.Helper()
	e.output("sh", "-ec", `printf '%s' "$1" > /etc/osvm/.sleeper.toml.tmp
mv /etc/osvm/.sleeper.toml.tmp /etc/osvm/sleeper.toml`, "sh", sleeperComponent)
	e.waitActive("osvm-sleeper.service")
}

func TestDebInstallUpgradeRemove(t *testing.T) {
	dir := buildPackages(t)
	e := newPackageEnv(t, dir)

	// Installation starts and enables osvmd.
	t.Logf("dpkg -i %s:\n%s", oldVersion, e.output("dpkg", "-i", debPath(dir, oldVersion)))
	if state := e.unitStates("osvmd.service"); state != "loaded/active" {
		t.Fatalf("osvmd.service is %s after installation, want loaded/active", state)
	}
	if out := strings.TrimSpace(e.output("systemctl", "is-active", "osvmd")); out != "active" {
		t.Errorf("systemctl is-active osvmd printed %q, want active", out)
	}
	if state := e.property("osvmd.service", "UnitFileState"); state != "enabled" {
		t.Errorf("osvmd.service is %s, want enabled", state)
	}
	e.output("getent", "group", "osvm")
	e.mustExist("/run/osvm", true)

	// A component dropped into /etc/osvm runs, under the hardened osvmd.
	e.writeSleeper()

	// The example runs only under a .toml name.
	if state := e.unitStates("osvm-clock.service"); state != "not-found/inactive" {
		t.Errorf("osvm-clock.service is %s with only clock.toml.example in /etc/osvm, want not-found/inactive", state)
	}
	e.output("cp", "/etc/osvm/clock.toml.example", "/etc/osvm/clock.toml")
	e.waitActive("osvm-clock.service")
	e.waitFor("the example's first line in the journal", func() (bool, string) {
		journal := e.journal("osvm-clock.service")
		return strings.Contains(journal, "clock["), journal
	})
	e.output("rm", "/etc/osvm/clock.toml")
	e.waitFor("osvm-clock.service to stop", func() (bool, string) {
		state := e.unitStates("osvm-clock.service")
		return state == "not-found/inactive", state
	})

	checkGroupPermissions(e)
	checkCompletion(e)

	// An upgrade restarts osvmd, leaves the component alone and keeps the
	// local edit of the conffile.
	invocation := e.property("osvm-sleeper.service", "InvocationID")
	pid := e.property("osvm-sleeper.service", "MainPID")
	osvmdInvocation := e.property("osvmd.service", "InvocationID")
	const edit = "# a local edit that the upgrade keeps"
	e.output("sh", "-ec", `echo "$1" >> /etc/osvm/clock.toml.example`, "sh", edit)

	t.Logf("dpkg -i %s:\n%s", newVersion, e.output("dpkg", "-i", debPath(dir, newVersion)))
	if version := e.output("dpkg-query", "--show", "--showformat=${Version}", "osvm"); version != newVersion {
		t.Errorf("installed version is %q after the upgrade, want %q", version, newVersion)
	}
	if state := e.unitStates("osvmd.service"); state != "loaded/active" {
		t.Errorf("osvmd.service is %s after the upgrade, want loaded/active", state)
	}
	if id := e.property("osvmd.service", "InvocationID"); id == osvmdInvocation {
		t.Errorf("osvmd.service kept invocation %s across the upgrade, want a restart", id)
	}
	if id := e.property("osvm-sleeper.service", "InvocationID"); id != invocation {
		t.Errorf("osvm-sleeper.service changed invocation from %s to %s across the upgrade", invocation, id)
	}
	if got := e.property("osvm-sleeper.service", "MainPID"); got != pid {
		t.Errorf("osvm-sleeper.service's main PID changed from %s to %s across the upgrade", pid, got)
	}
	if example := e.output("cat", "/etc/osvm/clock.toml.example"); !strings.Contains(example, edit) {
		t.Errorf("the upgrade lost the local edit of /etc/osvm/clock.toml.example:\n%s", example)
	}
	if leftovers := e.shell(`ls /etc/osvm | grep -e '\.dpkg-' || true`); leftovers != "" {
		t.Errorf("the upgrade left dpkg files in /etc/osvm:\n%s", leftovers)
	}
	// After its restart, osvmd lists the component over D-Bus.
	if list := e.output("osvm", "list"); !strings.Contains(list, "sleeper") {
		t.Errorf("osvm list after the upgrade does not show sleeper:\n%s", list)
	}

	// Removal stops osvmd and every component and keeps the configuration.
	t.Logf("dpkg -r:\n%s", e.output("dpkg", "-r", "osvm"))
	if state := e.property("osvmd.service", "ActiveState"); state != "inactive" {
		t.Errorf("osvmd.service is %s after removal, want inactive", state)
	}
	if state := e.unitStates("osvm-sleeper.service"); state != "not-found/inactive" {
		t.Errorf("osvm-sleeper.service is %s after removal, want not-found/inactive", state)
	}
	for _, path := range []string{"/usr/sbin/osvmd", "/usr/bin/osvm", "/usr/libexec/osvm/osvm-launch", "/usr/libexec/osvm/osvm-exec", "/run/systemd/system/osvm-sleeper.service.d"} {
		e.mustExist(path, false)
	}
	e.mustExist("/etc/osvm/clock.toml.example", true)
	e.mustExist("/etc/osvm/sleeper.toml", true)

	// Purge removes the conffile, the runtime state and the enablement;
	// the administrator's component file stays.
	t.Logf("dpkg -P:\n%s", e.output("dpkg", "-P", "osvm"))
	if out, err := e.command(t.Context(), "dpkg-query", "--show", "--showformat=${db:Status-Status}", "osvm").CombinedOutput(); err == nil && string(out) != "not-installed" {
		t.Errorf("dpkg-query shows osvm as %q after purge, want it gone", out)
	}
	for _, path := range []string{"/etc/osvm/clock.toml.example", "/run/osvm", "/etc/systemd/system/multi-user.target.wants/osvmd.service", "/etc/systemd/system/osvmd.service"} {
		e.mustExist(path, false)
	}
	e.mustExist("/etc/osvm/sleeper.toml", true)
	if units := e.output("systemctl", "list-units", "--all", "--plain", "--no-legend", "osvm*"); strings.TrimSpace(units) != "" {
		t.Errorf("units remain after purge:\n%s", units)
	}
	if state := e.unitStates("osvmd.service"); state != "not-found/inactive" {
		t.Errorf("osvmd.service is %s after purge, want not-found/inactive", state)
	}
}

// TestRPMInstallUpgradeRemove runs the RPM scriptlets under the sandbox's
// systemd with Debian's rpm, which installs without dependency checks
// (--nodeps) because its database lists no Debian packages.
//
// NOTE: Debian's systemd has no /usr/lib/systemd/systemd-update-helper, so
// this runs the scriptlets' fallback, plain systemctl, and not the helper
// that Fedora and RHEL use.
func TestRPMInstallUpgradeRemove(t *testing.T) {
	testenv.MustHaveExecPath(t, "rpm")
	dir := buildPackages(t)
	e := newPackageEnv(t, dir)
	rpm := func(args ...string) string {
		e.t.Helper()
		return e.output("rpm", append([]string{"--dbpath", "/var/lib/rpm"}, args...)...)
	}

	// Installation applies the preset and starts nothing, as on Fedora.
	t.Logf("rpm -i %s:\n%s", oldVersion, rpm("-i", "--nodeps", rpmPath(dir, oldVersion)))
	if state := e.property("osvmd.service", "ActiveState"); state != "inactive" {
		t.Errorf("osvmd.service is %s after installation, want inactive until the administrator starts it", state)
	}
	e.output("getent", "group", "osvm")
	e.mustExist("/run/osvm", true)
	e.output("systemctl", "enable", "--now", "osvmd.service")
	e.writeSleeper()

	// An upgrade restarts the running osvmd, leaves the component alone and
	// keeps the local edit of the %config(noreplace) file.
	invocation := e.property("osvm-sleeper.service", "InvocationID")
	osvmdInvocation := e.property("osvmd.service", "InvocationID")
	const edit = "# a local edit that the upgrade keeps"
	e.output("sh", "-ec", `echo "$1" >> /etc/osvm/clock.toml.example`, "sh", edit)

	t.Logf("rpm -U %s:\n%s", newVersion, rpm("-U", "--nodeps", rpmPath(dir, newVersion)))
	if version := rpm("-q", "--queryformat", "%{VERSION}", "osvm"); version != newVersion {
		t.Errorf("installed version is %q after the upgrade, want %q", version, newVersion)
	}
	if state := e.unitStates("osvmd.service"); state != "loaded/active" {
		t.Errorf("osvmd.service is %s after the upgrade, want loaded/active", state)
	}
	if id := e.property("osvmd.service", "InvocationID"); id == osvmdInvocation {
		t.Errorf("osvmd.service kept invocation %s across the upgrade, want a restart", id)
	}
	if id := e.property("osvm-sleeper.service", "InvocationID"); id != invocation {
		t.Errorf("osvm-sleeper.service changed invocation from %s to %s across the upgrade", invocation, id)
	}
	if example := e.output("cat", "/etc/osvm/clock.toml.example"); !strings.Contains(example, edit) {
		t.Errorf("the upgrade lost the local edit of /etc/osvm/clock.toml.example:\n%s", example)
	}

	// Removal stops osvmd and every component and removes the runtime
	// state; the edited example is saved as .rpmsave.
	t.Logf("rpm -e:\n%s", rpm("-e", "--nodeps", "osvm"))
	if state := e.unitStates("osvmd.service"); state != "not-found/inactive" {
		t.Errorf("osvmd.service is %s after removal, want not-found/inactive", state)
	}
	if state := e.unitStates("osvm-sleeper.service"); state != "not-found/inactive" {
		t.Errorf("osvm-sleeper.service is %s after removal, want not-found/inactive", state)
	}
	for _, path := range []string{"/usr/sbin/osvmd", "/run/osvm", "/run/systemd/system/osvm-sleeper.service.d", "/etc/osvm/clock.toml.example"} {
		e.mustExist(path, false)
	}
	e.mustExist("/etc/osvm/clock.toml.example.rpmsave", true)
	e.mustExist("/etc/osvm/sleeper.toml", true)
	if units := e.output("systemctl", "list-units", "--all", "--plain", "--no-legend", "osvm*"); strings.TrimSpace(units) != "" {
		t.Errorf("units remain after removal:\n%s", units)
	}
}

// checkGroupPermissions checks what the packaged D-Bus policy and polkit
// rule grant: a member of the group osvm may restart components with osvm
// and their units with systemctl, someone else may only list them.
func checkGroupPermissions(e *env) {
	e.t.Helper()
	e.shell(`useradd --no-create-home --groups osvm alice
useradd --no-create-home bob`)
	runAs := func(user string, args ...string) (string, error) {
		argv := append([]string{"--reuid=" + user, "--regid=" + user, "--init-groups"}, args...)
		out, err := e.command(e.t.Context(), "setpriv", argv...).CombinedOutput()
		return string(out), err
	}

	if out, err := runAs("alice", "osvm", "restart", "sleeper"); err != nil {
		e.t.Errorf("osvm restart as a member of osvm: %v\n%s", err, out)
	}
	if out, err := runAs("bob", "osvm", "restart", "sleeper"); err == nil || !strings.Contains(out, "permission denied") {
		e.t.Errorf("osvm restart as a user outside osvm: err = %v, output %q; want permission denied", err, out)
	}
	if out, err := runAs("bob", "osvm", "list"); err != nil || !strings.Contains(out, "sleeper") {
		e.t.Errorf("osvm list as a user outside osvm: err = %v, output %q; want the list", err, out)
	}

	if _, err := os.Stat("/usr/lib/polkit-1/polkitd"); err != nil {
		if testenv.InCI() {
			e.t.Fatalf("CI=true, so a missing requirement fails: polkitd is not installed (%v)", err)
		}
		e.t.Logf("skipping the polkit checks: polkitd is not installed (%v)", err)
		return
	}
	for _, args := range [][]string{
		{"restart", "osvm-sleeper.service"},
		{"reset-failed", "osvm-sleeper.service"},
		{"restart", "osvmd.service"},
	} {
		if out, err := runAs("alice", append([]string{"systemctl"}, args...)...); err != nil {
			e.t.Errorf("systemctl %s as a member of osvm: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out, err := runAs("alice", "systemctl", "set-property", "--runtime", "osvm-sleeper.service", "MemoryMax=1G"); err == nil {
		e.t.Errorf("systemctl set-property as a member of osvm succeeded, want it denied:\n%s", out)
	}
	for _, args := range [][]string{
		{"restart", "osvm-sleeper.service"},
		{"reset-failed", "osvm-sleeper.service"},
	} {
		if out, err := runAs("bob", append([]string{"systemctl"}, args...)...); err == nil {
			e.t.Errorf("systemctl %s as a user outside osvm succeeded, want it denied:\n%s", strings.Join(args, " "), out)
		}
	}
	e.waitActive("osvmd.service")
	e.waitActive("osvm-sleeper.service")
}

// bashCompletion is the loader of the bash-completion package.
const bashCompletion = "/usr/share/bash-completion/bash_completion"

// checkCompletion checks that the packaged bash completion completes
// subcommands and component names.
func checkCompletion(e *env) {
	e.t.Helper()
	if _, err := os.Stat(bashCompletion); err != nil {
		if testenv.InCI() {
			e.t.Fatalf("CI=true, so a missing requirement fails: bash-completion is not installed (%v)", err)
		}
		e.t.Logf("skipping the completion checks: bash-completion is not installed (%v)", err)
		return
	}
	complete := func(words ...string) string {
		script := `. ` + bashCompletion + `
. /usr/share/bash-completion/completions/osvm
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
_osvm
printf '%s\n' "${COMPREPLY[@]}"`
		return strings.Join(nonEmptyLines(e.output("bash", append([]string{"-c", script, "bash"}, words...)...)), " ")
	}
	if got := complete("osvm", "st"); got != "status start stop" {
		e.t.Errorf("completion of \"osvm st\" = %q, want \"status start stop\"", got)
	}
	if got := complete("osvm", "restart", "sl"); got != "sleeper" {
		e.t.Errorf("completion of \"osvm restart sl\" = %q, want \"sleeper\"", got)
	}
}
