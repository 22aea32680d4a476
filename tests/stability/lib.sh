# Helpers for the stability scripts (tests/stability/*.t), on top of the
# server tests' (stabled, real clients, TAP).
. "$(dirname "$0")/../server/lib.sh"

# pattern_source FILE NBLOCKS BS: block b holds the byte b % 251 + 1 only,
# so qemu-io's `read -P` checks every byte of a block it receives.
pattern_source() {
	python3 -c "
import sys
sys.stdout.buffer.write(b''.join(bytes([i % 251 + 1]) * $3 for i in range($2)))
" > "$1"
}

# pattern_read EXPORT NBLOCKS BS: one qemu-io connection reading every
# block with its pattern check; qemu-io's output on stdout.
pattern_read() {
	_cmds=$T_DIR/cmds.$1.$$
	: > "$_cmds"
	_b=0
	while [ $_b -lt "$2" ]; do
		printf -- '-c\nread -P %d %d %d\n' $((_b % 251 + 1)) $((_b * $3)) "$3" >> "$_cmds"
		_b=$((_b + 1))
	done
	# one argument per line: -c and its command
	tr '\n' '\0' < "$_cmds" | timeout 120 xargs -0 qemu-io -r -f raw \
		"nbd+unix:///$1?socket=${SOCK}" 2>&1
	rm -f "$_cmds"
}
