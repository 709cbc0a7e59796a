#!/usr/bin/env bash
# Rebuild Vireo's bundled RISC-V guest images from Debian packages only.
#
#   sudo scripts/build-images.sh [STAGE...]
#
# Stages (default: all, in this order):
#   deps       install the Debian build dependencies that are missing
#   kernel     Linux 6.1 `Image` from linux-source-6.1 (defconfig + fragment)
#   busybox    static riscv64 busybox from Debian's busybox source package
#   initramfs  cpio (newc) with busybox + scripts/initramfs/
#   opensbi    fw_dynamic.bin from Debian's opensbi package
#   install    write images/riscv64/{*.gz,SHA256SUMS,VERSIONS}
#
# Environment:
#   VIREO_BUILD_DIR   scratch directory outside the repo (/tmp/vireo-images-build)
#   VIREO_JOBS        parallel make jobs (2)
#   SOURCE_DATE_EPOCH fixed timestamp (default: date of the linux-source-6.1
#                     Debian changelog entry, so it only changes with the package)
#
# The only files written inside the repository are images/riscv64/*.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${VIREO_BUILD_DIR:-/tmp/vireo-images-build}
OUT="$REPO/images/riscv64"
JOBS=${VIREO_JOBS:-2}
FRAGMENT="$REPO/scripts/linux-riscv64.config"
INITRAMFS_SRC="$REPO/scripts/initramfs"
CROSS=riscv64-linux-gnu-
KSRC_TAR=/usr/src/linux-source-6.1.tar.xz
OPENSBI_BIN=/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin

DEPS=(gcc make gcc-riscv64-linux-gnu libc6-dev-riscv64-cross linux-source-6.1
      opensbi bc bison flex libssl-dev libelf-dev cpio dpkg-dev xz-utils gzip
      perl python3 rsync kmod)

case "$BUILD" in
  "$REPO"|"$REPO"/*) echo "VIREO_BUILD_DIR must be outside the repo" >&2; exit 1 ;;
esac

log() { printf '\n=== %s: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "this step needs root (apt-get): run with sudo" >&2
    exit 1
  fi
}

# ---------------------------------------------------------------- deps
stage_deps() {
  local missing=() p
  for p in "${DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    need_root
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
      || { apt-get update && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y --no-install-recommends "${missing[@]}"; }
  fi
}

# Fixed timestamp / identity for reproducible builds.
setup_env() {
  if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(dpkg-parsechangelog \
      -l /usr/share/doc/linux-source-6.1/changelog.Debian.gz -STimestamp)
  fi
  export SOURCE_DATE_EPOCH
  export KBUILD_BUILD_TIMESTAMP
  KBUILD_BUILD_TIMESTAMP=$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %e %H:%M:%S UTC %Y')
  export KBUILD_BUILD_USER=vireo KBUILD_BUILD_HOST=vireo KBUILD_BUILD_VERSION=1
  export LC_ALL=C TZ=UTC
  umask 022
}

# ---------------------------------------------------------------- kernel
KDIR="$BUILD/linux"
stage_kernel() {
  local kver stamp
  kver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
  stamp="$KDIR/.vireo-source-$kver"
  if [ ! -e "$stamp" ]; then
    log "extracting $KSRC_TAR ($kver)"
    rm -rf "$KDIR" "$BUILD/linux-source-6.1"
    mkdir -p "$BUILD"
    tar -C "$BUILD" -xf "$KSRC_TAR"
    mv "$BUILD/linux-source-6.1" "$KDIR"
    touch "$stamp"
  fi
  log "configuring kernel (defconfig + $(basename "$FRAGMENT"))"
  local kmake=(nice -n 19 make -C "$KDIR" ARCH=riscv CROSS_COMPILE=$CROSS -j"$JOBS")
  # Merge the fragment into the (minimal) defconfig file itself, then expand
  # with olddefconfig: same result as `make defconfig` + fragment, except that
  # options only selected by something the fragment turns off go away too
  # (merging into an expanded .config would keep them as sticky user values).
  (cd "$KDIR" && ARCH=riscv CROSS_COMPILE=$CROSS \
     scripts/kconfig/merge_config.sh -m -O . arch/riscv/configs/defconfig "$FRAGMENT")
  "${kmake[@]}" olddefconfig
  # Check that every option of the fragment came out as asked.
  local line opt want got bad=0
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=*) opt=${line%%=*}; want=$line ;;
      "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}; want="" ;;
      *) continue ;;
    esac
    got=$(grep -E "^$opt=" "$KDIR/.config" || true)
    if [ "$got" != "$want" ]; then
      echo "warning: $opt: wanted '${want:-n}', got '${got:-n}'" >&2; bad=1
    fi
  done < "$FRAGMENT"
  [ $bad = 0 ] || echo "warning: some fragment options were not applied (see above)" >&2
  log "building kernel Image (make -j$JOBS)"
  "${kmake[@]}" Image
  ls -l "$KDIR/arch/riscv/boot/Image"
}

# ---------------------------------------------------------------- busybox
BBDIR="$BUILD/busybox"
ensure_deb_src() {
  # apt-get source needs deb-src entries; mirror the existing deb sources.
  if apt-get source --print-uris -qq busybox >/dev/null 2>&1; then return; fi
  need_root
  local f=/etc/apt/sources.list.d/vireo-deb-src.sources src
  log "adding deb-src entries ($f)"
  : > "$f.tmp"
  for src in /etc/apt/sources.list.d/*.sources; do
    [ -e "$src" ] && [ "$src" != "$f" ] || continue
    grep -q 'deb.debian.org\|/debian' "$src" || continue
    sed -e 's/^Types:.*/Types: deb-src/' "$src" >> "$f.tmp"
    echo >> "$f.tmp"
  done
  if [ -e /etc/apt/sources.list ]; then
    grep -E '^deb[[:space:]]' /etc/apt/sources.list | grep '/debian' \
      | sed -e 's/^deb[[:space:]]/deb-src /' > /etc/apt/sources.list.d/vireo-deb-src.list || true
  fi
  mv "$f.tmp" "$f"
  apt-get update
}

