package sandbox

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/osvm-project/osvm/internal/plan"
)

// defaultLibraryDirs are searched after the folders of /etc/ld.so.conf, as
// the dynamic loader does on x86-64 (ld.so(8)).
var defaultLibraryDirs = []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// maxInterpreters bounds the chain of "#!" interpreters, as the kernel's
// BINPRM_MAX_RECURSION (4) does.
const maxInterpreters = 4

// StartupPaths returns the paths a command needs to start under Landlock:
// the executable itself, the interpreter of a "#!" script, the dynamic
// loader and the folders of the shared libraries they link, the loader's
// cache, /dev/null and the process's own /proc entry. Library folders are
// granted whole, because programs also load libraries at run time (NSS
// modules, for example).
func StartupPaths(command string) ([]PathRule, error) {
	return (&startupSearch{}).paths(command)
}

// RecordStartup returns what StartupPaths finds for command, and the state
// of every file and folder the search read or looked for, for a plan.
// StartupFromPlan returns the same paths later, and cheaply, while all of
// those files are unchanged.
func RecordStartup(command string) (*plan.Startup, error) {
	search := &startupSearch{files: map[string]string{}}
	rules, err := search.paths(command)
	if err != nil {
		return nil, err
	}
	if search.unrecordable != "" {
		return nil, fmt.Errorf("the search for what %s needs to start cannot be recorded: %s", command, search.unrecordable)
	}
	startup := &plan.Startup{Paths: map[string]string{}, Files: search.files}
	for _, merged := range mergePaths(rules) {
		startup.Paths[merged.Path] = merged.Access.String()
	}
	return startup, nil
}

// StartupFromPlan returns the paths that RecordStartup stored in a plan,
// when every file and folder they depend on is unchanged. It returns false
// when startup is nil or anything changed, and then the caller must call
// StartupPaths.
func StartupFromPlan(startup *plan.Startup) ([]PathRule, bool) {
	if startup == nil || len(startup.Files) == 0 {
		return nil, false
	}
	for path, recorded := range startup.Files {
		if currentFileState(path) != recorded {
			return nil, false
		}
	}
	rules := make([]PathRule, 0, len(startup.Paths))
	for path, text := range startup.Paths {
		access, err := parseAccess(text)
		if err != nil {
			return nil, false
		}
		rules = append(rules, PathRule{Path: path, Access: access})
	}
	return rules, true
}

// startupSearch is one run of StartupPaths. When files is not nil, it
// records there the state of every file and folder the run reads or
// looks for, keyed by path.
type startupSearch struct {
	files map[string]string

	// unrecordable is the reason the run depends on something that files
	// cannot show, which makes a recorded run useless.
	unrecordable string
}

func (s *startupSearch) paths(command string) ([]PathRule, error) {
	rules := []PathRule{
		{Path: "/dev/null", Access: AccessRead | AccessWrite},

		// The process's own /proc entry (status, maps, fd), which runtimes
		// and libraries read. The rule attaches to /proc/PID of the
		// launcher, which keeps its PID across execve(2); child processes
		// have other PIDs and do not get it.
		{Path: "/proc/self", Access: AccessRead},
	}
	if _, err := s.stat("/etc/ld.so.cache"); err == nil {
		rules = append(rules, PathRule{Path: "/etc/ld.so.cache", Access: AccessRead})
	}
	searchDirs := append(s.loaderConfigDirs("/etc/ld.so.conf", 0), defaultLibraryDirs...)

	program := command
	for range maxInterpreters + 1 {
		rules = append(rules, PathRule{Path: program, Access: AccessRead | AccessExec})
		interpreter, err := s.scriptInterpreter(program)
		if err != nil {
			return nil, err
		}
		if interpreter == "" {
			libraries, err := s.sharedLibraryDirs(program, searchDirs)
			if err != nil {
				return nil, err
			}
			return append(rules, libraries...), nil
		}
		program = interpreter
	}
	return nil, fmt.Errorf("%s: more than %d nested #! interpreters", command, maxInterpreters)
}

// stat is os.Stat, recorded.
func (s *startupSearch) stat(path string) (os.FileInfo, error) {
	info, err := os.Stat(path)
	s.note(path, info, err)
	return info, err
}

// open is os.Open, recorded with the state of the file it opened.
func (s *startupSearch) open(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		s.note(path, nil, err)
		return nil, err
	}
	if s.files != nil {
		info, err := f.Stat()
		s.note(path, info, err)
	}
	return f, nil
}

