/*
 * sv39.S: Sv39 virtual memory (privileged spec, sections 4.3 and 4.4), with page tables built
 * here. S-mode code runs from an identity-mapped 1 GiB page; the checks run in M-mode.
 * Covers 4 KiB, 2 MiB and 1 GiB pages, R/W/X permissions (load, store and instruction page
 * faults with mcause and mtval/stval = the virtual address), invalid and reserved PTEs,
 * misaligned superpages, a non-leaf PTE at the last level, non-canonical addresses, the U bit
 * with SUM, MXR, U-mode access, A/D updates by hardware, SFENCE.VMA after changing a PTE (also
 * of two pages that share a TLB index, both cached),
 * page faults delegated to S-mode, MPRV, and satp's WARL mode field.
 */
#include "common.h"

#define RWAD (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
#define MEGA_PA 0x80200000                   /* 2 MiB-aligned RAM past this program */
#define VA_MEGA 0x40000000                   /* root[1] -> l1[0]: 2 MiB page */
#define VA_4K   0x40200000                   /* root[1] -> l1[1] -> l0[i]: 4 KiB pages */
#define VA_MIS2M 0x40400000                  /* l1[2]: misaligned 2 MiB page */
#define VA_DEEP 0x40600000                   /* l1[3] -> l0bad[0]: pointer at level 0 */
#define VA_GIGA 0x100000000                  /* root[4]: 1 GiB page onto 0x80000000 */
#define VA_MIS1G 0x140000000                 /* root[5]: misaligned 1 GiB page */
#define VA_NONCANON 0x8000000000             /* bit 39 set, bit 38 clear */
#define VA_P (VA_4K + 10 * 0x1000)           /* l0[10] */
#define VA_Q (VA_4K + 266 * 0x1000)          /* l0[266]: the same TLB index as VA_P */

/* Check \n: one trap with cause \cause and tval = \va, taken by mode \prv. */
.macro check_fault n, cause, va, prv
  check_trap \n, \cause
  li t6, \va
  beq s10, t6, .Ltval_ok\@
  j fail
.Ltval_ok\@:
  li t6, \prv
  beq s6, t6, .Lprv_ok\@
  j fail
.Lprv_ok\@:
.endm

/* Check \n: PTE \index of l0 has exactly the A and D bits \ad. */
.macro check_ad n, index, ad
  la t0, l0
  ld t0, (\index * 8)(t0)
  andi t0, t0, PTE_A | PTE_D
  check \n, t0, \ad
.endm

/* Maps VA_P to page \p and VA_Q to page \q (clobbers a0, t0-t2). */
.macro map_pq p, q
  la a0, \p
  set_pte l0, 10, a0, RWAD
  la a0, \q
  set_pte l0, 266, a0, RWAD
.endm

