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
// cache, /dev/null and the process's own /proc entry. Library folders are granted whole, because programs
// also load libraries at run time (NSS modules, for example).
func StartupPaths(command string) ([]PathRule, error) {
	rules := []PathRule{
		{Path: "/dev/null", Access: AccessRead | AccessWrite},

		// The process's own /proc entry (status, maps, fd), which runtimes
		// and libraries read. The rule attaches to /proc/PID of the
		// launcher, which keeps its PID across execve(2); child processes
		// have other PIDs and do not get it.
		{Path: "/proc/self", Access: AccessRead},
	}
	if _, err := os.Stat("/etc/ld.so.cache"); err == nil {
		rules = append(rules, PathRule{Path: "/etc/ld.so.cache", Access: AccessRead})
	}
	searchDirs := append(loaderConfigDirs("/etc/ld.so.conf", 0), defaultLibraryDirs...)

	program := command
	for range maxInterpreters + 1 {
		rules = append(rules, PathRule{Path: program, Access: AccessRead | AccessExec})
		interpreter, err := scriptInterpreter(program)
		if err != nil {
			return nil, err
		}
		if interpreter == "" {
			libraries, err := sharedLibraryDirs(program, searchDirs)
			if err != nil {
				return nil, err
			}
			return append(rules, libraries...), nil
		}
		program = interpreter
	}
	return nil, fmt.Errorf("%s: more than %d nested #! interpreters", command, maxInterpreters)
}

// scriptInterpreter returns the interpreter named on the "#!" line of a
// script, or "" when path is not a script.
func scriptInterpreter(path string) (string, error) {
	f, err := os.Open(path)
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
func sharedLibraryDirs(path string, searchDirs []string) ([]PathRule, error) {
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

		f, err := elf.Open(file)
		if err != nil {
			if file == path {
				return nil, fmt.Errorf("%s is neither an ELF executable nor a #! script: %w", path, err)
			}
			return nil, err
		}
		interpreter := elfInterpreter(f)
		needed, _ := f.ImportedLibraries()
		runpath, _ := f.DynString(elf.DT_RUNPATH)
		rpath, _ := f.DynString(elf.DT_RPATH)
		f.Close()

		if interpreter != "" {
			dirs[filepath.Dir(interpreter)] = true
			queue = append(queue, interpreter)
		}
		own := expandOrigin(append(rpath, runpath...), filepath.Dir(file))
		for _, name := range needed {
			found := findLibrary(name, append(own, searchDirs...))
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

func findLibrary(name string, dirs []string) string {
	if filepath.IsAbs(name) {
		return name
	}
	for _, dir := range dirs {
		candidate := filepath.Join(dir, name)
		if _, err := os.Stat(candidate); err == nil {
			return candidate
		}
	}
	return ""
}

// loaderConfigDirs returns the folders listed in an ld.so.conf file and the
// files it includes.
func loaderConfigDirs(path string, depth int) []string {
	if depth > 4 {
		return nil
	}
	f, err := os.Open(path)
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
			matches, _ := filepath.Glob(pattern)
			for _, m := range matches {
				dirs = append(dirs, loaderConfigDirs(m, depth+1)...)
			}
			continue
		}
		if filepath.IsAbs(line) {
			dirs = append(dirs, line)
		}
	}
	return dirs
}
