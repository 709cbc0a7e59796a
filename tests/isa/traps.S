/*
 * traps.S: synchronous exceptions taken in M-mode (privileged spec, sections 3.1.6-3.1.16 and
 * 3.3): ECALL from M, S and U with their mcause values, trap entry and MRET effects on
 * mstatus (MPP, MPIE, MIE), illegal instructions of both lengths with mtval = the instruction
 * bits, EBREAK and C.EBREAK, access faults for loads, stores and fetches outside any device
 * or memory (mtval = the address), and exceptions going to BASE when mtvec is vectored.
 */
#include "common.h"

/* An address with nothing behind it on the virt board (RAM ends well below 4 GiB). */
#define NOWHERE 0x100000000

/* Check \n: one trap with cause \cause, mepc = \label and mtval = \tval. */
.macro check_exc n, cause, label, tval
  check_trap \n, \cause
  la t0, \label
  beq s11, t0, .Lepc_ok\@
  j fail
.Lepc_ok\@:
  li t0, \tval
  beq s10, t0, .Ltval_ok\@
  j fail
.Ltval_ok\@:
.endm

/* Check \n: mstatus at the last trap had MPP = \mpp. */
.macro check_mpp n, mpp
  srli t0, s7, 11
  andi t0, t0, 3
  check \n, t0, \mpp
.endm

main:
  set_mtvec trap_skip
  li a7, 0

  /* --- ECALL from each mode --- */
  expect_trap
ecall_m:
  ecall
  check_exc 1, CAUSE_MACHINE_ECALL, ecall_m, 0
  check_mpp 2, PRV_M
  expect_trap
  to_mode PRV_S
ecall_s:
  ecall
  to_m
  check_exc 3, CAUSE_SUPERVISOR_ECALL, ecall_s, 0
  check_mpp 4, PRV_S
  expect_trap
  to_mode PRV_U
ecall_u:
  ecall
  to_m
  check_exc 5, CAUSE_USER_ECALL, ecall_u, 0
  check_mpp 6, PRV_U

  /* --- trap entry saves MIE in MPIE and clears MIE; MRET restores it --- */
  csrw mie, zero                             /* no interrupt can be taken meanwhile */
  li a0, MSTATUS_MPIE
  csrc mstatus, a0
  csrsi mstatus, MSTATUS_MIE
  expect_trap
  ecall
  andi a0, s7, MSTATUS_MIE | MSTATUS_MPIE
  check 7, a0, MSTATUS_MPIE
  csrr a0, mstatus
  andi a0, a0, MSTATUS_MIE | MSTATUS_MPIE
  check 8, a0, MSTATUS_MIE | MSTATUS_MPIE
  csrci mstatus, MSTATUS_MIE
  expect_trap
  ecall
  andi a0, s7, MSTATUS_MIE | MSTATUS_MPIE
  check 9, a0, 0
  /* MRET: MIE = MPIE, MPIE = 1, MPP = U (the least-privileged mode) */
  li a0, MSTATUS_MPP | MSTATUS_MPIE
  csrs mstatus, a0                           /* return to M with MPIE set */
  la a0, 1f
  csrw mepc, a0
  mret
1:
  csrr a0, mstatus
  andi a1, a0, MSTATUS_MIE | MSTATUS_MPIE
  check 10, a1, MSTATUS_MIE | MSTATUS_MPIE
  srli a1, a0, 11
  andi a1, a1, 3
  check 11, a1, PRV_U
  csrci mstatus, MSTATUS_MIE

  /* --- illegal instructions: mtval holds the instruction --- */
  expect_trap
ill_custom:
  .word 0x0000000b                           /* custom-0 opcode, not implemented */
  check_exc 12, CAUSE_ILLEGAL_INSTR, ill_custom, 0x0000000b
  expect_trap
ill_funct7:
  .word 0xfe000033                           /* OP with funct7 = 0x7f */
  check_exc 13, CAUSE_ILLEGAL_INSTR, ill_funct7, 0xfe000033
  expect_trap
ill_zero:
  .half 0x0000                               /* the all-zero 16-bit instruction */
  check_exc 14, CAUSE_ILLEGAL_INSTR, ill_zero, 0
  expect_trap
ill_clui:
  .half 0x6501                               /* c.lui a0, 0: reserved */
  check_exc 15, CAUSE_ILLEGAL_INSTR, ill_clui, 0x6501
  expect_trap
  to_mode PRV_U
ill_mret:
  mret                                       /* M-only */
  to_m
  check_exc 16, CAUSE_ILLEGAL_INSTR, ill_mret, 0x30200073
  check_mpp 17, PRV_U
  expect_trap
  to_mode PRV_U
ill_sret:
  sret
  to_m
  check_exc 18, CAUSE_ILLEGAL_INSTR, ill_sret, 0x10200073
  expect_trap
  to_mode PRV_S
ill_mret_s:
  mret
  to_m
  check_exc 19, CAUSE_ILLEGAL_INSTR, ill_mret_s, 0x30200073
  check_mpp 20, PRV_S

  /* --- breakpoints: mtval is 0 or the address of the instruction --- */
  expect_trap
brk:
  ebreak
  check_trap 21, CAUSE_BREAKPOINT
  la t0, brk
  checkr 22, s11, t0
  beqz s10, 1f
  checkr 23, s10, t0
1:
  expect_trap
cbrk:
  c.ebreak
  check_trap 24, CAUSE_BREAKPOINT
  la t0, cbrk
  checkr 25, s11, t0
  beqz s10, 1f
  checkr 26, s10, t0
1:
  expect_trap
  to_mode PRV_U
ubrk:
  ebreak                                     /* not delegated: M takes it from U too */
  to_m
  check_trap 27, CAUSE_BREAKPOINT
  check_mpp 28, PRV_U

  /* --- access faults --- */
  li a1, NOWHERE
  expect_trap
load_fault:
  ld a0, 8(a1)
  check_exc 29, CAUSE_LOAD_ACCESS, load_fault, NOWHERE + 8
  expect_trap
store_fault:
  sw a0, 4(a1)
  check_exc 30, CAUSE_STORE_ACCESS, store_fault, NOWHERE + 4
  expect_trap
  jalr ra, 0(a1)                             /* trap_skip resumes at ra */
  check_trap 31, CAUSE_FETCH_ACCESS
  check 32, s10, NOWHERE
  check 33, s11, NOWHERE                     /* mepc = the target */
  expect_trap
  to_mode PRV_S                              /* PMP entry 0 grants S the whole space */
load_fault_s:
  lbu a0, 0(a1)
  to_m
  check_exc 34, CAUSE_LOAD_ACCESS, load_fault_s, NOWHERE

  /* --- exceptions ignore vectored mode --- */
  la a0, trap_skip
  ori a0, a0, 1
  csrw mtvec, a0
  expect_trap
  ecall
  check_trap 35, CAUSE_MACHINE_ECALL
  set_mtvec trap_fail

  j pass
