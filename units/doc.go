// Package units turns a component's plan into the transient systemd unit
// that runs it: the unit's name (osvm-NAME.service), its slice (osvm.slice)
// and the D-Bus properties passed to systemd's StartTransientUnit.
//
// The package is pure: it builds values and never talks to systemd, so every
// directive is checked by unprivileged tests. Package supervisor makes the
// D-Bus calls.
//
// # What a unit gets
//
// Every unit is Type=exec, so a start fails when the launcher cannot be
// executed, and runs osvm-launch with the path of the component's plan. It
// gets the component's environment, working directory, user (or a
// DynamicUser), resource limits (MemoryMax=, CPUQuota=, TasksMax=,
// IOWeight=) and restart settings (Restart=, RestartSec=, StartLimitBurst=,
// StartLimitIntervalSec=). At isolation level "process" it also gets
// systemd's sandboxing directives; see Hardening.
//
// # systemd versions
//
// The properties are those of systemd 252 (Debian 12). Older versions reject
// unknown property names when the unit is started.
package units
