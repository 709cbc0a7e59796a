#!/usr/bin/env bash
# Runs a command with a working /dev/kvm on a host that has none.
# It boots Debian's stock x86_64 kernel under QEMU software emulation (TCG) with a CPU that has AMD SVM,
# loads kvm + kvm_amd in that guest (nested virtualization, emulated), shares this host's Node.js and the
# given folder into it over 9p at the same absolute path, runs the command there, and exits with its status.
# It is slow (~10 s boot, ~100 us per KVM exit): use it for correctness, never for timing.
#
# Vireo's `npm test` (scripts/test.mjs) uses it for the KVM tests on machines without /dev/kvm.
# Usage:   scripts/kvm-nested.sh DIR COMMAND...   e.g.  scripts/kvm-nested.sh "$PWD" node --test dist/tests/kvm/*.test.js
# Needs:   root (installs qemu-system-x86 busybox-static cpio kmod with apt-get if missing)
# Env:     KVM_NESTED_CACHE (default ~/.cache/vireo-kvm-nested), KVM_NESTED_MEM (default 2G),
#          KVM_NESTED_TIMEOUT seconds (default 600), KVM_NESTED_STALL seconds without output that
#          end the VM as stalled (default 300), KVM_NESTED_QEMU=1 (also share this host's
#          qemu-system-x86_64, so that bench/kvm-* have their peer inside); BENCH_* variables are passed in
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DIR COMMAND..." >&2; exit 2; }
dir=$(cd "$1" && pwd); shift
cache=${KVM_NESTED_CACHE:-$HOME/.cache/vireo-kvm-nested}
mkdir -p "$cache"; cd "$cache"

need=()
for p in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static cpio:cpio depmod:kmod; do
  command -v "${p%%:*}" >/dev/null || need+=("${p#*:}")
done
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  echo "kvm-nested: installing ${need[*]}" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >&2
fi

# 1. Debian's stock kernel and its modules (built once, cached).
if [ ! -f vmlinuz ]; then
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/{print $2; exit}')
  rm -f linux-image-*.deb; apt-get download "$pkg" >&2
  rm -rf kpkg && dpkg-deb -x linux-image-*.deb kpkg
  kver=${pkg#linux-image-}; echo "$kver" > kver
  depmod -b "$cache/kpkg" "$kver"
  cp "kpkg/boot/vmlinuz-$kver" vmlinuz.tmp && mv vmlinuz.tmp vmlinuz
fi
kver=$(cat kver)

# 2. initramfs: busybox, kvm + 9p modules in load order, an /init that mounts the shares and runs the job.
# (The file name carries a version: a changed /init below must not reuse an old cached image.)
if [ ! -f initramfs-3.cpio ]; then
  rm -rf rootfs && mkdir -p rootfs/{bin,dev,proc,sys,tmp,etc,lib/modules,opt/host}
  cp /bin/busybox rootfs/bin/busybox
  for a in $(rootfs/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "rootfs/bin/$a"; done
  for m in $(for x in kvm_amd 9pnet_virtio 9p virtio_pci; do
               modprobe -d "$cache/kpkg" -S "$kver" --show-depends "$x" | awk '$1=="insmod"{print $2}'
             done | awk '!seen[$0]++'); do
    b=$(basename "$m"); b=${b%.xz}; b=${b%.zst}
    case "$m" in *.xz) xz -dc "$m" >"rootfs/lib/modules/$b";; *.zst) zstd -dcq "$m" >"rootfs/lib/modules/$b";; *) cp "$m" "rootfs/lib/modules/$b";; esac
    echo "$b" >> rootfs/etc/modules
  done
  cat > rootfs/init <<'EOF'
