// Package paging walks a guest's x86-64 4-level page tables (CR4.LA57
// clear) in guest memory, to turn guest-virtual addresses into
// guest-physical ones the way the CPU would for an access, and copies
// between guest-virtual ranges and Go buffers. It is plain computation on
// guest memory and needs no privileges.
//
// Its walk checks presence, the R/W bit and canonical addresses. It does
// not check reserved bits, the U/S and NX bits, SMAP or protection keys,
// and it does not set accessed and dirty bits. So callers use it for
// supervisor data accesses of guests without 5-level paging (CR4.LA57) and
// must rule out the other cases themselves.
package paging
