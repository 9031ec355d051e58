#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions run through trap and step "$@", which shellcheck does not follow
# Proves the README's set-up from zero. For each release: debootstraps a minimal Debian into a temporary
# directory, runs the README's set-up command (scripts/setup-host.sh) and the mkosi fetch of CI
# (scripts/fetch-mkosi-sid.sh) in it (chroot), then starts every tool the tests use there, without
# booting a VM: each mkosi's --version, itest's own host check for each mkosi (scripts/check-host.ts: the
# Python modules its vm/qemu verb imports, the tools it runs, QEMU, the journal tools), QEMU,
# systemd-journal-remote, journalctl, vhost-device-vsock and coredumpctl. Node.js (the README's other prerequisite) and
# this checkout (read-only) come from the host. Run as root.
#
# Usage: scripts/fresh-root-check.sh [--release NAME]... [--cache DIR | --no-cache]
#   --release  bookworm (default) and/or trixie
#   --cache    keep downloaded .debs there (debootstrap's and apt's) to save the downloads next time;
#              default /var/cache/itest-ci/fresh-root; every package is still installed from scratch
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

releases=()
cache=/var/cache/itest-ci/fresh-root
while [ $# -gt 0 ]; do
  case "$1" in
    --release)
      case "${2:-}" in
        bookworm | trixie) releases+=("$2") ;;
        *) echo "fresh-root-check: --release takes bookworm or trixie, not '${2:-}'" >&2 && exit 2 ;;
      esac
      shift 2
      ;;
    --cache) cache=$(realpath -m "${2:?--cache needs a directory}") && shift 2 ;;
    --no-cache) cache='' && shift ;;
    *) echo "fresh-root-check: unknown argument '$1'; usage: $0 [--release bookworm|trixie]... [--cache DIR | --no-cache]" >&2 && exit 2 ;;
  esac
