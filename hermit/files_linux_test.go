package hermit

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// testMounts returns a file system with a writable /data and a read-only
// /ro, and the host folders behind them. /data holds input.txt and a
// symbolic link "link" to a folder outside both mounts.
func testMounts(t *testing.T) (fs *fileSystem, data, ro, outside string) {
	t.Helper()
	data, ro, outside = t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "input.txt"), []byte("hello input\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ro, "readme.txt"), []byte("read only\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}
	fs, err := newFileSystem(map[string]Mount{"/data": {Dir: data, Writable: true}, "/ro": {Dir: ro}})
	if err != nil {
		t.Fatalf("newFileSystem: %v", err)
	}
	t.Cleanup(fs.close)
	return fs, data, ro, outside
}

func TestFileSystemResolve(t *testing.T) {
	fs, _, _, _ := testMounts(t)
	tests := []struct {
		path      string
		wantMount string
		wantRel   string
		wantErrno int32
	}{
		{"/data/input.txt", "/data", "input.txt", 0},
		{"/data", "/data", ".", 0},
		{"/data/", "/data", ".", 0},
		{"/data/a/../b", "/data", "b", 0},
		{"/ro/x", "/ro", "x", 0},
		{"/database", "", "", eNOENT},
		{"/data/../etc/passwd", "", "", eNOENT},
		{"/etc/passwd", "", "", eNOENT},
		{"data/input.txt", "", "", eNOENT},
		{"", "", "", eNOENT},
	}
	for _, tt := range tests {
		m, rel, errno := fs.resolve(tt.path)
		if errno != tt.wantErrno {
			t.Errorf("resolve(%q) errno = %d, want %d", tt.path, errno, tt.wantErrno)
			continue
		}
		if errno == 0 && (m.guest != tt.wantMount || rel != tt.wantRel) {
			t.Errorf("resolve(%q) = %s, %q; want %s, %q", tt.path, m.guest, rel, tt.wantMount, tt.wantRel)
		}
	}
}

func TestFileSystemNestedMounts(t *testing.T) {
	outer, inner := t.TempDir(), t.TempDir()
	fs, err := newFileSystem(map[string]Mount{"/": {Dir: outer}, "/data/inner": {Dir: inner}})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.close()
	if m, rel, _ := fs.resolve("/data/inner/f"); m.guest != "/data/inner" || rel != "f" {
		t.Errorf("resolve picked %s %q, want the longest prefix /data/inner", m.guest, rel)
	}
	if m, rel, _ := fs.resolve("/data/f"); m.guest != "/" || rel != filepath.Join("data", "f") {
		t.Errorf("resolve picked %s %q, want / data/f", m.guest, rel)
	}
	if got := fs.mountPoints(); len(got) != 2 || got[0] != "/" || got[1] != "/data/inner" {
		t.Errorf("mountPoints = %v", got)
	}
}

func TestNewFileSystemRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		mounts map[string]Mount
	}{
		{"relative mount point", map[string]Mount{"data": {Dir: dir}}},
		{"missing folder", map[string]Mount{"/data": {Dir: filepath.Join(dir, "absent")}}},
		{"duplicate after cleaning", map[string]Mount{"/data": {Dir: dir}, "/data/": {Dir: dir}}},
	}
	for _, tt := range tests {
		if fs, err := newFileSystem(tt.mounts); err == nil {
			fs.close()
			t.Errorf("%s: newFileSystem succeeded", tt.name)
		}
	}
}

func TestFileSystemOpenReadWrite(t *testing.T) {
	fs, data, _, _ := testMounts(t)

	fd := fs.open("/data/input.txt", oRDONLY, 0)
	if fd != firstFD {
		t.Fatalf("open = %d, want the first descriptor %d", fd, firstFD)
	}
	got, err := io.ReadAll(fs.file(fd))
	if err != nil || string(got) != "hello input\n" {
		t.Errorf("read %q, %v", got, err)
	}

	out := fs.open("/data/sub/../out.txt", 0o1|oCREAT|oTRUNC, 0o640)
	if out != firstFD+1 {
		t.Fatalf("open for writing = %d, want %d", out, firstFD+1)
	}
	if _, err := fs.file(out).Write([]byte("written")); err != nil {
		t.Fatal(err)
	}
	if pos, errno := seek(fs.file(out), 0, io.SeekEnd); pos != 7 || errno != 0 {
		t.Errorf("seek to end = %d, %d; want 7, 0", pos, errno)
	}
	if _, errno := seek(fs.file(out), 0, 7); errno != eINVAL {
		t.Errorf("seek with whence 7: errno %d, want EINVAL", errno)
	}
	if ret := fs.closeFD(out); ret != 0 {
		t.Errorf("close = %d", ret)
	}
	if ret := fs.closeFD(out); ret != -eBADF {
		t.Errorf("second close = %d, want -EBADF", ret)
	}
	if ret := fs.closeFD(1); ret != 0 {
		t.Errorf("close of stdout = %d, want 0 (ignored)", ret)
	}
	content, err := os.ReadFile(filepath.Join(data, "out.txt"))
	if err != nil || string(content) != "written" {
		t.Errorf("host file = %q, %v", content, err)
	}
	info, _ := os.Stat(filepath.Join(data, "out.txt"))
	if perm := info.Mode().Perm(); perm&^0o640 != 0 {
		t.Errorf("created with mode %o, want at most 0640", perm)
	}

	if fd2 := fs.open("/data/input.txt", oRDONLY, 0); fd2 != firstFD+1 {
		t.Errorf("open after close = %d, want the freed descriptor %d", fd2, firstFD+1)
	}
}

