package config

import (
	"strings"
)

// keyLines maps every key that a TOML document assigns or opens as a table
// ("exec", "exec.command", "resources.memory") to the 1-based line where it
// first appears. It is a line scanner, not a parser: it is used only to put a
// line number on keys that the decoder has already accepted as valid TOML.
// Keys inside inline tables are not listed; lineOf falls back to their
// table's line.
func keyLines(data string) map[string]int {
	lines := map[string]int{}
	table := ""
	var multiline string // closing delimiter of an open multi-line string
	depth := 0           // open brackets of a multi-line array or inline table

	for i, line := range strings.Split(data, "\n") {
		number := i + 1
		if multiline != "" {
			if strings.Contains(line, multiline) {
				multiline = ""
			}
			continue
		}
		if depth > 0 {
			depth, multiline = scanValue(line, depth)
			continue
		}

		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || trimmed[0] == '#':
			continue
		case strings.HasPrefix(trimmed, "[["):
			table = normalizeKey(strings.TrimSuffix(headerName(trimmed[2:]), "]"))
			record(lines, table, number)
			continue
		case trimmed[0] == '[':
			table = normalizeKey(headerName(trimmed[1:]))
			record(lines, table, number)
			continue
		}

		key, value, ok := cutAssignment(trimmed)
		if !ok {
			continue
		}
		full := joinKey(table, normalizeKey(key))
		record(lines, full, number)
		depth, multiline = scanValue(value, 0)
	}
	return lines
}

// lineOf returns the line of key, else the first line of a key below it,
// else the line of its nearest enclosing table, else 0.
func lineOf(lines map[string]int, key string) int {
	first := 0
	for k, n := range lines {
		if strings.HasPrefix(k, key+".") && (first == 0 || n < first) {
			first = n
		}
	}
	if _, ok := lines[key]; !ok && first > 0 {
		return first
	}
	for {
		if n, ok := lines[key]; ok {
			return n
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			return 0
		}
		key = key[:i]
	}
}

func record(lines map[string]int, key string, number int) {
	if _, ok := lines[key]; !ok {
		lines[key] = number
	}
}

// headerName returns the text of a table header up to its closing bracket.
func headerName(rest string) string {
	if i := strings.IndexByte(rest, ']'); i >= 0 {
		return rest[:i]
	}
	return rest
}

// cutAssignment splits `key = value` at the first '=' outside quotes.
func cutAssignment(line string) (key, value string, ok bool) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			return strings.TrimSpace(line[:i]), line[i+1:], true
		}
	}
	return "", "", false
}

// normalizeKey turns a dotted key as written (` exec . "command" `) into the
// form the decoder reports (exec.command).
func normalizeKey(key string) string {
	var parts []string
	var part strings.Builder
	var quote byte
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				part.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(part.String()))
			part.Reset()
		default:
			part.WriteByte(c)
		}
	}
	parts = append(parts, strings.TrimSpace(part.String()))
	return strings.Join(parts, ".")
}

// scanValue follows brackets and strings through one line of a value. It
// returns the bracket depth at the end of the line and, when a multi-line
// string is still open, its closing delimiter.
func scanValue(line string, depth int) (int, string) {
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '#':
			return depth, ""
		case strings.HasPrefix(line[i:], `"""`) || strings.HasPrefix(line[i:], `'''`):
			delimiter := line[i : i+3]
			end := strings.Index(line[i+3:], delimiter)
			if end < 0 {
				return depth, delimiter
			}
			i += 3 + end + 2
		case c == '"' || c == '\'':
			i = skipString(line, i)
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth = max(0, depth-1)
		}
	}
	return depth, ""
}

// skipString returns the index of the quote that closes the string opening
// at line[start].
func skipString(line string, start int) int {
	quote := line[start]
	for i := start + 1; i < len(line); i++ {
		switch {
		case line[i] == '\\' && quote == '"':
			i++
		case line[i] == quote:
			return i
		}
	}
	return len(line)
}
