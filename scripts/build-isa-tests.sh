#!/bin/sh
# Builds Vireo's bare-metal ISA test programs: every tests/isa/*.S into tests/isa/bin/*.elf.
# The ELFs are committed, so only someone changing a program needs the cross compiler
# (Debian's gcc-riscv64-unknown-elf, installed here when missing).
# Usage: scripts/build-isa-tests.sh [--check]   (--check: also run each one under qemu-system-riscv64)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
CC=riscv64-unknown-elf-gcc

if ! command -v "$CC" >/dev/null 2>&1; then
  echo "$CC not found: installing gcc-riscv64-unknown-elf" >&2
  apt-get update
  apt-get install -y --no-install-recommends gcc-riscv64-unknown-elf
fi

mkdir -p tests/isa/bin
rm -f tests/isa/bin/*.elf
obj=$(mktemp -d)
trap 'rm -rf "$obj"' EXIT
for src in tests/isa/*.S; do
  name=$(basename "$src" .S)
  # -mno-relax: keep gp free for the check number and the code exactly as written.
  # Assembling and linking apart keeps temporary file names out of the symbol table
  # (the linker names the object in it), so rebuilding gives the same bytes.
  "$CC" -march=rv64gc -mabi=lp64d -mno-relax -c -I tests/isa -o "$obj/$name.o" "$src"
  "$CC" -march=rv64gc -mabi=lp64d -nostdlib -static -T tests/isa/link.ld \
    -o "tests/isa/bin/$name.elf" "$obj/$name.o"
  echo "built tests/isa/bin/$name.elf"
done

if [ "${1:-}" = "--check" ]; then
  status=0
  for elf in tests/isa/bin/*.elf; do
    if timeout 10 qemu-system-riscv64 -M virt -m 256M -bios none -kernel "$elf" -nographic \
        </dev/null >/dev/null 2>&1; then
      echo "qemu: PASS $elf"
    else
      echo "qemu: FAIL $elf (exit status $?)"
      status=1
    fi
  done
  exit $status
fi
