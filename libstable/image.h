/*
 * An open, validated image: the decoded header, the checksum table, the
 * compression index and the files. Immutable after stable_image_open(),
 * so readers on several threads share one.
 */
#ifndef STABLE_IMAGE_H
#define STABLE_IMAGE_H

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
	uint32_t root_digest;
};

static inline uint32_t stable_image_crc(const struct stable_image *img,
					uint64_t block)
{
	return stable_le32(img->table + block * 4);
}

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
