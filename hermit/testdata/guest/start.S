/*
 * Entry point and ELF notes of the hermit package's test kernel.
 *
 * Built by the tests with gcc; see guest.c for what the kernel does. The
 * preprocessor symbol UHYVEIF selects the uhyve interface version the
 * kernel declares, and KERNEL_MINOR, if defined, adds a Hermit kernel
 * version note 0.KERNEL_MINOR.0.
 */

	/* Hermit entry version 4: name "HERMIT", type 0x5a00, one byte. */
	.section .note.hermit.entry-version, "a", @note
	.balign 4
	.long 7, 1, 0x5a00
	.asciz "HERMIT"
	.balign 4
	.byte 4
	.balign 4

	/* uhyve interface version: name "UHYVEIF", type 0x5b00, big-endian u32. */
	.section .note.hermit.uhyve-interface-version, "a", @note
	.balign 4
	.long 8, 4, 0x5b00
	.asciz "UHYVEIF"
	.byte 0, 0, 0, UHYVEIF

#ifdef KERNEL_MINOR
	/* NT_GNU_ABI_TAG with OS 6 (Hermit): kernel version 0.KERNEL_MINOR.0. */
	.section .note.ABI-tag, "a", @note
	.balign 4
	.long 4, 16, 1
	.asciz "GNU"
	.long 6, 0, KERNEL_MINOR, 0
#endif

	.text
	.globl _start
	.type _start, @function
/*
 * _start(boot_info in RDI, cpu id in RSI). RSP is the lowest address of a
 * 32 KiB boot stack, as the Hermit entry protocol defines it.
 */
_start:
	test %rsi, %rsi
	jnz 2f

	mov %rsp, entry_rsp(%rip)
	add $0x7ff0, %rsp
	call guest_main
1:	hlt
	jmp 1b

	/* An application processor waits until the CPUs before it are up. */
2:	pause
	mov cpu_online(%rip), %eax
	cmp %esi, %eax
	jne 2b
	lea ap_stacks(%rip), %rsp
	mov %rsi, %rax
	inc %rax
	shl $13, %rax
	add %rax, %rsp
	call ap_main
3:	hlt
	jmp 3b
	.size _start, . - _start

	.section .note.GNU-stack, "", @progbits

	.bss
	.balign 4096
	.globl ap_stacks
ap_stacks:
	.skip 4 * 8192
