/*
 * Test kernel for the hermit package.
 *
 * It follows the Hermit boot protocol and uses the uhyve hypercalls of the
 * interface version it declares (UHYVEIF), to check a VMM end to end:
 *
 *   - it checks the boot information, the device tree and the CPU state it
 *     received, and exits with code 90 to 99 if something is wrong;
 *   - it prints through the console hypercalls and FileWrite to fd 1 and 2;
 *   - it reads its arguments and environment (Cmdsize/Cmdval for version 1,
 *     /chosen/bootargs for versions 2 and 3);
 *   - it starts the application processors and waits for them;
 *   - it opens, reads, writes, seeks, closes and unlinks files below the
 *     mount /data, and for version 3 also uses Stat, Fstat, Mkdir and
 *     Getdents;
 *   - it exits with the code given as the argument exit=N.
 *
 * The argument mode=M selects a hostile variant instead: badptr (a
 * hypercall whose parameter address is outside guest memory), escape
 * (files outside the mount), triple (a triple fault), spin (an endless
 * loop), badport (an OUT to a port that is no hypercall) and halt (halting
 * forever with interrupts off, which takes no host CPU, for tests that run
 * many guests at once). Four modes check instructions that KVM's emulator
 * rejects on PVM hosts: xgetbv (reads XCR0 and exits 0 when it has x87
 * state) and nm (an SSE instruction while CR0.TS is set, which must raise
 * #NM; with no IDT that ends in a triple fault), xsave (XSAVE, then
 * XRSTOR of a changed MXCSR and XSAVE again, exits 0 when both agree) and
 * xsavec (XGETBV with ECX = 1, XSAVEC and XRSTOR of the compacted area,
 * exits 0 when MXCSR was loaded).
 * Mode sse checks SSE arithmetic, compares, conversions and moves with
 * memory operands and exits with the code of exit=N (default 0). The
 * other sse-* modes must raise an exception, and the exit code is then 100
 * + its vector. They are sse-align (#GP), sse-pf (#PF), sse-xm (#XM),
 * sse-lock (#UD), sse-batch-pf (#PF after a completed pxor), sse-mxcsr
 * (#GP after LDMXCSR and STMXCSR work), sse-xsave-pf (#PF) and
 * sse-xrstor-gp (#GP).
 * sse-outside runs maskmovdqu, which the monitor does not complete.
 *
 * Guest ring 0 may run in KVM's instruction emulator (PVM hosts), so the
 * code stays small and uses general-purpose registers only.
 */
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int32_t i32;
typedef int64_t i64;

/* RawBootInfo of hermit-entry 0.10 (entry version 4), Uhyve variant. */
struct boot_info {
	u64 phys_start, phys_end;
	u16 serial_port_base;
	u8 pad0[6];
	u64 device_tree;
	u64 kernel_start, kernel_end;
	u64 tls_start, tls_filesz, tls_memsz, tls_align;
	u32 platform;
	u32 pad1;
	u8 has_pci;
	u8 pad2[7];
	u64 num_cpus;
	u32 cpu_freq;
	u32 pad3;
	u64 boot_time_lo, boot_time_hi;
};
_Static_assert(sizeof(struct boot_info) == 128, "RawBootInfo is 128 bytes");
_Static_assert(offsetof(struct boot_info, platform) == 80, "platform tag at 80");
_Static_assert(offsetof(struct boot_info, boot_time_lo) == 112, "boot time at 112");

/* Set by _start and read by the application processors. */
u64 entry_rsp;
volatile u32 cpu_online;

/* TLS image, whose address and sizes the boot information reports. The
 * kernel sets up no thread pointer, so it never accesses tls_word. */
__attribute__((used)) __thread u64 tls_word = 0x1122334455667788;

extern const u8 __ehdr_start[];
extern const u8 __tdata_start[];
extern const u8 _end[];

/* Relocated data: an array of pointers needs R_X86_64_RELATIVE. */
static const char *const greetings[] = {"hello", "from", "the", "test", "kernel"};

static const struct boot_info *bi;

