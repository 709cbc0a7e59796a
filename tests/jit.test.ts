/**
 * The ISA tests (tests/isa) and the difftest programs (tests/difftest) again, with the
 * JIT on (-accel tcg,jit=on through VIREO_JIT=1, inherited by every Vireo they start)
 * and a low translation threshold, so that nearly every repeated block runs translated.
 * The Linux boot test runs here too: at this threshold the kernel itself runs mostly translated.
 */
process.env.VIREO_JIT = '1';
process.env.VIREO_JIT_THRESHOLD ??= '2';
await import('./isa/isa.test.js');
await import('./difftest/difftest.test.js');
await import('./functional/linux-boot.test.js');
