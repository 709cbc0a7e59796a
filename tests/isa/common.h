/*
 * common.h: the framework shared by Vireo's bare-metal ISA test programs (tests/isa/*.S).
 *
 * Follows the RISC-V unprivileged ISA (20191213) and privileged architecture (20211203)
 * specifications. A program includes this file once, defines `main` (entered in M-mode with
 * mtvec = trap_fail) and ends with `j pass`. It runs with no firmware from 0x80000000.
 *
 * Reporting (see README.md): the result goes to HTIF `tohost` as (code << 1) | 1, where
 * code 0 = pass and otherwise the number of the failing check. QEMU's virt board has no HTIF,
 * so the same code is then also written to its SiFive test finisher at 0x100000, which makes
 * QEMU exit with status = code, the same convention.
 *
 * Registers reserved by the framework (test code must not use them for anything else):
 *   gp       number of the current check (set by the check macros)
 *   t6       scratch for the macros and the trap handlers
 *   a7       SYS_TO_M while switching back to M-mode (see `to_m`)
 *   s6..s11  the record of the last trap taken by trap_skip/strap_skip: s6 = the mode that
 *            took it (PRV_M or PRV_S), s7 = m/sstatus, s8 = number of traps recorded,
 *            s9 = cause, s10 = tval, s11 = epc
 */

#define MSTATUS_SIE   (1 << 1)
#define MSTATUS_MIE   (1 << 3)
#define MSTATUS_SPIE  (1 << 5)
#define MSTATUS_MPIE  (1 << 7)
#define MSTATUS_SPP   (1 << 8)
#define MSTATUS_MPP   (3 << 11)
#define MSTATUS_FS    (3 << 13)
#define MSTATUS_MPRV  (1 << 17)
#define MSTATUS_SUM   (1 << 18)
#define MSTATUS_MXR   (1 << 19)
#define MSTATUS_TVM   (1 << 20)
#define MSTATUS_TSR   (1 << 22)

#define MIP_SSIP (1 << 1)
#define MIP_MSIP (1 << 3)
#define MIP_STIP (1 << 5)
#define MIP_MTIP (1 << 7)

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

#define CAUSE_MISALIGNED_FETCH  0
#define CAUSE_FETCH_ACCESS      1
#define CAUSE_ILLEGAL_INSTR     2
#define CAUSE_BREAKPOINT        3
#define CAUSE_MISALIGNED_LOAD   4
#define CAUSE_LOAD_ACCESS       5
#define CAUSE_MISALIGNED_STORE  6
#define CAUSE_STORE_ACCESS      7
#define CAUSE_USER_ECALL        8
#define CAUSE_SUPERVISOR_ECALL  9
#define CAUSE_MACHINE_ECALL     11
#define CAUSE_FETCH_PAGE_FAULT  12
#define CAUSE_LOAD_PAGE_FAULT   13
#define CAUSE_STORE_PAGE_FAULT  15
#define CAUSE_INTERRUPT         (1 << 63)

/* Page table entry bits (Sv39/Sv48). */
#define PTE_V (1 << 0)
#define PTE_R (1 << 1)
#define PTE_W (1 << 2)
#define PTE_X (1 << 3)
#define PTE_U (1 << 4)
#define PTE_G (1 << 5)
#define PTE_A (1 << 6)
#define PTE_D (1 << 7)
#define SATP_SV39 (8 << 60)
#define SATP_SV48 (9 << 60)

/* QEMU virt devices. */
#define CLINT_MSIP      0x2000000
#define CLINT_MTIMECMP  0x2004000
#define CLINT_MTIME     0x200bff8
#define TEST_FINISHER   0x100000

/* a7 values that ask the M-mode trap handlers to continue in M-mode (see to_m). */
#define SYS_TO_M      0x544f4d   /* continue after the ecall */
#define SYS_TO_M_FWD  0x544f4e   /* forwarded by strap_skip: continue after the ecall at sepc */

