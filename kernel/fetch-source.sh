#!/bin/bash
# Fetch and unpack Debian's linux-source-7.3 into $1 (a cache directory
# outside the repository) without touching the system's apt state.
#
# The mirror is read from the machine's own apt configuration, so this
# works wherever Debian's archive is reachable under whatever name.  The
# suites trixie-backports (where 7.3 lives) and sid (fallback) are added
# in a private sources file and private list/cache directories.
set -euo pipefail

cache=${1:?usage: fetch-source.sh CACHE_DIR [PACKAGE]}
pkg=${2:-linux-source-7.3}
ver=${pkg#linux-source-}
apt=$cache/apt
mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$cache/src"
# concurrent make runs share the cache: one fetch at a time
exec 9> "$cache/fetch.lock"
flock 9

if [ -f "$cache/src/linux-source-$ver/Makefile" ]; then
	echo "fetch-source: $cache/src/linux-source-$ver already unpacked"
	exit 0
fi

# Mirror URIs: deb822 files first, then one-line sources.list files.
uris=$( { { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
	  awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }'
	  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
	  awk '$1 == "deb" { for (i = 2; i <= NF; i++)
		if ($i ~ /^[a-z]+:\/\//) { print $i; break } }'
	} | { grep -v -- '-security' || true; } | sort -u)
if [ -z "$uris" ]; then
	echo "fetch-source: no Debian mirror found in /etc/apt/sources.list*" >&2
	exit 1
fi

list=$apt/sources.list
: > "$list"
for u in $uris; do
	echo "deb $u trixie-backports main" >> "$list"
	echo "deb $u sid main" >> "$list"
done

opts=(-o Dir::Etc::SourceList="$list" -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache"
      -o Dir::Cache::Archives="$apt/archives" -o Debug::NoLocking=1
      -o APT::Sandbox::User=root)
mkdir -p "$apt/cache"
apt-get "${opts[@]}" -q update
# Prefer the backports version of the package; sid is the fallback.
cd "$apt/archives"
rm -f "$pkg"_*.deb
apt-get "${opts[@]}" -q download "$pkg/trixie-backports" ||
	apt-get "${opts[@]}" -q download "$pkg"
deb=$(ls "$pkg"_*.deb | head -1)
echo "fetch-source: unpacking $deb"
rm -rf "$cache/deb"
dpkg -x "$deb" "$cache/deb"
tar -C "$cache/src" -xf "$cache/deb/usr/src/linux-source-$ver.tar.xz"
rm -rf "$cache/deb"
echo "fetch-source: $cache/src/linux-source-$ver ready"
