/*
 * Encoding and validating the version 1 header and compression index.
 * Every value read from an image passes through stable_hdr_decode() or
 * stable_index_check() before anything else uses it, so the rest of the
 * library can trust sizes and offsets: each field is checked on its own,
 * against the others, and against the size of the file, with every sum
 * and product checked for overflow.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "util.h"
#include "stable/stable.h"

uint32_t stable_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

uint64_t stable_le64(const uint8_t *p)
{
	return (uint64_t)stable_le32(p) | (uint64_t)stable_le32(p + 4) << 32;
}

void stable_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void stable_put_le64(uint8_t *p, uint64_t v)
{
	stable_put_le32(p, (uint32_t)v);
	stable_put_le32(p + 4, (uint32_t)(v >> 32));
}

/* Byte offsets of the fields (docs/format.md, "Header"). */
enum {
	H_MAGIC = 0, H_VERSION = 8, H_HDR_SIZE = 12, H_BLOCK_SIZE = 16,
	H_FLAGS = 20, H_DATA_LENGTH = 24, H_UUID = 32, H_DATA_OFFSET = 48,
	H_DATA_BLOCKS = 56, H_PARITY_OFFSET = 64, H_PARITY_GROUP = 72,
	H_EXTENT_SIZE = 76, H_PARITY_BLOCKS = 80, H_TABLE_OFFSET = 88,
	H_TABLE_LENGTH = 96, H_TABLE_CRC = 104, H_INDEX_CRC = 108,
	H_INDEX_OFFSET = 112, H_INDEX_LENGTH = 120, H_PATH_OFFSET = 128,
	H_PATH_LENGTH = 136, H_RESERVED0 = 140, H_DATA_FILE_SIZE = 144,
	H_RESERVED = 152, H_HDR_CRC = 252,
};

void stable_hdr_encode(const struct stable_hdr *h, uint8_t *out)
{
	memset(out, 0, STABLE_HDR_SIZE);
	memcpy(out + H_MAGIC, STABLE_MAGIC, 8);
	stable_put_le32(out + H_VERSION, h->version);
	stable_put_le32(out + H_HDR_SIZE, STABLE_HDR_SIZE);
	stable_put_le32(out + H_BLOCK_SIZE, h->block_size);
	stable_put_le32(out + H_FLAGS, h->flags);
	stable_put_le64(out + H_DATA_LENGTH, h->data_length);
	memcpy(out + H_UUID, h->uuid, 16);
	stable_put_le64(out + H_DATA_OFFSET, h->data_offset);
	stable_put_le64(out + H_DATA_BLOCKS, h->data_blocks);
	stable_put_le64(out + H_PARITY_OFFSET, h->parity_offset);
	stable_put_le32(out + H_PARITY_GROUP, h->parity_group);
	stable_put_le32(out + H_EXTENT_SIZE, h->extent_size);
	stable_put_le64(out + H_PARITY_BLOCKS, h->parity_blocks);
	stable_put_le64(out + H_TABLE_OFFSET, h->table_offset);
	stable_put_le64(out + H_TABLE_LENGTH, h->table_length);
	stable_put_le32(out + H_TABLE_CRC, h->table_crc);
	stable_put_le32(out + H_INDEX_CRC, h->index_crc);
	stable_put_le64(out + H_INDEX_OFFSET, h->index_offset);
	stable_put_le64(out + H_INDEX_LENGTH, h->index_length);
	stable_put_le64(out + H_PATH_OFFSET, h->path_offset);
	stable_put_le32(out + H_PATH_LENGTH, h->path_length);
	stable_put_le64(out + H_DATA_FILE_SIZE, h->data_file_size);
	stable_put_le32(out + H_HDR_CRC, stable_crc32c(0, out, H_HDR_CRC));
}

#define FAIL(...) return stable_set_err(err, errlen, -EINVAL, __VA_ARGS__)
#define U(x) ((unsigned long long)(x))

struct region {
	const char *name;
	uint64_t off, len;
};

/* Checks that a region lies inside the file; end is returned for overlap checks. */
static int region_fits(const struct region *r, uint64_t file_size,
		       char *err, size_t errlen)
{
	uint64_t end;

	if (stable_add_overflow(r->off, r->len, &end))
		FAIL("%s offset %llu + length %llu overflows", r->name,
		     U(r->off), U(r->len));
	if (end > file_size)
		return stable_set_err(err, errlen, -EINVAL,
			   "%s [%llu, %llu) extends past the end of the file (%llu bytes): truncated?",
			   r->name, U(r->off), U(end), U(file_size));
	return 0;
}

