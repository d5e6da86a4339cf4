/*
 * without-errata runs a program with landlock_create_ruleset(2)'s
 * LANDLOCK_CREATE_RULESET_ERRATA query failing with EINVAL, so that the
 * program finds no fixed Landlock erratum. go-landlock v0.11.2 then treats
 * a kernel with ABI 6 or later as ABI 5, because erratum 2 fixes signal
 * scoping (internal/abi.go). It installs a seccomp filter for this and
 * sets no_new_privs, which the program inherits.
 *
 * Usage: without-errata PROGRAM [ARG...]
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#define LANDLOCK_CREATE_RULESET_ERRATA 2

int main(int argc, char **argv)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_landlock_create_ruleset, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, LANDLOCK_CREATE_RULESET_ERRATA, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog program = {sizeof filter / sizeof filter[0], filter};

	if (argc < 2) {
		fputs("usage: without-errata PROGRAM [ARG...]\n", stderr);
		return 2;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
		perror("without-errata: seccomp");
		return 1;
	}
	execv(argv[1], argv + 1);
	perror("without-errata: execv");
	return 127;
}
