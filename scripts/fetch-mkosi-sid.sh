#!/usr/bin/env bash
# Unpacks Debian sid's mkosi (architecture-independent Python) into DIR without touching the system's apt
# state, and writes DIR/bin/mkosi, a launcher for it. Used to run the mkosi 25+ dialect end to end.
# Usage: scripts/fetch-mkosi-sid.sh DIR   (prints the launcher's path)
set -euo pipefail
dir=$(realpath -m "${1:?usage: $0 DIR}")
launcher="$dir/bin/mkosi"
if [ -x "$launcher" ] && "$launcher" --version >/dev/null 2>&1; then
  echo "$launcher"
  exit 0
fi
work="$dir/apt"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$dir/bin"
echo 'deb http://deb.debian.org/debian sid main' > "$work/sources.list"
opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
apt-get "${opts[@]}" update -q >&2
(cd "$work" && apt-get "${opts[@]}" download mkosi >&2)
rm -rf "$dir/root"
dpkg-deb -x "$work"/mkosi_*.deb "$dir/root"
cat > "$launcher" <<LAUNCHER
#!/bin/sh
PYTHONPATH="$dir/root/usr/lib/python3/dist-packages" exec python3 -m mkosi "\$@"
LAUNCHER
chmod +x "$launcher"
"$launcher" --version >&2
echo "$launcher"
