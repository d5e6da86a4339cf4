package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/osvm-project/osvm/internal/plan"
	"github.com/osvm-project/osvm/sandbox"
)

// stagingDir holds the bind mount of the host's root for a container
// without a rootfs. A tmpfs is mounted on it first, in the container's
// mount namespace only.
const stagingDir = "/tmp"

// containerDevices are the device nodes bound into the container's /dev
// from the launcher's own /dev, when they exist there.
var containerDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// containerMountPoints are the folders the container's root must have.
var containerMountPoints = []string{"/proc", "/dev", "/tmp"}

// switchRoot builds the container's root file system and makes it the root
// of this mount namespace, in this order:
//
//  1. every mount becomes private, so that nothing mounted here reaches the
//     unit's or the host's mount namespace, nor the other way round;
//  2. the rootfs is bound onto itself, or the host's root onto a staging
//     folder, because pivot_root(2) needs a mount point;
//  3. read_write_paths become mounts of their own, then the whole tree is
//     made read-only, nosuid and nodev, and the read_write_paths writable
//     again;
//  4. a proc of the new PID namespace (only its processes' entries,
//     subset=pid), a small /dev, a tmpfs on /tmp and, for the host's root,
//     /dev/null over PID 1's control sockets;
//  5. pivot_root(2) and a lazy unmount of the old root, so that nothing of
//     the host outside the new root stays reachable.
//
// Paths inside the new root are resolved as if it were the root already
// (openInRoot), so that a symbolic link that the component planted on an
// earlier run cannot point a mount outside it.
func switchRoot(p *plan.Plan) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / a private mount: %w", err)
	}
	rootfs := p.Component.Container.Rootfs
	newRoot, err := bindRoot(rootfs)
	if err != nil {
		return err
	}
	root, err := unix.Open(newRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the new root %s: %w", newRoot, err)
	}
	defer unix.Close(root)

	if err := makeReadOnly(root, newRoot, p.Component.Sandbox.ReadWritePaths); err != nil {
		return err
	}

	mountPoints := map[string]string{}
	for _, dir := range containerMountPoints {
		// The mount points must be real folders of the root, not links.
		fd, err := openInRoot(root, dir, true)
		if err != nil {
			return fmt.Errorf("the container's root %s needs a folder %s, where the container's own is mounted: %w", displayRoot(rootfs), dir, err)
		}
		defer unix.Close(fd)
		mountPoints[dir] = fdPath(fd)
	}
	if err := unix.Mount("proc", mountPoints["/proc"], "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "subset=pid"); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("mount proc: %w (the kernel rejects a new proc while a path under the launcher's /proc has a mount on top: run the component in a unit, whose ProcSubset=pid keeps such mounts away)", err)
		}
		return fmt.Errorf("mount proc: %w", err)
	}
	if err := mountDev(root, mountPoints["/dev"]); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", mountPoints["/tmp"], "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("mount a tmpfs on /tmp: %w", err)
	}
	if rootfs == "" {
		// A unit hides them with InaccessiblePaths=; a run outside a unit
		// does not.
		if err := hideControlSockets(root); err != nil {
			return err
		}
	}

	if err := unix.Fchdir(root); err != nil {
		return fmt.Errorf("enter the new root: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one, and
	// the lazy unmount removes it (pivot_root(2), NOTES).
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount the old root: %w", err)
	}
	return unix.Chdir("/")
}

func displayRoot(rootfs string) string {
	if rootfs == "" {
		return "/"
	}
	return rootfs
}

// bindRoot bind-mounts the container's root onto a mount point of its own
// and returns that mount point.
func bindRoot(rootfs string) (string, error) {
	if rootfs != "" {
		if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return "", fmt.Errorf("bind rootfs %s: %w", rootfs, err)
		}
		return rootfs, nil
	}

	// The host's root cannot be bound onto itself for pivot_root(2).
	if err := unix.Mount("tmpfs", stagingDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700,size=64k"); err != nil {
		return "", fmt.Errorf("mount a staging tmpfs on %s: %w", stagingDir, err)
	}
	newRoot := filepath.Join(stagingDir, "root")
	if err := os.Mkdir(newRoot, 0o755); err != nil {
		return "", err
	}
	if err := unix.Mount("/", newRoot, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", fmt.Errorf("bind the host's root: %w", err)
	}
	return newRoot, nil
}

// makeReadOnly makes every mount under the root read-only, nosuid and
// nodev, except the folders in readWrite (paths inside the container).
// Mounts that systemd or the host made read-only are locked that way in
// the container's user namespace (mount_namespaces(7)), so a path under
// such a mount stays read-only, and that stops the start.
func makeReadOnly(root int, newRoot string, readWrite []string) error {
	// Each writable folder becomes a mount of its own first, so that its
	// flag can differ from the rest.
	for _, path := range readWrite {
		fd, err := openInRoot(root, path, false)
		if err != nil {
			return fmt.Errorf("read_write_paths: %s: %w", path, err)
		}
		err = unix.Mount(fdPath(fd), fdPath(fd), "", unix.MS_BIND|unix.MS_REC, "")
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("read_write_paths: bind %s: %w", path, err)
		}
	}

	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(root, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("make %s read-only: %w", newRoot, err)
	}

	for _, path := range readWrite {
		// Opened again: the earlier descriptor is below the new mount.
		fd, err := openInRoot(root, path, false)
		if err != nil {
			return fmt.Errorf("read_write_paths: %s: %w", path, err)
		}
		attr := unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY}
		err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("read_write_paths: %s stays read-only (on a read-only file system, or not in the unit's ReadWritePaths=): %w", path, err)
		}
	}
	return nil
}

