#!/usr/bin/env bash
# Rebuild Vireo's bundled RISC-V guest images from Debian packages only.
#
#   sudo scripts/build-images.sh [STAGE...]
#
# Stages (default: all, in this order):
#   deps       install the Debian build dependencies that are missing
#   kernel     Linux 6.1 `Image` from linux-source-6.1 (defconfig + fragment)
#   busybox    static riscv64 busybox from Debian's busybox source package
#   e2fsprogs  static riscv64 mke2fs from Debian's e2fsprogs source package
#   initramfs  cpio (newc) with busybox + mke2fs + scripts/initramfs/
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
  # Check that every option of the fragment came out as asked: an option
  # whose dependencies are missing is silently dropped by olddefconfig, so a
  # mismatch stops the build (every option the guest needs, e.g. VIRTIO_*,
  # 9P, EXT4, is listed in the fragment for that reason).
  local line opt want got bad=0
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=*) opt=${line%%=*}; want=$line ;;
      "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}; want="" ;;
      *) continue ;;
    esac
    got=$(grep -E "^$opt=" "$KDIR/.config" || true)
    if [ "$got" != "$want" ]; then
      echo "error: $opt: wanted '${want:-n}', got '${got:-n}'" >&2; bad=1
    fi
  done < "$FRAGMENT"
  if [ $bad != 0 ]; then
    echo "error: some options of $(basename "$FRAGMENT") were not applied (see above)" >&2
    exit 1
  fi
  log "building kernel Image (make -j$JOBS)"
  "${kmake[@]}" Image
  ls -l "$KDIR/arch/riscv/boot/Image"
}

# ---------------------------------------------------------------- busybox
BBDIR="$BUILD/busybox"
ensure_deb_src() {
  # apt-get source (busybox, e2fsprogs) needs deb-src entries; mirror the
  # existing deb sources.
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

# ---------------------------------------------------------------- e2fsprogs
# mke2fs only (busybox's mke2fs/mkfs.ext2 cannot make ext3/ext4), cross built
# statically against glibc with e2fsprogs' private uuid/blkid libraries. With
# no /etc/mke2fs.conf in the guest it uses its built-in profile (the source's
# misc/mke2fs.conf.in, with Debian's patches applied).
E2DIR="$BUILD/e2fsprogs"
stage_e2fsprogs() {
  ensure_deb_src
  local ver dir obj="$E2DIR/build" inst="$BUILD/e2fsprogs-install"
  ver=$(apt-cache showsrc e2fsprogs | sed -n 's/^Version: //p' | sort -V | tail -n1)
  if [ ! -e "$E2DIR/.vireo-source-$ver" ]; then
    log "fetching e2fsprogs source $ver"
    rm -rf "$E2DIR"; mkdir -p "$E2DIR"
    (cd "$E2DIR" && apt-get source "e2fsprogs=$ver")
    touch "$E2DIR/.vireo-source-$ver"
  fi
  dir=$(find "$E2DIR" -mindepth 1 -maxdepth 1 -type d -name 'e2fsprogs-*' | head -n1)
  # Always configure from scratch in a separate object directory (~30 s).
  log "configuring e2fsprogs (riscv64, static, mke2fs only)"
  rm -rf "$obj"; mkdir -p "$obj"
  # PKG_CONFIG=false and the cached "no libmagic" keep host libraries out.
  (cd "$obj" && "$dir/configure" --build=x86_64-linux-gnu --host=riscv64-linux-gnu \
     --prefix=/usr --sysconfdir=/etc CC=${CROSS}gcc BUILD_CC=gcc PKG_CONFIG=false \
     CFLAGS="-O2 -ffile-prefix-map=$E2DIR=." LDFLAGS=-static \
     ac_cv_lib_magic_magic_file=no \
     --disable-nls --disable-rpath --disable-elf-shlibs --disable-bsd-shlibs \
     --enable-libuuid --enable-libblkid --without-pthread --disable-backtrace \
     --disable-fuse2fs --disable-debugfs --disable-imager --disable-resizer \
     --disable-defrag --disable-uuidd --disable-fsck --disable-e2initrd-helper \
     > "$obj/configure.log") \
    || { tail -n 30 "$obj/configure.log" >&2; exit 1; }
  log "building mke2fs"
  nice -n 19 make -C "$obj" -j"$JOBS" libs >/dev/null
  nice -n 19 make -C "$obj/misc" -j"$JOBS" mke2fs >/dev/null
  rm -rf "$inst"; mkdir -p "$inst/sbin"
  ${CROSS}strip --strip-all -o "$inst/sbin/mke2fs" "$obj/misc/mke2fs"
  ${CROSS}readelf -h "$inst/sbin/mke2fs" | grep -E 'Machine|Type'
  if ${CROSS}readelf -l "$inst/sbin/mke2fs" | grep -q INTERP; then
    echo "mke2fs is not static" >&2; exit 1
  fi
  ls -l "$inst/sbin/mke2fs"
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
  # e2fsprogs' mke2fs replaces busybox's mke2fs and mkfs.ext2 applet links
  # (remove the links first: copying onto them would overwrite busybox).
  local l
  for l in mke2fs mkfs.ext2 mkfs.ext3 mkfs.ext4; do rm -f "$root/sbin/$l"; done
  cp "$BUILD/e2fsprogs-install/sbin/mke2fs" "$root/sbin/mke2fs"
  chmod 755 "$root/sbin/mke2fs"
  for l in mkfs.ext2 mkfs.ext3 mkfs.ext4; do ln -s mke2fs "$root/sbin/$l"; done
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
    echo "e2fsprogs (source) $(cat "$E2DIR"/e2fsprogs_*.dsc | sed -n 's/^Version: //p' | head -n1)"
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
  [ ${#stages[@]} -gt 0 ] || stages=(deps kernel busybox e2fsprogs initramfs opensbi install)
  mkdir -p "$BUILD"
  local s env_done=0
  for s in "${stages[@]}"; do
    # The timestamp comes from linux-source-6.1, which the deps stage installs.
    if [ "$s" != deps ] && [ $env_done = 0 ]; then setup_env; env_done=1; fi
    case "$s" in
      deps|kernel|busybox|e2fsprogs|initramfs|opensbi|install) "stage_$s" ;;
      *) echo "unknown stage: $s" >&2; exit 2 ;;
    esac
  done
}

main "$@"; exit $?
