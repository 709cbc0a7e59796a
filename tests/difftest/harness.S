/*
 * harness.S: the frame around one generated difftest body (tests/difftest/programs/pNN.S),
 * built twice from the same source (see scripts/gen-difftest.mjs):
 *
 *   - bare metal (default): an M-mode program for the virt board, linked at 0x80000000 with
 *     tests/difftest/link.ld; prints the dump on the NS16550A UART and powers off through the
 *     SiFive test finisher (0x5555). A trap prints "trap" and mcause, mepc - difftest_body,
 *     mtval, then exits with status 3 through the finisher.
 *   - Linux user (-DDIFFTEST_LINUX): a static program with its own _start, run by
 *     qemu-riscv64-static; writes the same dump with write(1) and calls exit(0).
 *
 * BODY is the body file name (-DBODY='"pNN.S"'). The body is plain RV64GC code that must be
 * position independent and must keep its registers free of addresses (see the README):
 *   sp  = difftest_buf, the scratch buffer (also the base of c.*sp loads and stores)
 *   gp  = difftest_sig, the signature log (the body stores each result at increasing offsets)
 *   tp  = scratch of the body (its final value is not dumped: printed as 0)
 * The dump, one 16-digit hex doubleword per line, is: x1..x31 (sp and gp as offsets from
 * difftest_buf and difftest_sig, tp as 0), f0..f31 (raw 64 bits), fcsr, the scratch buffer,
 * the signature log, the illegal-instruction record (difftest_traps: the number of traps,
 * then the offsets from difftest_body of the first 63), then a line "end".
 *
 * Illegal instructions (the body executes random encodings) are skipped after recording them:
 * bare metal by the M-mode trap handler, Linux by a SIGILL handler that moves the pc on.
 */

#define UART_BASE     0x10000000
#define UART_LSR      5
#define LSR_THRE      0x20
#define TEST_FINISHER 0x100000

  .option norvc
  .option norelax

  .data
  .balign 16
difftest_regs:
  .skip 65 * 8

#ifdef DIFFTEST_LINUX
  /* writable, for the self-modifying code of the body (ld warns about the RWX segment) */
  .section .difftest, "awx", @progbits
#else
  .section .text.init, "ax", @progbits
#endif
  .globl _start
_start:
#ifdef DIFFTEST_LINUX
  /* SIGILL runs sigill on its own stack (sp is the body's buffer pointer) */
  lla a0, altstack
  li a1, 0
  li a7, 132              /* sigaltstack */
  ecall
  bnez a0, setup_failed
  li a0, 4                /* SIGILL */
  lla a1, sigill_action
  li a2, 0
  li a3, 8                /* sizeof(sigset_t) */
  li a7, 134              /* rt_sigaction */
  ecall
  bnez a0, setup_failed
#else
  lla t0, trap
  csrw mtvec, t0
  lla t0, trap_save
  csrw mscratch, t0
  li t0, (1 << 13)        /* mstatus.FS = Initial */
  csrs mstatus, t0
#endif
  csrwi fcsr, 0
  lla sp, difftest_buf
  lla gp, difftest_sig
  li tp, 0

  .globl difftest_body
difftest_body:
#include BODY
  .option norvc
  .option norelax
  .globl difftest_body_end
difftest_body_end:
  /* the body may end on a halfword: pad with a c.nop if so (nothing after it is compressed) */
  .option rvc
  .balign 4
  .option norvc

  /* Save the registers; tp is the body's scratch and so free here. */
  lla tp, difftest_regs
  sd x1, 8(tp)
  sd x2, 16(tp)
  sd x3, 24(tp)
  sd x0, 32(tp)
  .irp n, 5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
  sd x\n, (\n * 8)(tp)
  .endr
  .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
  fsd f\n, (256 + \n * 8)(tp)
  .endr
  frcsr t0
  sd t0, 512(tp)
  /* sp and gp as offsets from their bases */
  ld t0, 16(tp)
  lla t1, difftest_buf
  sub t0, t0, t1
  sd t0, 16(tp)
  ld t0, 24(tp)
  lla t1, difftest_sig
  sub t0, t0, t1
  sd t0, 24(tp)

  /* Format x1..fcsr, then the buffer and the signature log, as hex lines. */
  lla a0, difftest_regs + 8
  addi a1, a0, 64 * 8
  lla a2, difftest_out
  call hexdump
  lla a0, difftest_buf
  lla a1, difftest_data_end
  call hexdump
  li t0, 'e'
  sb t0, 0(a2)
  li t0, 'n'
  sb t0, 1(a2)
  li t0, 'd'
  sb t0, 2(a2)
  li t0, '\n'
  sb t0, 3(a2)
  addi a2, a2, 4
  lla a1, difftest_out
  sub a2, a2, a1
  li a0, 0
  j finish

/* Writes the doublewords [a0, a1) as hex lines at a2; returns a2 past the text. */
hexdump:
1:
  ld t0, 0(a0)
  li t1, 60
2:
  srl t2, t0, t1
  andi t2, t2, 15
  addi t3, t2, '0'
  li t4, 10
  blt t2, t4, 3f
  addi t3, t2, 'a' - 10
