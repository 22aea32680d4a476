/*
 * A reader: one thread's io_uring, extent slots, counters and last error.
 */
#ifndef STABLE_READER_H
#define STABLE_READER_H

#include <liburing.h>

#include "backend.h"
#include "image.h"
#include "stable/stable.h"

#define STABLE_ERRMSG_MAX 512

struct stable_reader {
	struct stable_image *img;
	const struct stable_backend_ops *ops;
	void *backend;			/* the backend's state */
	struct io_uring ring;
	int ring_ok;
	unsigned int nslots;
	size_t buffer_size;
	unsigned int max_retries;
	unsigned int flags;
	struct stable_slot *slots;
	unsigned int held;
	uint8_t *scratch;		/* one block, for parity rebuilds */
	struct stable_stats stats;
	struct stable_error last;
	int has_last;
	char errmsg[STABLE_ERRMSG_MAX];
};

/* Formats the reader's message; returns ret. */
int stable_rd_err(struct stable_reader *rd, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Reads len bytes at off of fd into slot s through the backend and the
 * reader's ring, waiting for the completion. Returns bytes read or -errno.
 */
ssize_t stable_rd_read_sync(struct stable_reader *rd, struct stable_slot *s,
			    int fd, uint64_t off, size_t len);

/* The verification pipeline (pipeline.c). */
int stable_pipeline_read(struct stable_reader *rd, struct stable_slot *s,
			 uint64_t off, size_t len);

#endif
