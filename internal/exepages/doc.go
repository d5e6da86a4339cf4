// Package exepages releases the page-table entries that a long-running
// process holds on its own executable's read-only file mappings (text and
// read-only data), so that those pages stop counting towards its resident
// memory.
//
// A program's startup runs much more of its code than it runs later, and
// the kernel's fault-around maps up to 64 KiB of page-cache pages around
// each file fault (fault_around_pages in Linux's mm/memory.c). osvm-launch,
// as a virtual machine monitor, runs a few code paths for as long as its
// guest runs. Drop applies madvise(MADV_DONTNEED) to those mappings, and
// Repeat drops after setup and again when page faults show that pages
// came back. The pages stay in the page cache, shared with every
// other process that maps the file, and a later access maps them again
// with a minor fault. So the drop lowers the process's Rss, but frees
// physical memory only where no other process maps the pages and the
// kernel reclaims them.
//
// Only private file mappings of the executable without write permission
// and without anonymous (copy-on-write) pages, resident or swapped out,
// are dropped. For a private file mapping, MADV_DONTNEED also discards
// pages that the process has written, and frees their swap entries
// (zap_details.even_cows in Linux's madvise_dontneed_single_vma), so they
// would come back with the file's contents. A read-only mapping has such
// pages where the dynamic loader or the runtime of a position-independent
// build relocated data before making it read-only (RELRO), and where a
// debugger or a uprobe has written into it. Drop skips such mappings, as
// it skips locked ones. osvm-launch, static and not position-independent,
// has none. Writable
// mappings (.data, .bss and .noptrdata in a Go program) and anonymous
// memory are never touched.
//
// MADV_COLD and MADV_PAGEOUT do not fit. MADV_COLD only moves the pages to
// the inactive list and leaves them mapped. MADV_PAGEOUT skips pages that
// another process maps too, as every launcher maps osvm-launch, and
// evicts the pages that only this process maps from the page cache, so
// that their next use reads the file again
// (madvise_cold_or_pageout_pte_range in mm/madvise.c). Without write
// access to the file it applies to anonymous pages only.
//
// Usage:
//
//	d, err := exepages.Open() // before Landlock, which denies /proc
//	defer d.Close()
//	...                       // setup, then in a goroutine:
//	err = d.Repeat(ctx, 250*time.Millisecond, time.Minute) // until ctx ends
//
// Open, Drop and Repeat exist on Linux only. The package never logs.
package exepages
