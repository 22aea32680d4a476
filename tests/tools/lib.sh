# Shared helpers for the tool tests (tests/tools/*.t), sourced by each.
#
# A test is a POSIX shell script printing TAP: `ok N - what` lines and a
# plan at the end (done_testing). Every failing check prints the file, the
# case and the values it compared, so a failure reads without a rerun.
#
# Environment (set by `make test`): STABLE_BIN, the folder of the tools to
# test (the ASan+UBSan build); STABLE_TMP, a scratch folder.

: "${STABLE_BIN:?STABLE_BIN must name the folder of the stable-* tools}"
: "${STABLE_TMP:=${TMPDIR:-/tmp}}"

# shellcheck disable=SC2034 # used by the scripts that source this
MKIMAGE=$STABLE_BIN/stable-mkimage
# shellcheck disable=SC2034
CAT=$STABLE_BIN/stable-cat
# shellcheck disable=SC2034
VERIFY=$STABLE_BIN/stable-verify
INFO=$STABLE_BIN/stable-info

T_NAME=$(basename "$0")
T_COUNT=0
T_FAILED=0

mkdir -p "$STABLE_TMP"
T_DIR=$(mktemp -d "$STABLE_TMP/$T_NAME.XXXXXX") || exit 1
trap 'rm -rf "$T_DIR"' EXIT
trap 'exit 130' INT TERM

# pass MSG / fail MSG [DETAIL...]: one result line; details go out as
# TAP comments on stderr.
pass() {
	T_COUNT=$((T_COUNT + 1))
	echo "ok $T_COUNT - $1"
}

fail() {
	T_COUNT=$((T_COUNT + 1))
	T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_COUNT - $1"
	shift
	for line in "$T_NAME" "$@"; do
		echo "#   $line" >&2
	done
}

# ok STATUS MSG: passes when STATUS (a command's $?) is 0.
ok() {
	if [ "$1" -eq 0 ]; then pass "$2"; else fail "$2" "status $1"; fi
}

# is GOT EXPECTED MSG
is() {
	if [ "$1" = "$2" ]; then
		pass "$3"
	else
		fail "$3" "got:      '$1'" "expected: '$2'"
	fi
}

# like FILE PATTERN MSG: FILE has a line matching the extended regex.
like() {
	if grep -Eq -- "$2" "$1"; then
		pass "$3"
	else
		fail "$3" "no line of $(basename "$1") matches /$2/:" \
			"$(head -c 600 "$1" | tr '\n' '|')"
	fi
}

# unlike FILE PATTERN MSG
unlike() {
	if grep -Eq -- "$2" "$1"; then
		fail "$3" "$(basename "$1") matches /$2/ and should not:" \
			"$(grep -E -- "$2" "$1" | head -3 | tr '\n' '|')"
	else
		pass "$3"
	fi
}

skip() {
	T_COUNT=$((T_COUNT + 1))
	echo "ok $T_COUNT # skip $1"
}

diag() {
	echo "# $*"
}

done_testing() {
	echo "1..$T_COUNT"
	[ "$T_FAILED" -eq 0 ]
	exit $?
}

# run CMD ARGS...: runs a command with stdout in $T_DIR/out, stderr in
# $T_DIR/err and the exit status in $rc. Never fails the script.
run() {
	rc=0
	"$@" >"$T_DIR/out" 2>"$T_DIR/err" || rc=$?
	# A sanitizer report means a bug whatever the exit status says.
	if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T_DIR/err"; then
		fail "no sanitizer report from $(basename "$1")" "$(head -c 2000 "$T_DIR/err")"
	fi
	return 0
}

# exits CMD-DESCRIPTION EXPECTED: checks $rc after run.
exits() {
	if [ "$rc" -eq "$2" ]; then
		pass "$1 exits $2"
	else
		fail "$1 exits $2" "got status $rc" "stderr: $(head -c 600 "$T_DIR/err" | tr '\n' '|')"
	fi
}

# same_file A B MSG: byte for byte equal.
same_file() {
	if cmp -s "$1" "$2"; then
		pass "$3"
	else
		fail "$3" "$(cmp "$1" "$2" 2>&1 | head -1)" \
			"sizes $(wc -c <"$1") and $(wc -c <"$2")"
	fi
}

# is_prefix OUT TRUE MSG: OUT is a prefix of TRUE (no wrong byte written).
is_prefix() {
	n=$(wc -c <"$1")
	if cmp -s -n "$n" "$1" "$2" && [ "$n" -le "$(wc -c <"$2")" ]; then
		pass "$3 ($n bytes, a prefix of the true data)"
	else
		fail "$3" "$n bytes written are not a prefix of $(basename "$2")" \
			"$(cmp -n "$n" "$1" "$2" 2>&1 | head -1)"
	fi
}

# flip_bit FILE OFFSET [BIT]: inverts one bit in place.
flip_bit() {
	_v=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	_v=$((_v ^ (1 << ${3:-0})))
	# shellcheck disable=SC2059
	printf "\\$(printf %03o "$_v")" |
		dd of="$1" bs=1 seek="$2" count=1 conv=notrunc status=none
}

# info_field IMAGE NAME: one value of stable-info's text output.
info_field() {
	"$INFO" --no-probe "$1" | sed -n "s/^$2: *//p"
}

# random_file FILE BYTES: incompressible test data.
random_file() {
	head -c "$2" /dev/urandom >"$1"
}

# text_file FILE BYTES: compressible but not trivial test data.
text_file() {
	_i=0
	while [ "$_i" -lt 64 ]; do
		echo "line $_i of the stable test data, $(date +%N)"
		_i=$((_i + 1))
	done >"$1.seed"
	: >"$1"
	while [ "$(wc -c <"$1")" -lt "$2" ]; do
		cat "$1.seed" "$1" "$1.seed" >"$1.tmp" && mv "$1.tmp" "$1"
	done
	truncate -s "$2" "$1"
	rm -f "$1.seed"
}

# range FILE OFFSET LENGTH: those bytes of FILE on stdout.
range() {
	dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=1M status=none
}
