/*
 * The stability suite's writer and checker of versioned blocks
 * (tests/lib/rewrite.h), for the shell tests that put real NBD clients
 * in front of stabled while the image changes under it.
 *
 *   vblocks gen FILE BLOCKS BS
 *       writes version 0 of BLOCKS blocks of BS bytes: a source for
 *       stable-mkimage
 *   vblocks rewrite IMAGE SECONDS PAUSE_US [halves]
 *       the consistent writer: rewrites random blocks of the image in
 *       place, each at a new version, in the four steps of
 *       docs/format.md with PAUSE_US between steps, for SECONDS; prints
 *       "rewrites N". With "halves" each data block is written in two
 *       halves with a pause between, so that it is torn for a while.
 *   vblocks update IMAGE BLOCK PAUSE_US
 *       one update of block BLOCK to a new version, in the same four
 *       steps with PAUSE_US between them; prints "data V" once the new
 *       data is on disk (so a test can read while the block cannot be
 *       verified), then "committed" after the header
 *   vblocks check FILE BS
 *       checks that every block of FILE (what a client received) is one
 *       whole version of the block at its place; prints "blocks N torn N
 *       newest V" and exits 1 if any block is torn or misplaced
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rewrite.h"

static int usage(void)
{
	fprintf(stderr, "usage: vblocks gen FILE BLOCKS BS | rewrite IMAGE SECONDS PAUSE_US [halves] | update IMAGE BLOCK PAUSE_US | check FILE BS\n");
	return 2;
}

static int gen(const char *path, uint64_t blocks, uint32_t bs)
{
	FILE *f = fopen(path, "wb");
	uint8_t *buf = malloc(bs);

	if (!f || !buf) {
		perror(path);
		return 2;
	}
	for (uint64_t b = 0; b < blocks; b++) {
		vb_fill(buf, bs, b, 0);
		if (fwrite(buf, bs, 1, f) != 1) {
			perror(path);
			return 2;
		}
	}
	free(buf);
	return fclose(f) ? 2 : 0;
}

static int rewrite(const char *path, unsigned int seconds, unsigned int pause_us,
		   int halves)
{
	time_t end = time(NULL) + seconds;
	uint64_t rnd = (uint64_t)getpid() * 2654435761u + 1, n = 0;
	/* versions go on from the time, so that two runs never share one */
	uint64_t v = (uint64_t)time(NULL) << 20;
	struct rw_image w;
	int ret;

	ret = rw_open(&w, path);
	if (ret) {
		fprintf(stderr, "vblocks: %s: %s\n", path, strerror(-ret));
		return 2;
	}
	while (time(NULL) < end) {
		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		ret = rw_rewrite(&w, rnd % w.h.data_blocks, ++v, pause_us, halves);
		if (ret) {
			fprintf(stderr, "vblocks: rewriting %s: %s\n", path, strerror(-ret));
			break;
		}
		n++;
	}
	rw_close(&w);
	printf("rewrites %llu\n", (unsigned long long)n);
	return ret ? 2 : 0;
}

static int update(const char *path, uint64_t b, unsigned int pause_us)
{
	uint64_t v = (uint64_t)time(NULL) << 20 | (uint64_t)getpid();
	struct rw_image w;
	uint8_t *data;
	int ret;

	ret = rw_open(&w, path);
	if (ret || b >= w.h.data_blocks) {
		fprintf(stderr, "vblocks: %s: %s\n", path, ret ? strerror(-ret) : "no such block");
		return 2;
	}
	data = malloc(w.h.block_size);
	if (!data)
		return 2;
	vb_fill(data, w.h.block_size, b, v);
	ret = rw_put_data(&w, b, data);
	if (!ret) {
		printf("data %llu\n", (unsigned long long)v);
		fflush(stdout);
		usleep(pause_us);
		ret = rw_put_parity(&w, b);
	}
	if (!ret) {
		usleep(pause_us);
		ret = rw_put_sums(&w, b, data);
	}
	if (!ret) {
		usleep(pause_us);
		ret = rw_commit(&w);
	}
	if (!ret)
		printf("committed\n");
	free(data);
	rw_close(&w);
	if (ret)
		fprintf(stderr, "vblocks: updating %s: %s\n", path, strerror(-ret));
	return ret ? 2 : 0;
}

static int check(const char *path, uint32_t bs)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(bs);
	uint64_t b = 0, torn = 0, newest = 0, v;

	if (!f || !buf) {
		perror(path);
		return 2;
	}
	while (fread(buf, bs, 1, f) == 1) {
		if (vb_check(buf, bs, b, &v)) {
			if (torn < 5)
				fprintf(stderr, "vblocks: block %llu is not one whole version of itself\n",
					(unsigned long long)b);
			torn++;
		} else if (v > newest) {
			newest = v;
		}
		b++;
	}
	fclose(f);
	free(buf);
	printf("blocks %llu torn %llu newest %llu\n", (unsigned long long)b,
	       (unsigned long long)torn, (unsigned long long)newest);
	return torn ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "gen"))
		return gen(argv[2], strtoull(argv[3], NULL, 0), (uint32_t)strtoul(argv[4], NULL, 0));
	if ((argc == 5 || (argc == 6 && !strcmp(argv[5], "halves"))) &&
	    !strcmp(argv[1], "rewrite"))
		return rewrite(argv[2], (unsigned int)atoi(argv[3]),
			       (unsigned int)atoi(argv[4]), argc == 6);
	if (argc == 5 && !strcmp(argv[1], "update"))
		return update(argv[2], strtoull(argv[3], NULL, 0), (unsigned int)atoi(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "check"))
		return check(argv[2], (uint32_t)strtoul(argv[3], NULL, 0));
	return usage();
}
