//go:build ignore

/*
 * osvm-exec is the ExecStart of osvm component units at isolation level
 * "process". It applies the sandbox that osvmd resolved in advance into the
 * plan's exec record (NAME-HASH.exec beside NAME-HASH.json) and executes the
 * component's command, without starting a Go runtime. It is a C program
 * because the start of a second Go program alone takes longer than the
 * launcher's whole time budget.
 *
 * Usage: osvm-exec PLAN.json
 *
 * osvm-exec decides nothing. osvmd chose every Landlock right, the
 * capabilities to keep and the seccomp program (package sandbox,
 * ExecRecord). osvm-exec declines a record that no longer applies: one
 * that is missing or malformed, a changed file that decided the startup
 * paths, a rule's path that is gone or changed kind, or a kernel that
 * reports another Landlock ABI. It also declines when PID 1's control
 * sockets are reachable. It declines before it has changed anything: it
 * prints the reason on standard error and executes osvm-launch from its
 * own folder with the same plan, which then does the whole work itself and
 * reports any error.
 *
 * Once it starts to confine itself, nothing is undone and nothing
 * declines: a failure exits with status 3, and a failed execve(2) of the
 * command with 127, as osvm-launch does.
 *
 * Needs Linux 6.7 (Landlock ABI 4, for the TCP rules every record has).
 * cmd/osvm-exec/build links it statically with glibc.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the exec record is little-endian, as osvmd writes it on x86-64"
#endif

enum {
	EXIT_SANDBOX = 3,
	EXIT_USAGE = 2,
	EXIT_NOT_FOUND = 127,
};

/* The record's first eight bytes; the last two digits are its layout's
 * version. */
static const char record_magic[8] = "OSVMEX02";

/* A record larger than this is not one osvmd wrote. */
#define MAX_RECORD_SIZE (4 << 20)

/*
 * Landlock's system call numbers and structures (linux/landlock.h). They
 * are defined here because Debian 12's headers predate the network and
 * scope fields.
 */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif
#define LANDLOCK_CREATE_RULESET_VERSION_FLAG 1u
#define LANDLOCK_RULE_PATH_BENEATH_TYPE 1
#define LANDLOCK_RULE_NET_PORT_TYPE 2

struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

struct net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};

/* Rule kinds in the record. */
enum {
	RULE_DIR = 1,  /* a folder, with the rights that apply below it */
	RULE_FILE = 2, /* any other file, with file rights only */
	RULE_PORT = 3, /* a TCP port */
};

/* cursor reads the record from p up to end; ok turns false at the first
 * read past end and stays false. */
struct cursor {
	const unsigned char *p, *end;
	int ok;
};

static uint8_t get_u8(struct cursor *c)
{
	if (!c->ok || c->end - c->p < 1) {
		c->ok = 0;
		return 0;
	}
	return *c->p++;
}

static uint32_t get_u32(struct cursor *c)
{
	uint32_t v = 0;
	if (!c->ok || c->end - c->p < 4) {
		c->ok = 0;
		return 0;
	}
	memcpy(&v, c->p, 4);
	c->p += 4;
	return v;
}

static uint64_t get_u64(struct cursor *c)
{
	uint64_t v = 0;
	if (!c->ok || c->end - c->p < 8) {
		c->ok = 0;
		return 0;
	}
	memcpy(&v, c->p, 8);
	c->p += 8;
	return v;
}

/* get_bytes returns n bytes of the record in place, or NULL. */
static const unsigned char *get_bytes(struct cursor *c, uint32_t n)
{
	const unsigned char *b = c->p;
	if (!c->ok || (uint64_t)(c->end - c->p) < n) {
		c->ok = 0;
		return NULL;
	}
	c->p += n;
	return b;
}

/* get_string returns a length-prefixed string as a new NUL-terminated
 * copy, or NULL when it is cut short or contains a NUL byte. */
static char *get_string(struct cursor *c)
{
	uint32_t n = get_u32(c);
	const unsigned char *b = get_bytes(c, n);
	char *s;

	if (b == NULL || memchr(b, 0, n) != NULL) {
		c->ok = 0;
		return NULL;
	}
	s = malloc((size_t)n + 1);
	if (s == NULL) {
		c->ok = 0;
		return NULL;
	}
	memcpy(s, b, n);
	s[n] = 0;
	return s;
}