/* Compilers may emit calls to these even with -ffreestanding. */
void *memset(void *d, int c, size_t n)
{
	u8 *p = d;
	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	u8 *p = d;
	const u8 *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

static size_t slen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static int seq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static int sprefix(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

/* Hypercalls. Version 1 passes the guest-physical address of the
 * parameters in EAX, which identity mapping makes equal to the pointer.
 * Versions 2 and 3 pass it in RDI. */
#if UHYVEIF == 1
enum {
	P_WRITE = 0x400, P_OPEN = 0x440, P_CLOSE = 0x480, P_READ = 0x500, P_EXIT = 0x540,
	P_LSEEK = 0x580, P_CMDSIZE = 0x740, P_CMDVAL = 0x780, P_UNLINK = 0x840, P_SERIAL_BUF = 0x880,
};
static void hc(u16 port, const void *params)
{
	u32 a = (u32)(uintptr_t)params;
	__asm__ volatile("outl %0, %1" : : "a"(a), "Nd"(port) : "memory");
}
#else
enum {
	P_EXIT = 0x1010, P_SERIAL_BYTE = 0x1020, P_SERIAL_BUF = 0x1030, P_WRITE = 0x1100,
	P_OPEN = 0x1110, P_CLOSE = 0x1120, P_READ = 0x1130, P_LSEEK = 0x1140, P_UNLINK = 0x1150,
	P_GETDENTS = 0x1160, P_STAT = 0x1170, P_FSTAT = 0x1180, P_MKDIR = 0x1190,
};
static void hc_arg(u16 port, u64 arg)
{
	__asm__ volatile("outl %%eax, %%dx" : : "a"(0x1234), "d"(port), "D"(arg) : "memory");
}
static void hc(u16 port, const void *params)
{
	hc_arg(port, (u64)(uintptr_t)params);
}
#endif

#define PACKED __attribute__((packed))

struct PACKED open_params { u64 name; i32 flags, mode, ret; };
struct PACKED close_params { i32 fd, ret; };
struct PACKED unlink_params { u64 name; i32 ret; };
#if UHYVEIF == 1
struct PACKED write_params { i32 fd; u64 buf; u64 len; };
struct PACKED read_params { i32 fd; u64 buf; u64 len; i64 ret; };
struct PACKED lseek_params { i32 fd; i64 offset; i32 whence; };
struct PACKED exit_params { i32 code; };
struct PACKED serial_buf_params { u64 buf, len; };
struct PACKED cmdsize_params { i32 argc; i32 argsz[128]; i32 envc; i32 envsz[128]; };
struct PACKED cmdval_params { u64 argv, envp; };
#else
struct write_params { u64 len; i64 ret; u64 buf; i32 fd; };
struct read_params { u64 len; i64 ret; u64 buf; i32 fd; };
struct lseek_params { i64 offset; u32 whence; i32 fd; };
struct serial_buf_params { u64 len, buf; };
struct getdents_params { i32 fd; u64 buf; u64 len; u32 tag; u64 value; };
struct mkdir_params { u64 path; u64 len; u32 tag; i32 err; };
struct stat_params { u64 name; u32 kind; u64 attr; u32 tag; i32 err; };
struct fstat_params { i32 fd; u64 attr; u32 tag; i32 err; };
struct file_attr { u64 dev, ino, nlink; u32 mode, uid, gid; u64 rdev; i64 size, blksize, blocks; u8 times[48]; };
_Static_assert(sizeof(struct write_params) == 32, "v2 WriteParams is 32 bytes");
_Static_assert(sizeof(struct getdents_params) == 40, "GetdentParams is 40 bytes");
_Static_assert(sizeof(struct stat_params) == 32, "StatParams is 32 bytes");
_Static_assert(sizeof(struct file_attr) == 120, "FileAttr is 120 bytes");
#endif

#if UHYVEIF == 1
/* Buffers of FileRead and FileWrite are guest-virtual in version 1. To make
 * the VMM walk the page tables for real, they are passed through an alias:
 * PML4 entry 1 is a copy of entry 0, so VA + 512 GiB maps to VA. */
#define ALIAS (1ull << 39)
static u64 alias(const void *p) { return (u64)(uintptr_t)p + ALIAS; }
#else
static u64 alias(const void *p) { return (u64)(uintptr_t)p; }
#endif

static i64 sys_write(i32 fd, const void *buf, u64 len)
{
	struct write_params p = {0};
	p.fd = fd;
	p.buf = alias(buf);
	p.len = len;
	hc(P_WRITE, &p);
#if UHYVEIF == 1
	return (i64)p.len;
#else
	return p.ret;
#endif
}

static i64 sys_read(i32 fd, void *buf, u64 len)
{
	struct read_params p = {0};
	p.fd = fd;
	p.buf = alias(buf);
	p.len = len;
	hc(P_READ, &p);
	return p.ret;
}

static i32 sys_open(const char *name, i32 flags, i32 mode)
{
	struct open_params p = {(u64)(uintptr_t)name, flags, mode, -1};
	hc(P_OPEN, &p);
	return p.ret;
}

static i32 sys_close(i32 fd)
{
	struct close_params p = {fd, -1};
	hc(P_CLOSE, &p);
	return p.ret;
}

static i32 sys_unlink(const char *name)
{
	struct unlink_params p = {(u64)(uintptr_t)name, -1};
	hc(P_UNLINK, &p);
	return p.ret;
}

static i64 sys_lseek(i32 fd, i64 offset, i32 whence)
{
	struct lseek_params p = {0};
	p.fd = fd;
	p.offset = offset;
	p.whence = whence;
	hc(P_LSEEK, &p);
	return p.offset;
}

static __attribute__((noreturn)) void sys_exit(i32 code)
{
#if UHYVEIF == 1
	struct exit_params p = {code};
	hc(P_EXIT, &p);
#else
	hc_arg(P_EXIT, (u32)code);
#endif
	for (;;)
		__asm__ volatile("hlt");
}

/* Console output: single bytes to the serial port of the boot
 * information, or a whole buffer. */
static void console_byte(char c)
{
#if UHYVEIF == 1
	__asm__ volatile("outb %0, %1" : : "a"(c), "d"(bi->serial_port_base));
#else
	hc_arg(P_SERIAL_BYTE, (u8)c);
#endif
}

static void console_bytes(const char *s)
{
	while (*s)
		console_byte(*s++);
}

static void console_buffer(const char *s)
{
	struct serial_buf_params p = {0};
	p.buf = (u64)(uintptr_t)s;
	p.len = slen(s);
	hc(P_SERIAL_BUF, &p);
}

/* Formatted output into a line buffer, flushed with out(). */
static char line[512];
static size_t line_len;

static void put(const char *s)
{
	while (*s && line_len < sizeof line - 1)
		line[line_len++] = *s++;
}

static void put_u64(u64 v)
{
	char buf[21];
	int i = 20;
	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(buf + i);
}

static void put_i64(i64 v)
{
	if (v < 0) {
		put("-");
		put_u64((u64)-v);
	} else {
		put_u64((u64)v);
	}
}

static void out(i32 fd)
{
	line[line_len++] = '\n';
	sys_write(fd, line, line_len);
	line_len = 0;
}

static __attribute__((noreturn)) void fail(int code, const char *what)
{
	put("FAIL: ");
	put(what);
	out(2);
	sys_exit(code);
}

/* Device tree lookup: the property prop of the child of the root whose
 * name starts with node, or of the root itself if node is 0. */
static u32 be32(const u8 *p)
{
	return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3];
}

static u64 be64(const u8 *p)
{
	return (u64)be32(p) << 32 | be32(p + 4);
}

static const u8 *fdt_prop(const u8 *fdt, const char *node, const char *prop, u32 *len)
{
	const u8 *p = fdt + be32(fdt + 8);
	const char *strings = (const char *)fdt + be32(fdt + 12);
	int depth = 0, match = 0;
	for (;;) {
		u32 tok = be32(p);
		p += 4;
		switch (tok) {
		case 1: { /* FDT_BEGIN_NODE */
			const char *name = (const char *)p;
			depth++;
			match = node ? depth == 2 && sprefix(name, node) : depth == 1;
			p += (slen(name) + 1 + 3) & ~3ul;
			break;
		}
		case 2: /* FDT_END_NODE */
			depth--;
			match = !node && depth == 1;
			break;
		case 3: { /* FDT_PROP */
			u32 n = be32(p);
			const char *name = strings + be32(p + 4);
			p += 8;
			if (match && seq(name, prop)) {
				*len = n;
				return p;
			}
			p += (n + 3) & ~3u;
			break;
		}
		case 4: /* FDT_NOP */
			break;
		default: /* FDT_END or garbage */
			return 0;
		}
	}
}

static u64 read_cr3(void)
{
	u64 v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

/* Checks what the VMM must have set up, and fails with codes 90 to 99. */
static void check_boot(void)
{
	u64 g = bi->phys_start;
	u64 base = (u64)(uintptr_t)__ehdr_start;
	u32 a, b, c, d;

	if (bi->platform != 1)
		fail(90, "platform tag is not Uhyve");
	if (g != (UHYVEIF == 1 ? 0 : 1ull << 32) || bi->phys_end <= g)
		fail(91, "guest RAM is not where the interface version puts it");
	if (bi->kernel_start != base || bi->kernel_end != (u64)(uintptr_t)_end || base != g + 0x40000)
		fail(92, "kernel range does not match where the kernel runs");
	if (bi->tls_start != (u64)(uintptr_t)__tdata_start || bi->tls_filesz != 8 || bi->tls_memsz != 8 || bi->tls_align != 8)
		fail(93, "TLS fields do not describe the TLS segment");
	if (bi->serial_port_base != (UHYVEIF == 1 ? 0x800 : 0x1030) || bi->has_pci != 0 || bi->num_cpus == 0)
		fail(94, "serial port, has_pci or num_cpus is wrong");
	if (bi->boot_time_hi != 0 || bi->boot_time_lo < 1577836800ull * 1000000000ull)
		fail(95, "boot time is not after 2020");
	cpuid(0x40000000, &a, &b, &c, &d);
	if (a < 0x40000010)
		fail(96, "CPUID 0x40000000 does not announce leaf 0x40000010");
	cpuid(0x40000010, &a, &b, &c, &d);
	if (a == 0 || a != bi->cpu_freq)
		fail(96, "CPUID 0x40000010 TSC kHz differs from the boot information");
	if (entry_rsp != g + 0x38000 || read_cr3() != g + 0x10000)
		fail(97, "boot stack or page tables are not where expected");
	const u64 *pml4 = (const u64 *)(uintptr_t)read_cr3();
	if ((pml4[511] & ~0xfffull) != read_cr3() || !(pml4[511] & 1))
		fail(97, "PML4 entry 511 does not map the PML4 itself");
	if (greetings[4][0] != 'k' || (u64)(uintptr_t)greetings[0] < base)
		fail(98, "relocated pointers are wrong");

	const u8 *fdt = (const u8 *)(uintptr_t)bi->device_tree;
	u32 len;
	const u8 *v;
	if (!fdt || be32(fdt) != 0xd00dfeed)
		fail(99, "no device tree");
	v = fdt_prop(fdt, 0, "compatible", &len);
	if (!v || !seq((const char *)v, "hermit,uhyve"))
		fail(99, "root compatible is not hermit,uhyve");
	v = fdt_prop(fdt, "memory@", "reg", &len);
	if (!v || len != 16 || be64(v) != g || be64(v + 8) != bi->phys_end - g)
		fail(99, "/memory reg does not match the boot information");
	v = fdt_prop(fdt, "hermit,tsc", "khz", &len);
	if (!v || len != 4 || be32(v) != bi->cpu_freq)
		fail(99, "/hermit,tsc khz does not match cpu_freq");
}

/* Arguments: "mode=..." and "exit=N", found among the application
 * arguments. */
static const char *mode = "";
static i32 exit_code;

static void use_arg(const char *a)
{
	if (sprefix(a, "mode="))
		mode = a + 5;
	if (sprefix(a, "exit=")) {
		exit_code = 0;
		for (a += 5; *a >= '0' && *a <= '9'; a++)
			exit_code = exit_code * 10 + (*a - '0');
	}
}

#if UHYVEIF == 1
static char arena[8192];

static void read_cmdline(void)
{
	static struct cmdsize_params sz;
	static u64 argv[128], envp[128];
	struct cmdval_params val = {(u64)(uintptr_t)argv, (u64)(uintptr_t)envp};
	size_t used = 0;

	hc(P_CMDSIZE, &sz);
	if (sz.argc < 1 || sz.argc > 128 || sz.envc > 128)
		fail(89, "Cmdsize counts are out of range");
	for (int i = 0; i < sz.argc + sz.envc; i++) {
		i32 n = i < sz.argc ? sz.argsz[i] : sz.envsz[i - sz.argc];
		if (n < 1 || used + (size_t)n > sizeof arena)
			fail(89, "Cmdsize sizes do not fit");
		(i < sz.argc ? argv : envp)[i < sz.argc ? i : i - sz.argc] = (u64)(uintptr_t)(arena + used);
		used += (size_t)n;
	}
	hc(P_CMDVAL, &val);

	for (int i = 0; i < sz.argc; i++) {
		const char *a = (const char *)(uintptr_t)argv[i];
		put("argv[");
		put_u64((u64)i);
		put("]=");
		put(a);
		out(1);
		if (i > 0)
			use_arg(a);
	}
	put("envc=");
	put_u64((u64)sz.envc);
	out(1);
	for (int i = 0; i < sz.envc; i++) {
		const char *e = (const char *)(uintptr_t)envp[i];
		if (sprefix(e, "HERMIT_ENV_PADDING_"))
			continue;
		put("env=");
		put(e);
		out(1);
	}
}
#else
static char bootargs[1024];

static void read_cmdline(void)
{
	u32 len;
	const u8 *v = fdt_prop((const u8 *)(uintptr_t)bi->device_tree, "chosen", "bootargs", &len);
	if (!v || len == 0 || len > sizeof bootargs)
		fail(89, "no /chosen/bootargs");
	memcpy(bootargs, v, len);
	put("bootargs=");
	put(bootargs);
	out(1);

	/* The test passes plain words, so splitting at spaces suffices. */
	int app = 0;
	for (char *w = bootargs; *w;) {
		char *end = w;
		while (*end && *end != ' ')
			end++;
		char saved = *end;
		*end = 0;
		if (app)
			use_arg(w);
		if (seq(w, "--"))
			app = 1;
		*end = saved;
		w = *end ? end + 1 : end;
	}
}
#endif

void ap_main(const struct boot_info *info, u64 id)
{
	(void)info;
	static char msg[] = "cpu N is up\n";
	msg[4] = (char)('0' + id);
	console_buffer(msg);
	__atomic_fetch_add(&cpu_online, 1, __ATOMIC_SEQ_CST);
}

static char buf[256];

static void files(void)
{
	i64 n;
	i32 fd = sys_open("/data/input.txt", 0, 0);
	if (fd < 3)
		fail(80, "open /data/input.txt failed");
	n = sys_read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		fail(80, "read /data/input.txt failed");
	buf[n] = 0;
	put("read ");
	put_i64(n);
	put(" bytes: ");
	put(buf);
	out(1);

	if (sys_lseek(fd, 6, 0) != 6)
		fail(81, "lseek SEEK_SET failed");
	n = sys_read(fd, buf, 5);
	buf[n > 0 ? n : 0] = 0;
	put("after lseek: ");
	put(buf);
	out(1);
	if (sys_close(fd) != 0)
		fail(81, "close failed");
	if (sys_read(fd, buf, 1) >= 0)
		fail(81, "read from a closed descriptor succeeded");

	fd = sys_open("/data/output.txt", 01 | 0100 | 01000, 0644);
	if (fd < 3)
		fail(82, "create /data/output.txt failed");
	static const char text[] = "written by the test kernel\n";
	if (sys_write(fd, text, sizeof text - 1) != (i64)(sizeof text - 1))
		fail(82, "write /data/output.txt failed");
	put("output size ");
	put_i64(sys_lseek(fd, 0, 2));
	out(1);
	sys_close(fd);

	fd = sys_open("/data/tmp.txt", 01 | 0100, 0600);
	if (fd < 3 || sys_write(fd, "x", 1) != 1 || sys_close(fd) != 0)
		fail(83, "create /data/tmp.txt failed");
	if (sys_unlink("/data/tmp.txt") != 0 || sys_open("/data/tmp.txt", 0, 0) >= 0)
		fail(83, "unlink /data/tmp.txt failed");
	put("unlink ok");
	out(1);

	put("read-only mount: open for writing returns ");
	put_i64(sys_open("/ro/new.txt", 01 | 0100, 0644));
	out(1);

#if UHYVEIF >= 3
	static struct file_attr attr;
	struct stat_params st = {(u64)(uintptr_t)"/data/input.txt", 0, (u64)(uintptr_t)&attr, 0, 0};
	hc(P_STAT, &st);
	if (st.tag != 1)
		fail(84, "stat /data/input.txt failed");
	put("stat size ");
	put_i64(attr.size);
	out(1);

	fd = sys_open("/data/input.txt", 0, 0);
	struct fstat_params fst = {fd, (u64)(uintptr_t)&attr, 0, 0};
	hc(P_FSTAT, &fst);
	sys_close(fd);
	if (fst.tag != 1 || attr.size <= 0)
		fail(84, "fstat failed");

	struct mkdir_params mk = {(u64)(uintptr_t)"/data/newdir", 13, 0, 0};
	hc(P_MKDIR, &mk);
	if (mk.tag != 1)
		fail(85, "mkdir /data/newdir failed");

	fd = sys_open("/data", 0200000, 0);
	if (fd < 3)
		fail(86, "open /data as a directory failed");
	int entries = 0;
	for (;;) {
		struct getdents_params gd = {fd, (u64)(uintptr_t)buf, sizeof buf, 0, 0};
		hc(P_GETDENTS, &gd);
		if (gd.tag == 2)
			break;
		if (gd.tag != 1)
			fail(86, "getdents failed");
		for (u64 off = 0; off < gd.value;) {
			u16 reclen = *(u16 *)(buf + off + 16);
			const char *name = buf + off + 19;
			if (name[0] != '.')
				entries++;
			off += reclen;
		}
	}
	sys_close(fd);
	put("directory entries: ");
	put_u64((u64)entries);
	out(1);
#endif
}


/* set_osxsave sets CR4.OSXSAVE, which enables XGETBV, XSETBV and the XSAVE
 * family. */
static void set_osxsave(void)
{
	u64 cr4;
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	cr4 |= 1ull << 18;
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4));
}

