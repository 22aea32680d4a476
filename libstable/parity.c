/*
 * Rebuilding a data block from its parity group. Used by readers after
 * re-reads failed, and by scrub --repair. Inputs are read with plain
 * pread into private memory: this is the slow path, taken only for a
 * block that failed its checksum, and its output is checked against that
 * block's own checksum before anyone sees it.
 */
#include <errno.h>
#include <string.h>

#include "image.h"
#include "parity.h"
#include "util.h"
#include "stable/stable.h"

void stable_xor_into(uint8_t *dst, const uint8_t *src, size_t len)
{
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t a, b;

		memcpy(&a, dst + i, 8);
		memcpy(&b, src + i, 8);
		a ^= b;
		memcpy(dst + i, &a, 8);
	}
	for (; i < len; i++)
		dst[i] ^= src[i];
}

/* Reads stored block b into buf and checks it; 0, -EIO (bad) or -errno. */
static int read_checked(const struct stable_image *img, uint64_t b, uint8_t *buf)
{
	uint32_t valid = stable_block_valid(&img->hdr, b);
	uint64_t off;
	ssize_t n;
	int fd;

	stable_image_locate(img, b, &fd, &off);
	n = stable_pread_full(fd, buf, valid, off);
	if (n < 0)
		return (int)n;
	if ((uint32_t)n != valid)
		return -EIO;
	return stable_crc32c(0, buf, valid) == stable_image_crc(img, b) ? 0 : -EIO;
}

int stable_rebuild_block(const struct stable_image *img, uint64_t b,
			 uint8_t *out, uint8_t *scratch, struct stable_rebuild *r)
{
	const struct stable_hdr *h = &img->hdr;
	uint64_t g, first, last;
	uint32_t valid;
	int ret;

	memset(r, 0, sizeof(*r));
	if (!(h->flags & STABLE_HF_PARITY) || b >= h->data_blocks) {
		r->why = "no parity";
		return -EIO;
	}
	g = b / h->parity_group;
	first = g * h->parity_group;
	last = stable_min_u64(first + h->parity_group, h->data_blocks);

	ret = read_checked(img, h->data_blocks + g, out);
	if (ret) {
		r->other_bad = h->data_blocks + g;
		r->has_other = 1;
		r->why = "the group's parity block is bad too";
		return ret;
	}
	for (uint64_t o = first; o < last; o++) {
		if (o == b)
			continue;
		memset(scratch, 0, h->block_size);
		ret = read_checked(img, o, scratch);
		if (ret) {
			r->other_bad = o;
			r->has_other = 1;
			r->why = "another block of the parity group is bad too";
			return ret;
		}
		stable_xor_into(out, scratch, h->block_size);
	}
	valid = stable_block_valid(h, b);
	r->expected = stable_image_crc(img, b);
	r->found = stable_crc32c(0, out, valid);
	if (r->found != r->expected) {
		r->why = "the rebuilt block does not match its checksum";
		return -EIO;
	}
	memset(out + valid, 0, h->block_size - valid);
	return 0;
}
