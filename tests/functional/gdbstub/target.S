/*
 * target.S: the bare-metal program that tests/functional/gdbstub.test.ts debugs with
 * gdb-multiarch on Vireo (-M virt -bios none: it starts in M-mode at 0x80000000).
 *
 * The test stops at `marker` (a0 = 0x1234abcd, fa0 = 305441741.0), single-steps the addi
 * there, sets a2 = 7 and `poke` = 0x55, watches `counter` (stored three times) and `rvar`
 * (loaded once), and sets `go`, which the program waits for at `spin`. The exit status
 * (HTIF tohost) says what the program observed: 0 when the debugger's writes arrived,
 * 1 when a2 was not 7, 2 when `poke` was not 0x55, 3 when a1 was not a0 + 1.
 */
    .option norvc              /* 4-byte instructions only: stepi moves pc by 4 */

    .section .text.init
    .globl _start
_start:
    la sp, stack_top
    li t0, 3 << 13             /* mstatus.FS: the FP registers are in use */
    csrs mstatus, t0
    li a0, 0x1234abcd
    fcvt.d.l fa0, a0
    li a2, 0
    .globl marker
marker:
    addi a1, a0, 1
    nop

    /* counter: 1, 2, 3 (a write watchpoint stops before each store) */
    la t0, counter
    li t1, 3
count:
    ld t2, 0(t0)
    addi t2, t2, 1
    sd t2, 0(t0)
    blt t2, t1, count

    /* one load of rvar (a read watchpoint) */
    la t0, rvar
    ld t3, 0(t0)

    /* wait for the debugger to set go */
    la t0, go
    .globl spin
spin:
    ld t4, 0(t0)
    beqz t4, spin

    .globl done
done:
    li a0, 1
    li t0, 7
    bne a2, t0, exit
    li a0, 2
    la t0, poke
    ld t1, 0(t0)
    li t0, 0x55
    bne t1, t0, exit
    li a0, 3
    li t0, 0x1234abce
    bne a1, t0, exit
    li a0, 0

    /* HTIF: tohost = (status << 1) | 1 ends the run with that status */
exit:
    slli a0, a0, 1
    ori a0, a0, 1
    la t0, tohost
    sd a0, 0(t0)
1:  j 1b

    .section .tohost, "aw", @progbits
    .align 6
    .globl tohost
tohost: .dword 0
    .align 6
    .globl fromhost
fromhost: .dword 0

    .data
    .align 3
    .globl counter, rvar, poke, go
counter: .dword 0
rvar:    .dword 0x600d
poke:    .dword 0
go:      .dword 0

    .bss
    .align 4
    .space 4096
stack_top:
