#!/usr/bin/env bash
# Unpacks Debian sid's mkosi (architecture-independent Python) into DIR, installs from this host's own apt
# sources the Depends of that .deb that the host's distribution has (python3-pefile, ...), and writes
# DIR/bin/mkosi, a launcher that runs it with Debian's /usr/bin/python3. Used to run the mkosi 25+
# dialect end to end. The .deb is fetched with a private sources list and lists directory, so the
# system's apt sources stay as they are. Run as root (it installs packages).
# Usage: scripts/fetch-mkosi-sid.sh DIR   (prints the launcher's path; everything else goes to stderr)
set -euo pipefail
dir=$(realpath -m "${1:?usage: $0 DIR}")
if [ "$(id -u)" -ne 0 ]; then
  echo "fetch-mkosi-sid: run me as root, e.g. sudo $0 $1 (it installs mkosi's dependencies with apt)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
launcher="$dir/bin/mkosi"
work="$dir/apt"
pkgdir="$dir/root/usr/lib/python3/dist-packages"

# 1. The .deb and its unpacked tree (kept: a second run downloads nothing).
deb=''
if [ -d "$work" ]; then deb=$(find "$work" -maxdepth 1 -name 'mkosi_*_all.deb' | sort | tail -n1); fi
if [ -z "$deb" ] || [ ! -f "$pkgdir/mkosi/__init__.py" ]; then
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  echo 'deb http://deb.debian.org/debian sid main' > "$work/sources.list"
  opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -q >&2
  rm -f "$work"/mkosi_*.deb
  (cd "$work" && apt-get "${opts[@]}" download mkosi >&2)
  deb=$(find "$work" -maxdepth 1 -name 'mkosi_*_all.deb' | sort | tail -n1)
  rm -rf "$dir/root"
  dpkg-deb -x "$deb" "$dir/root"
fi

# 2. Its Depends, as far as this host's distribution has them (each alternative and version checked
#    against apt's lists), installed with apt-get satisfy so that versions and alternatives hold.
apt-get update -q >&2
target=()
# shellcheck disable=SC1091 # the host's, read at run time
. /etc/os-release
if [ "${VERSION_CODENAME:-}" = bookworm ] && apt-cache policy | grep -q ' bookworm-backports/'; then
  target=(-t bookworm-backports) # systemd >= 254 (and udev with it) only exist there
fi

depends_field=$(dpkg-deb -f "$deb" Depends | tr -d '\n')
# Every version apt's lists have of every package named there (one apt-cache call: each loads the cache).
declare -A versions=()
mapfile -t names < <(sed -E 's/[,|]/\n/g' <<< "$depends_field" | sed -E 's/^ *([^ (:]+).*/\1/' | sort -u)
while IFS='|' read -r pkg ver _; do
  pkg=${pkg// /} ver=${ver// /}
  versions[$pkg]+="$ver "
done < <(apt-cache madison "${names[@]}" 2>/dev/null)

# Does some version of package $1 in apt's lists satisfy "$2 $3" (e.g. ">= 254~"; empty: any)?
available() {
  local v
  for v in ${versions[$1]:-}; do
    if [ -z "$2" ] || dpkg --compare-versions "$v" "$2" "$3"; then return 0; fi
  done
  return 1
}

# Joins $2... with separator $1.
join() {
  local sep=$1 out=$2 x
  shift 2
  for x in "$@"; do out+="$sep$x"; done
  echo "$out"
}

keep=()
left=()
IFS=',' read -ra groups <<< "$depends_field"
for group in "${groups[@]}"; do
  alts_kept=()
  IFS='|' read -ra alts <<< "$group"
  for alt in "${alts[@]}"; do
    alt=$(echo "$alt" | xargs) # trim
    name=${alt%% *}
    op='' ver=''
    if [[ $alt =~ \(([<>=]+)\ *([^\)]+)\) ]]; then op=${BASH_REMATCH[1]} ver=${BASH_REMATCH[2]}; fi
    if available "${name%%:*}" "$op" "$ver"; then alts_kept+=("$alt"); fi
  done
  if [ ${#alts_kept[@]} -gt 0 ]; then
    keep+=("$(join ' | ' "${alts_kept[@]}")")
  else
    left+=("$(echo "$group" | xargs)")
  fi
done
version=$(dpkg-deb -f "$deb" Version)
if [ ${#left[@]} -gt 0 ]; then
  echo "fetch-mkosi-sid: mkosi $version Depends that $PRETTY_NAME does not have (left out): $(join ', ' "${left[@]}")" >&2
fi
depends=$(join ', ' "${keep[@]}")
echo "fetch-mkosi-sid: installing mkosi $version's Depends: $depends" >&2
apt-get satisfy -y -q --no-install-recommends "${target[@]}" "$depends" >&2

# 3. The launcher: Debian's interpreter, the one apt just gave the modules to, whatever python3 comes
#    first on PATH (pyenv, setup-python); mkosi runs its helper scripts with that same interpreter.
mkdir -p "$dir/bin"
cat > "$launcher" <<LAUNCHER
#!/bin/sh
PYTHONPATH="$pkgdir\${PYTHONPATH:+:\$PYTHONPATH}" exec /usr/bin/python3 -m mkosi "\$@"
LAUNCHER
chmod +x "$launcher"
"$launcher" --version >&2
echo "$launcher"
