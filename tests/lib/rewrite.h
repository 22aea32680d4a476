/*
 * A consistent writer for the stability tests, and the versioned block
 * content that lets a reader tell a whole block from a torn one.
 *
 * Versioned blocks: block b at version v starts with the 16 bytes
 * (b, v), little-endian, and the rest is pseudo-random bytes seeded by
 * (b, v). A block read back is intact when the rest matches what its
 * first 16 bytes say; a mix of two versions (a torn write or read) fails.
 *
 * The writer updates an inline image in place the way docs/format.md
 * ("Updating an image in place") describes, in four steps that readers
 * may observe one by one: the data block, its group's parity block, the
 * two checksum entries, then the header with the new table crc.
 */
#ifndef STABLE_REWRITE_H
#define STABLE_REWRITE_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "stable/stable.h"

/* --- versioned block content ---------------------------------------------- */

static inline void vb_fill(uint8_t *buf, uint32_t bs, uint64_t b, uint64_t v)
{
	uint64_t x = (b + 1) * 0x9E3779B97F4A7C15ull ^ (v + 1) * 0xC2B2AE3D27D4EB4Full;

	stable_put_le64(buf, b);
	stable_put_le64(buf + 8, v);
	for (uint32_t i = 16; i < bs; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, bs - i < 8 ? bs - i : 8);
	}
}

/*
 * 0 when buf is block b whole at some version (stored in *v); -1 when it
 * is not one version of block b: torn, wrong block or garbage.
 */
static inline int vb_check(const uint8_t *buf, uint32_t bs, uint64_t b, uint64_t *v)
{
	uint8_t *want;
	int bad;

	if (stable_le64(buf) != b)
		return -1;
	*v = stable_le64(buf + 8);
	want = malloc(bs);
	if (!want)
		return -1;
	vb_fill(want, bs, b, *v);
	bad = memcmp(want, buf, bs) != 0;
	free(want);
	return bad ? -1 : 0;
}

/* --- the consistent writer ------------------------------------------------- */

struct rw_image {
	int fd;
	struct stable_hdr h;
	uint8_t *table;
	uint8_t *buf;	/* block_size scratch */
};

