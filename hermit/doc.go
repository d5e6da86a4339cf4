// Package hermit will load Hermit (HermitCore) unikernel images and serve
// their hypercalls, driving the virtual machine of package kvm, for
// isolation level "unikernel".
//
// TODO: the package is empty; components cannot use the unikernel level yet.
package hermit
