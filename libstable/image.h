/*
 * An open, validated image: the decoded header, the checksum table, the
 * compression index and the files. Readers on several threads share one.
 * Everything is immutable after stable_image_open() except the table's
 * entries, which stable_image_reload() may replace one by one with atomic
 * stores (a consistent writer updated them); readers load each entry
 * atomically, so every check uses an entry that was valid at some moment.
 */
#ifndef STABLE_IMAGE_H
#define STABLE_IMAGE_H

#include <endian.h>
#include <pthread.h>
#include <stdint.h>

#include "format.h"

struct stable_image {
	struct stable_hdr hdr;
	char *path;
	char *data_path;
	int fd;			/* the file holding header, table, index, parity */
	int data_fd;		/* the file holding the data region */
	unsigned int flags;	/* STABLE_OPEN_* */
	uint8_t *table;
	uint8_t *index;
	uint32_t root_digest;	/* atomic: a reload changes it */
	uint32_t zero_block_crc; /* crc32c of a block of zeroes (map.c) */
	/* reload state (reload.c) */
	pthread_mutex_t reload_lock;
	uint64_t generation;	/* atomic: bumped by each reload that changed entries */
	uint8_t loaded_hdr[STABLE_HDR_SIZE]; /* the header the table was loaded for */
};

static inline uint32_t stable_image_crc(const struct stable_image *img,
					uint64_t block)
{
	const uint32_t *entry = (const uint32_t *)(const void *)(img->table + block * 4);

	return le32toh(__atomic_load_n(entry, __ATOMIC_RELAXED));
}

static inline uint64_t stable_image_generation(const struct stable_image *img)
{
	return __atomic_load_n(&img->generation, __ATOMIC_ACQUIRE);
}

/*
 * Re-reads the header and checksum table from the file and, when the
 * header changed and the new table is valid for it with the same
 * geometry, takes the table's new entries. Returns 1 if entries changed,
 * 0 if nothing newer was found (or the image must not reload), or -errno
 * with err set when the file's metadata is not usable now (a writer in
 * the middle of an update, or damage).
 */
int stable_image_reload(struct stable_image *img, char *err, size_t errlen);

/* crc32c of len zero bytes (map.c). */
uint32_t stable_zero_crc(uint32_t len);

/* Where stored block b lives: its file and byte offset. */
static inline void stable_image_locate(const struct stable_image *img,
				       uint64_t b, int *fd, uint64_t *off)
{
	const struct stable_hdr *h = &img->hdr;

	if (b < h->data_blocks) {
		*fd = img->data_fd;
		*off = h->data_offset + b * h->block_size;
	} else {
		*fd = img->fd;
		*off = h->parity_offset + (b - h->data_blocks) * h->block_size;
	}
}

#endif
