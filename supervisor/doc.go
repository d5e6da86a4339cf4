// Package supervisor keeps systemd's component units in line with the
// component files of a folder: it is the core of osvmd.
//
// A Supervisor watches the folder (fsnotify on the folder itself, so
// editors' atomic saves and renames are seen), reads each changed file with
// package config, and reconciles through systemd's D-Bus API: a new file
// starts a transient unit, a changed file restarts it with the new
// settings, a removed file stops it. An invalid file is logged with its
// position and changes nothing, so the previous version of the component
// keeps running.
//
// Units belong to systemd, not to osvmd. At start, and on Reload, the
// supervisor lists the osvm-*.service units that exist and compares the
// hash in each unit's plan file name with the folder, so a restarted or
// killed osvmd adopts running components without restarting them.
//
// The reconciliation policy is the pure function decide; the effects (D-Bus
// calls, plan files) are separate methods. All reconciliation runs on one
// goroutine, the loop in Run; API calls are queued to it.
//
// # Privileges and versions
//
// Starting units on the system manager needs root (or a polkit rule), and
// so does writing plans to /run/osvm. The unit properties used need
// systemd 252 or newer.
//
// # Limitations
//
// The folder is not watched recursively. A file written in several steps
// without an atomic rename may be started once with its first part and
// restarted with the whole file at the end of the debounce window.
package supervisor
