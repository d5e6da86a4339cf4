package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// knownKeys maps each table of a component file ("" for the top level) to
// the keys it accepts, read from the toml tags of type file.
var knownKeys = tableKeys(reflect.TypeFor[file](), "", map[string][]string{})

// freeFormTables are tables whose keys are chosen by the author.
var freeFormTables = []string{"exec.environment"}

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
	if best := closest(key, knownKeys[table]); best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}

	// The key may be right but in the wrong table, such as memory at the top
	// level: name the table it belongs to.
	tables := slices.Sorted(maps.Keys(knownKeys))
	for _, t := range tables {
		if t == table {
			continue
		}
		best := closest(key, knownKeys[t])
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

// closest returns the candidate nearest to word by edit distance, when it is
// near enough to be a likely typo: one edit for short words, up to three for
// long ones.
func closest(word string, candidates []string) string {
	word = strings.ToLower(word)
	limit := max(1, min(3, len(word)/3))
	best, bestDistance := "", limit+1
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestDistance {
			best, bestDistance = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	previous := make([]int, len(b)+1)
	current := make([]int, len(b)+1)
	for j := range previous {
		previous[j] = j
	}
	for i := 1; i <= len(a); i++ {
		current[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			current[j] = min(previous[j]+1, current[j-1]+1, previous[j-1]+cost)
		}
		previous, current = current, previous
	}
	return previous[len(b)]
}
