#!/usr/bin/env bash
# Rebuild Vireo's bundled x86_64 guest images from Debian packages only.
#
#   sudo scripts/build-images-x86_64.sh [STAGE...]
#
# Stages (default: deps kernel busybox initramfs install):
#   deps       install the Debian build dependencies that are missing
#   kernel     Linux 6.1 `bzImage` from linux-source-6.1
#              (x86_64_defconfig + scripts/linux-x86_64.config)
#   busybox    static amd64 busybox from Debian's busybox-static package
#   initramfs  cpio (newc) with busybox + scripts/initramfs/
#   install    write images/x86_64/{*.gz,SHA256SUMS,VERSIONS}
#   qemu-test  (not run by default) boot the installed images under
#              qemu-system-x86_64 -M microvm -accel kvm and -M q35 -accel kvm,
#              check banner, prompt, `uname -m` and `poweroff`; needs /dev/kvm
#              and installs qemu-system-x86 if missing
#
# Environment:
#   VIREO_BUILD_DIR   scratch directory outside the repo (/tmp/vireo-images-build);
#                     this script uses its x86_64/ subdirectory
#   VIREO_JOBS        parallel make jobs (2)
#   SOURCE_DATE_EPOCH fixed timestamp (default: date of the linux-source-6.1
#                     Debian changelog entry, so it only changes with the package)
#
# The only files written inside the repository are images/x86_64/*.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${VIREO_BUILD_DIR:-/tmp/vireo-images-build}/x86_64
OUT="$REPO/images/x86_64"
JOBS=${VIREO_JOBS:-2}
FRAGMENT="$REPO/scripts/linux-x86_64.config"
INITRAMFS_SRC="$REPO/scripts/initramfs"
KSRC_TAR=/usr/src/linux-source-6.1.tar.xz
BUSYBOX_BIN=/bin/busybox   # from busybox-static (amd64)

DEPS=(gcc make libc6-dev linux-source-6.1 busybox-static bc bison flex
      libssl-dev libelf-dev cpio dpkg-dev xz-utils lz4 gzip perl python3 rsync kmod)

