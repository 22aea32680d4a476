/*
 * The verification pipeline: a read lands in a slot's buffer, every block
 * in it is checked against its crc32c in place, and only then is any of
 * it handed out. On a mismatch the range is re-read (a concurrent writer
 * can tear a read) a bounded number of times, then the block is rebuilt
 * from parity into private memory and checked against its own checksum,
 * else the read fails with -EIO naming the block. Compressed extents are
 * verified as stored, then inflated from the verified buffer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "parity.h"
#include "reader.h"
#include "util.h"

#define U(x) ((unsigned long long)(x))

static int aux_reserve(struct stable_reader *rd, struct stable_slot *s, size_t size)
{
	if (s->aux_size >= size)
		return 0;
	free(s->aux);
	s->aux = malloc(size);
	s->aux_size = s->aux ? size : 0;
	return s->aux ? 0 : stable_rd_err(rd, -ENOMEM, "no memory for %zu bytes", size);
}

/*
 * Hands out bytes the library produced itself (rebuilt or inflated) from
 * s->aux. A backend that promises more than NONE gets a sealed copy, so
 * these bytes are at least as immutable as read ones (at most SEALED: the
 * kernel cannot own memory we wrote; ro-view's and ro-fixed's buffers hold the stored
 * bytes being inflated, so they cannot take these). Failing to seal is an
 * error, not a quiet downgrade.
 */
static int publish_aux(struct stable_reader *rd, struct stable_slot *s,
		       size_t len, size_t skip)
{
	int ret;

	s->ext.data = s->aux + skip;
	s->ext.guarantee = STABLE_GUARANTEE_NONE;
	if (rd->ops->guarantee == STABLE_GUARANTEE_NONE)
		return 0;
	ret = stable_sealed_copy(&s->aux_sealed, s->aux, len);
	if (ret)
		return stable_rd_err(rd, ret, "sealing %zu rebuilt or inflated bytes: %s",
				     len, strerror(-ret));
	s->ext.data = (const uint8_t *)s->aux_sealed.ro + skip;
	s->ext.guarantee = STABLE_GUARANTEE_SEALED;
	return 0;
}

#define NO_READ ((ssize_t)INT64_MIN)	/* read_verified: do the first read too */

static int read_error(struct stable_reader *rd, uint64_t b0, uint64_t n, int err)
{
	return stable_rd_err(rd, err, "%s: read of blocks %llu-%llu: %s",
			     rd->img->data_path, U(b0), U(b0 + n - 1), strerror(-err));
}

/*
 * Checks stored blocks [b0, b0 + n) of which got bytes landed in s, and
 * returns the index of the first that fails its checksum (n if none).
 * A short read counts as a mismatch of the block it cut.
 */
static int64_t check_blocks(struct stable_reader *rd, struct stable_slot *s,
			    uint64_t b0, uint64_t n, ssize_t got, uint32_t *found)
{
	const struct stable_image *img = rd->img;
	const uint32_t bs = img->hdr.block_size;

	for (uint64_t i = 0; i < n; i++) {
		uint32_t valid = stable_block_valid(&img->hdr, b0 + i);

		rd->last_short = (uint64_t)got < i * bs + valid;
		if (rd->last_short) {
			*found = 0;
			return (int64_t)i;
		}
		*found = stable_crc32c(0, s->mem + i * bs, valid);
		if (*found != stable_image_crc(img, b0 + i))
			return (int64_t)i;
	}
	return (int64_t)n;
}

/* Reads [b0, b0 + n) into s and checks it, as check_blocks(). */
static int64_t read_blocks(struct stable_reader *rd, struct stable_slot *s,
			   uint64_t b0, uint64_t n, uint32_t *found)
{
	const uint32_t bs = rd->img->hdr.block_size;
	uint64_t off;
	ssize_t got;
	int fd;

	stable_image_locate(rd->img, b0, &fd, &off);
	got = stable_rd_read_sync(rd, s, fd, off, (size_t)(n * bs));
	if (got < 0)
		return read_error(rd, b0, n, (int)got);
	return check_blocks(rd, s, b0, n, got, found);
}

/* Records why block b failed for stable_last_error() and the message. */
static int block_failed(struct stable_reader *rd, uint64_t b, uint64_t loff,
			uint64_t llen, uint32_t found, const char *what)
{
	const struct stable_image *img = rd->img;

	rd->last = (struct stable_error){
		.block = b, .offset = loff, .length = llen,
		.expected_crc = stable_image_crc(img, b), .found_crc = found,
		.error = -EIO, .flags = rd->last_short ? STABLE_ERROR_SHORT_READ : 0,
	};
	rd->has_last = 1;
	if (rd->last_short)
		return stable_rd_err(rd, -EIO,
				     "%s: block %llu (bytes %llu-%llu): the image file ends before it (truncated while open?), after %u re-reads; %s",
				     img->path, U(b), U(loff), U(loff + llen - 1),
				     rd->max_retries, what);
	return stable_rd_err(rd, -EIO,
			     "%s: block %llu (bytes %llu-%llu): crc32c expected 0x%08x, found 0x%08x after %u re-reads; %s",
			     img->path, U(b), U(loff), U(loff + llen - 1),
			     rd->last.expected_crc, found, rd->max_retries, what);
}

