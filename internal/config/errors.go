package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is one problem at one place in a component file.
type Error struct {
	File    string // path of the file, as given to Load or Parse
	Line    int    // 1-based line; 0 when the problem concerns the whole file
	Key     string // dotted key such as "resources.memory"; may be empty
	Message string // what is wrong and, where possible, what to write instead
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors returns the individual problems in err, which Load and Parse
// return as one error joined with errors.Join.
func Errors(err error) []*Error {
	var list []*Error
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			list = append(list, Errors(e)...)
		}
		return list
	}
	var e *Error
	if errors.As(err, &e) {
		list = append(list, e)
	}
	return list
}

// duplicateKey matches the decoder's message for a key defined twice.
var duplicateKey = lazyRegexp(`^Key '([^']*)' has already been defined\.$`)

// typeMismatch matches the decoder's message for a value of the wrong type,
// which it returns as a plain error rather than a toml.ParseError.
var typeMismatch = lazyRegexp(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): incompatible types: TOML value has type (\S+); destination has type (.+)$`)

// tableMismatch matches the decoder's message for a table key given a
// value of another type, such as [[exec]] for [exec].
var tableMismatch = lazyRegexp(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): type mismatch for \S+: expected table but found (.+)$`)

// tomlTypeNames turns the decoder's Go-side type names into TOML's words.
var tomlTypeNames = map[string]string{
	"slice":                     "an array",
	"map":                       "a table",
	"string":                    "a string",
	"primitive (string-like)":   "a string",
	"integer":                   "an integer",
	"float":                     "a number",
	"boolean":                   "a boolean",
	"int64":                     "an integer",
	"float64":                   "a number",
	"bool":                      "a boolean",
	"[]interface {}":            "an array",
	"map[string]interface {}":   "a table",
	"map[string]any":            "a table",
	"[]map[string]any":          "an array of tables",
	"[]map[string]interface {}": "an array of tables",
	"[]any":                     "an array",
}

func describeType(name string) string {
	if words, ok := tomlTypeNames[name]; ok {
		return words
	}
	return name
}

// decodeError turns an error of toml.Decode into an *Error with the file's
// name and the line of the problem.
func decodeError(path string, lines map[string]int, err error) *Error {
	var parseErr toml.ParseError
	if errors.As(err, &parseErr) {
		message := parseErr.Message
		if m := duplicateKey().FindStringSubmatch(message); m != nil {
			message = fmt.Sprintf("duplicate key %q: each key may appear once", m[1])
		}
		e := &Error{File: path, Line: parseErr.Position.Line, Message: message}
		// A value that failed its own check (a size, a level) is reported on
		// its key's line; a syntax error is reported where it is.
		if parseErr.LastKey != "" && lines[parseErr.LastKey] == parseErr.Position.Line {
			e.Key = parseErr.LastKey
		}
		return e
	}
	if m := tableMismatch().FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		if line == 0 {
			line = lineOf(lines, m[2])
		}
		return &Error{File: path, Line: line, Key: m[2], Message: "wrong type: got " + describeType(m[3]) + ", want a table"}
	}
	if m := typeMismatch().FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		if line == 0 {
			line = lineOf(lines, m[2])
		}
		return &Error{
			File:    path,
			Line:    line,
			Key:     m[2],
			Message: fmt.Sprintf("wrong type: got %s, want %s", describeType(m[3]), describeType(m[4])),
		}
	}
	return &Error{File: path, Message: strings.TrimPrefix(err.Error(), "toml: ")}
}
