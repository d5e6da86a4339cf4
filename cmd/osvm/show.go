package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/godbus/dbus/v5"

	"github.com/osvm-project/osvm/supervisor"
)

func runList(args []string) error {
	fs := newFlags("list")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	var list []supervisor.Summary
	if err := callSupervisor("List", []any{&list}); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(list)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "COMPONENT\tUNIT\tACTIVE\tSUB\tFILE")
	for _, c := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.Name, c.Unit, c.ActiveState, c.SubState, c.File)
	}
	return w.Flush()
}

// statusOrder is the order of the fields osvm status prints first.
var statusOrder = []string{
	"Name", "Unit", "Description", "Isolation", "File", "FileExists", "FileError", "Refused", "StoppedByOperator",
	"Plan", "RunningPlan", "LoadState", "ActiveState", "SubState", "Result", "MainPID", "InvocationID",
	"NRestarts", "ExecMainStatus", "MemoryCurrent", "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec",
}

func runStatus(args []string) error {
	fs := newFlags("status")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, 1); err != nil {
		return err
	}
	var status map[string]dbus.Variant
	if err := callSupervisor("Status", []any{&status}, fs.Arg(0)); err != nil {
		return err
	}
	values := map[string]any{}
	for k, v := range status {
		values[k] = v.Value()
		// systemd marks "no limit" with the largest uint64.
		if n, ok := values[k].(uint64); ok && n == math.MaxUint64 {
			values[k] = "infinity"
		}
	}
	if *asJSON {
		return printJSON(values)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	printed := map[string]bool{}
	for _, key := range statusOrder {
		if v, ok := values[key]; ok {
			fmt.Fprintf(w, "%s:\t%v\n", key, v)
			printed[key] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if !printed[key] {
			fmt.Fprintf(w, "%s:\t%v\n", key, values[key])
		}
	}
	return w.Flush()
}

func printJSON(v any) error {
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	return encoder.Encode(v)
}
