// Package plan defines the plan file: the frozen, resolved copy of a
// component that osvmd writes before it starts the component's unit and
// that osvm-launch reads when the unit starts.
//
// A plan's file name carries the hash of its contents, so a running unit
// keeps reading the plan it was started with: an edit of the component file
// produces a new plan under a new name, and only a restart of the unit moves
// it to the new plan. The hash in the name is also how a restarted osvmd
// tells whether a running unit still matches its component file.
//
// # Privileges
//
// Writing to Dir (/run/osvm/components) needs root. Plans are written with
// mode 0644 because units without a fixed user (DynamicUser=yes) must read
// theirs; a plan holds nothing that the unit's own properties do not already
// show to every user through systemd's D-Bus API.
package plan
