// Package integration holds osvm's end-to-end tests. Each test boots a
// private systemd with package sdsandbox, installs freshly built osvmd, osvm
// and osvm-launch into it at their packaged paths, starts osvmd.service, and
// checks components through systemctl, journalctl, the cgroup files and the
// osvm CLI.
//
// The tests need root, systemd, dbus and util-linux (nsenter, unshare); they
// skip without them, except in CI (CI=true), where they fail instead. They
// build the binaries with the go command, so it must be on PATH.
package integration
