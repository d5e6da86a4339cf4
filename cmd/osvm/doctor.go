package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/osvm-project/osvm/probe"
	"github.com/osvm-project/osvm/supervisor"
)

// runDoctor probes the host and prints what it offers: the facts, then
// each isolation level with the reason it is unavailable or a caveat.
func runDoctor(args []string) error {
	fs := newFlags("doctor")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	report := probe.Probe(context.Background())
	supervisor.MarkUnimplemented(report)
	if *asJSON {
		return printJSON(report)
	}
	return printDoctor(os.Stdout, report)
}

// printDoctor writes r as two tables, facts and levels, and a summary.
func printDoctor(w io.Writer, r *probe.Report) error {
	var facts [][]string
	for _, line := range r.Facts.Summary() {
		facts = append(facts, []string{line.Name, line.Value})
	}
	if err := writeTable(w, []string{"FACT", "VALUE"}, facts); err != nil {
		return err
	}
	fmt.Fprintln(w)

	var levels [][]string
	for _, s := range r.Levels {
		available, details := "no", s.Reasons
		if s.Available {
			available, details = "yes", s.Notes
		}
		first := ""
		if len(details) > 0 {
			first, details = details[0], details[1:]
		}
		levels = append(levels, []string{string(s.Level), available, first})
		for _, more := range details {
			levels = append(levels, []string{"", "", more})
		}
	}
	if err := writeTable(w, []string{"LEVEL", "AVAILABLE", "REASON OR NOTE"}, levels); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nstrongest available level: %s\n", r.Strongest())
	if r.Facts.EUID != 0 {
		fmt.Fprintf(w, "probed as uid %d: run osvm doctor as root to see what osvmd sees\n", r.Facts.EUID)
	}
	return nil
}

// writeTable writes a header and rows in aligned columns, without the
// trailing spaces that tabwriter leaves after an empty last cell.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	var buf bytes.Buffer
	table := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(table, strings.Join(header, "\t"))
	for _, row := range rows {
		fmt.Fprintln(table, strings.Join(row, "\t"))
	}
	if err := table.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(buf.String()) {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " \n")); err != nil {
			return err
		}
	}
	return nil
}
