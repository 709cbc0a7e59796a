/*
 * delegation.S: trap delegation and the S/U privilege modes (privileged spec, sections
 * 3.1.8, 3.1.6, 3.3.2, 4.1.1-4.1.3): writable bits of medeleg/mideleg, delegated exceptions
 * reaching the S-mode handler with scause/sepc/stval and sstatus.SPP/SPIE/SIE set, selective
 * delegation, M-mode traps never delegated, SRET and its effects, delegated S software
 * interrupts (taken in U whatever SIE, never in M), sie/sip as views of mie/mip through
 * mideleg, and the mstatus.TSR and TVM traps.
 */
#include "common.h"

/* Check \n: the last trap was taken by S-mode (strap_skip) with scause \cause. */
.macro check_s_trap n, cause
  check_trap \n, \cause
  li t6, PRV_S
  beq s6, t6, .Lok\@
  j fail
.Lok\@:
.endm

/* Check \n: the last trap was taken by M-mode (trap_skip) with mcause \cause. */
.macro check_m_trap n, cause
  check_trap \n, \cause
  li t6, PRV_M
  beq s6, t6, .Lok\@
  j fail
.Lok\@:
.endm

main:
  set_mtvec trap_skip
  la a0, strap_skip
  csrw stvec, a0
  li a7, 0

  /* --- writable bits --- */
  li a0, -1
  csrw medeleg, a0
  csrr a0, medeleg
  li a1, (1 << 0) | (1 << 2) | (1 << 3) | (1 << 8) | (1 << 12) | (1 << 13) | (1 << 15)
  and a2, a0, a1
  checkr 1, a2, a1                           /* (bit 11 "should" be 0; QEMU 7.2 keeps it) */
  li a0, -1
  csrw mideleg, a0
  csrr a0, mideleg
  andi a0, a0, 0x222
  check 3, a0, 0x222                         /* SSI, STI, SEI */
  csrw medeleg, zero
  csrw mideleg, zero

  /* --- a delegated ecall from U-mode --- */
  li a0, 1 << CAUSE_USER_ECALL
  csrw medeleg, a0
  csrsi sstatus, MSTATUS_SIE
  expect_trap
  to_mode PRV_U
u_ecall:
  ecall
  to_m                                       /* forwarded to M by strap_skip */
  check_s_trap 4, CAUSE_USER_ECALL
  la t0, u_ecall
  checkr 5, s11, t0                          /* sepc */
  andi a0, s7, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE
  check 6, a0, MSTATUS_SPIE                  /* came from U, SIE saved in SPIE and cleared */

  /* --- the ecall from S-mode is not delegated: selective --- */
  expect_trap
  to_mode PRV_S
  ecall
  to_m
  check_m_trap 7, CAUSE_SUPERVISOR_ECALL

  /* --- delegated illegal instructions from U and S; stval = the instruction --- */
  li a0, (1 << CAUSE_USER_ECALL) | (1 << CAUSE_ILLEGAL_INSTR) | (1 << CAUSE_BREAKPOINT)
  csrw medeleg, a0
  expect_trap
  to_mode PRV_U
  .word 0x0000000b
  to_m
  check_s_trap 8, CAUSE_ILLEGAL_INSTR
  check 9, s10, 0x0000000b
  andi a0, s7, MSTATUS_SPP
  check 10, a0, 0
  expect_trap
  to_mode PRV_S
  .word 0x0000000b
  to_m
  check_s_trap 11, CAUSE_ILLEGAL_INSTR
  andi a0, s7, MSTATUS_SPP
  check 12, a0, MSTATUS_SPP                  /* came from S */
  expect_trap
  to_mode PRV_U
u_ebreak:
  ebreak
  to_m
  check_s_trap 13, CAUSE_BREAKPOINT
  la t0, u_ebreak
  checkr 14, s11, t0

  /* --- traps taken in M-mode stay in M-mode --- */
  expect_trap
  .word 0x0000000b
  check_m_trap 15, CAUSE_ILLEGAL_INSTR
  expect_trap
  ebreak
  check_m_trap 16, CAUSE_BREAKPOINT
  csrw medeleg, zero

  /* --- SRET: to SPP, SIE = SPIE, SPIE = 1, SPP = U (executed here from M-mode) --- */
  li a0, MSTATUS_SIE
  csrc sstatus, a0
  li a0, MSTATUS_SPP | MSTATUS_SPIE
  csrs sstatus, a0
  la a0, 1f
  csrw sepc, a0
  sret