/* A count of entries is bounded by the record's size, so a bad count
 * cannot make the allocation below overflow. */
static uint32_t get_count(struct cursor *c, size_t min_entry_size)
{
	uint32_t n = get_u32(c);
	if (c->ok && (uint64_t)n * min_entry_size > (uint64_t)(c->end - c->p))
		c->ok = 0;
	return c->ok ? n : 0;
}

struct rule {
	uint8_t kind;
	uint64_t allowed;
	char *path;    /* RULE_DIR, RULE_FILE */
	uint64_t port; /* RULE_PORT */
};

struct file_state {
	char *path;
	char *state; /* "" when stat(2) failed at recording */
};

struct record {
	char *component, *source;
	uint32_t kernel_abi, landlock_abi;
	struct ruleset_attr handled;
	uint32_t nrules;
	struct rule *rules;
	uint64_t keep_capabilities;
	uint32_t nfiles;
	struct file_state *files;
	uint32_t nsockets;
	char **sockets;
	uint32_t nargs;
	char **argv;
	uint32_t program_size;
	struct sock_filter *program;
};

/*
 * parse_record reads the layout that ExecRecord.MarshalBinary in package
 * sandbox writes: the magic, then every field in order, integers
 * little-endian, strings as a 32-bit length and the bytes, lists as a
 * 32-bit count and the entries. It returns 0 when the record is complete
 * and ends where its last field ends.
 */
