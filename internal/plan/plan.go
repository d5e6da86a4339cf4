package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/osvm-project/osvm/internal/config"
)

// Dir is the folder osvmd writes plans to. It is on a tmpfs, so plans
// disappear at reboot together with the units that use them.
const Dir = "/run/osvm/components"

// FormatVersion is the version of the plan file's layout. osvm-launch
// rejects a plan of any other version.
const FormatVersion = 1

// hashLength is the number of hex digits of the hash kept in file names.
const hashLength = 16

// Plan is the description a unit runs: a validated component and the
// isolation level chosen for it.
type Plan struct {
	Version   int              `json:"version"`
	Component config.Component `json:"component"`

	// Level is the isolation level the launcher applies: the component's
	// own isolation key, or the level osvmd chose for "auto".
	Level config.Isolation `json:"level"`

	// Source is the component file the plan was made from, for messages.
	Source string `json:"source"`

	// Hash is the SHA-256 of the JSON encoding of Component and Level, in
	// hex; equal hashes mean equal units.
	Hash string `json:"hash"`

	// SeccompProgram is the component's seccomp filter compiled to classic
	// BPF for this host, at level "process". It follows from Component, so
	// Hash leaves it out; osvmd fills it in before it writes the plan.
	SeccompProgram []byte `json:"seccomp_program,omitempty"`

	// Startup contains the paths the command needs to start under
	// Landlock at level "process", found by osvmd so that osvm-launch need
	// not search for them. They follow from Component and the host's
	// files, so Hash leaves them out. Nil means osvm-launch searches at
	// start.
	Startup *Startup `json:"startup,omitempty"`

	// IgnoreSIGPIPE starts the command with SIGPIPE ignored, as systemd
	// starts a service with IgnoreSIGPIPE=yes, its default. osvm-launch's
	// Go runtime replaces the disposition it inherited, so it sets it
	// again before it executes the command. osvmd sets it for the units
	// it starts; it follows from the unit, so Hash leaves it out.
	IgnoreSIGPIPE bool `json:"ignore_sigpipe,omitempty"`
}

// Startup is the result of sandbox.StartupPaths for a plan's command and
// the state of every file it depends on. osvm-launch uses Paths only
// while every entry of Files is unchanged.
type Startup struct {
	// Paths maps each path to the rights a Landlock rule grants on it, in
	// the form sandbox.Access writes them ("read+exec").
	Paths map[string]string `json:"paths"`

	// Files maps each file and folder that the search read or looked for
	// to its state in the form sandbox writes it, which is "" when stat(2)
	// failed and otherwise lists device, inode, mode, size and times.
	Files map[string]string `json:"files"`
}

// New returns the plan for component c, read from the file source, to run
// at isolation level level.
func New(c *config.Component, level config.Isolation, source string) (*Plan, error) {
	p := &Plan{Version: FormatVersion, Component: *c, Level: level, Source: source}
	hash, err := p.contentHash()
	if err != nil {
		return nil, err
	}
	p.Hash = hash
	return p, nil
}

// contentHash hashes what decides how the unit runs. The source path is
// left out: moving the configuration folder changes no unit.
func (p *Plan) contentHash() (string, error) {
	content, err := json.Marshal(struct {
		Component config.Component `json:"component"`
		Level     config.Isolation `json:"level"`
	}{p.Component, p.Level})
	if err != nil {
		return "", fmt.Errorf("encode plan of %s: %w", p.Component.Name, err)
	}
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:]), nil
}

// FileName returns the plan's file name: NAME-HASH.json with the first 16
// hex digits of the hash.
func (p *Plan) FileName() string {
	return p.Component.Name + "-" + p.Hash[:hashLength] + ".json"
}

// ParseFileName returns the component name and short hash of a plan file
// name or path made by FileName.
func ParseFileName(path string) (name, shortHash string, ok bool) {
	base, ok := strings.CutSuffix(filepath.Base(path), ".json")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(base, '-')
	if i < 0 || len(base)-i-1 != hashLength {
		return "", "", false
	}
	name, shortHash = base[:i], base[i+1:]
	if _, err := hex.DecodeString(shortHash); err != nil || !config.ValidName(name) {
		return "", "", false
	}
	return name, shortHash, true
}

// ShortHash returns the part of the hash that FileName uses.
func (p *Plan) ShortHash() string { return p.Hash[:hashLength] }