stage_busybox() {
  ensure_deb_src
  local ver dir
  ver=$(apt-cache showsrc busybox | sed -n 's/^Version: //p' | sort -V | tail -n1)
  if [ ! -e "$BBDIR/.vireo-source-$ver" ]; then
    log "fetching busybox source $ver"
    rm -rf "$BBDIR"; mkdir -p "$BBDIR"
    (cd "$BBDIR" && apt-get source "busybox=$ver")
    touch "$BBDIR/.vireo-source-$ver"
  fi
  dir=$(find "$BBDIR" -mindepth 1 -maxdepth 1 -type d -name 'busybox-*' | head -n1)
  # Like debian/rules: no kconfig timestamp, Debian version as the build tag
  # (shown as "BusyBox v1.35.0 (...)").
  local bmake=(nice -n 19 make -C "$dir" ARCH=riscv CROSS_COMPILE=$CROSS -j"$JOBS"
               KCONFIG_NOTIMESTAMP=1 BB_EXTRA_VERSION="Vireo; Debian source ${ver#*:}")
  log "configuring busybox (defconfig + static)"
  "${bmake[@]}" defconfig >/dev/null
  # Static; drop applets that are useless here or fail with the cross libc.
  sed -i \
    -e 's/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/' \
    -e 's/^CONFIG_TC=y/# CONFIG_TC is not set/' \
    -e 's/^CONFIG_FEATURE_TC_INGRESS=y/# CONFIG_FEATURE_TC_INGRESS is not set/' \
    -e 's/^CONFIG_PIE=y/# CONFIG_PIE is not set/' \
    "$dir/.config"
  { yes '' || true; } | "${bmake[@]}" oldconfig >/dev/null
  grep -q '^CONFIG_STATIC=y' "$dir/.config"
  log "building busybox"
  "${bmake[@]}" busybox
  rm -rf "$BUILD/busybox-install"
  "${bmake[@]}" CONFIG_PREFIX="$BUILD/busybox-install" install >/dev/null
  ${CROSS}readelf -h "$dir/busybox" | grep -E 'Machine|Type'
  if ${CROSS}readelf -l "$dir/busybox" | grep -q INTERP; then
    echo "busybox is not static" >&2; exit 1
  fi
}

