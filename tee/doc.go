// Package tee will boot confidential guests (AMD SEV-SNP, Intel TDX) for
// isolation level "tee".
//
// TODO: the package is empty; components cannot use the tee level yet.
package tee
