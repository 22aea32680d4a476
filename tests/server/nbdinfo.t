#!/bin/sh
# Description: nbdinfo (libnbd) sees each export's exact size, the
# read-only flag, multi-conn, the advertised block sizes, and the export
# list: names from image file names without extension and NAME=IMAGE.
. "$(dirname "$0")/lib.sh"
need nbdinfo python3

random_file "$T_DIR/a.raw" 1000001		# odd size: exact, not rounded
random_file "$T_DIR/b.raw" 65536
mkimg "$T_DIR/a.raw" "$T_DIR/alpha.img"
mkimg "$T_DIR/b.raw" "$T_DIR/b.stable" -b 16384
start_server "$T_DIR/alpha.img" "beta=$T_DIR/b.stable" || done_testing

# jget FILE EXPR: a value from nbdinfo's JSON (python: jq may be absent).
jget() {
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(eval(sys.argv[2], {"d": d}))' "$1" "$2"
}

trun 30 nbdinfo --json "nbd+unix:///alpha?socket=$SOCK"
exits "nbdinfo --json alpha" 0
cp "$T_DIR/out" "$T_DIR/alpha.json"
is "$(jget "$T_DIR/alpha.json" 'd["exports"][0]["export-size"]')" 1000001 "alpha: export-size is the exact image size"
is "$(jget "$T_DIR/alpha.json" 'd["exports"][0]["is_read_only"]')" True "alpha: is_read_only"
is "$(jget "$T_DIR/alpha.json" 'd["exports"][0]["can_multi_conn"]')" True "alpha: can_multi_conn"
is "$(jget "$T_DIR/alpha.json" 'd["exports"][0]["can_trim"]')" False "alpha: cannot trim"
is "$(jget "$T_DIR/alpha.json" 'd["exports"][0]["can_zero"]')" False "alpha: cannot zero"
is "$(jget "$T_DIR/alpha.json" 'd["exports"][0]["block_size_minimum"]')" 1 "alpha: minimum block size 1"
is "$(jget "$T_DIR/alpha.json" 'd["exports"][0]["block_size_preferred"]')" 4096 "alpha: preferred block size is the image's 4096"
is "$(jget "$T_DIR/alpha.json" 'd["exports"][0]["block_size_maximum"]')" 33554432 "alpha: maximum request 32 MiB"
is "$(jget "$T_DIR/alpha.json" 'd["structured"]')" True "structured replies negotiated"

trun 30 nbdinfo --json "nbd+unix:///beta?socket=$SOCK"
exits "nbdinfo --json beta" 0
is "$(jget "$T_DIR/out" 'd["exports"][0]["export-size"]')" 65536 "beta: export-size"
is "$(jget "$T_DIR/out" 'd["exports"][0]["block_size_preferred"]')" 16384 "beta: preferred block size 16384"

trun 30 nbdinfo --json "nbd+unix:///?socket=$SOCK"
exits "nbdinfo --json on the default export" 0
is "$(jget "$T_DIR/out" 'd["exports"][0]["export-size"]')" 1000001 "the default export is the first image"

trun 30 nbdinfo --list --json "nbd+unix:///?socket=$SOCK"
exits "nbdinfo --list --json" 0
is "$(jget "$T_DIR/out" '" ".join(e["export-name"] for e in d["exports"])')" "alpha beta" "export list names both"

trun 30 nbdinfo "nbd+unix:///gamma?socket=$SOCK"
if [ "$rc" -ne 0 ]; then pass "nbdinfo on an unknown export fails (status $rc)"; else fail "nbdinfo on an unknown export fails" "status 0"; fi

trun 30 nbdinfo --map "nbd+unix:///alpha?socket=$SOCK"
exits "nbdinfo --map (base:allocation)" 0
like "$T_DIR/out" '^ *0 +1000001 +0 +data' "base:allocation: all 1000001 bytes are data"

stop_server
done_testing