main:
  li a7, 0

  /* --- page tables --- */
  li a0, 0x80000000
  set_pte root, 2, a0, RWAD | PTE_X          /* identity: this program, for S-mode */
  set_pte root, 4, a0, RWAD                  /* 1 GiB alias */
  li a0, MEGA_PA
  set_pte root, 5, a0, RWAD                  /* not 1 GiB-aligned */
  la a0, l1
  set_pte root, 1, a0, PTE_V
  li a0, MEGA_PA
  set_pte l1, 0, a0, RWAD
  li a0, MEGA_PA + 0x1000
  set_pte l1, 2, a0, RWAD                    /* not 2 MiB-aligned */
  la a0, l0
  set_pte l1, 1, a0, PTE_V
  la a0, l0bad
  set_pte l1, 3, a0, PTE_V
  la a0, page_a
  set_pte l0bad, 0, a0, PTE_V                /* a pointer where a leaf must be */
  set_pte l0, 0, a0, RWAD
  set_pte l0, 1, a0, PTE_V | PTE_R | PTE_A   /* read-only */
  set_pte l0, 2, a0, PTE_V | PTE_X | PTE_A   /* execute-only */
  set_pte l0, 3, a0, RWAD & ~PTE_V           /* invalid */
  set_pte l0, 4, a0, PTE_V | PTE_W | PTE_A | PTE_D  /* W without R: reserved */
  set_pte l0, 5, a0, RWAD | PTE_U            /* user page */
  set_pte l0, 9, a0, RWAD
  la a0, page_b
  set_pte l0, 6, a0, PTE_V | PTE_R | PTE_W   /* A = D = 0 */
  la a0, xpage
  set_pte l0, 7, a0, PTE_V | PTE_X           /* executable, A = 0 */
  set_pte l0, 8, a0, PTE_V | PTE_X | PTE_A | PTE_U
  la a0, page_a
  li a1, 0x1111111111111111
  sd a1, 0(a0)
  la a0, page_b
  li a1, 0x2222222222222222
  sd a1, 0(a0)
  li a0, MEGA_PA + 0x12340
  li a1, 0x3333333333333333
  sd a1, 0(a0)

  /* --- satp --- */
  la a0, root
  srli a0, a0, 12
  li a1, SATP_SV39
  or s0, a0, a1                              /* s0 = satp value for this program */
  csrw satp, s0
  csrr a0, satp
  checkr 1, a0, s0
  li a0, (5 << 60) | 0x1234                  /* reserved mode: the write is ignored */
  csrw satp, a0
  csrr a0, satp
  checkr 2, a0, s0
  sfence.vma
  set_mtvec trap_skip

  /* --- translation through each page size --- */
  expect_trap
  to_mode PRV_S
  li t0, VA_4K
  ld a0, 0(t0)
  li t0, VA_MEGA + 0x12340
  ld a1, 0(t0)
  la t0, page_a
  li t1, VA_GIGA - 0x80000000
  add t0, t0, t1
  ld a2, 0(t0)
  li t0, VA_MEGA + 0x12348
  li t1, 0x4444
  sd t1, 0(t0)
  to_m
  check_no_trap 3
  check 4, a0, 0x1111111111111111
  check 5, a1, 0x3333333333333333
  check 6, a2, 0x1111111111111111
  li t0, MEGA_PA + 0x12348
  ld a0, 0(t0)
  check 7, a0, 0x4444
  csrr a0, satp                              /* M-mode is never translated */
  checkr 8, a0, s0

  /* --- permission faults --- */
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x1000
  ld a0, 0(t0)                               /* read-only page: loads work */
  to_m
  check_no_trap 9
  check 10, a0, 0x1111111111111111
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x1008
  sd zero, 0(t0)
  to_m
  check_fault 11, CAUSE_STORE_PAGE_FAULT, VA_4K + 0x1008, PRV_M
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x2010
  ld a0, 0(t0)                               /* execute-only */
  to_m
  check_fault 12, CAUSE_LOAD_PAGE_FAULT, VA_4K + 0x2010, PRV_M
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x3000
  lw a0, 0(t0)                               /* invalid */
  to_m
  check_fault 13, CAUSE_LOAD_PAGE_FAULT, VA_4K + 0x3000, PRV_M
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x4000
  sd zero, 0(t0)                             /* W without R */
  to_m
  check_fault 14, CAUSE_STORE_PAGE_FAULT, VA_4K + 0x4000, PRV_M
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x20
  jalr ra, 0(t0)                             /* no X: trap_skip resumes at ra */
  to_m
  check_fault 15, CAUSE_FETCH_PAGE_FAULT, VA_4K + 0x20, PRV_M
  check 16, s11, VA_4K + 0x20                /* mepc = the target */
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x7000
  jalr ra, 0(t0)                             /* execute-only code page */
  to_m
  check_no_trap 17
  check 18, a0, 0x5a

  /* --- malformed tables and addresses --- */
  expect_trap
  to_mode PRV_S
  li t0, VA_MIS2M
  ld a0, 0(t0)
  to_m
  check_fault 19, CAUSE_LOAD_PAGE_FAULT, VA_MIS2M, PRV_M
  expect_trap
  to_mode PRV_S
  li t0, VA_MIS1G + 8
  ld a0, 0(t0)
  to_m
  check_fault 20, CAUSE_LOAD_PAGE_FAULT, VA_MIS1G + 8, PRV_M
  expect_trap
  to_mode PRV_S
  li t0, VA_DEEP
  ld a0, 0(t0)
  to_m
  check_fault 21, CAUSE_LOAD_PAGE_FAULT, VA_DEEP, PRV_M
  expect_trap
  to_mode PRV_S
  li t0, VA_NONCANON
  sd zero, 0(t0)
  to_m
  check_fault 22, CAUSE_STORE_PAGE_FAULT, VA_NONCANON, PRV_M
  expect_trap
  to_mode PRV_S
  li t0, 0x3000000000                        /* no root entry */
  ld a0, 0(t0)
  to_m
  check_fault 23, CAUSE_LOAD_PAGE_FAULT, 0x3000000000, PRV_M

  /* --- MXR: execute-only pages become readable --- */
  li a0, MSTATUS_MXR
  csrs mstatus, a0
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x2000
  ld a0, 0(t0)
  to_m
  check_no_trap 24
  check 25, a0, 0x1111111111111111
  li a0, MSTATUS_MXR
  csrc mstatus, a0

  /* --- the U bit: S needs SUM to touch user pages and can never execute them --- */
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x5000
  ld a0, 0(t0)
  to_m
  check_fault 26, CAUSE_LOAD_PAGE_FAULT, VA_4K + 0x5000, PRV_M
  li a0, MSTATUS_SUM
  csrs mstatus, a0
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x5000
  ld a0, 0(t0)
  li t1, 0x5555
  sd t1, 8(t0)
  to_m
  check_no_trap 27
  check 28, a0, 0x1111111111111111
  la t0, page_a
  ld a0, 8(t0)
  check 29, a0, 0x5555
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x8000
  jalr ra, 0(t0)
  to_m
  check_fault 30, CAUSE_FETCH_PAGE_FAULT, VA_4K + 0x8000, PRV_M
  li a0, MSTATUS_SUM
  csrc mstatus, a0
  /* SUM clear again, with no SFENCE.VMA: the user page S-mode read with SUM must fault again */
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x5000
  ld a0, 0(t0)
  to_m
  check_fault 48, CAUSE_LOAD_PAGE_FAULT, VA_4K + 0x5000, PRV_M
  /* S-mode sets SUM, reads the user page, clears SUM: the next read faults at once */
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x5000
  li a0, MSTATUS_SUM
  csrs sstatus, a0
  ld a1, 0(t0)
  csrc sstatus, a0
  ld a1, 0(t0)
  to_m
  check_fault 60, CAUSE_LOAD_PAGE_FAULT, VA_4K + 0x5000, PRV_M

  /* --- U-mode: the identity page becomes a user page for a while --- */
  li a0, 0x80000000
  set_pte root, 2, a0, RWAD | PTE_X | PTE_U
  sfence.vma
  expect_trap
  to_mode PRV_U
  li t0, VA_4K + 0x5000
  ld a0, 0(t0)
  to_m
  check_no_trap 31
  check 32, a0, 0x1111111111111111
  expect_trap
  to_mode PRV_U
  li t0, VA_4K
  ld a0, 0(t0)                               /* not a user page */
  to_m
  check_fault 33, CAUSE_LOAD_PAGE_FAULT, VA_4K, PRV_M
  expect_trap
  to_mode PRV_U
  li t0, VA_4K + 0x8000
  jalr ra, 0(t0)                             /* user code page */
  to_m
  check_no_trap 34
  li a0, 0x80000000
  set_pte root, 2, a0, RWAD | PTE_X
  sfence.vma

  /* --- A and D are set by hardware --- */
  check_ad 35, 6, 0
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x6000
  ld a0, 0(t0)
  to_m
  check_no_trap 36
  check 37, a0, 0x2222222222222222
  check_ad 38, 6, PTE_A                      /* a load sets A only */
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x6000
  sd zero, 16(t0)
  to_m
  check_no_trap 39
  check_ad 40, 6, PTE_A | PTE_D
  check_ad 41, 7, PTE_A                      /* the fetches through l0[7] above */

  /* --- SFENCE.VMA makes a changed PTE visible --- */
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x9000
  ld a0, 0(t0)
  to_m
  check 42, a0, 0x1111111111111111
  la a0, page_b
  set_pte l0, 9, a0, RWAD
  to_mode PRV_S
  sfence.vma
  li t0, VA_4K + 0x9000
  ld a0, 0(t0)
  to_m
  check_no_trap 43
  check 44, a0, 0x2222222222222222

  /* --- a page fault delegated to S-mode --- */
  la a0, strap_skip
  csrw stvec, a0
  li a0, 1 << CAUSE_LOAD_PAGE_FAULT
  csrw medeleg, a0
  expect_trap
  to_mode PRV_S
  li t0, VA_4K + 0x3008
  ld a0, 0(t0)
  to_m
  check_fault 45, CAUSE_LOAD_PAGE_FAULT, VA_4K + 0x3008, PRV_S
  csrw medeleg, zero

  /* --- MPRV: M-mode loads and stores translated as S-mode --- */
  expect_trap
  li a0, MSTATUS_MPP
  csrc mstatus, a0
  li a0, (PRV_S << 11) | MSTATUS_MPRV
  csrs mstatus, a0
  li t0, VA_MEGA + 0x12340
  ld a1, 0(t0)
  li a0, MSTATUS_MPRV
  csrc mstatus, a0
  check 46, a1, 0x3333333333333333
  check_no_trap 47

  /* --- two pages on one TLB index (VA_P, VA_Q): both cached, remapped, fenced --- */
  map_pq page_a, page_b
  expect_trap
  to_mode PRV_S
  sfence.vma
  li t0, VA_P
  li t1, VA_Q
  ld a0, 0(t0)
  ld a1, 0(t1)
  ld a0, 0(t0)
  ld a1, 0(t1)
  sd a0, 24(t0)
  sd a1, 24(t1)
  sd a0, 24(t0)
  to_m
  check_no_trap 49
  check 50, a0, 0x1111111111111111
  check 51, a1, 0x2222222222222222
  map_pq page_b, page_a
  to_mode PRV_S
  li t0, VA_P
  li t1, VA_Q
  sfence.vma t0
  sfence.vma t1
  ld a0, 0(t0)
  ld a1, 0(t1)
  li t2, 0x5555
  sd t2, 32(t0)                              /* lands in page_b now */
  to_m
  check_no_trap 52
  check 53, a0, 0x2222222222222222
  check 54, a1, 0x1111111111111111
  la t0, page_b
  ld a0, 32(t0)
  check 55, a0, 0x5555
  la t0, page_a
  ld a0, 32(t0)
  check 56, a0, 0
  map_pq page_a, page_b                      /* back, with a full fence */
  to_mode PRV_S
  sfence.vma
  li t0, VA_P
  ld a0, 0(t0)
  li t0, VA_Q
  ld a1, 0(t0)
  to_m
  check_no_trap 57
  check 58, a0, 0x1111111111111111
  check 59, a1, 0x2222222222222222

  csrw satp, zero
  set_mtvec trap_fail
  j pass

  /* A page of code, reached through l0[7] and l0[8]. */
  .balign 4096
xpage:
  li a0, 0x5a
  ret

  .bss
  .balign 4096
root: .skip 4096
l1: .skip 4096
l0: .skip 4096
l0bad: .skip 4096
page_a: .skip 4096
page_b: .skip 4096
