package sandbox

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// ControlSockets are the sockets through which a process can ask PID 1 for
// a new unit without this sandbox: the system bus and systemd's private
// socket. Landlock up to ABI 7 does not control connect(2) to Unix
// sockets, so osvm-launch hides them with a mount namespace when systemd's
// InaccessiblePaths= has not already done so.
var ControlSockets = []string{"/run/dbus/system_bus_socket", "/run/systemd/private"}

// ReachableControlSockets returns the control sockets this process can
// connect to. A successful probe connects and closes at once.
func ReachableControlSockets() []string {
	var reachable []string
	for _, path := range ControlSockets {
		// connect(2) resolves the path as stat(2) does, so a path that does
		// not exist cannot be connected to, and the socket is not needed.
		var st unix.Stat_t
		if err := unix.Stat(path, &st); errors.Is(err, unix.ENOENT) {
			continue
		}
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if unix.Connect(fd, &unix.SockaddrUnix{Name: path}) == nil {
			reachable = append(reachable, path)
		}
		unix.Close(fd)
	}
	return reachable
}

// HideControlSockets mounts /dev/null over each socket in paths. The
// calling thread must be in a mount namespace of its own, with
// CAP_SYS_ADMIN over it; the mounts stay there.
func HideControlSockets(paths []string) error {
	// Mounts made here must not propagate back to the parent namespace
	// (mount_namespaces(7), "MS_SLAVE").
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	for _, path := range paths {
		if err := unix.Mount("/dev/null", path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("hide %s: %w", path, err)
		}
	}
	if still := ReachableControlSockets(); len(still) > 0 {
		return fmt.Errorf("%s still reachable after hiding: %w", still[0], syscall.EEXIST)
	}
	return nil
}