static int parse_record(const unsigned char *data, size_t size, struct record *r)
{
	struct cursor c = {data, data + size, 1};
	const unsigned char *magic = get_bytes(&c, sizeof record_magic);
	uint32_t i;

	if (magic == NULL || memcmp(magic, record_magic, sizeof record_magic) != 0)
		return -1;
	r->component = get_string(&c);
	r->source = get_string(&c);

	r->kernel_abi = get_u32(&c);
	r->landlock_abi = get_u32(&c);
	r->handled.handled_access_fs = get_u64(&c);
	r->handled.handled_access_net = get_u64(&c);
	r->handled.scoped = get_u64(&c);
	r->nrules = get_count(&c, 13);
	r->rules = calloc(r->nrules + 1, sizeof *r->rules);
	for (i = 0; c.ok && i < r->nrules; i++) {
		struct rule *rule = &r->rules[i];
		rule->kind = get_u8(&c);
		rule->allowed = get_u64(&c);
		switch (rule->kind) {
		case RULE_DIR:
		case RULE_FILE:
			rule->path = get_string(&c);
			break;
		case RULE_PORT:
			rule->port = get_u64(&c);
			break;
		default:
			c.ok = 0;
		}
	}

	r->keep_capabilities = get_u64(&c);

	r->nfiles = get_count(&c, 8);
	r->files = calloc(r->nfiles + 1, sizeof *r->files);
	for (i = 0; c.ok && i < r->nfiles; i++) {
		r->files[i].path = get_string(&c);
		r->files[i].state = get_string(&c);
	}

	r->nsockets = get_count(&c, 4);
	r->sockets = calloc(r->nsockets + 1, sizeof *r->sockets);
	for (i = 0; c.ok && i < r->nsockets; i++)
		r->sockets[i] = get_string(&c);

	r->nargs = get_count(&c, 4);
	r->argv = calloc(r->nargs + 1, sizeof *r->argv);
	for (i = 0; c.ok && i < r->nargs; i++)
		r->argv[i] = get_string(&c);

	/* A copy, because struct sock_filter needs 4-byte alignment. */
	r->program_size = get_u32(&c);
	const unsigned char *program = get_bytes(&c, r->program_size);
	if (program != NULL && (r->program = malloc(r->program_size + 1)) != NULL)
		memcpy(r->program, program, r->program_size);

	if (r->rules == NULL || r->files == NULL || r->sockets == NULL || r->argv == NULL || r->program == NULL)
		return -1;
	if (!c.ok || c.p != c.end || r->nargs == 0 || r->argv[0][0] != '/')
		return -1;
	/* seccomp(2) takes at most BPF_MAXINSNS instructions of 8 bytes. */
	if (r->program_size == 0 || r->program_size % sizeof(struct sock_filter) != 0 ||
	    r->program_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return -1;
	return 0;
}

/*
 * format_file_state writes the state of a file as package sandbox records
 * it (formatFileState): device, inode, mode in octal, size, and the
 * modification and status change times in nanoseconds, or "" when stat(2)
 * fails.
 */
static void format_file_state(const char *path, char *buf, size_t size)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		buf[0] = 0;
		return;
	}
	snprintf(buf, size, "%llu:%llu:%o:%lld:%lld:%lld",
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		 (unsigned)st.st_mode, (long long)st.st_size,
		 (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
		 (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec);
}

/* reason explains the last decline, for the message decline prints. */
static char reason[PATH_MAX + 128];

#define set_reason(...) snprintf(reason, sizeof reason, __VA_ARGS__)

/* startup_unchanged returns whether every file that decided the startup
 * paths still has its recorded state. */
static int startup_unchanged(const struct record *r)
{
	char state[160];
	uint32_t i;

	for (i = 0; i < r->nfiles; i++) {
		format_file_state(r->files[i].path, state, sizeof state);
		if (strcmp(state, r->files[i].state) != 0) {
			set_reason("%s changed after osvmd wrote the plan", r->files[i].path);
			return 0;
		}
	}
	return 1;
}

/* control_socket_reachable returns whether this process can connect to
 * one of PID 1's control sockets, as ReachableControlSockets in package
 * sandbox probes them. */
static int control_socket_reachable(const struct record *r)
{
	uint32_t i;

	for (i = 0; i < r->nsockets; i++) {
		struct sockaddr_un addr = {.sun_family = AF_UNIX};
		struct stat st;
		int fd, connected;

		if (stat(r->sockets[i], &st) != 0 && errno == ENOENT)
			continue;
		if (strlen(r->sockets[i]) >= sizeof addr.sun_path) {
			set_reason("%s is too long to probe", r->sockets[i]);
			return 1;
		}
		strcpy(addr.sun_path, r->sockets[i]);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		connected = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
		close(fd);
		if (connected) {
			set_reason("%s is reachable", r->sockets[i]);
			return 1;
		}
	}
	return 0;
}

/*
 * build_ruleset creates the Landlock ruleset of the record and returns its
 * file descriptor, or -1 when a path is gone or has changed kind, or the
 * kernel refuses a rule. Rules take only the rights the ruleset handles,
 * and a rule left without rights is skipped, as go-landlock does.
 */
static int build_ruleset(const struct record *r)
{
	int ruleset = syscall(SYS_landlock_create_ruleset, &r->handled, sizeof r->handled, 0);
	uint32_t i;

	if (ruleset < 0) {
		set_reason("landlock_create_ruleset: %s", strerror(errno));
		return -1;
	}
	for (i = 0; i < r->nrules; i++) {
		const struct rule *rule = &r->rules[i];
		int added;

		if (rule->kind == RULE_PORT) {
			struct net_port_attr port = {
				.allowed_access = rule->allowed & r->handled.handled_access_net,
				.port = rule->port,
			};
			if (port.allowed_access == 0)
				continue;
			added = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_NET_PORT_TYPE, &port, 0);
		} else {
			struct path_beneath_attr beneath = {
				.allowed_access = rule->allowed & r->handled.handled_access_fs,
			};
			struct stat st;

			if (beneath.allowed_access == 0)
				continue;
			beneath.parent_fd = open(rule->path, O_PATH | O_CLOEXEC);
			if (beneath.parent_fd < 0) {
				set_reason("Landlock rule for %s: %s", rule->path, strerror(errno));
				goto fail;
			}

			/* Folder rights on a file make landlock_add_rule(2) fail
			 * with EINVAL, and file rights on a folder that replaced a
			 * file would grant less than osvmd resolved. */
			if (fstat(beneath.parent_fd, &st) != 0 ||
			    (S_ISDIR(st.st_mode) != 0) != (rule->kind == RULE_DIR)) {
				set_reason("Landlock rule for %s: %s after osvmd wrote the plan", rule->path,
					   rule->kind == RULE_DIR ? "no longer a folder" : "now a folder");
				close(beneath.parent_fd);
				goto fail;
			}
			added = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH_TYPE, &beneath, 0);
			close(beneath.parent_fd);
		}
		if (added != 0) {
			set_reason("landlock_add_rule: %s", strerror(errno));
			goto fail;
		}
	}
	return ruleset;

