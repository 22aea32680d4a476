/*
 * Asynchronous reads, and the ring plumbing the synchronous path shares.
 *
 * Every slot has at most one read in flight, tagged with the slot's
 * index. stable_submit() queues a slot's first read; stable_reap() takes
 * completions and runs the pipeline's finish step on them (verification
 * in place; re-reads and rebuilds, which are rare, synchronously). When
 * the synchronous path waits for its own completion it may see other
 * slots' completions first: those are stashed and reaped later.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reader.h"
#include "util.h"

int stable_queue_plain_read(struct stable_reader *rd, void *buf, int fd,
			    uint64_t off, size_t len, uint64_t tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&rd->ring);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, fd, buf, (unsigned int)len, off);
	io_uring_sqe_set_data64(sqe, tag);
	return 0;
}

/* io_uring_submit, enabling a ONE_THREAD ring first: this thread is its issuer. */
static int ring_submit(struct stable_reader *rd)
{
	if (rd->ring_disabled) {
		/* liburing 2.3 declares io_uring_enable_rings() but does not export it */
		int ret = io_uring_register(rd->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);

		if (ret < 0)
			return ret;
		rd->ring_disabled = 0;
	}
	return io_uring_submit(&rd->ring);
}

int stable_rd_queue(struct stable_reader *rd, struct stable_slot *s)
{
	uint64_t off;
	size_t len;
	int fd, ret;

	stable_pipeline_locate(rd, s, &fd, &off, &len);
	if (len == 0) {
		/* A ZERO extent of a compressed image: nothing is stored, so
		 * nothing is read. Its completion waits in the stash, and the
		 * eventfd says so, as for any other finished read. */
		uint64_t one = 1;

		if (write(rd->efd, &one, sizeof(one)) < 0)
			return -errno;
		rd->stash[rd->nstash++] = (struct stable_cqe){ s->index, 0, 0, true };
		rd->efd_dirty = 2;
		return 0;
	}
	ret = rd->ops->queue_read(rd, s, fd, off, len, s->index);
	if (ret == 0)
		rd->queued++;
	return ret;
}

/* A completion that is not a slot's read: the backend's own, or ignored. */
static int not_a_read(struct stable_reader *rd, uint64_t ud, int res)
{
	if (ud == STABLE_TAG_IGNORED)
		return 1;
	if (ud & STABLE_TAG_BACKEND) {
		if (rd->ops->backend_cqe)
			rd->ops->backend_cqe(rd, ud, res);
		return 1;
	}
	return 0;
}

