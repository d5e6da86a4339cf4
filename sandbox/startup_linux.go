package sandbox

import (
	"os"
	"strconv"
	"syscall"
)

// fileState returns the state of a file as a plan's Startup.Files stores
// it, with device, inode, mode, size, and the modification and status
// change times in nanoseconds. A write or a change of inode information
// changes the status change time (inode(7), "Last status change
// timestamp"), and a replaced file has another inode. It returns "" when
// info does not come from stat(2).
//
// NOTE: on a file system with timestamps in whole seconds (ext3), a
// rewrite in place that keeps the size, within the second of the record,
// goes unnoticed.
func fileState(info os.FileInfo) string {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return formatFileState(st)
}

// currentFileState returns the state of path as fileState writes it, or ""
// when stat(2) fails.
func currentFileState(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return ""
	}
	return formatFileState(&st)
}

func formatFileState(st *syscall.Stat_t) string {
	b := make([]byte, 0, 96)
	b = strconv.AppendUint(b, uint64(st.Dev), 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, st.Ino, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(st.Mode), 8)
	b = append(b, ':')
	b = strconv.AppendInt(b, st.Size, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, st.Mtim.Nano(), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, st.Ctim.Nano(), 10)
	return string(b)
}