case "$BUILD" in
  "$REPO"|"$REPO"/*) echo "VIREO_BUILD_DIR must be outside the repo" >&2; exit 1 ;;
esac
if [ "$(uname -m)" != x86_64 ]; then
  echo "this script builds natively and expects an x86_64 (amd64) host" >&2; exit 1
fi

log() { printf '\n=== %s: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "this step needs root (apt-get): run with sudo" >&2
    exit 1
  fi
}

apt_install() {
  need_root
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" \
    || { apt-get update && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y --no-install-recommends "$@"; }
}

missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
      || echo "$p"
  done
}

# ---------------------------------------------------------------- deps
stage_deps() {
  local missing
  mapfile -t missing < <(missing_pkgs "${DEPS[@]}")
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
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
  log "configuring kernel (x86_64_defconfig + $(basename "$FRAGMENT"))"
  local kmake=(nice -n 19 make -C "$KDIR" ARCH=x86_64 -j"$JOBS")
  # Merge the fragment into the (minimal) defconfig file itself, then expand
  # with olddefconfig: same result as `make x86_64_defconfig` + fragment,
  # except that options only selected by something the fragment turns off go
  # away too (merging into an expanded .config would keep them as sticky
  # user values).
  (cd "$KDIR" && ARCH=x86_64 \
     scripts/kconfig/merge_config.sh -m -O . arch/x86/configs/x86_64_defconfig "$FRAGMENT")
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
  log "building kernel bzImage (make -j$JOBS)"
  "${kmake[@]}" bzImage
  ls -l "$KDIR/arch/x86/boot/bzImage"
}

# ---------------------------------------------------------------- busybox
# Debian's busybox-static is already a static amd64 binary: use it as is
# (the riscv64 image builds busybox from the same Debian source package).
stage_busybox() {
  local missing
  mapfile -t missing < <(missing_pkgs busybox-static)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
  if readelf -l "$BUSYBOX_BIN" | grep -q INTERP; then
    echo "$BUSYBOX_BIN is not static" >&2; exit 1
  fi
  readelf -h "$BUSYBOX_BIN" | grep -q 'Machine:.*X86-64' \
    || { echo "$BUSYBOX_BIN is not an x86-64 binary" >&2; exit 1; }
  local root="$BUILD/busybox-install" app dir up
  rm -rf "$root"; mkdir -p "$root/bin"
  cp "$BUSYBOX_BIN" "$root/bin/busybox"
  chmod 755 "$root/bin/busybox"
  # Applet symlinks where busybox installs them (bin/, sbin/, usr/bin/,
  # usr/sbin/), relative like `make install`: sbin/init -> ../bin/busybox.
  "$root/bin/busybox" --list-full | LC_ALL=C sort | while IFS= read -r app; do
    [ -n "$app" ] && [ "$app" != bin/busybox ] || continue
    case "$app" in linuxrc) continue ;; esac
    dir=$(dirname "$app")
    mkdir -p "$root/$dir"
    case "$dir" in
      bin) up="" ;;
      *) up=$(echo "$dir" | sed -e 's|[^/]*|..|g')/bin/ ;;
    esac
    ln -sfn "${up}busybox" "$root/$app"
  done
  echo "busybox: $("$root/bin/busybox" | head -n1), $(find "$root" -type l | wc -l) applet links" >&2
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

# ---------------------------------------------------------------- install
stage_install() {
  local f
  mkdir -p "$OUT"
  cp "$KDIR/arch/x86/boot/bzImage" "$BUILD/bzImage"
  for f in bzImage initramfs.cpio; do
    gzip -9 -n -c "$BUILD/$f" > "$OUT/$f.gz.tmp"
    mv "$OUT/$f.gz.tmp" "$OUT/$f.gz"
  done
  (cd "$BUILD" && sha256sum bzImage initramfs.cpio) > "$OUT/SHA256SUMS"
  {
    echo "# Debian packages used to build images/x86_64 (scripts/build-images-x86_64.sh)"
    local p
    for p in linux-source-6.1 busybox-static gcc gcc-12 binutils libc6-dev lz4; do
      dpkg-query -W -f='${Package} ${Version}\n' "$p"
    done
    echo "kernel-release $(cat "$KDIR/include/config/kernel.release")"
    echo "SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH"
  } > "$OUT/VERSIONS"
  # Linux/x86 boot protocol header: "HdrS" at 0x202, version at 0x206.
  local magic proto
  magic=$(dd if="$BUILD/bzImage" bs=1 skip=514 count=4 2>/dev/null)
  proto=$(od -An -t x2 -j 518 -N 2 "$BUILD/bzImage" | tr -d ' ')
  log "done"
  echo "bzImage: $(stat -c %s "$BUILD/bzImage") bytes, header $magic boot protocol $proto" >&2
  ls -l "$OUT" >&2
}

# ---------------------------------------------------------------- qemu-test
# Boot images/x86_64 under QEMU+KVM through a pipe: wait for the prompt
# before typing (QEMU drops input that arrives before the guest reads it).
stage_qemu-test() {
  [ -e /dev/kvm ] || { echo "qemu-test needs /dev/kvm" >&2; exit 1; }
  local missing
  mapfile -t missing < <(missing_pkgs qemu-system-x86)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
  local t="$BUILD/qemu-test" m
  mkdir -p "$t"
  gzip -dc "$OUT/bzImage.gz" > "$t/bzImage"
  cp "$OUT/initramfs.cpio.gz" "$t/initramfs.cpio.gz"
  for m in microvm q35; do
    log "booting under qemu-system-x86_64 -M $m -accel kvm"
    python3 - "$m" "$t" <<'EOF'
import os, subprocess, sys, time, select
machine, t = sys.argv[1], sys.argv[2]
cmd = ["qemu-system-x86_64", "-M", machine, "-accel", "kvm",
       "-m", "512M", "-nographic", "-no-reboot",
       "-kernel", f"{t}/bzImage", "-initrd", f"{t}/initramfs.cpio.gz",
       "-append", "console=ttyS0 reboot=t panic=-1"]
start = time.monotonic()
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, bufsize=0)
buf = b""
def expect(s, timeout=60):
    global buf
    end = time.monotonic() + timeout
    while s.encode() not in buf:
        left = end - time.monotonic()
        if left <= 0 or p.poll() is not None:
            sys.stdout.write(buf.decode(errors="replace"))
            sys.exit(f"FAIL ({machine}): {s!r} not seen")
        r, _, _ = select.select([p.stdout], [], [], left)
        if r:
            d = os.read(p.stdout.fileno(), 65536)
            if not d:
                continue
            buf += d
    i = buf.index(s.encode()) + len(s)
    seen, buf = buf[:i], buf[i:]
    return seen.decode(errors="replace")
def send(s):
    p.stdin.write(s.encode()); p.stdin.flush()
log = expect("Welcome to Vireo (x86_64 Linux ")
log += expect("~ # ")
boot = time.monotonic() - start
send("uname -m\n")
out = expect("~ # ")
log += out
if "\nx86_64" not in out.replace("\r", ""):
    sys.exit(f"FAIL ({machine}): uname -m: {out!r}")
send("poweroff\n")
try:
    rc = p.wait(timeout=30)
except subprocess.TimeoutExpired:
    p.kill(); sys.exit(f"FAIL ({machine}): poweroff did not end QEMU")
rest = buf + p.stdout.read()
log += rest.decode(errors="replace")
open(f"{t}/{machine}.log", "w").write(log)
if rc != 0:
    sys.exit(f"FAIL ({machine}): QEMU exit status {rc}")
print(f"OK ({machine}): prompt after {boot:.2f}s (QEMU start included), "
      f"uname -m = x86_64, poweroff -> exit 0; console log {t}/{machine}.log")
EOF
  done
}

# ---------------------------------------------------------------- main
main() {
  local stages=("$@")
  [ ${#stages[@]} -gt 0 ] || stages=(deps kernel busybox initramfs install)
  setup_env
  mkdir -p "$BUILD"
  local s
  for s in "${stages[@]}"; do
    case "$s" in
      deps|kernel|busybox|initramfs|install|qemu-test) "stage_$s" ;;
      *) echo "unknown stage: $s" >&2; exit 2 ;;
    esac
  done
}

main "$@"; exit $?
