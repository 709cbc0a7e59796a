#!/bin/sh
# Builds the multi-hart bare-metal programs tests/isa/smp/*.S into tests/isa/smp/bin/*.elf
# (atomics.S once per hart count: atomics-2.elf, atomics-4.elf). Same compiler and flags as
# scripts/build-isa-tests.sh; the ELFs are committed. Usage: tests/isa/smp/build.sh [--check]
# (--check: also run each one under qemu-system-riscv64 with the hart count it needs).
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
CC=riscv64-unknown-elf-gcc
obj=$(mktemp -d)
trap 'rm -rf "$obj"' EXIT
mkdir -p tests/isa/smp/bin
rm -f tests/isa/smp/bin/*.elf
build() { # name source extra-flags...
  name=$1 src=$2
  shift 2
  "$CC" -march=rv64gc -mabi=lp64d -mno-relax "$@" -c -I tests/isa -o "$obj/$name.o" "$src"
  "$CC" -march=rv64gc -mabi=lp64d -nostdlib -static -T tests/isa/link.ld -o "tests/isa/smp/bin/$name.elf" "$obj/$name.o"
  echo "built tests/isa/smp/bin/$name.elf"
}
build atomics-2 tests/isa/smp/atomics.S -DNHARTS=2
build atomics-4 tests/isa/smp/atomics.S -DNHARTS=4
build fencei tests/isa/smp/fencei.S
build fencei-jit tests/isa/smp/fencei-jit.S

if [ "${1:-}" = "--check" ]; then
  status=0
  for run in atomics-2:2 atomics-4:4 fencei:2 fencei:4 fencei-jit:2; do
    elf=tests/isa/smp/bin/${run%%:*}.elf
    if timeout 60 qemu-system-riscv64 -M virt -m 256M -smp "${run##*:}" -bios none -kernel "$elf" -nographic \
        </dev/null >/dev/null 2>&1; then
      echo "qemu: PASS $elf -smp ${run##*:}"
    else
      echo "qemu: FAIL $elf -smp ${run##*:} (exit status $?)"
      status=1
    fi
  done
  exit $status
fi
