#!/bin/sh
# Builds tests/functional/gdbstub/target.S into bin/target.elf (with symbols, for gdb) with
# the compiler and flags of scripts/build-isa-tests.sh; the ELF is committed, so running
# the tests never needs the cross compiler (Debian's gcc-riscv64-unknown-elf).
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
CC=riscv64-unknown-elf-gcc
obj=$(mktemp -d)
trap 'rm -rf "$obj"' EXIT
mkdir -p tests/functional/gdbstub/bin
"$CC" -march=rv64gc -mabi=lp64d -mno-relax -c -o "$obj/target.o" tests/functional/gdbstub/target.S
"$CC" -march=rv64gc -mabi=lp64d -nostdlib -static -T tests/isa/link.ld -o tests/functional/gdbstub/bin/target.elf "$obj/target.o"
echo "built tests/functional/gdbstub/bin/target.elf"