fail:
	close(ruleset);
	return -1;
}

/* decline prints the reason and executes osvm-launch, the launcher
 * beside this program, with the same plan. It returns only when that
 * fails. */
static void decline(const char *plan)
{
	fprintf(stderr, "osvm-exec: %s: %s; osvm-launch applies the sandbox instead\n", plan, reason);

	char self[PATH_MAX], launcher[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	char *slash;

	if (n <= 0) {
		fprintf(stderr, "osvm-exec: find osvm-launch: readlink /proc/self/exe: %s\n", strerror(errno));
		return;
	}
	self[n] = 0;
	slash = strrchr(self, '/');
	if (slash == NULL)
		return;
	*slash = 0;
	snprintf(launcher, sizeof launcher, "%s/osvm-launch", self);

	char *argv[] = {launcher, (char *)plan, NULL};
	execv(launcher, argv);
	fprintf(stderr, "osvm-exec: exec %s: %s (install osvm-launch beside osvm-exec)\n", launcher, strerror(errno));
}

static void fail(const struct record *r, const char *format, ...)
{
	va_list args;

	fprintf(stderr, "osvm-exec: component %s: ", r->component);
	va_start(args, format);
	vfprintf(stderr, format, args);
	va_end(args);
	fputc('\n', stderr);
	exit(EXIT_SANDBOX);
}

/*
 * exec_failed reports a failed execve(2) of the command with the words
 * osvm-launch uses, which are Go's: error strings start in lower case.
 */
static void exec_failed(const struct record *r, int err)
{
	char message[256];

	snprintf(message, sizeof message, "%s", strerror(err));
	if (message[0] >= 'A' && message[0] <= 'Z')
		message[0] += 'a' - 'A';
	fprintf(stderr, "osvm-exec: component %s: exec %s: %s\n", r->component, r->argv[0], message);
	if (err == ENOENT)
		fprintf(stderr, "osvm-exec: install %s or correct exec.command in %s\n", r->argv[0], r->source);
}

/* has_effective returns whether the process has capability c in its
 * effective set (capget(2)). */
static int has_effective(int c)
{
	struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};

	if (syscall(SYS_capget, &header, data) != 0)
		return 0;
	return (data[c / 32].effective >> (c % 32)) & 1;
}

/*
 * drop_capabilities removes from the ambient and the bounding set every
 * capability the record does not keep, so that execve(2) grants no other
 * capability even to uid 0 (capabilities(7), "Transformation of
 * capabilities during execve()"). A kept capability stays in the ambient
 * set, where the unit's AmbientCapabilities= put it for a user other than
 * root. Without CAP_SETPCAP the bounding set cannot change, and
 * no_new_privs keeps such a process from gaining capabilities anyway.
 */
static void drop_capabilities(const struct record *r)
{
	int c;

	/* PR_CAP_AMBIENT_IS_SET, like PR_CAPBSET_READ below, fails with
	 * EINVAL past the kernel's last capability. */
	for (c = 0; c < 64; c++) {
		int in_set = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0);
		if (in_set < 0)
			break;
		if (in_set == 0 || (r->keep_capabilities >> c) & 1)
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, c, 0, 0) != 0)
			fail(r, "prctl(PR_CAP_AMBIENT_LOWER, %d): %s", c, strerror(errno));
	}
	if (!has_effective(CAP_SETPCAP))
		return;

	/* Each PR_CAPBSET_DROP commits new credentials, so a capability the
	 * bounding set lacks is not dropped again. */
	for (c = 0; c < 64; c++) {
		int in_set = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
		if (in_set < 0)
			break;
		if (in_set == 0 || (r->keep_capabilities >> c) & 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0)
			fail(r, "prctl(PR_CAPBSET_DROP, %d): %s", c, strerror(errno));
	}
}

