#!/usr/bin/env bash
# Installs what itest needs on a Debian or Ubuntu host: mkosi (>= 24), QEMU, systemd-journal-remote,
# vhost-device-vsock and the tools and Python modules mkosi builds and boots images with
# (scripts/host-packages.txt). Assumes nothing but apt: it also runs in a fresh debootstrap
# (scripts/fresh-root-check.sh). Idempotent; run as root (or through sudo).
# Usage: scripts/setup-host.sh [--print-packages]   (the latter only prints the base package list)
set -euo pipefail

# mkosi plus the packages the workflows install too (one list: scripts/host-packages.txt).
mapfile -t PACKAGES < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$(dirname "$0")/host-packages.txt")
PACKAGES=(mkosi "${PACKAGES[@]}")
case "${1:-}" in
  '') ;;
  --print-packages)
    printf '%s\n' "${PACKAGES[@]}"
    exit 0
    ;;
  *)
    echo "setup-host: unknown argument '$1'; usage: $0 [--print-packages]" >&2
    exit 2
    ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host: run me as root, e.g. sudo $0" >&2
  exit 1
fi

# shellcheck disable=SC1091 # the host's, read at run time
. /etc/os-release
export DEBIAN_FRONTEND=noninteractive
TARGET=()

case "${ID}:${VERSION_CODENAME:-}" in
  debian:bookworm)
    # mkosi 24.3, QEMU 10 and systemd 254 (systemd-repart) come from bookworm-backports.
    list=/etc/apt/sources.list.d/itest-backports.list
    if ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo 'deb http://deb.debian.org/debian bookworm-backports main' > "$list"
    fi
    TARGET=(-t bookworm-backports)
    PACKAGES+=(systemd)
    ;;
  debian:*|ubuntu:*) ;;
  *)
    echo "setup-host: ${PRETTY_NAME:-this system} is not Debian or Ubuntu; install mkosi >= 24, QEMU and systemd-journal-remote yourself" >&2
    exit 1
    ;;
esac

apt-get update -q
apt-get install -y -q --no-install-recommends "${TARGET[@]}" "${PACKAGES[@]}"

version=$(mkosi --version | awk '{print $2}')
if [ "${version%%.*}" -lt 24 ]; then
  echo "setup-host: ${PRETTY_NAME} ships mkosi ${version}; itest needs 24 or newer." >&2
  echo "  install a newer one, e.g. from the mkosi project's releases, and pass it with --mkosi PATH" >&2
  exit 1
fi

# KVM: open /dev/kvm to everyone (as GitHub's runners need) when it exists; itest checks it really works.
if [ -e /dev/kvm ]; then
  mkdir -p /etc/udev/rules.d
  echo 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"' > /etc/udev/rules.d/99-itest-kvm.rules
  chmod 0666 /dev/kvm || true
fi
# vhost-vsock lets results and journals travel over AF_VSOCK; without it itest uses virtio-serial.
if modprobe vhost_vsock 2>/dev/null; then chmod 0666 /dev/vhost-vsock 2>/dev/null || true; fi

# vhost-device-vsock (rust-vmm) gives a VM a virtio-vsock device from user space where the kernel's
# vhost-vsock is missing or root-only (itest's vsock-user transport). Debian has it from trixie+1 (sid);
# elsewhere the sid .deb (one static-enough binary: libc6 >= 2.34) is unpacked under /usr/local, fetched
# with a private sources list so the system's apt state stays as it is.
install_vhost_device_vsock() {
  local dest=/usr/local/lib/itest/vhost-device-vsock work deb
  work=$(mktemp -d)
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  echo 'deb http://deb.debian.org/debian sid main' > "$work/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -q
  (cd "$work" && apt-get "${opts[@]}" download vhost-device-vsock)
  deb=$(find "$work" -maxdepth 1 -name 'vhost-device-vsock_*.deb' | head -n1)
  rm -rf "$dest"
  mkdir -p "$dest" /usr/local/bin
  dpkg-deb -x "$deb" "$dest"
  rm -f /usr/local/bin/vhost-device-vsock
  ln -s "$dest/usr/bin/vhost-device-vsock" /usr/local/bin/vhost-device-vsock
  rm -rf "$work"
}
if ! command -v vhost-device-vsock >/dev/null; then
  if apt-cache policy vhost-device-vsock 2>/dev/null | grep -q '^ *Candidate: [^(]'; then
    apt-get install -y -q --no-install-recommends vhost-device-vsock
  else
    install_vhost_device_vsock
  fi
fi

echo "setup-host: ready: $(mkosi --version), $(qemu-system-x86_64 --version | head -n1), $(vhost-device-vsock --version)"