1:
  expect_trap
  ecall                                      /* shows the mode sret went to */
  to_m
  check_m_trap 17, CAUSE_SUPERVISOR_ECALL
  andi a0, s7, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE
  check 18, a0, MSTATUS_SPIE | MSTATUS_SIE
  /* ... and from S-mode back to U-mode */
  li a0, MSTATUS_SPP | MSTATUS_SIE
  csrc sstatus, a0
  li a0, MSTATUS_SPIE
  csrs sstatus, a0
  to_mode PRV_S
  la a0, 1f
  csrw sepc, a0
  sret
1:
  expect_trap
  ecall
  to_m
  check_m_trap 19, CAUSE_USER_ECALL

  /* --- sie/sip show only delegated interrupts --- */
  li a0, MIP_SSIP
  csrw mie, a0
  csrr a1, sie
  check 20, a1, 0                            /* not delegated: read-only zero */
  csrw mideleg, a0
  csrr a1, sie
  check 21, a1, MIP_SSIP
  csrw sie, zero
  csrr a1, mie
  check 22, a1, 0                            /* the same bit as mie.SSIE */
  csrs sie, a0

  /* --- delegated supervisor software interrupt, raised by S itself --- */
  csrsi sstatus, MSTATUS_SIE
  expect_trap
  to_mode PRV_S
  li a0, MIP_SSIP
  csrs sip, a0                               /* taken right after this write */
s_after:
  csrc sip, a0
  to_m
  check_s_trap 23, (CAUSE_INTERRUPT | 1)
  la t0, s_after
  checkr 24, s11, t0
  andi a0, s7, MSTATUS_SPP
  check 25, a0, MSTATUS_SPP

  /* --- in U-mode it is taken even with sstatus.SIE = 0 --- */
  li a0, MIP_SSIP
  csrw mie, a0
  csrs mip, a0
  csrci sstatus, MSTATUS_SIE
  expect_trap
  to_mode PRV_U
  to_m
  check_s_trap 26, (CAUSE_INTERRUPT | 1)
  andi a0, s7, MSTATUS_SPP
  check 27, a0, 0

  /* --- ... and never in M-mode, even with mstatus.MIE = 1 --- */
  li a0, MIP_SSIP
  csrw mie, a0                               /* strap_skip cleared it */
  csrsi mstatus, MSTATUS_MIE
  expect_trap
  li a0, 100
1:
  addi a0, a0, -1
  bnez a0, 1b
  check_no_trap 28
  csrci mstatus, MSTATUS_MIE
  li a0, MIP_SSIP
  csrc mip, a0
  csrw mie, zero
  csrw mideleg, zero

  /* --- mstatus.TSR makes SRET in S-mode illegal; TVM does the same for satp --- */
  li a0, MSTATUS_TSR
  csrs mstatus, a0
  expect_trap
  to_mode PRV_S
s_sret:
  sret
  to_m
  check_m_trap 29, CAUSE_ILLEGAL_INSTR
  la t0, s_sret
  checkr 30, s11, t0
  li a0, MSTATUS_TSR
  csrc mstatus, a0
  li a0, MSTATUS_TVM
  csrs mstatus, a0
  expect_trap
  to_mode PRV_S
  csrr a1, satp
  to_m
  check_m_trap 31, CAUSE_ILLEGAL_INSTR
  expect_trap
  to_mode PRV_S
  sfence.vma
  to_m
  check_m_trap 32, CAUSE_ILLEGAL_INSTR
  li a0, MSTATUS_TVM
  csrc mstatus, a0
  expect_trap
  to_mode PRV_S
  csrr a1, satp                              /* allowed again */
  sfence.vma
  to_m
  check_no_trap 33

  set_mtvec trap_fail
  j pass