3:
  sb t3, 0(a2)
  addi a2, a2, 1
  addi t1, t1, -4
  bgez t1, 2b
  li t3, '\n'
  sb t3, 0(a2)
  addi a2, a2, 1
  addi a0, a0, 8
  bltu a0, a1, 1b
  ret

/*
 * Records an illegal-instruction trap at t0 (clobbers t1, t2): difftest_traps counts them and
 * keeps the offsets from difftest_body of the first TRAP_LOG; returns t0 past the instruction.
 */
#define TRAP_LOG 63
record_illegal:
  lla t1, difftest_traps
  ld t2, 0(t1)
  addi t2, t2, 1
  sd t2, 0(t1)
  li t1, TRAP_LOG
  bgtu t2, t1, 1f
  slli t2, t2, 3
  lla t1, difftest_traps
  add t2, t2, t1
  lla t1, difftest_body
  sub t1, t0, t1
  sd t1, 0(t2)
1:
  lhu t1, 0(t0)
  andi t1, t1, 3
  addi t0, t0, 2
  li t2, 3
  bne t1, t2, 2f
  addi t0, t0, 2
2:
  ret

/* Outputs a2 bytes at a1, then exits with status a0. */
finish:
#ifdef DIFFTEST_LINUX
  mv s0, a0
1:
  beqz a2, 2f
  li a0, 1
  li a7, 64               /* write */
  ecall
  blez a0, 3f
  add a1, a1, a0
  sub a2, a2, a0
  j 1b
3:
  li s0, 4
2:
  mv a0, s0
  li a7, 93               /* exit */
  ecall
  j 2b

setup_failed:
  li a0, 5
  li a7, 93
  ecall

/*
 * The SIGILL handler (a0 = signal, a1 = siginfo, a2 = ucontext): records the trap and
 * resumes after the instruction. uc_mcontext is at 176 in the riscv64 ucontext (after
 * uc_flags, uc_link, uc_stack, the 128-byte uc_sigmask area, aligned to 16); its first
 * doubleword is the pc. Every register is restored from the frame by sigreturn.
 */
sigill:
  mv s0, ra
  ld t0, 176(a2)
  call record_illegal
  sd t0, 176(a2)
  mv ra, s0
  ret
#else
  li t0, UART_BASE
1:
  beqz a2, 2f
3:
  lbu t1, UART_LSR(t0)
  andi t1, t1, LSR_THRE
  beqz t1, 3b
  lbu t1, 0(a1)
  sb t1, 0(t0)
  addi a1, a1, 1
  addi a2, a2, -1
  j 1b
2:
  li t0, 0x5555           /* FINISHER_PASS */
  beqz a0, 4f
  slli t0, a0, 16
  li t1, 0x3333           /* FINISHER_FAIL, code in bits 31:16 */
  or t0, t0, t1
4:
  li t1, TEST_FINISHER
  sw t0, 0(t1)
5:
  wfi
  j 5b

/*
 * The trap handler: an illegal instruction is recorded and skipped (record_illegal); any
 * other trap prints "trap", then mcause, mepc - difftest_body and mtval, and exits with 3.
 * mscratch holds trap_save while the body runs; the body's tp is kept in mscratch meanwhile.
 */
  .balign 4
trap:
  csrrw tp, mscratch, tp
  sd t0, 0(tp)
  sd t1, 8(tp)
  sd t2, 16(tp)
  sd ra, 24(tp)
  csrr t0, mcause
  li t1, 2                /* illegal instruction */
  bne t0, t1, fatal
  csrr t0, mepc
  call record_illegal
  csrw mepc, t0
  ld t0, 0(tp)
  ld t1, 8(tp)
  ld t2, 16(tp)
  ld ra, 24(tp)
  csrrw tp, mscratch, tp
  mret

fatal:
  lla tp, difftest_regs
  csrr t0, mcause
  sd t0, 0(tp)
  csrr t0, mepc
  lla t1, difftest_body
  sub t0, t0, t1
  sd t0, 8(tp)
  csrr t0, mtval
  sd t0, 16(tp)
  lla a2, difftest_out
  li t0, 't'
  sb t0, 0(a2)
  li t0, 'r'
  sb t0, 1(a2)
  li t0, 'a'
  sb t0, 2(a2)
  li t0, 'p'
  sb t0, 3(a2)
  li t0, '\n'
  sb t0, 4(a2)
  addi a2, a2, 5
  mv a0, tp
  addi a1, tp, 24
  call hexdump
  lla a1, difftest_out
  sub a2, a2, a1
  li a0, 3
  j finish
#endif

  /* the body's data (difftest_buf, difftest_sig) comes before this in .data */
  .data
  .balign 8
  .globl difftest_traps
difftest_traps:           /* the count of illegal-instruction traps, then their offsets */
  .skip (1 + TRAP_LOG) * 8
  .globl difftest_data_end
difftest_data_end:

#ifdef DIFFTEST_LINUX
  .balign 8
sigill_action:            /* struct sigaction: handler, flags, mask */
  .dword sigill
  .dword 0x08000004       /* SA_ONSTACK | SA_SIGINFO */
  .dword 0
altstack:                 /* stack_t: ss_sp, ss_flags, ss_size */
  .dword sigstack
  .dword 0
  .dword 16384
#else
trap_save:
  .skip 4 * 8
#endif

  .bss
  .balign 16
difftest_out:
  .skip 65536
sigstack:
  .skip 16384