// mountDev mounts a tmpfs with the usual device nodes on mountPoint, the
// container's /dev, and makes the tmpfs read-only.
func mountDev(root int, mountPoint string) error {
	if err := unix.Mount("tmpfs", mountPoint, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return fmt.Errorf("mount a tmpfs on /dev: %w", err)
	}
	// Descriptors opened before the mount refer to the folder below it,
	// so /dev is looked up again.
	fd, err := openInRoot(root, "/dev", true)
	if err != nil {
		return fmt.Errorf("open the container's /dev: %w", err)
	}
	defer unix.Close(fd)
	dev := fdPath(fd)

	for _, name := range containerDevices {
		source := "/dev/" + name
		if _, err := os.Stat(source); err != nil {
			continue
		}
		target := filepath.Join(dev, name)
		if err := os.WriteFile(target, nil, 0o666); err != nil {
			return fmt.Errorf("create /dev/%s: %w", name, err)
		}
		// A device node created in a user namespace cannot be opened, so
		// the host's node is bound in.
		if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", name, err)
		}
	}
	links := map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777"); err != nil {
		return fmt.Errorf("mount a tmpfs on /dev/shm: %w", err)
	}

	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("make /dev read-only: %w", err)
	}
	return nil
}

// hideControlSockets binds /dev/null over PID 1's control sockets in the
// new root, for a container on the host's root: Landlock does not cover
// connect(2) to a Unix socket by path.
func hideControlSockets(root int) error {
	for _, path := range sandbox.ControlSockets {
		fd, err := openInRoot(root, path, true)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EACCES) {
			continue
		}
		if err != nil {
			return fmt.Errorf("hide %s: %w", path, err)
		}
		err = unix.Mount("/dev/null", fdPath(fd), "", unix.MS_BIND, "")
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("hide %s: %w", path, err)
		}
	}
	return nil
}

// maxSymlinks bounds the symbolic links openInRoot follows, as the
// kernel's MAXSYMLINKS (40) does.
const maxSymlinks = 40

// openInRoot opens path as an O_PATH descriptor, resolved as if root were
// the root folder: ".." stops at root and absolute symbolic links start
// again at root. With noSymlinks, a symbolic link anywhere in path is an
// error. openat2(2) with RESOLVE_IN_ROOT would do the same, but systemd's
// RestrictSUIDSGID= makes it fail with ENOSYS, so the walk is done here
// one component at a time.
func openInRoot(root int, path string, noSymlinks bool) (int, error) {
	start, err := unix.Openat(root, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	// dirs holds the folders walked so far, root first.
	dirs := []int{start}
	defer func() {
		for _, fd := range dirs {
			unix.Close(fd)
		}
	}()

	pending := splitPath(path)
	links := 0
	for len(pending) > 0 {
		name := pending[0]
		pending = pending[1:]
		switch name {
		case ".":
			continue
		case "..":
			if len(dirs) > 1 {
				unix.Close(dirs[len(dirs)-1])
				dirs = dirs[:len(dirs)-1]
			}
			continue
		}
		fd, err := unix.Openat(dirs[len(dirs)-1], name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			dirs = append(dirs, fd)
			continue
		}

		target, err := readlinkFD(fd)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		links++
		switch {
		case noSymlinks:
			return -1, fmt.Errorf("%s is a symbolic link: %w", name, unix.ELOOP)
		case links > maxSymlinks:
			return -1, unix.ELOOP
		case filepath.IsAbs(target):
			for _, fd := range dirs[1:] {
				unix.Close(fd)
			}
			dirs = dirs[:1]
		}
		pending = append(splitPath(target), pending...)
	}

	// The caller owns the last descriptor; the deferred call closes the
	// others.
	last := dirs[len(dirs)-1]
	dirs = dirs[:len(dirs)-1]
	return last, nil
}

func splitPath(path string) []string {
	var names []string
	for _, name := range strings.Split(path, "/") {
		if name != "" {
			names = append(names, name)
		}
	}
	return names
}

// readlinkFD returns the target of the symbolic link that an O_PATH
// descriptor refers to (readlinkat(2) with an empty path).
func readlinkFD(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// fdPath returns the /proc path of an open descriptor, which mount(2)
// follows to the file the descriptor refers to.
func fdPath(fd int) string {
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

func uintptrOf[T any](p *T) uintptr {
	return uintptr(unsafe.Pointer(p))
}
