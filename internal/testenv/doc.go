// Package testenv reports what the test environment provides: root, the
// tools of the systemd sandbox, KVM and confidential-computing hardware.
// It follows Go's own internal/testenv: each HasX function reports whether
// X is there, and each MustHaveX(t) skips the test when it is not.
//
// Skip messages name the requirement and what was observed, for example
// "skipping: needs root (running as uid 1000)".
//
// # CI does not skip
//
// When the environment variable CI is "true", a missing requirement fails
// the test with t.Fatalf instead of skipping it, because CI runs the suite
// as root on a machine that has systemd, D-Bus and KVM, so a skip there
// would hide a broken setup. The exception is hardware that CI's machine
// lacks: MustHaveSEVSNP, MustHaveTDX and SkipMissingHardware skip even in
// CI.
//
// The package needs no privileges itself. It only reads files, looks up
// executables and opens /dev/kvm. It builds on Linux only.
package testenv
