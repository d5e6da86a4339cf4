package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/osvm-project/osvm/hermit"
)

// runImage handles "osvm image inspect IMAGE": it prints what the unikernel
// loader reads from a Hermit kernel image, or why it rejects the file.
func runImage(args []string) error {
	if len(args) == 0 || args[0] != "inspect" {
		return &usageError{"the only image command is inspect"}
	}
	fs := newFlags("image inspect")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args[1:], 1); err != nil {
		return err
	}
	img, err := hermit.InspectFile(fs.Arg(0))
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(img)
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Image:\t%s\n", fs.Arg(0))
	fmt.Fprintf(w, "Summary:\t%s\n", img)
	fmt.Fprintf(w, "Interface version:\t%d\n", img.InterfaceVersion)
	if img.HasKernelVersion {
		fmt.Fprintf(w, "Kernel version:\t%s\n", img.KernelVersion)
	} else {
		fmt.Fprintf(w, "Kernel version:\tnot given\n")
	}
	fmt.Fprintf(w, "Position-independent:\t%v\n", img.PositionIndependent)
	fmt.Fprintf(w, "Entry:\t%#x\n", img.Entry)
	w.Flush()
	fmt.Println("\nSegments:")
	w = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  VADDR\tFILE SIZE\tMEMORY SIZE\tFLAGS")
	for _, s := range img.Segments {
		fmt.Fprintf(w, "  %#x\t%d\t%d\t%s\n", s.VAddr, s.FileSize, s.MemSize, segmentFlags(s.Flags))
	}
	return w.Flush()
}

func segmentFlags(f uint32) string {
	flags := []byte("---")
	if f&4 != 0 {
		flags[0] = 'r'
	}
	if f&2 != 0 {
		flags[1] = 'w'
	}
	if f&1 != 0 {
		flags[2] = 'x'
	}
	return string(flags)
}