/* Starts check \n (1..254, each number used once per program): failures report it. */
.macro begin_check n
  .if (\n < 1) || (\n > 254)
    .error "check numbers must be 1..254"
  .endif
.Lcheck_number_\n\():
  li gp, \n
.endm

/* Check \n: register \reg must equal the constant \val. */
.macro check n, reg, val
  begin_check \n
  li t6, \val
  beq \reg, t6, .Lcheck_ok\@
  j fail
.Lcheck_ok\@:
.endm

/* Check \n: registers \reg1 and \reg2 must be equal. */
.macro checkr n, reg1, reg2
  begin_check \n
  beq \reg1, \reg2, .Lcheck_ok\@
  j fail
.Lcheck_ok\@:
.endm

/* Check \n: exactly one trap was recorded since `expect_trap`, with cause \cause. */
.macro check_trap n, cause
  begin_check \n
  li t6, 1
  beq s8, t6, .Lcount_ok\@
  j fail
.Lcount_ok\@:
  li t6, \cause
  beq s9, t6, .Lcheck_ok\@
  j fail
.Lcheck_ok\@:
.endm

/* Check \n: no trap was recorded since `expect_trap`. */
.macro check_no_trap n
  check \n, s8, 0
.endm

/* Writes entry \index of page table \table: physical address \pa_reg with \flags (clobbers t0-t2). */
.macro set_pte table, index, pa_reg, flags
  la t0, \table
  li t1, (\index) * 8
  add t0, t0, t1
  srli t1, \pa_reg, 12
  slli t1, t1, 10
  li t2, \flags
  or t1, t1, t2
  sd t1, 0(t0)
.endm

/* Forgets the previous trap record. */
.macro expect_trap
  li s6, -1
  li s8, 0
  li s9, -1
  li s10, -1
  li s11, -1
.endm

/* Installs \handler as mtvec (trap_fail or trap_skip). */
.macro set_mtvec handler
  la t6, \handler
  csrw mtvec, t6
.endm

/* From M-mode: continue at the next instruction in privilege mode \mode (mret). */
.macro to_mode mode
  li t6, MSTATUS_MPP
  csrc mstatus, t6
  li t6, (\mode << 11)
  csrs mstatus, t6
  la t6, .Lin_mode\@
  csrw mepc, t6
  mret
.Lin_mode\@:
.endm

/* From any mode: continue at the next instruction in M-mode, with mstatus.MIE = 0 (ecall). */
.macro to_m
  li a7, SYS_TO_M
  ecall
.endm

/* The ecall of to_m: if this trap is one, resume in M-mode after it (clobbers t6, a7). */
.macro handle_to_m
  li t6, SYS_TO_M
  beq a7, t6, .Lsys\@
  li t6, SYS_TO_M_FWD
  bne a7, t6, .Lnot_to_m\@
.Lsys\@:
  csrr t6, mcause
  andi t6, t6, -4       /* ecall causes are 8, 9 and 11; keeps the interrupt bit */
  addi t6, t6, -8
  bnez t6, .Lnot_to_m\@
  li t6, SYS_TO_M_FWD
  beq a7, t6, .Lforwarded\@
  csrr t6, mepc
  j .Lresume\@
.Lforwarded\@:
  csrr t6, sepc         /* the original ecall, delegated to S-mode, was at sepc */
.Lresume\@:
  addi t6, t6, 4
  csrw mepc, t6
  li a7, 0
  li t6, MSTATUS_MPP
  csrs mstatus, t6
  li t6, MSTATUS_MPIE
  csrc mstatus, t6
  mret
.Lnot_to_m\@:
.endm

  .section .text.init, "ax", @progbits
  .globl _start
_start:
  set_mtvec trap_fail
  /* Without a matching PMP entry S/U-mode could access nothing: grant everything. */
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f           /* NAPOT, RWX */
  csrw pmpcfg0, t0
  li t0, (1 << 13)      /* mstatus.FS = Initial: the F and D programs need the FPU on */
  csrs mstatus, t0
  la sp, stack_top
  li gp, 0
  expect_trap
  j main

  .text
