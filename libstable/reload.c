/*
 * Reloading the checksum table of an image that a consistent writer
 * updates in place (docs/format.md, "Updating an image in place"): the
 * writer rewrites blocks, then their checksums and parity, then the
 * header's table crc. A reader that opened the image earlier holds the old
 * table and sees the rewritten blocks fail; before it gives up on a block
 * it asks for a reload here.
 *
 * A new table is taken only whole and only when it checks: the header
 * must have changed, decode, keep the image's geometry, and the table read
 * after it must match its crc. A writer in the middle of an update fails
 * that check, and the reader's old table stays (the next failure tries
 * again). Entries change one at a time with atomic stores, never the
 * table pointer, so readers need no lock and nothing is freed under them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "util.h"
#include "stable/stable.h"

/* Everything but the crcs must stay as it was: the readers' plans use it. */
static int same_geometry(const struct stable_hdr *a, const struct stable_hdr *b)
{
	uint8_t ra[STABLE_HDR_SIZE], rb[STABLE_HDR_SIZE];
	struct stable_hdr x = *a, y = *b;

	/* compared encoded: the struct's padding is not part of the header */
	x.table_crc = y.table_crc = 0;
	x.index_crc = y.index_crc = 0;
	stable_hdr_encode(&x, ra);
	stable_hdr_encode(&y, rb);
	return memcmp(ra, rb, sizeof(ra)) == 0;
}

static int read_exact(struct stable_image *img, uint8_t *buf, uint64_t len,
		      uint64_t off, const char *what, char *err, size_t errlen)
{
	ssize_t n = stable_pread_full(img->fd, buf, len, off);

	if (n == (ssize_t)len)
		return 0;
	return stable_set_err(err, errlen, n < 0 ? (int)n : -EINVAL,
			      "%s: re-reading the %s: %s", img->path, what,
			      n < 0 ? strerror((int)-n) : "file truncated");
}

/* Checks the header and table just read; 0 when they may replace the old. */
static int check_new(struct stable_image *img, const uint8_t *raw,
		     uint8_t **table, char *err, size_t errlen)
{
	struct stable_hdr h;
	char why[256];
	uint64_t size;
	int ret;

	ret = stable_fd_size(img->fd, &size);
	if (ret)
		return stable_set_err(err, errlen, ret, "%s: cannot size the file", img->path);
	ret = stable_hdr_decode(&h, raw, size, why, sizeof(why));
	if (ret)
		return stable_set_err(err, errlen, ret, "%s: new header: %s", img->path, why);
	if (!same_geometry(&h, &img->hdr))
		return stable_set_err(err, errlen, -ESTALE,
				      "%s: the header now describes another geometry; reopen the image",
				      img->path);
	/* The index says where extents are stored: it cannot change under a reader. */
	if (h.index_crc != img->hdr.index_crc)
		return stable_set_err(err, errlen, -ESTALE,
				      "%s: the compression index changed; reopen the image",
				      img->path);
	*table = malloc(h.table_length);
	if (!*table)
		return stable_set_err(err, errlen, -ENOMEM, "%s: no memory", img->path);
	ret = read_exact(img, *table, h.table_length, h.table_offset,
			 "checksum table", err, errlen);
	if (ret)
		return ret;
	if (stable_crc32c(0, *table, h.table_length) != h.table_crc)
		return stable_set_err(err, errlen, -EAGAIN,
				      "%s: the checksum table does not match the header's crc 0x%08x (an update in progress?)",
				      img->path, h.table_crc);
	return 0;
}

/* Stores the entries that differ; returns how many did. */
static uint64_t take_entries(struct stable_image *img, const uint8_t *table)
{
	uint64_t n = img->hdr.table_length / 4, changed = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint32_t *entry = (uint32_t *)(void *)(img->table + i * 4);
		uint32_t v;

		memcpy(&v, table + i * 4, 4);
		if (__atomic_load_n(entry, __ATOMIC_RELAXED) != v) {
			__atomic_store_n(entry, v, __ATOMIC_RELAXED);
			changed++;
		}
	}
	return changed;
}

static int reload_locked(struct stable_image *img, char *err, size_t errlen)
{
	uint8_t raw[STABLE_HDR_SIZE], *table = NULL;
	uint64_t changed;
	int ret;

	ret = read_exact(img, raw, sizeof(raw), 0, "header", err, errlen);
	if (ret)
		return ret;
	if (!memcmp(raw, img->loaded_hdr, sizeof(raw)))
		return 0;	/* nobody committed an update since */
	ret = check_new(img, raw, &table, err, errlen);
	if (ret) {
		free(table);
		return ret;
	}
	changed = take_entries(img, table);
	__atomic_store_n(&img->root_digest,
			 stable_root_digest(&img->hdr, table, img->index), __ATOMIC_RELAXED);
	free(table);
	memcpy(img->loaded_hdr, raw, sizeof(raw));
	if (!changed)
		return 0;
	/* release: a reader that sees the new generation sees the entries */
	__atomic_add_fetch(&img->generation, 1, __ATOMIC_RELEASE);
	return 1;
}

int stable_image_reload(struct stable_image *img, char *err, size_t errlen)
{
	int ret;

	if (img->flags & (STABLE_OPEN_NO_RELOAD | STABLE_OPEN_EXPECT_DIGEST))
		return 0;
	pthread_mutex_lock(&img->reload_lock);
	ret = reload_locked(img, err, errlen);
	pthread_mutex_unlock(&img->reload_lock);
	return ret;
}
