/*
 * Making an image from a source file or block device.
 *
 * Pass one streams the source once: checksums every block and (inline)
 * writes the data region, compressing extents when asked. Only then is
 * the number of stored blocks known, so pass two reads the data region
 * back (from the new image, or the source for a sidecar) to compute the
 * parity blocks. Everything is written to a temporary file that replaces
 * the target only when complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "format.h"
#include "parity.h"
#include "util.h"
#include "stable/mkimage.h"
#include "stable/stable.h"

#define CHUNK (1u << 20)
#define U(x) ((unsigned long long)(x))

struct mk {
	const struct stable_mkimage_options *o;
	struct stable_hdr h;
	int src, out;
	const char *src_path, *out_path;
	uint64_t src_size;
	uint8_t *buf;		/* one chunk (or one extent) of source */
	uint8_t *zbuf;		/* compressed extent */
	uint8_t *table;		/* grows with stored blocks */
	uint64_t table_cap;
	uint8_t *index;
	char *err;
	size_t errlen;
};

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return stable_div_round_up(v, a) * a;
}

static int table_add(struct mk *m, uint64_t block, uint32_t crc)
{
	if ((block + 1) * 4 > m->table_cap) {
		uint64_t cap = m->table_cap ? m->table_cap * 2 : 4096;
		uint8_t *t = realloc(m->table, cap);

		if (!t)
			return stable_set_err(m->err, m->errlen, -ENOMEM,
					      "%s: no memory for the checksum table",
					      m->out_path);
		m->table = t;
		m->table_cap = cap;
	}
	stable_put_le32(m->table + block * 4, crc);
	return 0;
}

static int read_src(struct mk *m, void *buf, size_t len, uint64_t off)
{
	ssize_t n = stable_pread_full(m->src, buf, len, off);

	if (n < 0)
		return stable_set_err(m->err, m->errlen, (int)n, "%s: read at %llu: %s",
				      m->src_path, U(off), strerror((int)-n));
	if ((size_t)n != len)
		return stable_set_err(m->err, m->errlen, -EIO,
				      "%s: source shrank while reading (at %llu)",
				      m->src_path, U(off + (uint64_t)n));
	return 0;
}

static int write_out(struct mk *m, const void *buf, size_t len, uint64_t off)
{
	int ret = stable_pwrite_full(m->out, buf, len, off);

	if (ret)
		return stable_set_err(m->err, m->errlen, ret, "%s: write at %llu: %s",
				      m->out_path, U(off), strerror(-ret));
	return 0;
}

static int all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/*
 * Writes the blocks of buf (whole blocks) that are not all zeroes, in
 * runs. Holes stay holes, block by block: a sparse source makes a sparse
 * image (the output is a new file), and readers can map its zero blocks
 * without reading them (map.c).
 */
static int write_blocks(struct mk *m, const uint8_t *buf, size_t len, uint64_t off)
{
	const size_t bs = m->h.block_size;
	size_t start = 0, end;
	int ret;

	while (start < len) {
		while (start < len && all_zero(buf + start, bs))
			start += bs;
		for (end = start; end < len && !all_zero(buf + end, bs); end += bs)
			;
		if (end > start) {
			ret = write_out(m, buf + start, end - start, off + start);
			if (ret)
				return ret;
		}
		start = end;
	}
	return 0;
}

static void progress(struct mk *m, uint64_t done)
{
	if (m->o->progress)
		m->o->progress(m->o->progress_arg, done, m->src_size);
}

/*
 * 64 KiB, or 8 blocks when blocks are bigger: an extent is stored padded
 * to whole blocks, so an extent of one block could never be smaller.
 */
static uint32_t default_extent(uint32_t block_size)
{
	uint64_t x = (uint64_t)block_size * STABLE_EXTENT_BLOCKS;

	if (x < STABLE_DEFAULT_EXTENT_SIZE)
		return STABLE_DEFAULT_EXTENT_SIZE;
	return x > STABLE_MAX_EXTENT ? STABLE_MAX_EXTENT : (uint32_t)x;
}