# ---------------------------------------------------------------- initramfs
# Built with the kernel's gen_init_cpio (compiled for the host from the kernel
# tree): no root needed for device nodes, every entry owned by root, entries
# in sorted order, every mtime = SOURCE_DATE_EPOCH.
stage_initramfs() {
  local root="$BUILD/initramfs-root" list="$BUILD/initramfs.list"
  local gen="$BUILD/gen_init_cpio"
  gcc -O2 -o "$gen" "$KDIR/usr/gen_init_cpio.c"
  rm -rf "$root"; mkdir -p "$root"
  cp -a "$BUILD/busybox-install/." "$root/"
  rm -f "$root/linuxrc"
  cp -a "$INITRAMFS_SRC/." "$root/"
  mkdir -p "$root"/{dev,proc,sys,tmp,root,run,mnt,var/log,etc/init.d}
  ln -sfn bin/busybox "$root/init"
  # gen_init_cpio takes regular files' mtimes from the files themselves.
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  : > "$list"
  {
    echo "nod /dev/console 600 0 0 c 5 1"
    echo "nod /dev/null 666 0 0 c 1 3"
    (cd "$root" && find . -mindepth 1 | sed 's|^\./|/|' | sort) | while IFS= read -r p; do
      local f="$root$p" mode
      if [ -L "$f" ]; then
        echo "slink $p $(readlink "$f") 777 0 0"
      elif [ -d "$f" ]; then
        case "$p" in /tmp) mode=1777 ;; /root) mode=700 ;; *) mode=755 ;; esac
        echo "dir $p $mode 0 0"
      elif [ -f "$f" ]; then
        if [ -x "$f" ]; then mode=755; else mode=644; fi
        echo "file $p $f $mode 0 0"
      else
        echo "unsupported file type: $p" >&2; exit 1
      fi
    done
  } > "$list.unsorted"
  # Sort by path so parents precede children; device nodes go under /dev.
  sort -k2,2 "$list.unsorted" > "$list"
  "$gen" -t "$SOURCE_DATE_EPOCH" "$list" > "$BUILD/initramfs.cpio"
  ls -l "$BUILD/initramfs.cpio"
}

# ---------------------------------------------------------------- opensbi
stage_opensbi() {
  cp "$OPENSBI_BIN" "$BUILD/fw_dynamic.bin"
}

# ---------------------------------------------------------------- install
stage_install() {
  local img="$KDIR/arch/riscv/boot/Image" f
  mkdir -p "$OUT"
  cp "$img" "$BUILD/Image"
  for f in Image initramfs.cpio fw_dynamic.bin; do
    gzip -9 -n -c "$BUILD/$f" > "$OUT/$f.gz.tmp"
    mv "$OUT/$f.gz.tmp" "$OUT/$f.gz"
  done
  (cd "$BUILD" && sha256sum Image initramfs.cpio fw_dynamic.bin) > "$OUT/SHA256SUMS"
  {
    echo "# Debian packages used to build images/riscv64 (scripts/build-images.sh)"
    local p
    for p in linux-source-6.1 opensbi gcc-riscv64-linux-gnu gcc-12-riscv64-linux-gnu \
             binutils-riscv64-linux-gnu libc6-dev-riscv64-cross linux-libc-dev-riscv64-cross; do
      dpkg-query -W -f='${Package} ${Version} (source: ${source:Package} ${source:Version})\n' "$p"
    done
    echo "busybox (source) $(cat "$BBDIR"/busybox_*.dsc | sed -n 's/^Version: //p' | head -n1)"
    echo "kernel-release $(cat "$KDIR/include/config/kernel.release")"
    echo "SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH"
  } > "$OUT/VERSIONS"
  # Image header: image_size at offset 16 (le64).
  local isz
  isz=$(od -An -t u8 -j 16 -N 8 "$BUILD/Image" | tr -d ' ')
  log "done"
  echo "Image: $(stat -c %s "$BUILD/Image") bytes, header image_size=$isz" >&2
  ls -l "$OUT" >&2
}

# ---------------------------------------------------------------- main
main() {
  local stages=("$@")
  [ ${#stages[@]} -gt 0 ] || stages=(deps kernel busybox initramfs opensbi install)
  setup_env
  mkdir -p "$BUILD"
  local s
  for s in "${stages[@]}"; do
    case "$s" in
      deps|kernel|busybox|initramfs|opensbi|install) "stage_$s" ;;
      *) echo "unknown stage: $s" >&2; exit 2 ;;
    esac
  done
}

main "$@"; exit $?
