/*
 * XOR parity: one parity block per group of data blocks, so that any one
 * bad block of a group is the XOR of the others and the parity block.
 */
#ifndef STABLE_PARITY_H
#define STABLE_PARITY_H

#include <stddef.h>
#include <stdint.h>

struct stable_image;

void stable_xor_into(uint8_t *dst, const uint8_t *src, size_t len);

struct stable_rebuild {
	uint64_t other_bad;	/* another bad block of the group... */
	int has_other;		/* ...if this is set (block 0 is a block) */
	uint32_t expected, found; /* crc of the rebuilt block */
	const char *why;	/* NULL on success */
};

/*
 * Rebuilds data block b of img into out (block_size bytes, zero padded
 * past the block's valid bytes) from the rest of its parity group, using
 * scratch (block_size bytes). Every input is checked against its own
 * checksum first, and the result against b's. Returns 0, -EIO (with
 * r->why saying what failed) or -errno for an I/O error.
 */
int stable_rebuild_block(const struct stable_image *img, uint64_t b,
			 uint8_t *out, uint8_t *scratch, struct stable_rebuild *r);

#endif