/* Pass one, plain: checksum each block, and copy it unless sidecar. */
static int pass_plain(struct mk *m)
{
	const uint32_t bs = m->h.block_size;
	const size_t chunk = bs > CHUNK ? bs : CHUNK;
	uint64_t pos = 0, b = 0;
	int ret;

	while (pos < m->src_size) {
		size_t len = (size_t)stable_min_u64(chunk, m->src_size - pos);
		size_t padded = (size_t)align_up(len, bs);

		ret = read_src(m, m->buf, len, pos);
		if (ret)
			return ret;
		memset(m->buf + len, 0, padded - len);
		for (size_t o = 0; o < len; o += bs, b++) {
			size_t valid = len - o < bs ? len - o : bs;

			ret = table_add(m, b, stable_crc32c(0, m->buf + o, valid));
			if (ret)
				return ret;
		}
		if (!(m->h.flags & STABLE_HF_SIDECAR)) {
			ret = write_blocks(m, m->buf, padded, m->h.data_offset + pos);
			if (ret)
				return ret;
		}
		pos += len;
		progress(m, pos);
	}
	m->h.data_blocks = b;
	return 0;
}

/* Pass one, compressed: each extent deflated (or kept raw if that is no smaller). */
static int pass_compressed(struct mk *m)
{
	const uint32_t bs = m->h.block_size, xs = m->h.extent_size;
	uint64_t n = stable_hdr_extents(&m->h), next = 0;
	struct stable_index_entry ent;
	int ret;

	m->index = calloc(n ? n : 1, STABLE_INDEX_ENTRY);
	if (!m->index)
		return stable_set_err(m->err, m->errlen, -ENOMEM, "no memory for the index");
	for (uint64_t e = 0; e < n; e++) {
		uint64_t pos = e * xs;
		size_t len = (size_t)stable_min_u64(xs, m->src_size - pos);
		uLongf zlen = compressBound(xs);
		const uint8_t *stored = m->zbuf;
		size_t padded;

		ret = read_src(m, m->buf, len, pos);
		if (ret)
			return ret;
		/* Holes (and zeroes) stay holes: nothing stored, no blocks. */
		if (all_zero(m->buf, len)) {
			ent = (struct stable_index_entry){ .first_block = next,
							   .flags = STABLE_XF_ZERO };
			stable_index_put(m->index, e, &ent);
			progress(m, pos + len);
			continue;
		}
		if (compress2(m->zbuf, &zlen, m->buf, len, Z_DEFAULT_COMPRESSION) != Z_OK)
			return stable_set_err(m->err, m->errlen, -EIO,
					      "zlib failed on extent %llu", U(e));
		ent.first_block = next;
		ent.flags = 0;
		if (zlen >= len) {
			stored = m->buf;
			zlen = len;
			ent.flags = STABLE_XF_RAW;
		}
		ent.stored_bytes = (uint32_t)zlen;
		stable_index_put(m->index, e, &ent);
		padded = (size_t)align_up(zlen, bs);
		memset((uint8_t *)stored + zlen, 0, padded - zlen);
		for (size_t o = 0; o < padded; o += bs) {
			ret = table_add(m, next++, stable_crc32c(0, stored + o, bs));
			if (ret)
				return ret;
		}
		ret = write_out(m, stored, padded,
				m->h.data_offset + ent.first_block * bs);
		if (ret)
			return ret;
		progress(m, pos + len);
	}
	m->h.data_blocks = next;
	return 0;
}

/* Pass two: parity blocks from the data region as stored. */
static int pass_parity(struct mk *m)
{
	struct stable_hdr *h = &m->h;
	const uint32_t bs = h->block_size;
	int data_fd = (h->flags & STABLE_HF_SIDECAR) ? m->src : m->out;
	uint8_t *acc = m->zbuf;
	int ret;

	for (uint64_t g = 0; g < h->parity_blocks; g++) {
		uint64_t first = g * h->parity_group;
		uint64_t last = stable_min_u64(first + h->parity_group, h->data_blocks);

		memset(acc, 0, bs);
		for (uint64_t b = first; b < last; b++) {
			uint32_t valid = stable_block_valid(h, b);
			ssize_t n = stable_pread_full(data_fd, m->buf, valid,
						      h->data_offset + b * bs);

			if (n != (ssize_t)valid)
				return stable_set_err(m->err, m->errlen, n < 0 ? (int)n : -EIO,
						      "reading block %llu back for parity failed",
						      U(b));
			stable_xor_into(acc, m->buf, valid);
		}
		ret = table_add(m, h->data_blocks + g, stable_crc32c(0, acc, bs));
		if (!ret)
			ret = write_out(m, acc, bs, h->parity_offset + g * bs);
		if (ret)
			return ret;
	}
	return 0;
}

