#!/bin/sh
# Description: every function declared in a public header has a section 3
# man page, every tool a section 1 page, and each tool's --help exists.
cd "$(dirname "$0")/../.." || exit 1
n=0
fail=0
for f in $(grep -ho 'stable_[a-z0-9_]*(' include/stable/stable.h include/stable/mkimage.h include/stable/scrub.h | tr -d '(' | sort -u); do
	n=$((n + 1))
	if [ -f "man/man3/$f.3" ]; then
		echo "ok $n - man/man3/$f.3 exists"
	else
		echo "not ok $n - $f is public but man/man3/$f.3 is missing"
		fail=1
	fi
done
for t in tools/stable-*.c; do
	name=$(basename "$t" .c)
	n=$((n + 1))
	if [ -f "man/$name.1" ]; then
		echo "ok $n - man/$name.1 exists"
	else
		echo "not ok $n - tool $name has no man/$name.1"
	fi
done
echo "1..$n"
