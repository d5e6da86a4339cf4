package hermit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Mount makes a host folder visible to the guest's file hypercalls.
type Mount struct {
	// Dir is the host folder. Guest paths below the mount point resolve
	// inside it and cannot leave it, through ".." or symbolic links.
	Dir string

	// Writable allows creating, writing, truncating and unlinking files
	// and creating folders. A mount without it is read-only, and those
	// calls fail with EROFS.
	Writable bool
}

// Open flags of the file hypercalls. Hermit uses the values of Linux x86-64
// (hermit-abi), so they pass to openat(2) unchanged.
const (
	oAccMode   = 0o3
	oRDONLY    = 0o0
	oCREAT     = 0o100
	oEXCL      = 0o200
	oTRUNC     = 0o1000
	oAPPEND    = 0o2000
	oDIRECTORY = 0o200000

	// openFlagsAllowed are the flags uhyve passes on; others are dropped.
	openFlagsAllowed = oAccMode | oCREAT | oEXCL | oTRUNC | oAPPEND | oDIRECTORY
)

// Error numbers returned to the guest, negated, with the numbers of Linux
// x86-64.
//
// NOTE: uhyve returns hermit-abi's errno values, which were not compared with
// these. Where they differ, the guest gets a wrong code, though still a
// negative one.
const (
	ePERM        = 1
	eNOENT       = 2
	eIO          = 5
	eBADF        = 9
	eACCES       = 13
	eBUSY        = 16
	eEXIST       = 17
	eNOTDIR      = 20
	eISDIR       = 21
	eINVAL       = 22
	eMFILE       = 24
	eNOSPC       = 28
	eSPIPE       = 29
	eROFS        = 30
	eNAMETOOLONG = 36
	eNOTEMPTY    = 39
	eLOOP        = 40
	eOVERFLOW    = 75
)

// guestErrnos are the host errors passed through to the guest by number.
// Any other host error becomes EIO.
var guestErrnos = map[syscall.Errno]int32{
	syscall.EPERM: ePERM, syscall.ENOENT: eNOENT, syscall.EIO: eIO, syscall.EBADF: eBADF,
	syscall.EACCES: eACCES, syscall.EBUSY: eBUSY, syscall.EEXIST: eEXIST, syscall.ENOTDIR: eNOTDIR,
	syscall.EISDIR: eISDIR, syscall.EINVAL: eINVAL, syscall.EMFILE: eMFILE, syscall.ENOSPC: eNOSPC,
	syscall.ESPIPE: eSPIPE, syscall.EROFS: eROFS, syscall.ENAMETOOLONG: eNAMETOOLONG,
	syscall.ENOTEMPTY: eNOTEMPTY, syscall.ELOOP: eLOOP, syscall.EOVERFLOW: eOVERFLOW,
	syscall.ENFILE: eMFILE, syscall.EFBIG: eNOSPC, syscall.EDQUOT: eNOSPC,
}

// guestErrno returns the guest error number for a host error. os.Root
// reports a path that would leave the mount without an errno, and the guest
// gets EACCES for it.
func guestErrno(err error) int32 {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if e, ok := guestErrnos[errno]; ok {
			return e
		}
		return eIO
	}
	return eACCES
}

// maxOpenFiles bounds the guest's open host files.
const maxOpenFiles = 1024

// firstFD is the lowest descriptor FileOpen returns: 0, 1 and 2 are the
// standard streams.
const firstFD = 3

// fileSystem serves the file hypercalls from the mounts. It is not safe for
// concurrent use; the caller serializes hypercalls.
type fileSystem struct {
	mounts []mountPoint // longest guest prefix first
	files  map[int32]*os.File
}

type mountPoint struct {
	guest    string // cleaned absolute guest path, such as "/data"
	root     *os.Root
	writable bool
}

// newFileSystem opens the host folders of mounts. Mount points must be
// absolute guest paths.
func newFileSystem(mounts map[string]Mount) (*fileSystem, error) {
	fs := &fileSystem{files: make(map[int32]*os.File)}
	for guest, m := range mounts {
		clean := path.Clean(guest)
		if !path.IsAbs(guest) || strings.IndexByte(guest, 0) >= 0 {
			fs.close()
			return nil, fmt.Errorf("hermit: mount point %q is not an absolute guest path", guest)
		}
		root, err := os.OpenRoot(m.Dir)
		if err != nil {
			fs.close()
			return nil, fmt.Errorf("hermit: mount %s: open host folder: %w", guest, err)
		}
		fs.mounts = append(fs.mounts, mountPoint{guest: clean, root: root, writable: m.Writable})
	}
	sort.Slice(fs.mounts, func(i, j int) bool {
		if len(fs.mounts[i].guest) != len(fs.mounts[j].guest) {
			return len(fs.mounts[i].guest) > len(fs.mounts[j].guest)
		}
		return fs.mounts[i].guest < fs.mounts[j].guest
	})
	for i := 1; i < len(fs.mounts); i++ {
		if fs.mounts[i].guest == fs.mounts[i-1].guest {
			fs.close()
			return nil, fmt.Errorf("hermit: mount point %s is given twice", fs.mounts[i].guest)
		}
	}
	return fs, nil
}