/* enable_xsave sets CR4.OSXSAVE and enables x87 and SSE state in XCR0. */
static void enable_xsave(void)
{
	set_osxsave();
	__asm__ volatile("xsetbv" : : "c"(0), "a"(3), "d"(0));
}

/*
 * SSE, for the modes that check how the monitor completes the SSE
 * instructions KVM's emulator rejects on PVM hosts. The kernel itself is
 * compiled without SSE, so every SSE instruction is in the inline
 * assembly below, and values are compared as bit patterns.
 */

/* An IDT whose handlers exit with code 100 + vector, so that a test can
 * tell which exception the monitor injected. */
struct PACKED idt_gate { u16 off_lo, sel; u8 ist, type; u16 off_mid; u32 off_hi, zero; };
static struct idt_gate idt[32] __attribute__((aligned(16)));
struct interrupt_frame;

static __attribute__((noreturn)) void exception_exit(u64 vector, u64 code)
{
	u64 cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	put("exception ");
	put_u64(vector);
	put(" error code ");
	put_u64(code);
	put(" cr2 ");
	put_u64(cr2);
	out(1);
	sys_exit(100 + (i32)vector);
}

__attribute__((interrupt)) static void on_ud(struct interrupt_frame *f) { (void)f; exception_exit(6, 0); }
__attribute__((interrupt)) static void on_gp(struct interrupt_frame *f, u64 code) { (void)f; exception_exit(13, code); }
__attribute__((interrupt)) static void on_pf(struct interrupt_frame *f, u64 code) { (void)f; exception_exit(14, code); }
__attribute__((interrupt)) static void on_xm(struct interrupt_frame *f) { (void)f; exception_exit(19, 0); }

