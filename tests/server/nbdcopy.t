#!/bin/sh
# Description: nbdcopy (libnbd) copies exports to files byte for byte,
# with one and with four connections and many requests in flight, for
# an odd-sized image and one with requests larger than a reader buffer;
# then with each backend forced (private, ro-view, ro-fixed, sealed): the same
# bytes, and the start-up log names the backend.
. "$(dirname "$0")/lib.sh"
need nbdcopy

random_file "$T_DIR/a.raw" 5000003
random_file "$T_DIR/big.raw" 48000000
mkimg "$T_DIR/a.raw" "$T_DIR/a.stable"
mkimg "$T_DIR/big.raw" "$T_DIR/big.stable" -p 8
start_server "$T_DIR/a.stable" "$T_DIR/big.stable" || done_testing

for opts in "--connections=1 --requests=1" "--connections=1 --requests=64" \
	"--connections=4 --requests=16"; do
	rm -f "$T_DIR/a.out"
	trun 120 nbdcopy $opts "nbd+unix:///a?socket=$SOCK" "$T_DIR/a.out"
	exits "nbdcopy $opts a" 0
	same_file "$T_DIR/a.out" "$T_DIR/a.raw" "nbdcopy $opts a: bytes equal"
done
# 32 MiB requests: more than the 1 MiB a reader buffer holds, so a reply is
# gathered from many extents
trun 180 nbdcopy --request-size=33554432 --requests=4 "nbd+unix:///big?socket=$SOCK" "$T_DIR/big.out"
exits "nbdcopy with 32 MiB requests" 0
same_file "$T_DIR/big.out" "$T_DIR/big.raw" "nbdcopy with 32 MiB requests: bytes equal"
stop_server

for backend in private ro-view ro-fixed sealed; do
	: >"$LOG"
	start_server --backend=$backend "$T_DIR/big.stable" || continue
	like "$LOG" "backend $backend, guarantee" "--backend=$backend: the log names it"
	rm -f "$T_DIR/big.out"
	trun 180 nbdcopy --connections=4 --requests=16 "nbd+unix:///big?socket=$SOCK" "$T_DIR/big.out"
	exits "--backend=$backend: nbdcopy, 4 connections" 0
	same_file "$T_DIR/big.out" "$T_DIR/big.raw" "--backend=$backend: bytes equal"
	stop_server
done
done_testing
