// Package launcher finds osvm-launch, the program every component unit
// runs, for osvmd and for osvm run, and osvm-exec, which starts units at
// level "process" in its place.
package launcher

import (
	"os"
	"path/filepath"
)

// Packaged is the path the deb and rpm packages install osvm-launch at.
const Packaged = "/usr/libexec/osvm/osvm-launch"

// Path returns the osvm-launch next to the running executable when there
// is one, so that a build in bin/ runs with its own launcher, and Packaged
// otherwise.
func Path() string {
	if self, err := os.Executable(); err == nil {
		candidate := filepath.Join(filepath.Dir(self), "osvm-launch")
		if _, err := os.Stat(candidate); err == nil {
			return candidate
		}
	}
	return Packaged
}

// ExecStage returns the path of osvm-exec beside the osvm-launch at
// launcherPath, or "" when there is none. osvm-exec executes osvm-launch
// from its own folder when it declines a plan, so the two must be
// installed side by side.
func ExecStage(launcherPath string) string {
	candidate := filepath.Join(filepath.Dir(launcherPath), "osvm-exec")
	if _, err := os.Stat(candidate); err != nil {
		return ""
	}
	return candidate
}