/* Checks passed: report code 0. */
  .globl pass
pass:
  li a0, 0
  j report

/* Check gp failed: report gp (255 when the failure came before the first check). */
  .globl fail
fail:
  mv a0, gp
  bnez a0, report
  li a0, 255

/* Reports code a0 through HTIF, then through QEMU's test finisher, and stops. */
report:
  slli t0, a0, 1
  ori t0, t0, 1
  la t1, tohost
  sd t0, 0(t1)
  li t0, 0x5555         /* FINISHER_PASS */
  beqz a0, 1f
  slli t0, a0, 16
  li t1, 0x3333         /* FINISHER_FAIL, code in bits 31:16 */
  or t0, t0, t1
1:
  li t1, TEST_FINISHER
  sw t0, 0(t1)
2:
  wfi
  j 2b

/* Default M-mode trap handler: any trap except to_m's ecall fails the current check. */
  .balign 4
  .globl trap_fail
trap_fail:
  handle_to_m
  j fail

/*
 * M-mode trap handler for expected traps: records the trap in s7..s11 and resumes.
 * Exceptions resume after the trapping instruction (2 or 4 bytes, read at mepc, so the code
 * must be readable there in M-mode), except instruction fetch faults, which resume at ra
 * (reach the target with jalr ra). Interrupts clear mie so they do not fire again.
 */
  .balign 4
  .globl trap_skip
trap_skip:
  handle_to_m
  li s6, PRV_M
  addi s8, s8, 1
  csrr s7, mstatus
  csrr s9, mcause
  csrr s10, mtval
  csrr s11, mepc
  bltz s9, 3f
  beqz s9, 2f
  li t6, CAUSE_FETCH_ACCESS
  beq s9, t6, 2f
  li t6, CAUSE_FETCH_PAGE_FAULT
  beq s9, t6, 2f
  lhu t6, 0(s11)
  andi t6, t6, 3
  addi t6, t6, -3
  bnez t6, 1f
  addi t6, s11, 4
  csrw mepc, t6
  mret
1:
  addi t6, s11, 2
  csrw mepc, t6
  mret
2:
  csrw mepc, ra
  mret
3:
  csrw mie, zero
  mret

/*
 * S-mode counterpart of trap_skip (install it in stvec): records in s7..s11 from the
 * s-CSRs and resumes the same way with sret. A delegated to_m ecall from U-mode is forwarded
 * to M-mode, which resumes after the original ecall.
 */
  .balign 4
  .globl strap_skip
strap_skip:
  li t6, SYS_TO_M
  bne a7, t6, 4f
  csrr t6, scause
  addi t6, t6, -CAUSE_USER_ECALL
  bnez t6, 4f
  li a7, SYS_TO_M_FWD
  ecall
4:
  li s6, PRV_S
  addi s8, s8, 1
  csrr s7, sstatus
  csrr s9, scause
  csrr s10, stval
  csrr s11, sepc
  bltz s9, 3f
  beqz s9, 2f
  li t6, CAUSE_FETCH_ACCESS
  beq s9, t6, 2f
  li t6, CAUSE_FETCH_PAGE_FAULT
  beq s9, t6, 2f
  lhu t6, 0(s11)
  andi t6, t6, 3
  addi t6, t6, -3
  bnez t6, 1f
  addi t6, s11, 4
  csrw sepc, t6
  sret
1:
  addi t6, s11, 2
  csrw sepc, t6
  sret
2:
  csrw sepc, ra
  sret
3:
  csrw sie, zero
  sret

/* HTIF mailboxes, found by the host through these symbols. */
  .section .tohost, "aw", @progbits
  .balign 8
  .globl tohost
  .type tohost, @object
  .size tohost, 8
tohost: .dword 0
  .globl fromhost
  .type fromhost, @object
  .size fromhost, 8
fromhost: .dword 0

  .bss
  .balign 16
stack: .skip 4096
stack_top:

  .text
