/*
 * probe checks what a confined component may do. Each argument is one
 * attempt: "bind:PORT" or "connect:PORT" (TCP on 127.0.0.1), or
 * "write:PATH" (create the file). probe prints "PROBE ARG ok" or
 * "PROBE ARG ERRNO" for each. It tries nothing unless its own
 * /proc/self/status shows seccomp filter mode and no_new_privs and
 * Landlock denies it to open "/". Then it prints "PROBED" and waits for a
 * signal, so that its unit stays active.
 *
 * Usage: probe ATTEMPT...
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int confined(void)
{
	char line[256];
	int seccomp = 0, nnp = 0, landlock;
	FILE *status = fopen("/proc/self/status", "r");

	if (status == NULL)
		return 0;
	while (fgets(line, sizeof line, status)) {
		seccomp |= strcmp(line, "Seccomp:\t2\n") == 0;
		nnp |= strcmp(line, "NoNewPrivs:\t1\n") == 0;
	}
	fclose(status);
	landlock = open("/", O_RDONLY | O_DIRECTORY) < 0 && errno == EACCES;
	return seccomp && nnp && landlock;
}

static int tcp(int port, int do_bind)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), r;

	if (fd < 0)
		return -1;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r = do_bind ? bind(fd, (struct sockaddr *)&addr, sizeof addr)
		    : connect(fd, (struct sockaddr *)&addr, sizeof addr);
	if (r == 0 || errno != ECONNREFUSED) {
		int saved = errno;
		close(fd);
		errno = saved;
		return r;
	}
	/* Connection refused: Landlock allowed the connect. */
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (!confined()) {
		puts("UNCONFINED: refusing to probe outside a sandbox");
		return 99;
	}
	for (int i = 1; i < argc; i++) {
		int r = -1;

		errno = 0;
		if (strncmp(argv[i], "bind:", 5) == 0)
			r = tcp(atoi(argv[i] + 5), 1);
		else if (strncmp(argv[i], "connect:", 8) == 0)
			r = tcp(atoi(argv[i] + 8), 0);
		else if (strncmp(argv[i], "write:", 6) == 0) {
			r = open(argv[i] + 6, O_CREAT | O_WRONLY | O_TRUNC, 0600);
			if (r >= 0) {
				close(r);
				unlink(argv[i] + 6);
				r = 0;
			}
		} else
			errno = EINVAL;
		printf("PROBE %s %s\n", argv[i], r == 0 ? "ok" : strerrorname_np(errno));
	}
	puts("PROBED");
	fflush(stdout);
	pause();
	return 0;
}