done
[ ${#releases[@]} -gt 0 ] || releases=(bookworm)
if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-root-check: run me as root, e.g. sudo $0 (debootstrap, mount and chroot need it)" >&2
  exit 1
fi
node=$(command -v node) || { echo "fresh-root-check: node not found on PATH (Node.js 20+ runs itest's host check)" >&2; exit 1; }
if [ ! -d node_modules/tsx ]; then
  echo "fresh-root-check: node_modules/tsx is missing: run 'npm ci' first (the host check runs with tsx)" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null; then
  echo "fresh-root-check: installing debootstrap" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2; }
fi

roots=()
# Unmounts everything under each root (deepest first) and deletes the root only when nothing is mounted
# there any more: the checkout is bind-mounted inside, read-only, and must never be reached by rm.
cleanup() {
  local root mounts m
  for root in "${roots[@]}"; do
    mapfile -t mounts < <(awk -v r="$root/" 'index($2 "/", r) == 1 { print $2 }' /proc/self/mounts | sort -r)
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
    if awk -v r="$root/" 'index($2 "/", r) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
      echo "fresh-root-check: $root still has mounts; left in place (umount them, then rm -rf it)" >&2
    else
      rm -rf --one-file-system "$root"
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s; }
# Runs "$@" as one named step, with its time; the output goes to the log, and its tail on failure.
step() {
  local name=$1 t0 rc=0
  shift
  t0=$(now)
  echo "--- $name" >> "$log"
  "$@" >> "$log" 2>&1 || rc=$?
  if [ $rc -eq 0 ]; then
    printf '  ok    %-58s %4d s\n' "$name" $(($(now) - t0))
  else
    printf '  FAIL  %-58s %4d s (exit %d)\n' "$name" $(($(now) - t0)) $rc
    tail -n 25 "$log" | sed 's/^/        | /'
  fi
  return $rc
}

# Runs a command line inside the root with a clean environment: nothing of the host's PATH (pyenv, ...).
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# Mounts what the tools need: /proc, a few device nodes (not the host's whole /dev: no /dev/kvm, so
# setup-host.sh changes nothing of the host), a private devpts and the checkout, read-only.
prepare_root() {
  # (set -e does not reach into a function called from a condition: every command checks itself.)
  mount -t proc proc "$root/proc" || return
  mount -t tmpfs -o mode=0755,size=16m tmpfs "$root/dev" || return
  for d in null zero full random urandom tty; do
    touch "$root/dev/$d" && mount --bind "/dev/$d" "$root/dev/$d" || return
  done
  mkdir -p "$root/dev/pts" "$root/dev/shm" "$root/itest" || return
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" || return
  ln -sf pts/ptmx "$root/dev/ptmx" && ln -sf /proc/self/fd "$root/dev/fd" || return
  ln -sf /proc/self/fd/0 "$root/dev/stdin" && ln -sf /proc/self/fd/1 "$root/dev/stdout" &&
    ln -sf /proc/self/fd/2 "$root/dev/stderr" || return
  mount -t tmpfs tmpfs "$root/dev/shm" || return
  mount --bind "$repo" "$root/itest" && mount -o remount,bind,ro "$root/itest" || return
  if [ -n "$cache" ]; then
    mkdir -p "$cache/apt-$release" && mount --bind "$cache/apt-$release" "$root/var/cache/apt/archives" || return
  fi
  cp /etc/resolv.conf "$root/etc/resolv.conf" || return
  # The host's network settings for apt (proxies; a mirror whose Release files are past Valid-Until)
  # describe the network, not the system under test: the root gets them too.
  apt-config dump Acquire::http::Proxy Acquire::https::Proxy Acquire::Check-Valid-Until Acquire::Check-Date \
    > "$root/etc/apt/apt.conf.d/00itest-host-network" || return
  install -m 0755 "$node" "$root/usr/local/bin/node" || return
  # No services start in a chroot.
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"
}

tools() {
  in_root sh -ec '
    mkosi --version
    /var/cache/itest-ci/mkosi-sid/bin/mkosi --version
    qemu-system-x86_64 --version | head -n1
    /usr/lib/systemd/systemd-journal-remote --version | head -n1
    journalctl --version | head -n1
    vhost-device-vsock --version
    if command -v coredumpctl >/dev/null; then coredumpctl --version | head -n1
    else echo "coredumpctl: not installed (systemd-coredump; only the printed debug commands use it)"; fi'
}

check_release() {
  local t0 ok=0
  release=$1
  t0=$(now)
  root=$(mktemp -d "/var/tmp/itest-fresh-$release.XXXXXX")
  roots+=("$root")
  log="$root.log"
  : > "$log"
  echo "fresh root: Debian $release in $root (log: $log)"
  local dbs=(--variant=minbase)
  if [ -n "$cache" ]; then
    mkdir -p "$cache/debootstrap-$release"
    dbs+=("--cache-dir=$cache/debootstrap-$release")
  fi
  step "debootstrap $release (minbase)" debootstrap "${dbs[@]}" "$release" "$root" http://deb.debian.org/debian &&
    step "mounts, Node.js and the checkout (read-only)" prepare_root &&
    step "README set-up: scripts/setup-host.sh (as root)" in_root sh -c 'cd /itest && scripts/setup-host.sh' &&
    step "scripts/fetch-mkosi-sid.sh (mkosi 27 and its Depends)" \
      in_root /itest/scripts/fetch-mkosi-sid.sh /var/cache/itest-ci/mkosi-sid &&
    step "tools start: mkosi x2, QEMU, journal tools, vhost-device-vsock, coredumpctl" tools &&
    step "itest host check for each mkosi (modules, tools)" in_root sh -c \
      'cd /itest && node --import tsx scripts/check-host.ts --mkosi mkosi --mkosi /var/cache/itest-ci/mkosi-sid/bin/mkosi' ||
    ok=$?
  # What the tools said, for the summary.
  sed -n '/^--- tools start/,/^---/p;/^--- itest host check/,$p' "$log" | grep -v '^---' | sed 's/^/    /'
  echo "fresh root: Debian $release: $([ $ok -eq 0 ] && echo PASS || echo "FAIL (log: $log)") in $(($(now) - t0)) s"
  [ $ok -ne 0 ] || rm -f "$log"
  return $ok
}

status=0
for r in "${releases[@]}"; do check_release "$r" || status=1; done
exit $status