static void set_gate(int vector, void *handler)
{
	u64 a = (u64)(uintptr_t)handler;
	idt[vector] = (struct idt_gate){(u16)a, 0x08, 0, 0x8e, (u16)(a >> 16), (u32)(a >> 32), 0};
}

/* sse_setup enables SSE with #XM for unmasked exceptions (CR4.OSFXSR and
 * CR4.OSXMMEXCPT) and loads the IDT. */
static void sse_setup(void)
{
	u64 cr4;
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	cr4 |= (1ull << 9) | (1ull << 10);
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4));
	set_gate(6, (void *)on_ud);
	set_gate(13, (void *)on_gp);
	set_gate(14, (void *)on_pf);
	set_gate(19, (void *)on_xm);
	static struct PACKED { u16 limit; u64 base; } idtr;
	idtr.limit = sizeof idt - 1;
	idtr.base = (u64)(uintptr_t)idt;
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

/* IEEE 754 doubles as bit patterns. */
#define F64_0_5 0x3fe0000000000000ull
#define F64_1_5 0x3ff8000000000000ull
#define F64_2_25 0x4002000000000000ull
#define F64_4 0x4010000000000000ull
#define F64_30 0x403e000000000000ull
#define F64_MINUS_7 0xc01c000000000000ull

static void expect(u64 got, u64 want, int code, const char *what)
{
	if (got == want)
		return;
	put(what);
	put(": got ");
	put_u64(got);
	put(", want ");
	put_u64(want);
	out(1);
	fail(code, what);
}