// mountPoints returns the guest paths of the mounts, sorted.
func (fs *fileSystem) mountPoints() []string {
	var out []string
	for _, m := range fs.mounts {
		out = append(out, m.guest)
	}
	sort.Strings(out)
	return out
}

// close closes every open file and mount.
func (fs *fileSystem) close() {
	for fd, f := range fs.files {
		f.Close()
		delete(fs.files, fd)
	}
	for _, m := range fs.mounts {
		m.root.Close()
	}
}

// resolve finds the mount of guestPath and the path relative to its folder.
// It fails with ENOENT for paths outside every mount.
func (fs *fileSystem) resolve(guestPath string) (*mountPoint, string, int32) {
	if !path.IsAbs(guestPath) {
		return nil, "", eNOENT
	}
	clean := path.Clean(guestPath)
	for i := range fs.mounts {
		m := &fs.mounts[i]
		switch {
		case clean == m.guest:
			return m, ".", 0
		case m.guest == "/":
			return m, filepath.FromSlash(clean[1:]), 0
		case strings.HasPrefix(clean, m.guest+"/"):
			return m, filepath.FromSlash(clean[len(m.guest)+1:]), 0
		}
	}
	return nil, "", eNOENT
}

// open serves FileOpen and returns the new descriptor or -errno.
func (fs *fileSystem) open(guestPath string, flags, mode int32) int32 {
	flags &= openFlagsAllowed
	if flags&(oDIRECTORY|oCREAT) == oDIRECTORY|oCREAT {
		return -eINVAL
	}
	m, rel, errno := fs.resolve(guestPath)
	if errno != 0 {
		return -errno
	}
	if !m.writable && (flags&oAccMode != oRDONLY || flags&(oCREAT|oTRUNC|oAPPEND) != 0) {
		return -eROFS
	}
	if len(fs.files) >= maxOpenFiles {
		return -eMFILE
	}
	f, err := m.root.OpenFile(rel, int(flags)|syscall.O_CLOEXEC, os.FileMode(mode)&os.ModePerm)
	if err != nil {
		return -guestErrno(err)
	}
	fd := int32(firstFD)
	for fs.files[fd] != nil {
		fd++
	}
	fs.files[fd] = f
	return fd
}

// file returns the open file fd, or nil.
func (fs *fileSystem) file(fd int32) *os.File {
	return fs.files[fd]
}

// closeFD serves FileClose. Closing a standard stream succeeds and does
// nothing, as in uhyve.
func (fs *fileSystem) closeFD(fd int32) int32 {
	if fd >= 0 && fd < firstFD {
		return 0
	}
	f := fs.files[fd]
	if f == nil {
		return -eBADF
	}
	delete(fs.files, fd)
	if err := f.Close(); err != nil {
		return -guestErrno(err)
	}
	return 0
}

// unlink serves FileUnlink for files; folders are left alone with EISDIR.
func (fs *fileSystem) unlink(guestPath string) int32 {
	m, rel, errno := fs.resolve(guestPath)
	if errno != 0 {
		return -errno
	}
	if !m.writable {
		return -eROFS
	}
	if rel == "." {
		return -eBUSY
	}
	info, err := m.root.Lstat(rel)
	if err != nil {
		return -guestErrno(err)
	}
	if info.IsDir() {
		return -eISDIR
	}
	if err := m.root.Remove(rel); err != nil {
		return -guestErrno(err)
	}
	return 0
}

// mkdir serves Mkdir with mode 0777 less the process umask, as uhyve does.
func (fs *fileSystem) mkdir(guestPath string) int32 {
	m, rel, errno := fs.resolve(guestPath)
	if errno != 0 {
		return -errno
	}
	if !m.writable {
		return -eROFS
	}
	if err := m.root.Mkdir(rel, 0o777); err != nil {
		return -guestErrno(err)
	}
	return 0
}

// stat serves FileStat; lstat selects lstat(2) semantics.
func (fs *fileSystem) stat(guestPath string, lstat bool) (os.FileInfo, int32) {
	m, rel, errno := fs.resolve(guestPath)
	if errno != 0 {
		return nil, errno
	}
	var info os.FileInfo
	var err error
	if lstat {
		info, err = m.root.Lstat(rel)
	} else {
		info, err = m.root.Stat(rel)
	}
	if err != nil {
		return nil, guestErrno(err)
	}
	return info, 0
}

// seek serves FileLseek on an open file.
func seek(f *os.File, offset int64, whence int32) (int64, int32) {
	if whence != io.SeekStart && whence != io.SeekCurrent && whence != io.SeekEnd {
		return 0, eINVAL
	}
	pos, err := f.Seek(offset, int(whence))
	if err != nil {
		return 0, guestErrno(err)
	}
	return pos, 0
}
