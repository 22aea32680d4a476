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
	int ring_disabled;		/* ONE_THREAD: enabled by the first submitter */
	unsigned int nslots;
	size_t buffer_size;
	unsigned int max_retries;
	unsigned int flags;
	struct stable_slot *slots;
	unsigned int *free_slots;	/* a stack of the free slots' indexes */
	unsigned int nfree;
	unsigned int held;
	unsigned int inflight;		/* submitted, not yet reaped */
	unsigned int queued;		/* prepared, not yet submitted */
	int efd;			/* eventfd: completions are waiting */
	/* 2: completions may still signal efd; 1: drain it once more (a
	 * signal can trail its completion); 0: it is clear, and a reap with
	 * nothing in flight needs no system call. (async.c) */
	int efd_dirty;
	/* completions of other slots seen while waiting for one (async.c) */
	/* no_io: a read that needed no I/O (a ZERO extent), finished at submit */
	struct stable_cqe { uint64_t user_data; int res; unsigned int flags; bool no_io; } *stash;
	unsigned int nstash;
	/* per slot, the message of its last failed completion; allocated
	 * at the first failure (async.c) */
	char (*cmsg)[STABLE_ERRMSG_MAX];
	uint8_t *scratch;		/* one block, for parity rebuilds */
	struct stable_stats stats;
	struct stable_error last;
	bool last_short;		/* check_blocks' last failure was a short read */
	int has_last;
	char errmsg[STABLE_ERRMSG_MAX];
};

/* Formats the reader's message; returns ret. */
int stable_rd_err(struct stable_reader *rd, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Reads len bytes at off of fd into slot s through the backend and the
 * reader's ring, waiting for that completion (others seen meanwhile are
 * stashed for stable_reap). Returns bytes read or -errno. (async.c)
 */
ssize_t stable_rd_read_sync(struct stable_reader *rd, struct stable_slot *s,
			    int fd, uint64_t off, size_t len);
/* Queues the first read planned for s on the ring. (async.c) */
int stable_rd_queue(struct stable_reader *rd, struct stable_slot *s);

/* Checks a request's range; 0 or -EINVAL with the message set. (reader.c) */
int stable_rd_check_range(struct stable_reader *rd, uint64_t off, size_t len);
/* Takes a free slot (NULL if none), and gives one back. (reader.c) */
struct stable_slot *stable_rd_free_slot(struct stable_reader *rd);
void stable_rd_slot_free(struct stable_reader *rd, struct stable_slot *s);
/* Bookkeeping when a slot's request ends with ret. (reader.c) */
int stable_rd_settle(struct stable_reader *rd, struct stable_slot *s, int ret);

/*
 * The verification pipeline (pipeline.c). plan() decides the first read
 * of a request; its result goes to finish(), which verifies in place and,
 * only when that fails, re-reads, rebuilds and repairs synchronously.
 */
void stable_pipeline_plan(struct stable_reader *rd, struct stable_slot *s,
			  uint64_t off, size_t len);
void stable_pipeline_locate(struct stable_reader *rd, struct stable_slot *s,
			    int *fd, uint64_t *off, size_t *len);
int stable_pipeline_finish(struct stable_reader *rd, struct stable_slot *s,
			   ssize_t got);

#endif