static inline int rw_open(struct rw_image *w, const char *path)
{
	uint8_t raw[STABLE_HDR_SIZE];
	char err[256];
	struct stat st;

	memset(w, 0, sizeof(*w));
	w->fd = open(path, O_RDWR | O_CLOEXEC);
	if (w->fd < 0 || fstat(w->fd, &st) ||
	    pread(w->fd, raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -errno;
	if (stable_hdr_decode(&w->h, raw, (uint64_t)st.st_size, err, sizeof(err))) {
		fprintf(stderr, "rw_open: %s: %s\n", path, err);
		return -EINVAL;
	}
	if (w->h.flags & (STABLE_HF_SIDECAR | STABLE_HF_COMPRESSED)) {
		fprintf(stderr, "rw_open: %s: only inline uncompressed images\n", path);
		return -EINVAL;
	}
	w->table = malloc(w->h.table_length);
	w->buf = malloc(w->h.block_size);
	if (!w->table || !w->buf ||
	    pread(w->fd, w->table, w->h.table_length, (off_t)w->h.table_offset) !=
	    (ssize_t)w->h.table_length)
		return -EIO;
	return 0;
}

static inline void rw_close(struct rw_image *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->table);
	free(w->buf);
}

static inline int rw_pwrite(struct rw_image *w, const void *p, size_t len, uint64_t off)
{
	return pwrite(w->fd, p, len, (off_t)off) == (ssize_t)len ? 0 : -EIO;
}

/* Step 1: the data block. */
static inline int rw_put_data(struct rw_image *w, uint64_t b, const uint8_t *data)
{
	return rw_pwrite(w, data, w->h.block_size, w->h.data_offset + b * w->h.block_size);
}

/* Step 2: the parity block of b's group, XOR of its data blocks as on disk. */
static inline int rw_put_parity(struct rw_image *w, uint64_t b)
{
	const uint32_t bs = w->h.block_size;
	uint64_t g, first, last;
	uint8_t *x;
	int ret;

	if (!(w->h.flags & STABLE_HF_PARITY))
		return 0;
	g = b / w->h.parity_group;
	first = g * w->h.parity_group;
	last = first + w->h.parity_group;
	if (last > w->h.data_blocks)
		last = w->h.data_blocks;
	x = calloc(1, bs);
	if (!x)
		return -ENOMEM;
	for (uint64_t i = first; i < last; i++) {
		uint32_t valid = stable_block_valid(&w->h, i);

		memset(w->buf, 0, bs);
		if (pread(w->fd, w->buf, valid, (off_t)(w->h.data_offset + i * bs)) !=
		    (ssize_t)valid) {
			free(x);
			return -EIO;
		}
		for (uint32_t k = 0; k < bs; k++)
			x[k] ^= w->buf[k];
	}
	stable_put_le32(w->table + (w->h.data_blocks + g) * 4, stable_crc32c(0, x, bs));
	ret = rw_pwrite(w, x, bs, w->h.parity_offset + g * bs);

	free(x);
	return ret;
}

/* Step 3: the checksum entries of b and of its parity block. */
static inline int rw_put_sums(struct rw_image *w, uint64_t b, const uint8_t *data)
{
	uint64_t p;
	int ret;

	stable_put_le32(w->table + b * 4,
			stable_crc32c(0, data, stable_block_valid(&w->h, b)));
	ret = rw_pwrite(w, w->table + b * 4, 4, w->h.table_offset + b * 4);
	if (ret || !(w->h.flags & STABLE_HF_PARITY))
		return ret;
	p = w->h.data_blocks + b / w->h.parity_group;
	return rw_pwrite(w, w->table + p * 4, 4, w->h.table_offset + p * 4);
}

/* Step 4: the header, with the crc of the table as it now is. */
static inline int rw_commit(struct rw_image *w)
{
	uint8_t raw[STABLE_HDR_SIZE];

	w->h.table_crc = stable_crc32c(0, w->table, w->h.table_length);
	stable_hdr_encode(&w->h, raw);
	return rw_pwrite(w, raw, sizeof(raw), 0);
}

/*
 * Step 1 in two halves with a pause between: a block stays torn for a
 * while, as a writer whose write is split (or a crash) leaves it. The
 * stability tests' negative control: a server without checksums sends it.
 */
static inline int rw_put_data_halves(struct rw_image *w, uint64_t b,
				     const uint8_t *data, unsigned int pause_us)
{
	const uint32_t half = w->h.block_size / 2;
	uint64_t off = w->h.data_offset + b * w->h.block_size;
	int ret = rw_pwrite(w, data, half, off);

	if (!ret) {
		usleep(pause_us);
		ret = rw_pwrite(w, data + half, half, off + half);
	}
	return ret;
}

/*
 * All four steps for block b at version v, pausing pause_us between them;
 * with halves, the data block is written as rw_put_data_halves() does.
 */
static inline int rw_rewrite(struct rw_image *w, uint64_t b, uint64_t v,
			     unsigned int pause_us, int halves)
{
	uint8_t *data = malloc(w->h.block_size);
	int ret;

	if (!data)
		return -ENOMEM;
	vb_fill(data, w->h.block_size, b, v);
	ret = halves ? rw_put_data_halves(w, b, data, pause_us ? pause_us : 1000)
		     : rw_put_data(w, b, data);
	if (!ret && pause_us)
		usleep(pause_us);
	if (!ret)
		ret = rw_put_parity(w, b);
	if (!ret && pause_us)
		usleep(pause_us);
	if (!ret)
		ret = rw_put_sums(w, b, data);
	if (!ret && pause_us)
		usleep(pause_us);
	if (!ret)
		ret = rw_commit(w);
	free(data);
	return ret;
}

#endif