/*
 * After the re-reads of a block failed: did a consistent writer commit a
 * newer table meanwhile? True when another reader already reloaded it
 * since gen, or when a reload here changed entries. A reload that fails
 * (an update half done, damage) leaves the old table, and the block goes
 * on to parity or fails as before.
 */
static int table_moved_on(struct stable_reader *rd, uint64_t gen, char *why,
			  size_t whylen)
{
	int ret;

	if (stable_image_generation(rd->img) != gen)
		return 1;
	ret = stable_image_reload(rd->img, why, whylen);
	if (ret > 0)
		rd->stats.table_reloads++;
	return ret > 0;
}

/* Rounds of re-reads with a newer table each, before parity is tried. */
#define MAX_RELOADS 3

/*
 * Reads [b0, b0 + n) until its first block verifies, re-reading up to
 * max_retries times, and again after each reload of a newer checksum
 * table. Returns the count of leading good blocks (>= 1), 0 if block b0
 * stayed bad, or -errno. first is the result of a first read already
 * done (bytes or -errno), or NO_READ.
 */
static int64_t read_verified(struct stable_reader *rd, struct stable_slot *s,
			     uint64_t b0, uint64_t n, uint32_t *found, ssize_t first)
{
	uint64_t gen = stable_image_generation(rd->img);
	unsigned int attempt = 0, reloads = 0;
	char why[256];
	int64_t good;

	for (;;) {
		if (attempt == 0 && reloads == 0 && first != NO_READ)
			good = first < 0 ? read_error(rd, b0, n, (int)first)
					 : check_blocks(rd, s, b0, n, first, found);
		else
			good = read_blocks(rd, s, b0, n, found);
		if (good < 0 || good == (int64_t)n)
			return good;
		/* A bad block after good ones is counted when a read starts at it. */
		if (good > 0)
			return good;
		rd->stats.verify_failures++;
		if (attempt == rd->max_retries) {
			if (reloads == MAX_RELOADS ||
			    !table_moved_on(rd, gen, why, sizeof(why)))
				return 0;
			gen = stable_image_generation(rd->img);
			reloads++;
			attempt = 0;
		} else {
			attempt++;
			rd->stats.retries++;
		}
		s->ext.flags |= STABLE_EXTENT_RETRIED;
		rd->ops->put(rd, s);
	}
}

/* Rebuilds data block b into s->aux; 0 or -EIO with the message set. */
static int rebuild(struct stable_reader *rd, struct stable_slot *s, uint64_t b,
		   uint64_t loff, uint64_t llen, uint32_t found)
{
	const struct stable_hdr *h = &rd->img->hdr;
	struct stable_rebuild r;
	char what[160];
	int ret;

	if (rd->flags & STABLE_READER_NO_PARITY || !(h->flags & STABLE_HF_PARITY))
		return block_failed(rd, b, loff, llen, found, "no parity to rebuild from");
	ret = aux_reserve(rd, s, h->block_size);
	if (ret)
		return ret;
	ret = stable_rebuild_block(rd->img, b, s->aux, rd->scratch, &r);
	if (ret) {
		if (r.has_other)
			snprintf(what, sizeof(what), "parity rebuild failed: %s (block %llu)",
				 r.why, U(r.other_bad));
		else
			snprintf(what, sizeof(what), "parity rebuild failed: %s", r.why);
		return block_failed(rd, b, loff, llen, found, what);
	}
	rd->stats.rebuilds++;
	s->ext.flags |= STABLE_EXTENT_REBUILT;
	return 0;
}

static int read_plain(struct stable_reader *rd, struct stable_slot *s, ssize_t got)
{
	const struct stable_hdr *h = &rd->img->hdr;
	const uint32_t bs = h->block_size;
	uint64_t off = s->req_off, b0 = s->b0, skip = off % bs;
	size_t len = s->req_len;
	uint32_t found = 0;
	int64_t good;
	int ret;

	good = read_verified(rd, s, b0, s->nblocks, &found, got);
	if (good < 0)
		return (int)good;
	if (good > 0) {
		s->ext.data = s->mem + skip;
		s->ext.length = (size_t)stable_min_u64(len, (uint64_t)good * bs - skip);
		s->ext.guarantee = rd->ops->guarantee;
		return 0;
	}
	ret = rebuild(rd, s, b0, b0 * bs, stable_block_valid(h, b0), found);
	if (ret)
		return ret;
	rd->ops->put(rd, s);
	s->ext.length = (size_t)stable_min_u64(len, bs - skip);
	return publish_aux(rd, s, bs, skip);
}

/*
 * Copies the stored blocks of an extent into a new private buffer,
 * rebuilding each bad one, so that it can be inflated. Only taken after
 * re-reads failed; *copy is the caller's to free.
 */