static int check_options(struct mk *m, const struct stable_mkimage_options *o)
{
	struct stable_hdr *h = &m->h;

	h->block_size = o->block_size ? o->block_size : STABLE_DEFAULT_BLOCK_SIZE;
	if (h->block_size < STABLE_MIN_BLOCK || h->block_size > STABLE_MAX_BLOCK ||
	    (h->block_size & (h->block_size - 1)))
		return stable_set_err(m->err, m->errlen, -EINVAL,
				      "block size %u is not a power of two from 512 to 1048576",
				      h->block_size);
	if (o->parity_group == 1 || o->parity_group > STABLE_MAX_PARITY_GROUP)
		return stable_set_err(m->err, m->errlen, -EINVAL,
				      "parity group %u is not from 2 to %u",
				      o->parity_group, STABLE_MAX_PARITY_GROUP);
	if (o->sidecar && o->compress)
		return stable_set_err(m->err, m->errlen, -EINVAL,
				      "a sidecar image cannot be compressed: its data stays the raw source");
	if (o->compress) {
		h->extent_size = o->extent_size ? o->extent_size : default_extent(h->block_size);
		if (h->extent_size < h->block_size)
			h->extent_size = h->block_size;
		if (h->extent_size % h->block_size || h->extent_size > STABLE_MAX_EXTENT)
			return stable_set_err(m->err, m->errlen, -EINVAL,
					      "extent size %u is not a multiple of the block size %u up to %u",
					      h->extent_size, h->block_size,
					      STABLE_MAX_EXTENT);
		h->flags |= STABLE_HF_COMPRESSED;
	}
	if (o->sidecar)
		h->flags |= STABLE_HF_SIDECAR;
	if (o->parity_group) {
		h->flags |= STABLE_HF_PARITY;
		h->parity_group = o->parity_group;
	}
	return 0;
}

