// Package config reads component files: one TOML file per component in the
// configuration folder (by default /etc/osvm), named NAME.toml.
//
// Parsing is strict. An unknown key, a value of the wrong type and a value
// outside its range are all errors that name the file, the line and the key,
// and an unknown key that is close to a known one comes with a suggestion:
//
//	/etc/osvm/web.toml:7: unknown key "resources.memmory" (did you mean "memory"?)
//
// The result, [Component], is plain data with validated and normalized values
// (sizes in bytes, durations, absolute paths). The package knows nothing about
// systemd: package units turns a Component into unit properties.
//
// # Privileges
//
// None. Reading a file needs only read access to it.
//
// # Limitations
//
// The TOML decoder (github.com/BurntSushi/toml v1.6.0) reports positions only
// for syntax errors and for values it cannot convert. The line of an unknown
// key or of a value that fails validation is found by scanning the file's
// lines for the key; a key written inside an inline table is reported at the
// line of the table.
//
// Decoding stops at the first syntax or type error, so a file with several
// such errors reports them one at a time. Unknown keys and validation errors
// are all reported together.
package config
