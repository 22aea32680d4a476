/*
 * The image's map, for sparse copies (NBD's base:allocation): which runs
 * of the logical data read as zeroes with nothing stored for them. A run
 * is called zero only where a verified read would return zeroes, so a
 * client that skips it gets the bytes it would have read:
 * - a compressed image's ZERO extents, which its index (covered by the
 *   index crc and the root digest) vouches for;
 * - a plain image's blocks that are a hole in the data file, inside the
 *   file, and whose checksum is the checksum of zeroes. A hole whose
 *   checksum says otherwise (a hole punched into data) is data: reading
 *   it fails verification, and so must the client's read.
 * Everything else is data, zeroes or not.
 */
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "stable/stable.h"

/* Blocks or extents looked at per call: keeps a call over a huge range
 * short (the caller asks again from where the run ended). */
#define MAP_MAX_UNITS 16384u

uint32_t stable_zero_crc(uint32_t len)
{
	static const uint8_t zeroes[4096];
	uint32_t crc = 0;

	while (len) {
		uint32_t n = len < sizeof(zeroes) ? len : (uint32_t)sizeof(zeroes);

		crc = stable_crc32c(crc, zeroes, n);
		len -= n;
	}
	return crc;
}

/* Compressed images: runs of ZERO extents, or of stored ones. */
static uint64_t map_extents(const struct stable_image *img, uint64_t offset,
			    uint64_t end, unsigned int *flags)
{
	const uint64_t es = img->hdr.extent_size;
	uint64_t e = offset / es, stop = e + MAP_MAX_UNITS, pos;
	struct stable_index_entry ent;
	bool zero;

	stable_index_get(img->index, e, &ent);
	zero = ent.flags & STABLE_XF_ZERO;
	for (pos = (e + 1) * es; pos < end && ++e < stop; pos += es) {
		stable_index_get(img->index, e, &ent);
		if (!(ent.flags & STABLE_XF_ZERO) != !zero)
			break;
	}
	*flags = zero ? STABLE_MAP_ZERO : 0;
	return (pos < end ? pos : end) - offset;
}

/* Plain block b: a hole of the file, inside it, checksummed as zeroes? */
static bool block_is_zero(const struct stable_image *img, uint64_t b,
			  uint64_t hole_end)
{
	const struct stable_hdr *h = &img->hdr;
	uint32_t valid = stable_block_valid(h, b);
	uint64_t pos = h->data_offset + b * h->block_size;

	if (pos + valid > hole_end)
		return false;
	return stable_image_crc(img, b) ==
	       (valid == h->block_size ? img->zero_block_crc : stable_zero_crc(valid));
}

/* Plain images: the data file's holes, block by block. */
static uint64_t map_blocks(const struct stable_image *img, uint64_t offset,
			   uint64_t end, unsigned int *flags)
{
	const struct stable_hdr *h = &img->hdr;
	const uint64_t bs = h->block_size;
	uint64_t b = offset / bs, pos = h->data_offset + b * bs, stop = b + MAP_MAX_UNITS;
	uint64_t hole_end, run_end;
	struct stat st;
	off_t data;
	bool zero;

	*flags = 0;
	if (fstat(img->data_fd, &st) || (uint64_t)st.st_size <= pos)
		return end - offset;	/* past the file: reads fail, data */
	data = lseek(img->data_fd, (off_t)pos, SEEK_DATA);
	if (data < 0 && errno != ENXIO)
		return end - offset;	/* no SEEK_DATA here: all data */
	if (data == (off_t)pos) {
		/* data up to the next hole, rounded up to a whole block */
		off_t hole = lseek(img->data_fd, (off_t)pos, SEEK_HOLE);

		if (hole < 0 || (uint64_t)hole <= pos)
			return end - offset;
		run_end = ((uint64_t)hole - h->data_offset + bs - 1) / bs * bs;
		return (run_end < end ? run_end : end) - offset;
	}
	hole_end = data < 0 ? (uint64_t)st.st_size : (uint64_t)data;
	if (hole_end > (uint64_t)st.st_size)
		hole_end = (uint64_t)st.st_size;
	/* a run of blocks the hole does not make zero ends with the hole */
	if (stop > (hole_end - h->data_offset + bs - 1) / bs)
		stop = (hole_end - h->data_offset + bs - 1) / bs;
	zero = block_is_zero(img, b, hole_end);
	for (run_end = (b + 1) * bs; run_end < end && ++b < stop; run_end += bs)
		if (block_is_zero(img, b, hole_end) != zero)
			break;
	*flags = zero ? STABLE_MAP_ZERO : 0;
	return (run_end < end ? run_end : end) - offset;
}

int stable_image_map(const struct stable_image *img, uint64_t offset,
		     uint64_t length, uint64_t *run, unsigned int *flags)
{
	uint64_t end;

	if (!img || !run || !flags || !length || offset >= img->hdr.data_length)
		return -EINVAL;
	end = length > img->hdr.data_length - offset ? img->hdr.data_length : offset + length;
	if (img->hdr.extent_size)
		*run = map_extents(img, offset, end, flags);
	else
		*run = map_blocks(img, offset, end, flags);
	return 0;
}