static int regions_disjoint(const struct region *r, int n, char *err,
			    size_t errlen)
{
	for (int i = 0; i < n; i++) {
		for (int j = i + 1; j < n; j++) {
			if (r[i].len == 0 || r[j].len == 0)
				continue;
			if (r[i].off < r[j].off + r[j].len &&
			    r[j].off < r[i].off + r[i].len)
				FAIL("%s [%llu, +%llu) overlaps %s [%llu, +%llu)",
				     r[i].name, U(r[i].off), U(r[i].len),
				     r[j].name, U(r[j].off), U(r[j].len));
		}
	}
	return 0;
}

static int check_geometry(const struct stable_hdr *h, char *err, size_t errlen)
{
	uint64_t n, blocks;

	if (h->block_size < STABLE_MIN_BLOCK || h->block_size > STABLE_MAX_BLOCK ||
	    (h->block_size & (h->block_size - 1)))
		FAIL("block_size %u is not a power of two from 512 to 1048576",
		     h->block_size);
	if (h->flags & ~STABLE_HF_KNOWN)
		FAIL("flags 0x%x has unknown bits 0x%x", h->flags,
		     h->flags & ~STABLE_HF_KNOWN);
	if ((h->flags & STABLE_HF_SIDECAR) && (h->flags & STABLE_HF_COMPRESSED))
		FAIL("flags 0x%x: a sidecar image cannot be compressed", h->flags);

	blocks = stable_div_round_up(h->data_length, h->block_size);
	if (h->flags & STABLE_HF_COMPRESSED) {
		if (h->extent_size < h->block_size ||
		    h->extent_size > STABLE_MAX_EXTENT ||
		    h->extent_size % h->block_size)
			FAIL("extent_size %u is not a multiple of block_size %u up to %u",
			     h->extent_size, h->block_size, STABLE_MAX_EXTENT);
		n = stable_hdr_extents(h);
		if (h->index_length != n * STABLE_INDEX_ENTRY)
			FAIL("index_length %llu does not match %llu extents of %u bytes",
			     U(h->index_length), U(n), STABLE_INDEX_ENTRY);
		/* An extent is never stored larger than it is. */
		if (h->data_blocks > blocks + n)
			FAIL("data_blocks %llu exceeds what %llu extents can store",
			     U(h->data_blocks), U(n));
	} else {
		if (h->extent_size != 0)
			FAIL("extent_size %u set but the compressed flag is not",
			     h->extent_size);
		if (h->index_offset || h->index_length || h->index_crc)
			FAIL("index fields set (offset %llu, length %llu) but the image is not compressed",
			     U(h->index_offset), U(h->index_length));
		if (h->data_blocks != blocks)
			FAIL("data_blocks %llu does not match data_length %llu at block_size %u (expected %llu)",
			     U(h->data_blocks), U(h->data_length), h->block_size,
			     U(blocks));
	}

	if (h->flags & STABLE_HF_PARITY) {
		if (h->parity_group < 2 || h->parity_group > STABLE_MAX_PARITY_GROUP)
			FAIL("parity_group %u is not from 2 to %u", h->parity_group,
			     STABLE_MAX_PARITY_GROUP);
		n = stable_div_round_up(h->data_blocks, h->parity_group);
		if (h->parity_blocks != n)
			FAIL("parity_blocks %llu does not match %llu data blocks in groups of %u (expected %llu)",
			     U(h->parity_blocks), U(h->data_blocks),
			     h->parity_group, U(n));
		if (h->parity_offset % h->block_size)
			FAIL("parity_offset %llu is not aligned to block_size %u",
			     U(h->parity_offset), h->block_size);
	} else if (h->parity_group || h->parity_blocks || h->parity_offset) {
		FAIL("parity fields set (group %u, blocks %llu) but the parity flag is not",
		     h->parity_group, U(h->parity_blocks));
	}

	if (stable_add_overflow(h->data_blocks, h->parity_blocks, &n) ||
	    stable_mul_overflow(n, 4, &n) || h->table_length != n)
		FAIL("table_length %llu does not match %llu data + %llu parity blocks",
		     U(h->table_length), U(h->data_blocks), U(h->parity_blocks));
	return 0;
}