static int make(struct mk *m, const char *tmp, uint32_t *digest)
{
	struct stable_hdr *h = &m->h;
	uint8_t raw[STABLE_HDR_SIZE];
	char *real = NULL;
	uint64_t end = 0;
	size_t bufsz;
	int ret;

	h->version = STABLE_FORMAT_VERSION;
	h->data_length = m->src_size;
	if (getrandom(h->uuid, sizeof(h->uuid), 0) != sizeof(h->uuid))
		return stable_set_err(m->err, m->errlen, -EIO, "getrandom failed");
	h->uuid[6] = (h->uuid[6] & 0x0f) | 0x40;	/* RFC 4122 version 4 */
	h->uuid[8] = (h->uuid[8] & 0x3f) | 0x80;

	bufsz = h->block_size > CHUNK ? h->block_size : CHUNK;
	if (h->extent_size > bufsz)
		bufsz = h->extent_size;
	m->buf = malloc(bufsz + h->block_size);
	m->zbuf = malloc(compressBound(bufsz) + h->block_size);
	if (!m->buf || !m->zbuf)
		return stable_set_err(m->err, m->errlen, -ENOMEM, "no memory");

	if (h->flags & STABLE_HF_SIDECAR) {
		real = realpath(m->src_path, NULL);
		if (!real || strlen(real) > STABLE_MAX_PATH) {
			free(real);
			return stable_set_err(m->err, m->errlen, -EINVAL,
					      "%s: cannot resolve to a path under %d bytes",
					      m->src_path, STABLE_MAX_PATH);
		}
		h->data_file_size = m->src_size;
		h->path_offset = STABLE_HDR_AREA;
		h->path_length = (uint32_t)strlen(real);
		ret = write_out(m, real, h->path_length, h->path_offset);
		free(real);
		if (ret)
			return ret;
		end = h->path_offset + h->path_length;
	} else {
		h->data_offset = align_up(STABLE_HDR_AREA, h->block_size);
	}

	ret = (h->flags & STABLE_HF_COMPRESSED) ? pass_compressed(m) : pass_plain(m);
	if (ret)
		return ret;
	if (!(h->flags & STABLE_HF_SIDECAR)) {
		end = h->data_offset + h->data_blocks * h->block_size;
		/* Trailing zero blocks were skipped as holes: make them readable. */
		if (ftruncate(m->out, (off_t)end) < 0)
			return stable_set_err(m->err, m->errlen, -errno, "%s: %s", tmp,
					      strerror(errno));
	}

	if (h->parity_group) {
		h->parity_blocks = stable_div_round_up(h->data_blocks, h->parity_group);
		h->parity_offset = align_up(end, h->block_size);
		ret = pass_parity(m);
		if (ret)
			return ret;
		end = h->parity_offset + h->parity_blocks * h->block_size;
	}

	h->table_offset = align_up(end, STABLE_HDR_AREA);
	h->table_length = (h->data_blocks + h->parity_blocks) * 4;
	h->table_crc = stable_crc32c(0, m->table, h->table_length);
	ret = write_out(m, m->table, h->table_length, h->table_offset);
	if (ret)
		return ret;
	end = h->table_offset + h->table_length;
	if (m->index) {
		h->index_offset = end;
		h->index_length = stable_hdr_extents(h) * STABLE_INDEX_ENTRY;
		h->index_crc = stable_crc32c(0, m->index, h->index_length);
		ret = write_out(m, m->index, h->index_length, h->index_offset);
		if (ret)
			return ret;
		end += h->index_length;
	}
	stable_hdr_encode(h, raw);
	ret = write_out(m, raw, sizeof(raw), 0);
	if (ret)
		return ret;
	if (ftruncate(m->out, (off_t)end) < 0 || fsync(m->out) < 0)
		return stable_set_err(m->err, m->errlen, -errno, "%s: %s", tmp,
				      strerror(errno));
	if (digest)	/* optional */
		*digest = stable_root_digest(h, m->table, m->index);
	return 0;
}

int stable_mkimage(const char *source, const char *image,
		   const struct stable_mkimage_options *opts,
		   uint32_t *root_digest, char *err, size_t errlen)
{
	static const struct stable_mkimage_options defaults;
	struct mk m = { .o = opts ? opts : &defaults, .err = err, .errlen = errlen,
			.src = -1, .out = -1, .src_path = source, .out_path = image };
	char *tmp = NULL;
	int ret;

	ret = check_options(&m, m.o);
	if (ret)
		return ret;
	m.src = open(source, O_RDONLY | O_CLOEXEC);
	if (m.src < 0)
		return stable_set_err(err, errlen, -errno, "%s: %s", source,
				      strerror(errno));
	ret = stable_fd_size(m.src, &m.src_size);
	if (ret) {
		stable_set_err(err, errlen, ret, "%s: not a regular file or block device",
			       source);
		goto out;
	}
	if (asprintf(&tmp, "%s.tmp.XXXXXX", image) < 0) {
		tmp = NULL;
		ret = -ENOMEM;
		goto out;
	}
	m.out = mkstemp(tmp);
	if (m.out < 0) {
		ret = stable_set_err(err, errlen, -errno, "%s: %s", image, strerror(errno));
		goto out;
	}
	ret = make(&m, tmp, root_digest);
	if (!ret && fchmod(m.out, 0644) == 0 && rename(tmp, image) < 0)
		ret = stable_set_err(err, errlen, -errno, "%s: %s", image, strerror(errno));
	if (ret)
		unlink(tmp);
out:
	if (m.out >= 0)
		close(m.out);
	close(m.src);
	free(tmp);
	free(m.buf);
	free(m.zbuf);
	free(m.table);
	free(m.index);
	return ret;
}
