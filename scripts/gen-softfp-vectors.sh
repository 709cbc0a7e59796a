#!/bin/sh
# Regenerates tests/unit/softfp-vectors.bin.gz, the reference vectors for the RISC-V
# soft-float (src/target/riscv/core/softfp.ts, checked by tests/unit/softfp.test.ts):
# builds scripts/gen-softfp-vectors.c for RISC-V and runs it under qemu-riscv64-static,
# so results and fflags come from real F/D instructions (QEMU's RISC-V softfloat).
# Needs the Debian packages gcc-riscv64-linux-gnu and qemu-user-static.
#
# Usage: scripts/gen-softfp-vectors.sh [scale [seed [output]]]
# The defaults reproduce the committed file. A bigger one-off check, not committed:
#   scripts/gen-softfp-vectors.sh 20 7 /tmp/softfp-big.bin.gz
#   SOFTFP_VECTORS=/tmp/softfp-big.bin.gz node --test dist/tests/unit/softfp.test.js
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
scale=${1:-1}
seed=${2:-0}
out=${3:-$root/tests/unit/softfp-vectors.bin.gz}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
riscv64-linux-gnu-gcc -O2 -static -Wall -Wextra -o "$tmp/gen" "$root/scripts/gen-softfp-vectors.c"
qemu-riscv64-static "$tmp/gen" "$scale" "$seed" | gzip -9n > "$out"
