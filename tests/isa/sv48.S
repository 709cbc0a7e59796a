/*
 * sv48.S: Sv48 virtual memory (privileged spec, section 4.5): the four-level walk with 4 KiB,
 * 2 MiB, 1 GiB and 512 GiB pages, addresses beyond Sv39's reach, the canonical-address rule
 * at bit 47, a store page fault, A/D updates by hardware and SFENCE.VMA. S-mode code runs
 * from an identity-mapped 1 GiB page; the checks run in M-mode.
 */
#include "common.h"

#define RWAD (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
#define MEGA_PA 0x80200000
#define VA_MEGA 0x40000000                   /* root[0] -> l2[1] -> l1[0]: 2 MiB page */
#define VA_4K   0x40200000                   /* root[0] -> l2[1] -> l1[1] -> l0[i] */
#define VA_GIGA 0x100000000                  /* l2[4]: 1 GiB page onto 0x80000000 */
#define VA_TERA 0x8000000000                 /* root[1]: 512 GiB page onto 0 (past Sv39) */
#define VA_NONCANON 0x1000000000000          /* bit 48 set, bit 47 clear */

/* Check \n: one trap with cause \cause and mtval = \va. */
.macro check_fault n, cause, va
  check_trap \n, \cause
  li t6, \va
  beq s10, t6, .Ltval_ok\@
  j fail
.Ltval_ok\@:
.endm

main:
  li a7, 0

  /* --- page tables --- */
  la a0, l2
  set_pte root, 0, a0, PTE_V
  li a0, 0
  set_pte root, 1, a0, RWAD                  /* 512 GiB page */
  li a0, 0x80000000
  set_pte l2, 2, a0, RWAD | PTE_X            /* identity, for S-mode code */
  set_pte l2, 4, a0, RWAD
  la a0, l1
  set_pte l2, 1, a0, PTE_V
  li a0, MEGA_PA
  set_pte l1, 0, a0, RWAD
  la a0, l0
  set_pte l1, 1, a0, PTE_V
  la a0, page_a
  set_pte l0, 0, a0, RWAD
  set_pte l0, 1, a0, PTE_V | PTE_R | PTE_A   /* read-only */
  la a0, page_b
  set_pte l0, 2, a0, PTE_V | PTE_R | PTE_W   /* A = D = 0 */
  la a0, page_a
  li a1, 0x1111111111111111
  sd a1, 0(a0)
  la a0, page_b
  li a1, 0x2222222222222222
  sd a1, 0(a0)
  li a0, MEGA_PA + 0x5670
  li a1, 0x3333333333333333
  sd a1, 0(a0)

  la a0, root
  srli a0, a0, 12
  li a1, SATP_SV48
  or s0, a0, a1
  csrw satp, s0
  csrr a0, satp
  checkr 1, a0, s0
  sfence.vma
  set_mtvec trap_skip

  /* --- every page size --- */
  expect_trap
  to_mode PRV_S
  li t0, VA_4K
  ld a0, 0(t0)
  li t0, VA_MEGA + 0x5670
  ld a1, 0(t0)
  la t0, page_a
  li t1, VA_GIGA - 0x80000000
  add t1, t0, t1
  ld a2, 0(t1)
  li t1, VA_TERA
  add t1, t0, t1                             /* page_a's physical address inside the 512 GiB page */
  ld a3, 0(t1)
  li t2, 0x4444
  sd t2, 8(t1)
  to_m
  check_no_trap 2
  check 3, a0, 0x1111111111111111
  check 4, a1, 0x3333333333333333
  check 5, a2, 0x1111111111111111
  check 6, a3, 0x1111111111111111
  la t0, page_a
  ld a0, 8(t0)
  check 7, a0, 0x4444

  /* --- faults --- */
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x1010
  sd zero, 0(t0)
  to_m
  check_fault 8, CAUSE_STORE_PAGE_FAULT, VA_4K + 0x1010
  expect_trap
  to_mode PRV_S
  li t0, VA_NONCANON
  ld a0, 0(t0)
  to_m
  check_fault 9, CAUSE_LOAD_PAGE_FAULT, VA_NONCANON
  expect_trap
  to_mode PRV_S
  li t0, 0xffff800000000000                  /* canonical, but root[256] is empty */
  ld a0, 0(t0)
  to_m
  check_fault 10, CAUSE_LOAD_PAGE_FAULT, 0xffff800000000000

  /* --- A and D --- */
  la t0, l0
  ld a0, 16(t0)
  andi a0, a0, PTE_A | PTE_D
  check 11, a0, 0
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x2000
  ld a1, 0(t0)
  to_m
  la t0, l0
  ld a0, 16(t0)
  andi a0, a0, PTE_A | PTE_D
  check 12, a0, PTE_A
  to_mode PRV_S
  li t0, VA_4K + 0x2000
  sd a1, 8(t0)
  to_m
  check_no_trap 13
  la t0, l0
  ld a0, 16(t0)
  andi a0, a0, PTE_A | PTE_D
  check 14, a0, PTE_A | PTE_D

  /* --- SFENCE.VMA --- */
  la a0, page_b
  set_pte l0, 0, a0, RWAD
  to_mode PRV_S
  sfence.vma
  li t0, VA_4K
  ld a0, 0(t0)
  to_m
  check 15, a0, 0x2222222222222222

  csrw satp, zero
  set_mtvec trap_fail
  j pass

  .bss
  .balign 4096
root: .skip 4096
l2: .skip 4096
l1: .skip 4096
l0: .skip 4096
page_a: .skip 4096
page_b: .skip 4096