func TestFileSystemDenies(t *testing.T) {
	fs, data, ro, outside := testMounts(t)
	tests := []struct {
		name  string
		path  string
		flags int32
		want  int32
	}{
		{"outside every mount", "/etc/passwd", oRDONLY, -eNOENT},
		{"dot-dot out of the mount", "/data/../escape.txt", 0o1 | oCREAT, -eNOENT},
		{"symbolic link out of the mount", "/data/link/escape.txt", 0o1 | oCREAT, -eACCES},
		{"create in a read-only mount", "/ro/new.txt", 0o1 | oCREAT, -eROFS},
		{"write to a read-only mount", "/ro/readme.txt", 0o2, -eROFS},
		{"truncate in a read-only mount", "/ro/readme.txt", oTRUNC, -eROFS},
		{"missing file", "/data/absent.txt", oRDONLY, -eNOENT},
		{"exclusive create of an existing file", "/data/input.txt", 0o1 | oCREAT | oEXCL, -eEXIST},
		{"directory with create", "/data/d", oCREAT | oDIRECTORY, -eINVAL},
	}
	for _, tt := range tests {
		if got := fs.open(tt.path, tt.flags, 0o644); got != tt.want {
			t.Errorf("%s: open(%q) = %d, want %d", tt.name, tt.path, got, tt.want)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files appeared in the folder the link points to: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(data), "escape.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("escape.txt exists next to the mount")
	}
	if fd := fs.open("/ro/readme.txt", oRDONLY, 0); fd < firstFD {
		t.Errorf("read-only open in a read-only mount = %d", fd)
	}
	if _, err := os.Stat(filepath.Join(ro, "new.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("new.txt was created in the read-only mount")
	}
}

func TestFileSystemUnlinkMkdirStat(t *testing.T) {
	fs, data, _, outside := testMounts(t)
	if err := os.WriteFile(filepath.Join(outside, "victim"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		got  int32
		want int32
	}{
		{"unlink a file", fs.unlink("/data/input.txt"), 0},
		{"unlink it again", fs.unlink("/data/input.txt"), -eNOENT},
		{"unlink in a read-only mount", fs.unlink("/ro/readme.txt"), -eROFS},
		{"unlink the mount root", fs.unlink("/data"), -eBUSY},
		{"unlink through a link out of the mount", fs.unlink("/data/link/victim"), -eACCES},
		{"mkdir", fs.mkdir("/data/newdir"), 0},
		{"mkdir again", fs.mkdir("/data/newdir"), -eEXIST},
		{"unlink a folder", fs.unlink("/data/newdir"), -eISDIR},
		{"mkdir in a read-only mount", fs.mkdir("/ro/d"), -eROFS},
		{"mkdir outside mounts", fs.mkdir("/tmp/d"), -eNOENT},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "victim")); err != nil {
		t.Errorf("file outside the mount is gone: %v", err)
	}
	if info, err := os.Stat(filepath.Join(data, "newdir")); err != nil || !info.IsDir() {
		t.Errorf("newdir on the host: %v", err)
	}

	info, errno := fs.stat("/data/link", true)
	if errno != 0 || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("lstat of the link: errno %d, mode %v", errno, info)
	}
	if _, errno := fs.stat("/data/link", false); errno != eACCES {
		t.Errorf("stat through a link out of the mount: errno %d, want EACCES", errno)
	}
	if _, errno := fs.stat("/nowhere", false); errno != eNOENT {
		t.Errorf("stat outside mounts: errno %d, want ENOENT", errno)
	}
}

func TestFileSystemLimit(t *testing.T) {
	fs, _, _, _ := testMounts(t)
	for i := 0; i < maxOpenFiles; i++ {
		if fd := fs.open("/data/input.txt", oRDONLY, 0); fd < 0 {
			t.Fatalf("open %d failed with %d", i, fd)
		}
	}
	if fd := fs.open("/data/input.txt", oRDONLY, 0); fd != -eMFILE {
		t.Errorf("open beyond the limit = %d, want -EMFILE", fd)
	}
}

func TestGuestErrno(t *testing.T) {
	tests := []struct {
		err  error
		want int32
	}{
		{&os.PathError{Op: "open", Path: "x", Err: syscall.ENOENT}, eNOENT},
		{syscall.EROFS, eROFS},
		{syscall.ENOTSUP, eIO},
		{errors.New("path escapes from parent"), eACCES},
	}
	for _, tt := range tests {
		if got := guestErrno(tt.err); got != tt.want {
			t.Errorf("guestErrno(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