static int repair_extent(struct stable_reader *rd, struct stable_slot *s,
			 uint64_t b0, uint64_t n, uint64_t loff, uint64_t llen,
			 uint8_t **copy)
{
	const uint32_t bs = rd->img->hdr.block_size;
	uint32_t found = 0;
	int64_t good;
	int ret = 0;

	*copy = malloc(n * bs);
	if (!*copy)
		return stable_rd_err(rd, -ENOMEM, "no memory");
	for (uint64_t i = 0; i < n && !ret; i++) {
		good = read_verified(rd, s, b0 + i, 1, &found, NO_READ);
		if (good < 0) {
			ret = (int)good;
		} else if (good == 1) {
			memcpy(*copy + i * bs, s->mem, bs);
			rd->ops->put(rd, s);
		} else {
			ret = rebuild(rd, s, b0 + i, loff, llen, found);
			if (!ret)
				memcpy(*copy + i * bs, s->aux, bs);
		}
	}
	return ret;
}

static int inflate_extent(struct stable_reader *rd, const uint8_t *stored,
			  const struct stable_index_entry *ent, uint8_t *out,
			  uint64_t e, uint64_t loff, uint64_t llen)
{
	uLongf out_len = llen;
	int z;

	if (ent->flags & STABLE_XF_ZERO) {
		memset(out, 0, llen);
		return 0;
	}
	if (ent->flags & STABLE_XF_RAW) {
		memcpy(out, stored, llen);
		return 0;
	}
	z = uncompress(out, &out_len, stored, ent->stored_bytes);
	if (z == Z_OK && out_len == llen)
		return 0;
	rd->last = (struct stable_error){ .block = ent->first_block,
		.offset = loff, .length = llen, .error = -EIO };
	rd->has_last = 1;
	return stable_rd_err(rd, -EIO,
			     "%s: extent %llu (bytes %llu-%llu) passed its checksums but does not inflate: zlib %d, %lu of %llu bytes",
			     rd->img->path, U(e), U(loff), U(loff + llen - 1), z,
			     (unsigned long)out_len, U(llen));
}

static int read_compressed(struct stable_reader *rd, struct stable_slot *s,
			   ssize_t got)
{
	const struct stable_image *img = rd->img;
	const struct stable_hdr *h = &img->hdr;
	uint64_t off = s->req_off;
	uint64_t e = off / h->extent_size, loff = e * h->extent_size;
	uint64_t llen = stable_min_u64(h->extent_size, h->data_length - loff);
	struct stable_index_entry ent;
	uint8_t *copy = NULL;
	uint32_t found = 0;
	uint64_t n = s->nblocks;
	int64_t good;
	int ret;

	stable_index_get(img->index, e, &ent);
	s->ext.length = (size_t)stable_min_u64(s->req_len, loff + llen - off);
	good = read_verified(rd, s, ent.first_block, n, &found, got);
	if (good < 0)
		return (int)good;
	if (good == (int64_t)n && (ent.flags & STABLE_XF_RAW)) {
		/* zero-copy: the verified stored bytes are the data */
		s->ext.data = s->mem + (off - loff);
		s->ext.guarantee = rd->ops->guarantee;
		return 0;
	}
	if (good != (int64_t)n) {
		ret = repair_extent(rd, s, ent.first_block, n, loff, llen, &copy);
		if (ret) {
			free(copy);
			return ret;
		}
	}
	/* The slot's aux buffer is allocated once and reused. */
	ret = aux_reserve(rd, s, h->extent_size);
	if (!ret)
		ret = inflate_extent(rd, copy ? copy : s->mem, &ent, s->aux, e,
				     loff, llen);
	free(copy);
	if (ret)
		return ret;
	rd->ops->put(rd, s);
	if (!(ent.flags & (STABLE_XF_RAW | STABLE_XF_ZERO)))
		s->ext.flags |= STABLE_EXTENT_INFLATED;
	return publish_aux(rd, s, llen, off - loff);
}

void stable_pipeline_plan(struct stable_reader *rd, struct stable_slot *s,
			  uint64_t off, size_t len)
{
	const struct stable_hdr *h = &rd->img->hdr;
	const uint32_t bs = h->block_size;

	s->req_off = off;
	s->req_len = len;
	s->ext.offset = off;
	s->ext.flags = 0;
	s->ext.data = NULL;
	s->ext.length = 0;
	if (h->flags & STABLE_HF_COMPRESSED) {
		struct stable_index_entry ent;

		stable_index_get(rd->img->index, off / h->extent_size, &ent);
		s->b0 = ent.first_block;
		s->nblocks = stable_div_round_up(ent.stored_bytes, bs);
	} else {
		s->b0 = off / bs;
		s->nblocks = stable_min_u64(stable_div_round_up(off % bs + len, bs),
					    rd->buffer_size / bs);
	}
}

void stable_pipeline_locate(struct stable_reader *rd, struct stable_slot *s,
			    int *fd, uint64_t *off, size_t *len)
{
	stable_image_locate(rd->img, s->b0, fd, off);
	*len = (size_t)(s->nblocks * rd->img->hdr.block_size);
}

int stable_pipeline_finish(struct stable_reader *rd, struct stable_slot *s,
			   ssize_t got)
{
	if (rd->img->hdr.flags & STABLE_HF_COMPRESSED)
		return read_compressed(rd, s, got);
	return read_plain(rd, s, got);
}