// Write stores p in dir under FileName and returns its path. An existing
// file with that name is left alone when it holds the same plan: a running
// unit may be reading it.
func Write(dir string, p *Plan) (string, error) {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode plan of %s: %w", p.Component.Name, err)
	}
	data = append(data, '\n')
	path := filepath.Join(dir, p.FileName())
	if err := writeFile(path, data); err != nil {
		return "", fmt.Errorf("write plan of %s: %w", p.Component.Name, err)
	}
	return path, nil
}

// execRecordSuffix ends the name of a plan's exec record, which replaces
// the plan's ".json".
const execRecordSuffix = ".exec"

// ExecRecordPath returns the path of the exec record that belongs to the
// plan at planPath: NAME-HASH.exec beside NAME-HASH.json. osvm-exec reads
// it there.
func ExecRecordPath(planPath string) string {
	return strings.TrimSuffix(planPath, ".json") + execRecordSuffix
}

// WriteExecRecord stores data, an encoded sandbox.ExecRecord, as the exec
// record of the plan at planPath.
func WriteExecRecord(planPath string, data []byte) error {
	if err := writeFile(ExecRecordPath(planPath), data); err != nil {
		return fmt.Errorf("write exec record of %s: %w", planPath, err)
	}
	return nil
}

// RemoveExecRecord deletes the exec record of the plan at planPath, if
// there is one.
func RemoveExecRecord(planPath string) error {
	err := os.Remove(ExecRecordPath(planPath))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// PlanFileOfRecord returns the plan file name that the exec record named
// name belongs to, and false when name is not an exec record's.
func PlanFileOfRecord(name string) (string, bool) {
	stem, ok := strings.CutSuffix(name, execRecordSuffix)
	if !ok {
		return "", false
	}
	return stem + ".json", true
}

// writeFile stores data at path with mode 0644, unless the file already
// holds exactly data. It writes a temporary file in the same folder and
// renames it, so that a reader never sees a half-written file.
func writeFile(path string, data []byte) error {
	if existing, err := os.ReadFile(path); err == nil && bytes.Equal(existing, data) {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".plan-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Read loads the plan at path and checks its version and hash.
func Read(path string) (*Plan, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}

	// The component and the level stay raw at first, because the hash
	// covers them as Write encoded them. Checking it on those bytes
	// spares encoding the plan again at every start of osvm-launch.
	var file struct {
		Plan
		Component json.RawMessage `json:"component"`
		Level     json.RawMessage `json:"level"`
	}
	if err := decodeStrict(data, &file); err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	p := file.Plan
	if p.Version != FormatVersion {
		return nil, fmt.Errorf("read plan %s: format version %d, this osvm-launch reads version %d (restart the unit so that osvmd writes a current plan)", path, p.Version, FormatVersion)
	}
	want, err := writtenContentHash(file.Component, file.Level)
	if err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	if p.Hash != want {
		return nil, fmt.Errorf("read plan %s: %w", path, ErrModified)
	}
	if _, short, ok := ParseFileName(path); ok && short != p.ShortHash() {
		return nil, fmt.Errorf("read plan %s: %w", path, ErrModified)
	}
	if err := decodeStrict(file.Component, &p.Component); err != nil {
		return nil, fmt.Errorf("read plan %s: component: %w", path, err)
	}
	if err := decodeStrict(file.Level, &p.Level); err != nil {
		return nil, fmt.Errorf("read plan %s: level: %w", path, err)
	}
	return &p, nil
}

// decodeStrict decodes the JSON value data into v and rejects fields that
// v does not have.
func decodeStrict(data []byte, v any) error {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	return decoder.Decode(v)
}

// writtenContentHash returns the hash that contentHash returns for a plan,
// from the JSON of its component and level as Write encoded them.
// MarshalIndent only adds white space to what Marshal writes, and Compact
// removes it again. Any other change to those bytes changes the hash.
func writtenContentHash(component, level []byte) (string, error) {
	var content bytes.Buffer
	content.WriteString(`{"component":`)
	if err := json.Compact(&content, component); err != nil {
		return "", fmt.Errorf("component: %w", err)
	}
	content.WriteString(`,"level":`)
	if err := json.Compact(&content, level); err != nil {
		return "", fmt.Errorf("level: %w", err)
	}
	content.WriteByte('}')
	sum := sha256.Sum256(content.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// ErrModified means a plan's contents do not match its hash: the file was
// changed after osvmd wrote it.
var ErrModified = errors.New("contents do not match the plan's hash (the file was modified after osvmd wrote it)")
