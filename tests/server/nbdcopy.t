#!/bin/sh
# Description: nbdcopy (libnbd) copies exports to files byte for byte,
# with one and with four connections and many requests in flight, for
# an odd-sized image and one with requests larger than a reader buffer.
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
done_testing