// glob is filepath.Glob, recorded with the state of the folder it lists.
// A pattern with wildcards in its folder part lists folders that the
// record cannot name in advance.
func (s *startupSearch) glob(pattern string) []string {
	dir := filepath.Dir(pattern)
	if strings.ContainsAny(dir, `*?[\`) {
		s.unrecordable = fmt.Sprintf("the pattern %s has wildcards in its folder part", pattern)
	} else {
		s.stat(dir)
	}
	matches, _ := filepath.Glob(pattern)
	return matches
}

// note records the state of path, which is info, or a failed stat(2) when
// err is not nil. The first state seen for a path stays.
func (s *startupSearch) note(path string, info os.FileInfo, err error) {
	if s.files == nil {
		return
	}
	if _, seen := s.files[path]; seen {
		return
	}
	if err != nil {
		s.files[path] = ""
		return
	}
	s.files[path] = fileState(info)
}

// scriptInterpreter returns the interpreter named on the "#!" line of a
// script, or "" when path is not a script.
func (s *startupSearch) scriptInterpreter(path string) (string, error) {
	f, err := s.open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 256)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	line, ok := bytes.CutPrefix(head[:n], []byte("#!"))
	if !ok {
		return "", nil
	}
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	fields := strings.Fields(string(line))
	if len(fields) == 0 || !filepath.IsAbs(fields[0]) {
		return "", fmt.Errorf("%s: no absolute interpreter path on its #! line", path)
	}
	return fields[0], nil
}

// sharedLibraryDirs returns read and exec rules for the folders of the
// dynamic loader and of every shared library the ELF file at path needs,
// directly or through other libraries. A statically linked program needs
// none.
func (s *startupSearch) sharedLibraryDirs(path string, searchDirs []string) ([]PathRule, error) {
	dirs := map[string]bool{}
	seen := map[string]bool{}
	queue := []string{path}
	for len(queue) > 0 {
		file := queue[0]
		queue = queue[1:]
		if seen[file] {
			continue
		}
		seen[file] = true

		interpreter, needed, own, err := s.readELF(file)
		if err != nil {
			if file == path {
				return nil, fmt.Errorf("%s is neither an ELF executable nor a #! script: %w", path, err)
			}
			return nil, err
		}

		if interpreter != "" {
			dirs[filepath.Dir(interpreter)] = true
			queue = append(queue, interpreter)
		}
		for _, name := range needed {
			found := s.findLibrary(name, append(own, searchDirs...))
			if found == "" {
				return nil, fmt.Errorf("%s needs %s, which is in none of %s", file, name, strings.Join(searchDirs, ", "))
			}
			dirs[filepath.Dir(found)] = true
			queue = append(queue, found)
		}
	}
	var rules []PathRule
	for dir := range dirs {
		rules = append(rules, PathRule{Path: dir, Access: AccessRead | AccessExec})
	}
	return rules, nil
}

// readELF returns the program interpreter of the ELF file at path, the
// shared libraries it needs, and the folders of its DT_RPATH and
// DT_RUNPATH with $ORIGIN expanded.
func (s *startupSearch) readELF(path string) (interpreter string, needed, own []string, err error) {
	f, err := s.open(path)
	if err != nil {
		return "", nil, nil, err
	}
	defer f.Close()
	file, err := elf.NewFile(f)
	if err != nil {
		return "", nil, nil, err
	}
	interpreter = elfInterpreter(file)
	needed, _ = file.ImportedLibraries()
	runpath, _ := file.DynString(elf.DT_RUNPATH)
	rpath, _ := file.DynString(elf.DT_RPATH)
	return interpreter, needed, expandOrigin(append(rpath, runpath...), filepath.Dir(path)), nil
}

func elfInterpreter(f *elf.File) string {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		data, err := io.ReadAll(p.Open())
		if err != nil {
			return ""
		}
		return string(bytes.TrimRight(data, "\x00"))
	}
	return ""
}

// expandOrigin splits DT_RPATH and DT_RUNPATH entries and replaces $ORIGIN
// with the folder of the object that carries them.
func expandOrigin(entries []string, origin string) []string {
	var dirs []string
	for _, entry := range entries {
		for _, dir := range strings.Split(entry, ":") {
			dir = strings.ReplaceAll(strings.ReplaceAll(dir, "${ORIGIN}", origin), "$ORIGIN", origin)
			if filepath.IsAbs(dir) {
				dirs = append(dirs, dir)
			}
		}
	}
	return dirs
}

func (s *startupSearch) findLibrary(name string, dirs []string) string {
	if filepath.IsAbs(name) {
		return name
	}
	for _, dir := range dirs {
		candidate := filepath.Join(dir, name)
		if _, err := s.stat(candidate); err == nil {
			return candidate
		}
	}
	return ""
}

// loaderConfigDirs returns the folders listed in an ld.so.conf file and the
// files it includes.
func (s *startupSearch) loaderConfigDirs(path string, depth int) []string {
	if depth > 4 {
		return nil
	}
	f, err := s.open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var dirs []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line, _, _ := strings.Cut(scanner.Text(), "#")
		line = strings.TrimSpace(line)
		if pattern, ok := strings.CutPrefix(line, "include "); ok {
			pattern = strings.TrimSpace(pattern)
			if !filepath.IsAbs(pattern) {
				pattern = filepath.Join(filepath.Dir(path), pattern)
			}
			for _, m := range s.glob(pattern) {
				dirs = append(dirs, s.loaderConfigDirs(m, depth+1)...)
			}
			continue
		}
		if filepath.IsAbs(line) {
			dirs = append(dirs, line)
		}
	}
	return dirs
}