#!/bin/sh
export PATH=/opt/host/bin:/bin HOME=/root
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
ip link set lo up
for m in $(cat /etc/modules); do insmod /lib/modules/$m 2>/dev/null || echo "kvm-nested: insmod $m failed"; done
o="trans=virtio,version=9p2000.L,msize=512000,cache=none"
mount -t 9p -o $o host /opt/host
mkdir -p /lib64 /lib/x86_64-linux-gnu
for f in /opt/host/lib64/*; do ln -sf "$f" /lib64/; done
for f in /opt/host/lib/*; do ln -sf "$f" /lib/x86_64-linux-gnu/; done
[ -d /opt/host/share/qemu ] && mkdir -p /usr/share && ln -s /opt/host/share/qemu /usr/share/qemu
d=$(cat /opt/host/workdir); mkdir -p "$d"; mount -t 9p -o $o work "$d"
[ -c /dev/kvm ] || echo "kvm-nested: /dev/kvm missing in the guest"
cd "$d"; sh /opt/host/job.sh; echo "KVM-NESTED-EXIT=$?"
poweroff -f
EOF
  chmod +x rootfs/init
  (cd rootfs && find . | cpio -o -H newc --quiet) > initramfs.tmp && mv initramfs.tmp initramfs-3.cpio
fi

# 3. host share: this host's node (stripped), optionally qemu-system-x86_64 and its firmware, and the libraries they link.
share_binary() {
  strip -o "host/bin/$(basename "$1")" "$1" 2>/dev/null || cp "$1" host/bin/
  for l in $(ldd "$1" | awk '/=>/{print $3} /ld-linux/{print $1}'); do
    case "$l" in /lib64/*) cp -L "$l" host/lib64/;; *) cp -L "$l" host/lib/;; esac
  done
}
node=$(command -v node)
qemu=$([ "${KVM_NESTED_QEMU:-0}" = 1 ] && command -v qemu-system-x86_64 || true)
if [ ! -x host/bin/node ] || [ "$(cat host/node.src 2>/dev/null)" != "$(readlink -f "$node") $qemu" ]; then
  rm -rf host && mkdir -p host/bin host/lib64 host/lib
  share_binary "$node"
  if [ -n "$qemu" ]; then
    share_binary "$qemu"
    mkdir -p host/share/qemu
    for f in bios-microvm.bin qboot.rom linuxboot_dma.bin pvh.bin kvmvapic.bin; do cp -L "/usr/share/qemu/$f" host/share/qemu/ 2>/dev/null || true; done
  fi
  echo "$(readlink -f "$node") $qemu" > host/node.src
fi
printf '%s\n' "$dir" > host/workdir
{ echo "#!/bin/sh"; env | grep '^BENCH_[A-Z_]*=' | sed "s/'/'\\\\''/g; s/=\(.*\)/='\1'/; s/^/export /" || true; printf '%q ' "$@"; echo; } > host/job.sh

out=$(mktemp)
# qemu runs in the background so that a TERM/INT to this script (e.g. from an outer timeout) ends it too.
# No transparent huge pages in the VM: its khugepaged was seen stuck for minutes (a soft lockup under TCG).
timeout "${KVM_NESTED_TIMEOUT:-600}" qemu-system-x86_64 -M q35 -accel tcg -cpu max -m "${KVM_NESTED_MEM:-2G}" -smp 2 \
  -nodefaults -display none -serial stdio -no-reboot -kernel vmlinuz -initrd initramfs-3.cpio \
  -virtfs "local,path=$cache/host,mount_tag=host,security_model=none,readonly=on" \
  -virtfs "local,path=$dir,mount_tag=work,security_model=none" \
  -append "console=ttyS0 panic=-1 loglevel=1 quiet transparent_hugepage=never" </dev/null >"$out" 2>&1 &
qpid=$!
trap 'kill $qpid 2>/dev/null || true; rm -f "$out"' EXIT
trap 'exit 143' TERM INT
# the printer runs in the background too: bash runs traps only between foreground commands, and `wait` yields to them
tail -n +1 --pid=$qpid -f "$out" | tr -d '\r' | grep --line-buffered -v -e '^KVM-NESTED-EXIT=' -e 'reboot: Power down' &
printer=$!
# A VM that prints nothing for KVM_NESTED_STALL seconds has stalled (its kernel, under TCG and
# the emulated SVM, now and then stops making progress): end it now rather than at the timeout.
# So has one whose kernel reports a soft lockup twice (a CPU stuck for over 50 s: none of those
# seen has recovered, the longest watched for 9 minutes).
stall=${KVM_NESTED_STALL:-300}
stalled=0
while kill -0 $qpid 2>/dev/null; do
  sleep 5
  if [ $(( $(date +%s) - $(stat -c %Y "$out") )) -gt "$stall" ]; then
    stalled="no output for $stall s"
  elif [ "$(grep -c 'BUG: soft lockup' "$out")" -ge 2 ]; then
    stalled='its kernel reports a soft lockup'
  fi
  [ "$stalled" = 0 ] || { kill $qpid 2>/dev/null || true; break; }
done
wait $qpid 2>/dev/null || true
wait $printer 2>/dev/null || true
code=$(tr -d '\r' < "$out" | sed -n 's/^KVM-NESTED-EXIT=\([0-9]*\).*/\1/p' | tail -1)
[ "$stalled" = 0 ] || echo "kvm-nested: $stalled: the VM stalled" >&2
[ -n "$code" ] || { echo "kvm-nested: the guest did not finish (timeout, stall or boot failure)" >&2; exit 125; }
exit "$code"
