/*
 * crc-bench: the speed of stable_crc32c() over memory, the ceiling for
 * stable-verify on page-cached data. Used by scripts/bench-verify.sh;
 * not installed. Checksums a buffer in block-sized calls (as the scrub
 * does) for about a second and prints MiB/s. A 1 MiB buffer stays in
 * cache, like the chunk stable-verify reads into; a large one streams
 * from memory.
 *
 * Usage: crc-bench [BLOCK_SIZE [BUFFER_MIB]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "stable/stable.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t bs = argc > 1 ? strtoul(argv[1], NULL, 0) : 4096;
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 0) : 1;
	size_t len = mib << 20;
	unsigned char *buf;
	uint32_t sink = 0;
	double t0, t;
	uint64_t bytes = 0;

	if (bs == 0 || mib == 0 || len % bs) {
		fprintf(stderr, "crc-bench: BLOCK_SIZE must divide BUFFER_MIB MiB\n");
		return 2;
	}
	buf = malloc(len);
	if (!buf) {
		fprintf(stderr, "crc-bench: no memory for %zu MiB\n", mib);
		return 2;
	}
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * 2654435761u >> 13);
	/* one untimed pass to fault the pages in */
	for (size_t o = 0; o < len; o += bs)
		sink ^= stable_crc32c(0, buf + o, bs);
	t0 = now();
	do {
		for (size_t o = 0; o < len; o += bs)
			sink ^= stable_crc32c(0, buf + o, bs);
		bytes += len;
		t = now() - t0;
	} while (t < 1.0);
	printf("%.0f MiB/s (crc32c in %zu-byte calls over a %zu MiB buffer, %.2f s, sink %08x)\n",
	       (double)bytes / (1 << 20) / t, bs, mib, t, sink);
	free(buf);
	return 0;
}