/* sse checks arithmetic, compares, conversions and moves with memory
 * operands, in runs of SSE instructions and mixed with general-purpose
 * ones. */
static void sse(void)
{
	static const u64 in[4] __attribute__((aligned(16))) = {F64_1_5, F64_2_25, F64_4, F64_0_5};
	static u64 result[2] __attribute__((aligned(16)));
	u64 above = 0, equal = 0;

	/* Put the SSE state in its initial configuration first (XRSTOR with
	 * XSTATE_BV clear): results must land in the vCPU's registers all
	 * the same. */
	static u8 init_area[1024] __attribute__((aligned(64)));
	enable_xsave();
	*(u32 *)(init_area + 24) = 0x1f80;
	__asm__ volatile("xrstor (%0)" : : "r"(init_area), "a"(3), "d"(0) : "memory");

	/* ((1.5 + 2.25) * 4) / 0.5 = 30, then compares of 30 with 1.5. */
	__asm__ volatile(
		"movsd 0(%[in]), %%xmm0\n"
		"addsd 8(%[in]), %%xmm0\n"
		"mulsd 16(%[in]), %%xmm0\n"
		"divsd 24(%[in]), %%xmm0\n"
		"movsd %%xmm0, 0(%[out])\n"
		"movsd 0(%[in]), %%xmm2\n"
		"ucomisd %%xmm2, %%xmm0\n"
		"seta %b[above]\n"
		"comisd %%xmm0, %%xmm0\n"
		"sete %b[equal]\n"
		: [above] "+&r"(above), [equal] "+&r"(equal)
		: [in] "r"(in), [out] "r"(result)
		: "memory", "cc");
	expect(result[0], F64_30, 70, "((1.5 + 2.25) * 4) / 0.5");
	expect(above, 1, 70, "ucomisd 30, 1.5 sets above");
	expect(equal, 1, 70, "comisd 30, 30 sets equal");

	/* Conversions between integers and doubles. */
	u64 truncated = 0, converted = 0;
	i64 minus7 = -7;
	__asm__ volatile(
		"cvttsd2si %%xmm0, %[truncated]\n"
		"cvtsi2sdq %[minus7], %%xmm3\n"
		"movq %%xmm3, %[converted]\n"
		: [truncated] "=&r"(truncated), [converted] "=&r"(converted)
		: [minus7] "r"(minus7)
		: "memory");
	expect(truncated, 30, 71, "cvttsd2si 30.0");
	expect(converted, F64_MINUS_7, 71, "cvtsi2sd -7");

	/* Packed integers: an unaligned load, an aligned memory operand, a
	 * shuffle and an unaligned store. */
	static u8 bytes[48] __attribute__((aligned(16)));
	static const u32 addend[4] __attribute__((aligned(16))) = {1, 2, 3, 4};
	for (int i = 0; i < 48; i++)
		bytes[i] = (u8)i;
	u64 word = 0;
	__asm__ volatile(
		"movdqu 1(%[bytes]), %%xmm4\n"
		"paddd (%[addend]), %%xmm4\n"
		"pshufd $0x1b, %%xmm4, %%xmm5\n"
		"movdqu %%xmm5, 19(%[bytes])\n"
		"pextrw $1, %%xmm4, %k[word]\n"
		: [word] "=&r"(word)
		: [bytes] "r"(bytes), [addend] "r"(addend)
		: "memory");
	/* xmm4 = {0x04030201 + 1, 0x08070605 + 2, 0x0c0b0a09 + 3, 0x100f0e0d + 4};
	 * pshufd 0x1b reverses the dwords. */
	static const u32 want[4] = {0x100f0e11, 0x0c0b0a0c, 0x08070607, 0x04030202};
	for (int i = 0; i < 4; i++) {
		u32 got = (u32)bytes[19 + 4 * i] | (u32)bytes[20 + 4 * i] << 8 | (u32)bytes[21 + 4 * i] << 16 |
			  (u32)bytes[22 + 4 * i] << 24;
		expect(got, want[i], 72, "movdqu, paddd, pshufd, movdqu");
	}
	expect(bytes[18], 18, 72, "the byte before the unaligned store");
	expect(bytes[35], 35, 72, "the byte after the unaligned store");
	expect(word, 0x0403, 72, "pextrw 1");

	/* SSE instructions between general-purpose ones, in a loop: 1 + 2 +
	 * ... + 10 in xmm6. */
	u64 sum = 0;
	__asm__ volatile(
		"xorpd %%xmm6, %%xmm6\n"
		"mov $1, %%rcx\n"
		"1:\n"
		"cvtsi2sdq %%rcx, %%xmm7\n"
		"addsd %%xmm7, %%xmm6\n"
		"inc %%rcx\n"
		"cmp $10, %%rcx\n"
		"jbe 1b\n"
		"cvttsd2si %%xmm6, %[sum]\n"
		: [sum] "=r"(sum)
		:
		: "rcx", "cc");
	expect(sum, 55, 73, "sum of 1 to 10 in doubles");

	put("sse checks passed: ");
	put_u64(result[0]);
	out(1);
}