static int check_regions(const struct stable_hdr *h, uint64_t file_size,
			 char *err, size_t errlen)
{
	struct region r[6];
	uint64_t len;
	int n = 0, ret;

	r[n++] = (struct region){ "header", 0, STABLE_HDR_AREA };
	r[n++] = (struct region){ "checksum table", h->table_offset, h->table_length };
	r[n++] = (struct region){ "compression index", h->index_offset, h->index_length };
	if (stable_mul_overflow(h->parity_blocks, h->block_size, &len))
		FAIL("parity_blocks %llu overflows", U(h->parity_blocks));
	r[n++] = (struct region){ "parity region", h->parity_offset, len };

	if (h->flags & STABLE_HF_SIDECAR) {
		if (h->data_offset != 0)
			FAIL("data_offset %llu must be 0 in a sidecar manifest",
			     U(h->data_offset));
		if (h->path_length == 0 || h->path_length > STABLE_MAX_PATH)
			FAIL("path_length %u is not from 1 to %u", h->path_length,
			     STABLE_MAX_PATH);
		if (h->data_file_size < h->data_length)
			FAIL("data_file_size %llu is smaller than data_length %llu",
			     U(h->data_file_size), U(h->data_length));
		r[n++] = (struct region){ "data path", h->path_offset, h->path_length };
	} else {
		if (h->path_offset || h->path_length || h->data_file_size)
			FAIL("sidecar fields set (path length %u) in an inline image",
			     h->path_length);
		if (h->data_offset % h->block_size || h->data_offset < STABLE_HDR_AREA)
			FAIL("data_offset %llu is not block aligned after the header",
			     U(h->data_offset));
		if (stable_mul_overflow(h->data_blocks, h->block_size, &len))
			FAIL("data_blocks %llu overflows", U(h->data_blocks));
		r[n++] = (struct region){ "data region", h->data_offset, len };
	}
	/* In file order, so a truncation names the first region it cuts. */
	for (int i = 0; i < n; i++) {
		for (int j = i + 1; j < n; j++) {
			if (r[j].off < r[i].off) {
				struct region t = r[i];

				r[i] = r[j];
				r[j] = t;
			}
		}
		ret = r[i].len ? region_fits(&r[i], file_size, err, errlen) : 0;
		if (ret)
			return ret;
	}
	return regions_disjoint(r, n, err, errlen);
}

int stable_hdr_decode(struct stable_hdr *h, const uint8_t *in,
		      uint64_t file_size, char *err, size_t errlen)
{
	uint32_t crc, stored;
	int ret;

	if (memcmp(in + H_MAGIC, STABLE_MAGIC, 8) != 0)
		FAIL("bad magic: not a stable image");
	h->version = stable_le32(in + H_VERSION);
	if (h->version != STABLE_FORMAT_VERSION)
		FAIL("unsupported format version %u (this library reads %u)",
		     h->version, STABLE_FORMAT_VERSION);
	if (stable_le32(in + H_HDR_SIZE) != STABLE_HDR_SIZE)
		FAIL("header_size %u is not %u", stable_le32(in + H_HDR_SIZE),
		     STABLE_HDR_SIZE);
	stored = stable_le32(in + H_HDR_CRC);
	crc = stable_crc32c(0, in, H_HDR_CRC);
	if (crc != stored)
		FAIL("header checksum mismatch: stored 0x%08x, computed 0x%08x",
		     stored, crc);

	h->block_size = stable_le32(in + H_BLOCK_SIZE);
	h->flags = stable_le32(in + H_FLAGS);
	h->data_length = stable_le64(in + H_DATA_LENGTH);
	memcpy(h->uuid, in + H_UUID, 16);
	h->data_offset = stable_le64(in + H_DATA_OFFSET);
	h->data_blocks = stable_le64(in + H_DATA_BLOCKS);
	h->parity_offset = stable_le64(in + H_PARITY_OFFSET);
	h->parity_group = stable_le32(in + H_PARITY_GROUP);
	h->extent_size = stable_le32(in + H_EXTENT_SIZE);
	h->parity_blocks = stable_le64(in + H_PARITY_BLOCKS);
	h->table_offset = stable_le64(in + H_TABLE_OFFSET);
	h->table_length = stable_le64(in + H_TABLE_LENGTH);
	h->table_crc = stable_le32(in + H_TABLE_CRC);
	h->index_crc = stable_le32(in + H_INDEX_CRC);
	h->index_offset = stable_le64(in + H_INDEX_OFFSET);
	h->index_length = stable_le64(in + H_INDEX_LENGTH);
	h->path_offset = stable_le64(in + H_PATH_OFFSET);
	h->path_length = stable_le32(in + H_PATH_LENGTH);
	h->data_file_size = stable_le64(in + H_DATA_FILE_SIZE);

	if (stable_le32(in + H_RESERVED0) != 0)
		FAIL("reserved field at byte %d is 0x%x, not zero", H_RESERVED0,
		     stable_le32(in + H_RESERVED0));
	for (int i = H_RESERVED; i < H_HDR_CRC; i++)
		if (in[i] != 0)
			FAIL("reserved byte %d is 0x%02x, not zero", i, in[i]);

	ret = check_geometry(h, err, errlen);
	if (ret)
		return ret;
	return check_regions(h, file_size, err, errlen);
}

