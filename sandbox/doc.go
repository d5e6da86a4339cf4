// Package sandbox is the inner layer of isolation level "process": the
// seccomp filter and the Landlock ruleset that osvm-launch applies to itself
// right before it executes a component's command, inside the outer layer of
// systemd's directives (package units).
//
// TODO: the package is empty. Until the policies land, "process" means
// systemd's sandboxing directives only.
package sandbox