/* sse_fault runs an SSE instruction that must raise an exception, which
 * the handlers above turn into an exit code. */
static void sse_fault(const char *which)
{
	static u8 buf[64] __attribute__((aligned(16)));
	if (seq(which, "align")) /* #GP: movaps needs a 16-byte aligned operand */
		__asm__ volatile("movaps 8(%0), %%xmm0" : : "r"(buf) : "memory");
	if (seq(which, "pf")) /* #PF: a canonical address that is not mapped */
		__asm__ volatile("movsd (%0), %%xmm0" : : "r"(0x7fff00000000ull) : "memory");
	if (seq(which, "xm")) {
		/* Unmask division by zero through XRSTOR (MXCSR 0x1d80), then
		 * divide by zero: #XM. */
		static u8 area[1024] __attribute__((aligned(64)));
		enable_xsave();
		__asm__ volatile("xsave (%0)" : : "r"(area), "a"(3), "d"(0) : "memory");
		*(u32 *)(area + 24) = 0x1d80;
		*(u64 *)(area + 512) |= 3;
		__asm__ volatile("xrstor (%0)" : : "r"(area), "a"(3), "d"(0) : "memory");
		static const u64 operands[2] __attribute__((aligned(16))) = {F64_4, 0};
		__asm__ volatile("movsd 0(%0), %%xmm0\n"
				 "divsd 8(%0), %%xmm0\n"
				 :
				 : "r"(operands)
				 : "memory");
	}
	if (seq(which, "lock")) /* lock addps xmm0, xmm1: #UD */
		__asm__ volatile(".byte 0xf0, 0x0f, 0x58, 0xc1");
	if (seq(which, "batch-pf")) /* pxor completes; the load then raises #PF */
		__asm__ volatile("pxor %%xmm0, %%xmm0\n"
				 "movsd (%0), %%xmm1\n"
				 :
				 : "r"(0x7fff00000000ull)
				 : "memory");
	if (seq(which, "mxcsr")) {
		/* STMXCSR reads back what LDMXCSR loaded (rounding toward
		 * zero); LDMXCSR of reserved bits raises #GP. */
		static u32 value = 0x7f80, back;
		__asm__ volatile("ldmxcsr %1\n"
				 "stmxcsr %0\n"
				 : "=m"(back)
				 : "m"(value));
		put("stmxcsr ");
		put_u64(back);
		out(1);
		value = 0xffff0000;
		__asm__ volatile("ldmxcsr %0" : : "m"(value));
	}
	if (seq(which, "xsave-pf") || seq(which, "xrstor-gp")) {
		static u8 area[1024] __attribute__((aligned(64)));
		enable_xsave();
		if (seq(which, "xsave-pf")) /* #PF, a write to a page that is not mapped */
			__asm__ volatile("xsave (%0)" : : "r"(0x7fff00000000ull), "a"(3), "d"(0) : "memory");
		__asm__ volatile("xsave (%0)" : : "r"(area), "a"(3), "d"(0) : "memory");
		*(u32 *)(area + 24) = 0xffffffff; /* reserved MXCSR bits: #GP */
		*(u64 *)(area + 512) |= 3;
		__asm__ volatile("xrstor (%0)" : : "r"(area), "a"(3), "d"(0) : "memory");
	}
	if (seq(which, "outside")) /* maskmovdqu writes to [rdi]: not on the allowlist */
		__asm__ volatile("maskmovdqu %%xmm1, %%xmm0" : : "D"(buf) : "memory");
	fail(74, "the SSE instruction did not raise the expected exception");
}