void stable_index_get(const uint8_t *index, uint64_t e,
		      struct stable_index_entry *ent)
{
	const uint8_t *p = index + e * STABLE_INDEX_ENTRY;

	ent->first_block = stable_le64(p);
	ent->stored_bytes = stable_le32(p + 8);
	ent->flags = stable_le32(p + 12);
}

void stable_index_put(uint8_t *index, uint64_t e,
		      const struct stable_index_entry *ent)
{
	uint8_t *p = index + e * STABLE_INDEX_ENTRY;

	stable_put_le64(p, ent->first_block);
	stable_put_le32(p + 8, ent->stored_bytes);
	stable_put_le32(p + 12, ent->flags);
}

uint64_t stable_hdr_extents(const struct stable_hdr *h)
{
	if (!h->extent_size)
		return 0;
	return stable_div_round_up(h->data_length, h->extent_size);
}

int stable_index_check(const struct stable_hdr *h, const uint8_t *index,
		       char *err, size_t errlen)
{
	uint64_t n = stable_hdr_extents(h), next = 0;
	struct stable_index_entry ent;

	for (uint64_t e = 0; e < n; e++) {
		uint64_t logical = h->data_length - e * h->extent_size;
		uint64_t nblocks;

		if (logical > h->extent_size)
			logical = h->extent_size;
		stable_index_get(index, e, &ent);
		if (ent.flags & ~(STABLE_XF_RAW | STABLE_XF_ZERO))
			FAIL("compression index extent %llu: unknown flags 0x%x",
			     U(e), ent.flags);
		if ((ent.flags & STABLE_XF_RAW) && (ent.flags & STABLE_XF_ZERO))
			FAIL("compression index extent %llu: flagged both RAW and ZERO", U(e));
		if (ent.first_block != next)
			FAIL("compression index extent %llu: first_block %llu, expected %llu",
			     U(e), U(ent.first_block), U(next));
		if ((ent.flags & STABLE_XF_ZERO) && ent.stored_bytes != 0)
			FAIL("compression index extent %llu: a ZERO extent stores nothing, not %u bytes",
			     U(e), ent.stored_bytes);
		if (!(ent.flags & STABLE_XF_ZERO) &&
		    (ent.stored_bytes == 0 || ent.stored_bytes > logical))
			FAIL("compression index extent %llu: stored_bytes %u is not from 1 to %llu",
			     U(e), ent.stored_bytes, U(logical));
		if ((ent.flags & STABLE_XF_RAW) && ent.stored_bytes != logical)
			FAIL("compression index extent %llu: raw extent of %u bytes, expected %llu",
			     U(e), ent.stored_bytes, U(logical));
		nblocks = stable_div_round_up(ent.stored_bytes, h->block_size);
		next += nblocks;
		if (next > h->data_blocks)
			FAIL("compression index extent %llu: blocks end at %llu past data_blocks %llu",
			     U(e), U(next), U(h->data_blocks));
	}
	if (next != h->data_blocks)
		FAIL("compression index covers %llu blocks, data_blocks is %llu",
		     U(next), U(h->data_blocks));
	return 0;
}

uint64_t stable_index_find(const struct stable_hdr *h, const uint8_t *index,
			   uint64_t b)
{
	uint64_t lo = 0, hi = stable_hdr_extents(h);
	struct stable_index_entry ent;

	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		stable_index_get(index, mid, &ent);
		if (ent.first_block <= b)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

uint32_t stable_block_valid(const struct stable_hdr *h, uint64_t b)
{
	uint64_t rest;

	if (b >= h->data_blocks || (h->flags & STABLE_HF_COMPRESSED))
		return h->block_size;
	rest = h->data_length - b * h->block_size;
	return rest < h->block_size ? (uint32_t)rest : h->block_size;
}

uint32_t stable_root_digest(const struct stable_hdr *h, const uint8_t *table,
			    const uint8_t *index)
{
	uint8_t geo[40] = { 0 };
	uint32_t crc;

	/* Content, not layout: the sidecar flag and offsets stay out. */
	stable_put_le32(geo + 0, h->version);
	stable_put_le32(geo + 4, h->block_size);
	stable_put_le32(geo + 8, h->flags & ~STABLE_HF_SIDECAR);
	stable_put_le32(geo + 12, h->parity_group);
	stable_put_le32(geo + 16, h->extent_size);
	stable_put_le64(geo + 24, h->data_length);
	stable_put_le64(geo + 32, h->data_blocks);
	crc = stable_crc32c(0, geo, sizeof(geo));
	crc = stable_crc32c(crc, table, h->table_length);
	if (h->index_length)
		crc = stable_crc32c(crc, index, h->index_length);
	return crc;
}