ssize_t stable_rd_read_sync(struct stable_reader *rd, struct stable_slot *s,
			    int fd, uint64_t off, size_t len)
{
	struct io_uring_cqe *cqe;
	int ret;

	ret = rd->ops->queue_read(rd, s, fd, off, len, s->index);
	if (ret)
		return ret;
	/* everything queued must reach the kernel before we wait for it */
	while (io_uring_sq_ready(&rd->ring) > 0) {
		ret = ring_submit(rd);
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return ret;
		if (ret == 0)
			return -EIO;	/* the kernel took none: never wait for it */
	}
	rd->queued = 0;
	rd->efd_dirty = 2;
	for (;;) {
		uint64_t ud;
		int res;
		unsigned int flags;

		ret = io_uring_wait_cqe(&rd->ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return ret;
		ud = io_uring_cqe_get_data64(cqe);
		res = cqe->res;
		flags = cqe->flags;
		io_uring_cqe_seen(&rd->ring, cqe);
		if (not_a_read(rd, ud, res))
			continue;
		if (ud == s->index) {
			ret = rd->ops->complete(rd, s, res, flags);
			return ret ? ret : res;	/* ret > 0: the bytes it read */
		}
		/* Another slot's read: at most one per slot, so it fits. */
		rd->stash[rd->nstash++] = (struct stable_cqe){ ud, res, flags, false };
	}
}

int stable_submit(struct stable_reader *rd, uint64_t offset, size_t length,
		  uint64_t user_data)
{
	struct stable_slot *s;
	int ret;

	if (!rd)
		return -EINVAL;
	ret = stable_rd_check_range(rd, offset, length);
	if (ret)
		return ret;
	s = stable_rd_free_slot(rd);
	if (!s)
		return stable_rd_err(rd, -ENOBUFS,
				     "all %u slots are reading or held: reap or release first",
				     rd->nslots);
	stable_pipeline_plan(rd, s, offset, length);
	s->user_data = user_data;
	ret = stable_rd_queue(rd, s);
	if (ret) {
		stable_rd_slot_free(rd, s);
		return stable_rd_err(rd, ret, "queueing a read: %s", strerror(-ret));
	}
	s->state = SLOT_BUSY;
	rd->inflight++;
	return 0;
}

int stable_flush(struct stable_reader *rd)
{
	int ret;

	if (!rd)
		return -EINVAL;
	if (!rd->queued)
		return 0;
	while (io_uring_sq_ready(&rd->ring) > 0) {
		ret = ring_submit(rd);
		if (ret == -EINTR)
			continue;
		if (ret <= 0)
			return stable_rd_err(rd, ret ? ret : -EIO, "io_uring_submit: %s",
					     strerror(ret ? -ret : EIO));
	}
	rd->queued = 0;
	rd->efd_dirty = 2;
	return 0;
}

/*
 * The message of a failed completion, kept with its slot so that each
 * completion of a batch names its own failure (rd->errmsg holds only the
 * last). The slot is free again, so it lasts until the next submit.
 */
static const char *keep_message(struct stable_reader *rd, unsigned int slot)
{
	if (!rd->cmsg)
		rd->cmsg = malloc(rd->nslots * sizeof(*rd->cmsg));
	if (!rd->cmsg)
		return rd->errmsg;	/* no memory: the last message will do */
	memcpy(rd->cmsg[slot], rd->errmsg, sizeof(rd->cmsg[slot]));
	return rd->cmsg[slot];
}

/* Runs the finish step for one completion of slot ud. */
static void finish_one(struct stable_reader *rd, const struct stable_cqe *q,
		       struct stable_completion *c)
{
	struct stable_slot *s = &rd->slots[q->user_data];
	int ret;

	rd->inflight--;
	rd->has_last = 0;
	ret = q->no_io ? 0 : rd->ops->complete(rd, s, q->res, q->flags);
	/* ret > 0: the backend read itself, and says how much */
	ret = stable_pipeline_finish(rd, s, ret ? ret : q->res);
	memset(c, 0, sizeof(*c));
	c->user_data = s->user_data;
	c->result = stable_rd_settle(rd, s, ret);
	if (c->result == 0) {
		c->ext = &s->ext;
		return;
	}
	if (rd->has_last)
		c->error = rd->last;
	c->message = keep_message(rd, s->index);
}

int stable_reap(struct stable_reader *rd, struct stable_completion *c,
		unsigned int max)
{
	struct io_uring_cqe *cqe;
	unsigned int n = 0;
	uint64_t drain;
	int ret;

	if (!rd || (!c && max))
		return -EINVAL;
	/* An event loop may reap on every turn: with nothing in flight and
	 * the eventfd known clear, answer without a system call. */
	if (!rd->queued && !rd->inflight && !rd->nstash && !rd->efd_dirty &&
	    !io_uring_cq_ready(&rd->ring))
		return 0;
	ret = stable_flush(rd);
	if (ret)
		return ret;
	/* Reset readiness first; set it again below if anything is left. */
	if (read(rd->efd, &drain, sizeof(drain)) < 0 && errno != EAGAIN)
		return -errno;
	while (n < max && rd->nstash > 0) {
		struct stable_cqe q = rd->stash[0];

		memmove(rd->stash, rd->stash + 1, --rd->nstash * sizeof(q));
		finish_one(rd, &q, &c[n++]);
	}
	while (n < max && io_uring_peek_cqe(&rd->ring, &cqe) == 0) {
		struct stable_cqe q = { io_uring_cqe_get_data64(cqe), cqe->res, cqe->flags, false };

		io_uring_cqe_seen(&rd->ring, cqe);
		if (!not_a_read(rd, q.user_data, q.res))
			finish_one(rd, &q, &c[n++]);
	}
	if (rd->nstash > 0 || io_uring_cq_ready(&rd->ring) > 0) {
		drain = 1;
		if (write(rd->efd, &drain, sizeof(drain)) < 0)
			return -errno;
		rd->efd_dirty = 2;
	} else if (rd->inflight) {
		rd->efd_dirty = 2;
	} else if (rd->efd_dirty) {
		rd->efd_dirty--;
	}
	return (int)n;
}

int stable_wait(struct stable_reader *rd)
{
	struct io_uring_cqe *cqe;
	int ret;

	if (!rd)
		return -EINVAL;
	ret = stable_flush(rd);
	if (ret)
		return ret;
	if (rd->nstash > 0 || rd->inflight == 0)
		return 0;
	do {
		ret = io_uring_wait_cqe(&rd->ring, &cqe);
	} while (ret == -EINTR);
	return ret < 0 ? ret : 0;
}

int stable_reader_fd(struct stable_reader *rd)
{
	return rd ? rd->efd : -EINVAL;
}

unsigned int stable_inflight(const struct stable_reader *rd)
{
	return rd ? rd->inflight : 0;
}

int stable_release_batch(struct stable_reader *rd,
			 const struct stable_extent *const *ext, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		int ret = stable_release(rd, ext[i]);

		if (ret)
			return ret;
	}
	return 0;
}
