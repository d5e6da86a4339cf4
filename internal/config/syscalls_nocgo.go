//go:build !cgo

package config

// isSyscallName rejects every name in a build without cgo, because the
// system call table comes from libseccomp. osvm-launch, the one program
// built without cgo, reads plans and never parses component files; osvm
// and osvmd are built with cgo.
func isSyscallName(string) bool { return false }