/*
 * remove_launcher_variables deletes from envp, in place, the variable that
 * marks osvm-launch's second run. osvm-launch removes it before it executes
 * the command, so the command gets the same environment from either
 * launcher.
 */
static void remove_launcher_variables(char **envp)
{
	static const char marker[] = "OSVM_LAUNCH_HIDDEN_STAGE=";
	char **out = envp;

	for (; *envp != NULL; envp++)
		if (strncmp(*envp, marker, sizeof marker - 1) != 0)
			*out++ = *envp;
	*out = NULL;
}

/* read_record reads the exec record of plan into a new buffer, or returns
 * NULL. */
static unsigned char *read_record(const char *plan, size_t *size)
{
	size_t plan_len = strlen(plan);
	char path[PATH_MAX];
	unsigned char *data;
	struct stat st;
	size_t done = 0;
	int fd;

	if (plan_len < 5 || strcmp(plan + plan_len - 5, ".json") != 0 || plan_len >= sizeof path) {
		set_reason("the plan's name does not end in .json");
		return NULL;
	}
	memcpy(path, plan, plan_len - 5);
	strcpy(path + plan_len - 5, ".exec");

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		set_reason("open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > MAX_RECORD_SIZE ||
	    (data = malloc(st.st_size)) == NULL) {
		set_reason("%s is not a regular file of 1 byte to 4 MiB", path);
		close(fd);
		return NULL;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, data + done, st.st_size - done);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			set_reason("read %s: %s", path, n < 0 ? strerror(errno) : "file shrank while read");
			close(fd);
			free(data);
			return NULL;
		}
		done += n;
	}
	close(fd);
	*size = done;
	return data;
}

int main(int argc, char **argv, char **envp)
{
	struct record r = {0};
	unsigned char *data;
	size_t size = 0;
	struct stat st;
	int abi, ruleset;

	if (argc != 2) {
		fputs("usage: osvm-exec PLAN\n", stderr);
		return EXIT_USAGE;
	}

	/* Every check that can send the plan to osvm-launch comes before
	 * the first step that changes this process. */
	data = read_record(argv[1], &size);
	if (data == NULL)
		goto decline;
	if (parse_record(data, size, &r) != 0) {
		set_reason("invalid exec record");
		goto decline;
	}
	/* osvm-launch refuses a plan that is gone, and so must this stage. */
	if (stat(argv[1], &st) != 0) {
		set_reason("%s", strerror(errno));
		goto decline;
	}
	if (stat(r.argv[0], &st) != 0) {
		set_reason("%s: %s", r.argv[0], strerror(errno));
		goto decline;
	}
	if (!startup_unchanged(&r) || control_socket_reachable(&r))
		goto decline;
	/* osvm-launch would build the ruleset for the running kernel, so a
	 * record made on a kernel with another ABI no longer applies. */
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION_FLAG);
	if (abi < 0 || (uint32_t)abi != r.kernel_abi) {
		set_reason("the kernel's Landlock ABI is %d, and the record was made with ABI %u", abi < 0 ? 0 : abi,
			   r.kernel_abi);
		goto decline;
	}
	ruleset = build_ruleset(&r);
	if (ruleset < 0)
		goto decline;

	/* Capabilities first, while the process may still hold CAP_SETPCAP. */
	drop_capabilities(&r);

	/* no_new_privs: landlock_restrict_self(2) and seccomp(2) need it
	 * without CAP_SYS_ADMIN, and execve(2) then ignores setuid bits and
	 * file capabilities (prctl(2)). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fail(&r, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));

	/* Landlock before seccomp, because the filter may deny the calls
	 * that set up Landlock. This process has one thread, so restricting
	 * it restricts the process. */
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
		fail(&r, "landlock_restrict_self: %s", strerror(errno));
	close(ruleset);

	struct sock_fprog program = {
		.len = (unsigned short)(r.program_size / sizeof(struct sock_filter)),
		.filter = r.program,
	};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0)
		fail(&r, "seccomp(SECCOMP_SET_MODE_FILTER): %s", strerror(errno));

	remove_launcher_variables(envp);
	execve(r.argv[0], r.argv, envp);
	exec_failed(&r, errno);
	return EXIT_NOT_FOUND;

decline:
	decline(argv[1]);
	return EXIT_SANDBOX;
}
