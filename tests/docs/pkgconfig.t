#!/bin/sh
# Description: `make install` into a scratch DESTDIR installs the library,
# headers and libstable.pc, and examples/verified-cat.c builds against it
# through pkg-config alone (static and shared) and prints an image's bytes.
cd "$(dirname "$0")/../.." || exit 1
tmp=$(mktemp -d "${STABLE_TMP:-/tmp}/pkgconfig.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "1..5"
prefix=/opt/stable-test
if make -s install PREFIX=$prefix DESTDIR="$tmp/root" > "$tmp/install.log" 2>&1; then
	echo "ok 1 - make install PREFIX=$prefix DESTDIR=..."
else
	echo "not ok 1 - make install failed:"; sed 's/^/# /' "$tmp/install.log"; exit 1
fi
root="$tmp/root$prefix"
export PKG_CONFIG_PATH="$root/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
if cc examples/verified-cat.c $(pkg-config --cflags --libs libstable) -o "$tmp/vcat-shared" 2> "$tmp/cc.log"; then
	echo "ok 2 - example builds against the shared library via pkg-config"
else
	echo "not ok 2 - example does not build:"; sed 's/^/# /' "$tmp/cc.log"
fi
if cc examples/verified-cat.c $(pkg-config --cflags libstable) "$root/lib/libstable.a" \
	$(pkg-config --static --libs-only-l libstable | sed 's/-lstable//') -o "$tmp/vcat-static" 2> "$tmp/cc2.log"; then
	echo "ok 3 - example builds against the static library"
else
	echo "not ok 3 - static build failed:"; sed 's/^/# /' "$tmp/cc2.log"
fi
head -c 123457 /dev/urandom > "$tmp/src"
"$root/bin/stable-mkimage" -q --compress "$tmp/src" "$tmp/img" > /dev/null
LD_LIBRARY_PATH="$root/lib" "$tmp/vcat-shared" "$tmp/img" > "$tmp/out" 2> "$tmp/err"
if cmp -s "$tmp/out" "$tmp/src"; then
	echo "ok 4 - installed tool and shared example round-trip ($(cat "$tmp/err"))"
else
	echo "not ok 4 - shared example output differs from the source"
fi
"$tmp/vcat-static" "$tmp/img" > "$tmp/out2" 2>/dev/null
if cmp -s "$tmp/out2" "$tmp/src"; then
	echo "ok 5 - static example round-trips"
else
	echo "not ok 5 - static example output differs"
fi
