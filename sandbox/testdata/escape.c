// escape tries to leave the sandbox of osvm's process isolation level and
// prints one line per attempt:
//
//	ATTEMPT name denied ERRNO     the call failed with errno ERRNO
//	ATTEMPT name killed SIGNAL    a child making the call was killed
//	ATTEMPT name ESCAPED          the call succeeded
//	CONTROL name ok|failed ERRNO  something the sandbox must allow
//
// Usage: escape RW_DIR RO_FILE BIND_PORT DENIED_PORT
//
// Before any attempt it checks that it runs confined (seccomp filter mode,
// no_new_privs, no effective capabilities, and Landlock refusing to list
// "/"), and exits with status 99 otherwise: a broken sandbox must not let
// these calls reach the machine. Every dangerous call also uses arguments
// that do nothing where the call is allowed (invalid magic numbers,
// missing paths, clock ids that do not exist).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/swap.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

static const char *rw_dir, *ro_file;
static int bind_port, denied_port;

static void attempt(const char *name, long result) {
	if (result < 0)
		printf("ATTEMPT %s denied %s\n", name, strerrorname_np(errno));
	else
		printf("ATTEMPT %s ESCAPED\n", name);
	fflush(stdout);
}

static void control(const char *name, long result) {
	if (result < 0)
		printf("CONTROL %s failed %s\n", name, strerrorname_np(errno));
	else
		printf("CONTROL %s ok\n", name);
	fflush(stdout);
}

// in_child runs fn in a child process, for calls that the sandbox stops
// by killing the caller, and reports how the child ended.
static void in_child(const char *name, long (*fn)(void)) {
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		long r = fn();
		_exit(r < 0 ? 100 : 101);
	}
	int status;
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status))
		printf("ATTEMPT %s killed %s\n", name, sigabbrev_np(WTERMSIG(status)));
	else if (WEXITSTATUS(status) == 100)
		printf("ATTEMPT %s denied (in child)\n", name);
	else
		printf("ATTEMPT %s ESCAPED\n", name);
	fflush(stdout);
}

// i386_getpid makes getpid through the 32-bit system call entry.
static long i386_getpid(void) {
	long r;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(20) : "memory");
	return r;
}

// x32_getpid makes getpid through the x32 system call table.
static long x32_getpid(void) { return syscall(39 | 0x40000000); }

// confined reports whether this process runs in osvm's sandbox: status is
// its /proc/self/status, opened before any attempt.
static int confined(FILE *status) {
	char line[256];
	int seccomp = 0, nnp = 0, caps = 0;
	while (fgets(line, sizeof line, status)) {
		if (strcmp(line, "Seccomp:\t2\n") == 0)
			seccomp = 1;
		if (strcmp(line, "NoNewPrivs:\t1\n") == 0)
			nnp = 1;
		if (strcmp(line, "CapEff:\t0000000000000000\n") == 0)
			caps = 1;
	}
	int landlock = open("/", O_RDONLY | O_DIRECTORY) < 0 && errno == EACCES;
	printf("CONFINEMENT seccomp=%d no_new_privs=%d no_capabilities=%d landlock=%d\n", seccomp, nnp, caps, landlock);
	return seccomp && nnp && caps && landlock;
}

static int connect_unix(const char *path) {
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	return connect(fd, (struct sockaddr *)&a, sizeof a);
}

static int tcp(int port, int do_bind) {
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int r = do_bind ? bind(fd, (struct sockaddr *)&a, sizeof a) : connect(fd, (struct sockaddr *)&a, sizeof a);
	int saved = errno;
	close(fd);
	errno = saved;
	return r;
}

static char *in_rw(const char *name) {
	static char buf[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof buf[i], "%s/%s", rw_dir, name);
	return buf[i];
}