/* Hostile variants. */
static void escape(void)
{
	static const char *const paths[] = {
		"/outside.txt", "/data/../outside.txt", "/data/link/escaped.txt", "/ro/new.txt", "relative.txt",
	};
	int allowed = 0;
	for (unsigned i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		i32 fd = sys_open(paths[i], 01 | 0100, 0644);
		put("open ");
		put(paths[i]);
		put(" -> ");
		put_i64(fd);
		out(1);
		if (fd >= 0) {
			sys_write(fd, "escaped\n", 8);
			sys_close(fd);
			allowed++;
		}
	}
	if (sys_unlink("/data/../victim.txt") == 0)
		allowed++;
	sys_exit(allowed ? 1 : 0);
}

static void hostile(void)
{
	if (seq(mode, "escape"))
		escape();
	if (seq(mode, "badptr")) {
#if UHYVEIF == 1
		__asm__ volatile("outl %0, %1" : : "a"(0xfffff000u), "Nd"((u16)P_OPEN) : "memory");
#else
		hc_arg(P_OPEN, 0xdead00000000ull);
#endif
	}
	if (seq(mode, "triple")) {
		static const struct { u16 limit; u64 base; } __attribute__((packed)) idt = {0, 0};
		__asm__ volatile("lidt %0; ud2" : : "m"(idt));
	}
	if (seq(mode, "spin"))
		for (;;)
			__asm__ volatile("" ::: "memory");
	if (seq(mode, "xgetbv")) {
		set_osxsave();
		u32 lo, hi;
		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		put("xgetbv xcr0=");
		put_u64(((u64)hi << 32) | lo);
		out(1);
		sys_exit((lo & 1) ? 0 : 78);
	}
	if (seq(mode, "xsave")) {
		static u8 first[1024] __attribute__((aligned(64)));
		static u8 second[1024] __attribute__((aligned(64)));
		enable_xsave();
		__asm__ volatile("xsave (%0)" : : "r"(first), "a"(3), "d"(0) : "memory");
		u32 mxcsr = *(u32 *)(first + 24);
		u16 fcw = *(u16 *)first;
		put("xsave mxcsr=");
		put_u64(mxcsr);
		put(" fcw=");
		put_u64(fcw);
		out(1);
		if (mxcsr != 0x1f80 || fcw != 0x37f)
			fail(76, "XSAVE stored unexpected initial x87 or SSE state");
		*(u32 *)(first + 24) = 0x9f80; /* set MXCSR.FZ */
		*(u64 *)(first + 512) |= 3;    /* XSTATE_BV: x87 and SSE present */
		__asm__ volatile("xrstor (%0)" : : "r"(first), "a"(3), "d"(0) : "memory");
		__asm__ volatile("xsave (%0)" : : "r"(second), "a"(3), "d"(0) : "memory");
		if (*(u32 *)(second + 24) != 0x9f80)
			fail(75, "XRSTOR did not load MXCSR");
		put("xrstor loaded mxcsr=");
		put_u64(*(u32 *)(second + 24));
		out(1);
		sys_exit(0);
	}
	if (seq(mode, "xsavec")) {
		/* XGETBV with ECX = 1, then XSAVEC, XRSTOR of the compacted
		 * area with a changed MXCSR, and XSAVE: exits 0 when MXCSR was
		 * loaded. */
		u32 a, b, c, d;
		cpuid(0xd, &a, &b, &c, &d);
		u32 ext;
		__asm__ volatile("cpuid" : "=a"(ext), "=b"(b), "=c"(c), "=d"(d) : "a"(0xd), "c"(1));
		if ((ext & 6) != 6) {
			put("xsavec not offered");
			out(1);
			sys_exit(0);
		}
		static u8 area[1024] __attribute__((aligned(64)));
		static u8 check[1024] __attribute__((aligned(64)));
		enable_xsave();
		u32 lo, hi;
		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(1));
		put("xinuse=");
		put_u64(((u64)hi << 32) | lo);
		out(1);
		__asm__ volatile("xsavec (%0)" : : "r"(area), "a"(3), "d"(0) : "memory");
		u64 xcomp = *(u64 *)(area + 520);
		put("xcomp_bv=");
		put_u64(xcomp);
		out(1);
		if (xcomp != ((1ull << 63) | 3))
			fail(74, "XSAVEC wrote an unexpected XCOMP_BV");
		*(u32 *)(area + 24) = 0x9f80; /* set MXCSR.FZ */
		*(u64 *)(area + 512) |= 2;    /* XSTATE_BV: SSE present */
		__asm__ volatile("xrstor (%0)" : : "r"(area), "a"(3), "d"(0) : "memory");
		__asm__ volatile("xsave (%0)" : : "r"(check), "a"(3), "d"(0) : "memory");
		if (*(u32 *)(check + 24) != 0x9f80)
			fail(73, "XRSTOR of the compacted area did not load MXCSR");
		put("compacted xrstor loaded mxcsr=");
		put_u64(*(u32 *)(check + 24));
		out(1);
		sys_exit(0);
	}
	if (seq(mode, "nm")) {
		u64 cr0;
		__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
		cr0 |= 1ull << 3; /* TS */
		__asm__ volatile("mov %0, %%cr0" : : "r"(cr0));
		__asm__ volatile(".byte 0x0f, 0x57, 0xc0" ::: "memory"); /* xorps %xmm0, %xmm0 */
		fail(77, "an SSE instruction with CR0.TS set did not raise #NM");
	}
	if (seq(mode, "sse")) {
		sse_setup();
		sse();
		sys_exit(exit_code);
	}
	if (sprefix(mode, "sse-")) {
		sse_setup();
		sse_fault(mode + 4);
	}
	if (seq(mode, "halt"))
		for (;;)
			__asm__ volatile("cli; hlt" ::: "memory");
	if (seq(mode, "badport"))
		__asm__ volatile("outb %%al, %%dx" : : "a"(0), "d"(0x1234));
	if (*mode)
		fail(79, "unknown mode or the hostile action did not stop the guest");
}

void guest_main(const struct boot_info *info, u64 id)
{
	(void)id;
	bi = info;
	check_boot();

#if UHYVEIF == 1
	u64 *pml4 = (u64 *)(uintptr_t)read_cr3();
	pml4[1] = pml4[0];
#endif

	console_bytes("test kernel: console byte output\n");
	console_buffer("test kernel: console buffer output\n");
	put("hello from the test kernel, uhyve interface ");
	put_u64(UHYVEIF);
	out(1);
	put("stderr works");
	out(2);
	for (int i = 0; i < 5; i++) {
		put(greetings[i]);
		put(i < 4 ? " " : "");
	}
	out(1);

	read_cmdline();
	hostile();

	__atomic_store_n(&cpu_online, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&cpu_online, __ATOMIC_SEQ_CST) != bi->num_cpus)
		__asm__ volatile("pause");
	put("cpus online: ");
	put_u64(bi->num_cpus);
	out(1);

	files();
	put("exiting with ");
	put_i64(exit_code);
	out(1);
	sys_exit(exit_code);
}
