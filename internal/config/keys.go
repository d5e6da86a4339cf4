package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// knownKeys maps each table of a component file ("" for the top level) to
// the keys it accepts, read from the toml tags of type file. It is built on
// first use, so that programs that only read plans (osvm-launch) do not pay
// for it at start.
var knownKeys = sync.OnceValue(func() map[string][]string {
	return tableKeys(reflect.TypeFor[file](), "", map[string][]string{})
})

// freeFormTables are tables whose keys are chosen by the author.
var freeFormTables = []string{"exec.environment", "unikernel.environment"}

func tableKeys(t reflect.Type, table string, keys map[string][]string) map[string][]string {
	for field := range t.Fields() {
		name := field.Tag.Get("toml")
		if name == "" || name == "-" {
			continue
		}
		keys[table] = append(keys[table], name)
		if field.Type.Kind() == reflect.Struct && field.Type.NumField() > 0 && isTable(field.Type) {
			tableKeys(field.Type, joinKey(table, name), keys)
		}
	}
	return keys
}

// isTable reports whether a struct type is a TOML table of the file rather
// than a value type with its own decoding (size, duration).
func isTable(t reflect.Type) bool {
	for field := range t.Fields() {
		if field.Tag.Get("toml") != "" {
			return true
		}
	}
	return false
}

func joinKey(table, key string) string {
	if table == "" {
		return key
	}
	return table + "." + key
}

// splitKey splits "resources.memmory" into its table and its last key.
func splitKey(full string) (table, key string) {
	i := strings.LastIndexByte(full, '.')
	if i < 0 {
		return "", full
	}
	return full[:i], full[i+1:]
}

// suggestKey returns a hint for the unknown key full, such as
// `did you mean "memory"?`, or "" when no known key is close to it.
func suggestKey(full string) string {
	table, key := splitKey(full)
	if best := closest(key, knownKeys()[table]); best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}

	// The key may be right but in the wrong table, such as memory at the top
	// level: name the table it belongs to.
	tables := slices.Sorted(maps.Keys(knownKeys()))
	for _, t := range tables {
		if t == table {
			continue
		}
		best := closest(key, knownKeys()[t])
		switch {
		case best == "":
			continue
		case t == "":
			return fmt.Sprintf("did you mean %q at the top level, before any table?", best)
		default:
			return fmt.Sprintf("did you mean %q in the [%s] table?", best, t)
		}
	}
	return ""
}

// aliases maps names that other tools use to the key osvm uses.
var aliases = map[string]string{
	"workdir": "working_directory", "cwd": "working_directory", "directory": "working_directory",
	"env": "environment", "cmd": "command", "exec": "command", "args": "command", "argv": "command",
	"mem": "memory", "memory_max": "memory", "memorymax": "memory",
	"cpu": "cpus", "cpu_quota": "cpus", "cpuquota": "cpus",
	"tasks_max": "tasks", "tasksmax": "tasks", "pids": "tasks",
	"ioweight": "io_weight", "restart_sec": "delay", "restartsec": "delay",
}

// closest returns the candidate nearest to word, when it is near enough to
// be a likely typo: one edit (a transposition counts as one) for short
// words, up to three for long ones. Known aliases and prefixes of at least
// four letters ("working_dir") also match.
func closest(word string, candidates []string) string {
	word = strings.ToLower(word)
	if alias, ok := aliases[word]; ok && slices.Contains(candidates, alias) {
		return alias
	}
	limit := max(1, min(3, len(word)/3))
	best, bestDistance := "", limit+1
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestDistance {
			best, bestDistance = c, d
		}
	}
	if best == "" && len(word) >= 4 {
		for _, c := range candidates {
			if strings.HasPrefix(c, word) {
				return c
			}
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// letters each count as one edit.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