int main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: escape RW_DIR RO_FILE BIND_PORT DENIED_PORT\n");
		return 2;
	}
	rw_dir = argv[1];
	ro_file = argv[2];
	bind_port = atoi(argv[3]);
	denied_port = atoi(argv[4]);

	FILE *status = fopen("/proc/self/status", "r");
	if (!status || !confined(status)) {
		printf("UNCONFINED: refusing to attempt escapes outside a sandbox\n");
		return 99;
	}

	// Controls: the sandbox must still allow what the component asked for.
	int fd = open(in_rw("control-file"), O_CREAT | O_WRONLY | O_TRUNC, 0600);
	control("write-inside-read-write-path", fd < 0 ? -1 : write(fd, "ok\n", 3));
	control("read-read-only-path", open(ro_file, O_RDONLY));
	control("bind-listed-port", tcp(bind_port, 1));

	// File system, outside the allowed paths.
	attempt("create-file-in-root", open("/osvm-escape", O_CREAT | O_WRONLY, 0600));
	attempt("create-file-in-etc", open("/etc/osvm-escape", O_CREAT | O_WRONLY, 0600));
	attempt("create-file-in-run", open("/run/osvm-escape", O_CREAT | O_WRONLY, 0600));
	attempt("overwrite-plan", open("/run/osvm/components/osvm-escape.json", O_CREAT | O_WRONLY, 0600));
	attempt("write-existing-file", open("/etc/hostname", O_WRONLY));
	attempt("read-outside", open("/etc/hostname", O_RDONLY));
	attempt("list-root-folder", open("/", O_RDONLY | O_DIRECTORY));
	attempt("mkdir-outside", mkdir("/var/osvm-escape", 0700));
	symlink("/etc/osvm-escape-via-symlink", in_rw("link"));
	attempt("create-through-symlink", open(in_rw("link"), O_CREAT | O_WRONLY, 0600));
	attempt("hard-link-outside-file", link("/etc/hostname", in_rw("hostname-link")));
	attempt("rename-into-outside", rename(in_rw("control-file"), "/var/tmp/osvm-escape"));
	attempt("write-proc-sys", open("/proc/sys/kernel/hostname", O_WRONLY));
	attempt("open-dev-mem", open("/dev/mem", O_RDONLY));
	attempt("open-dev-port", open("/dev/port", O_RDONLY));
	attempt("mknod-char-device", mknod(in_rw("null2"), S_IFCHR | 0600, makedev(1, 3)));
	attempt("chmod-setuid", chmod(in_rw("control-file"), 04755));
	attempt("create-setgid-file", open(in_rw("sgid"), O_CREAT | O_WRONLY, 02755));
	attempt("exec-unlisted-binary", execl("/usr/bin/id", "id", (char *)NULL));

	// System call groups of the default seccomp profile.
	attempt("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL));
	attempt("ptrace-traceme", syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0));
	attempt("process_vm_readv", syscall(SYS_process_vm_readv, getppid(), NULL, 0, NULL, 0, 0));
	attempt("mount-tmpfs", mount("none", "/nonexistent-osvm", "tmpfs", 0, NULL));
	attempt("umount", umount2("/nonexistent-osvm", 0));
	attempt("pivot_root", syscall(SYS_pivot_root, "/nonexistent-osvm", "/nonexistent-osvm"));
	attempt("chroot", chroot("/nonexistent-osvm"));
	attempt("unshare-user-namespace", unshare(CLONE_NEWUSER));
	attempt("setns", setns(-1, 0));
	attempt("clone-new-namespace", syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0) == 0 ? (_exit(0), 0) : -1);
	attempt("bpf", syscall(SYS_bpf, 0, NULL, 0));
	attempt("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
	attempt("userfaultfd", syscall(SYS_userfaultfd, 0));
	attempt("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -1, 0));
	attempt("add_key", syscall(SYS_add_key, "user", "osvm", "x", 1, -1));
	attempt("init_module", syscall(SYS_init_module, NULL, 0, ""));
	attempt("finit_module", syscall(SYS_finit_module, -1, "", 0));
	attempt("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
	attempt("reboot", syscall(SYS_reboot, 0, 0, 0, NULL)); // invalid magic
	attempt("swapon", swapon("/nonexistent-osvm", 0));
	attempt("clock_settime", syscall(SYS_clock_settime, 1000 /* no such clock */, NULL));
	struct timex tx = {0};
	attempt("adjtimex", adjtimex(&tx)); // modes 0 only reads
	attempt("iopl", syscall(SYS_iopl, 3));
	attempt("ioperm", syscall(SYS_ioperm, 0x80, 1, 1));
	attempt("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
	attempt("mptcp-socket", socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP));
	char c = 'x';
	int pty = open("/dev/ptmx", O_RDWR | O_NOCTTY);
	attempt("tiocsti", pty < 0 ? -1 : ioctl(pty, TIOCSTI, &c));
	in_child("i386-syscall-int80", i386_getpid);
	in_child("x32-syscall", x32_getpid);

	// systemd and the system bus, through which a component could ask PID 1
	// for a unit without this sandbox.
	attempt("connect-system-bus", connect_unix("/run/dbus/system_bus_socket"));
	attempt("connect-systemd-private", connect_unix("/run/systemd/private"));

	// Network.
	attempt("bind-unlisted-port", tcp(denied_port, 1));
	attempt("connect-unlisted-port", tcp(denied_port, 0));
	attempt("signal-pid-1", kill(1, 0));

	printf("DONE\n");
	return 0;
}
