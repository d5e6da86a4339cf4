package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Extension is the file name extension of component files.
const Extension = ".toml"

// IsComponentFile reports whether a file name in the configuration folder is
// meant as a component file: it ends in ".toml" and is not hidden. Editors'
// temporary files (".web.toml.swp", "web.toml~", "4913") do not qualify.
// A name that qualifies may still be invalid; see NameFromPath.
func IsComponentFile(name string) bool {
	return strings.HasSuffix(name, Extension) && !strings.HasPrefix(name, ".")
}

// NameFromPath returns the component name of a component file's path: its
// base name without ".toml". It fails when ValidName rejects the name or
// it is longer than MaxNameLength.
func NameFromPath(path string) (string, error) {
	base := filepath.Base(path)
	name, ok := strings.CutSuffix(base, Extension)
	if !ok {
		return "", &Error{File: path, Message: fmt.Sprintf("file name %q does not end in %q", base, Extension)}
	}
	if !ValidName(name) || len(name) > MaxNameLength {
		return "", &Error{File: path, Message: fmt.Sprintf(
			"invalid component name %q: a name has 1-%d characters from a-z, 0-9 and '-', starting with a letter or digit (rename the file)",
			name, MaxNameLength)}
	}
	return name, nil
}

// Load reads and validates the component file at path.
func Load(path string) (*Component, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse validates data as the component file at path; path gives the
// component's name and is used in error messages. On failure the error lists
// every problem found (see Errors).
func Parse(path string, data []byte) (*Component, error) {
	name, err := NameFromPath(path)
	if err != nil {
		return nil, err
	}
	text := string(data)
	lines := keyLines(text)

	var f file
	meta, err := toml.Decode(text, &f)
	if err != nil {
		return nil, decodeError(path, lines, err)
	}

	var problems []*Error
	problems = append(problems, miscasedKeys(path, lines, meta.Keys())...)
	for _, key := range meta.Undecoded() {
		full := key.String()
		if isInFreeFormTable(full) || isBelowUnknownKey(full, meta.Undecoded()) {
			continue
		}
		message := fmt.Sprintf("unknown key %q", full)
		if hint := suggestKey(full); hint != "" {
			message += " (" + hint + ")"
		}
		problems = append(problems, &Error{File: path, Line: lineOf(lines, full), Message: message})
	}

	c, invalid := f.component(name, meta.IsDefined)
	for _, v := range invalid {
		problems = append(problems, &Error{File: path, Line: lineOf(lines, v.key), Key: v.key, Message: v.message})
	}
	if len(problems) > 0 {
		// Report in file order, as compilers do.
		slices.SortStableFunc(problems, func(a, b *Error) int { return a.Line - b.Line })
		list := make([]error, len(problems))
		for i, p := range problems {
			list[i] = p
		}
		return nil, errors.Join(list...)
	}
	return c, nil
}

func isInFreeFormTable(key string) bool {
	return slices.ContainsFunc(freeFormTables, func(table string) bool {
		return strings.HasPrefix(key, table+".")
	})
}

// isBelowUnknownKey reports whether key lies inside another unknown key,
// such as "resources.x.a" inside the unknown table "resources.x", so that
// only the outermost unknown key is reported.
func isBelowUnknownKey(key string, undecoded []toml.Key) bool {
	for _, other := range undecoded {
		if o := other.String(); o != key && strings.HasPrefix(key, o+".") {
			return true
		}
	}
	return false
}

// miscasedKeys reports keys that match a known key only when case is
// ignored. The decoder matches struct fields case-insensitively, but TOML
// keys are case-sensitive, and a file with both "description" and
// "Description" must not pass.
func miscasedKeys(path string, lines map[string]int, keys []toml.Key) []*Error {
	var problems []*Error
	for _, key := range keys {
		table, last := "", key[len(key)-1]
		if len(key) > 1 {
			table = strings.Join(key[:len(key)-1], ".")
		}
		known, ok := knownKeys()[table]
		if !ok || slices.Contains(known, last) {
			continue
		}
		for _, k := range known {
			if strings.EqualFold(k, last) {
				full := key.String()
				problems = append(problems, &Error{File: path, Line: lineOf(lines, full),
					Message: fmt.Sprintf("unknown key %q (did you mean %q? keys are case-sensitive)", full, k)})
			}
		}
	}
	return problems
}
