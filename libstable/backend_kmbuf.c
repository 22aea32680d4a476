/*
 * The kmbuf-ro backend, for kernels with our series (kernel/patches/):
 * the reader's ring registers a kernel-managed buffer ring in read-only
 * mode; the buffers are the kernel's pages, mapped into us PROT_READ and
 * never writable by anyone but the kernel's own reads into a buffer it
 * selected (guarantee KERNEL_RO, docs/libstable.md). A read names the
 * group, not an address; its completion names the buffer. Released
 * buffers are handed back in batches by IORING_OP_KMBUF_RETURN requests
 * queued just before the next read, so steady state costs no syscall per
 * buffer (docs/uapi.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "reader.h"
#include "util.h"
#include "stable/kmbuf_uapi.h"

#define BGID 0			/* each reader has its own ring */
#define NO_BUF UINT32_MAX

struct kmbuf {
	const uint8_t *base;	/* the read-only mapping of all buffers */
	size_t map_len;
	size_t buf_size;
	unsigned int entries;
	uint32_t *bid;		/* per slot: the buffer it holds, or NO_BUF */
	uint16_t *pending;	/* released, not yet queued for return */
	unsigned int npending;
	/* Return batches in flight: the kernel reads the ID array at issue. */
	uint16_t **batch;
	unsigned int nbatch;
	uint64_t busy;		/* bit i: batch i is in flight */
	uint64_t return_errors;
};

static int kmbuf_register(struct stable_reader *rd, struct kmbuf *k, char *err,
			  size_t errlen)
{
	struct stable_kmbuf_reg reg;
	void *map;
	int ret;

	memset(&reg, 0, sizeof(reg));
	reg.buf_size = k->buf_size;
	reg.ring_entries = k->entries;
	reg.bgid = BGID;
	reg.flags = STABLE_KMBUF_RING_RDONLY;
	ret = io_uring_register(rd->ring.ring_fd, IORING_REGISTER_KMBUF_RING, &reg, 1);
	if (ret == -EINVAL || ret == -EOPNOTSUPP)
		return stable_set_err(err, errlen, -EOPNOTSUPP,
				      "this kernel has no read-only kmbuf rings (IORING_REGISTER_KMBUF_RING answered %s)",
				      strerror(-ret));
	if (ret == -ENOMEM &&
	    stable_memlock_refusal(stable_kmbuf_map_size(k->entries, k->buf_size),
				   "kmbuf ring memory", err, errlen))
		return -EOPNOTSUPP;
	if (ret < 0)
		return stable_set_err(err, errlen, ret,
				      "registering a kmbuf ring of %u buffers of %zu bytes: %s",
				      k->entries, k->buf_size, strerror(-ret));
	k->map_len = stable_kmbuf_map_size(k->entries, k->buf_size);
	map = mmap(NULL, k->map_len, PROT_READ, MAP_SHARED, rd->ring.ring_fd,
		   (off_t)stable_kmbuf_map_offset(BGID));
	if (map == MAP_FAILED)
		return stable_set_err(err, errlen, -errno, "mapping the kmbuf ring: %s",
				      strerror(errno));
	k->base = map;
	return 0;
}

static int kmbuf_init(struct stable_reader *rd, char *err, size_t errlen)
{
	struct kmbuf *k = calloc(1, sizeof(*k));

	if (!k)
		return stable_set_err(err, errlen, -ENOMEM, "no memory");
	rd->backend = k;
	k->buf_size = rd->buffer_size;
	/* A power of two at least the slots: the kernel never runs dry. */
	k->entries = 1;
	while (k->entries < rd->nslots)
		k->entries <<= 1;
	k->nbatch = rd->nslots < 64 ? rd->nslots : 64;
	k->bid = malloc(rd->nslots * sizeof(*k->bid));
	k->pending = malloc(k->entries * sizeof(*k->pending));
	k->batch = calloc(k->nbatch, sizeof(*k->batch));
	if (!k->bid || !k->pending || !k->batch)
		return stable_set_err(err, errlen, -ENOMEM, "no memory");
	for (unsigned int i = 0; i < k->nbatch; i++) {
		k->batch[i] = malloc(k->entries * sizeof(**k->batch));
		if (!k->batch[i])
			return stable_set_err(err, errlen, -ENOMEM, "no memory");
	}
	for (unsigned int i = 0; i < rd->nslots; i++)
		k->bid[i] = NO_BUF;
	return kmbuf_register(rd, k, err, errlen);
}

static void kmbuf_fini(struct stable_reader *rd)
{
	struct kmbuf *k = rd->backend;

	if (!k)
		return;
	/* Unmapping and closing the ring frees the buffers in the kernel. */
	if (k->base)
		munmap((void *)k->base, k->map_len);
	for (unsigned int i = 0; k->batch && i < k->nbatch; i++)
		free(k->batch[i]);
	free(k->batch);
	free(k->bid);
	free(k->pending);
	free(k);
	rd->backend = NULL;
}

/* Queues one return request for every pending buffer. */
static int queue_returns(struct stable_reader *rd, struct kmbuf *k)
{
	struct io_uring_sqe *sqe;
	unsigned int b;

	if (!k->npending)
		return 0;
	for (b = 0; b < k->nbatch && (k->busy >> b & 1); b++)
		;
	if (b == k->nbatch)
		return -EBUSY;	/* every batch in flight: try with the next read */
	sqe = io_uring_get_sqe(&rd->ring);
	if (!sqe)
		return -EBUSY;
	memcpy(k->batch[b], k->pending, k->npending * sizeof(*k->pending));
	io_uring_prep_rw(STABLE_IORING_OP_KMBUF_RETURN, sqe, 0, k->batch[b],
			 k->npending, 0);
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, STABLE_TAG_BACKEND | b);
	k->busy |= 1ull << b;
	k->npending = 0;
	return 0;
}

static void kmbuf_put(struct stable_reader *rd, struct stable_slot *s)
{
	struct kmbuf *k = rd->backend;

	if (k->bid[s->index] == NO_BUF)
		return;
	k->pending[k->npending++] = (uint16_t)k->bid[s->index];
	k->bid[s->index] = NO_BUF;
	s->mem = NULL;
}

static int kmbuf_queue_read(struct stable_reader *rd, struct stable_slot *s,
			    int fd, uint64_t off, size_t len, uint64_t tag)
{
	struct kmbuf *k = rd->backend;
	struct io_uring_sqe *sqe;

	/* A slot read again gives up the buffer it had (as sealed drops its memfd). */
	kmbuf_put(rd, s);
	/* Returns go first, in the same submission, so the read can use them. */
	queue_returns(rd, k);
	sqe = io_uring_get_sqe(&rd->ring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, fd, NULL, (unsigned int)len, off);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, tag);
	return 0;
}

static int kmbuf_complete(struct stable_reader *rd, struct stable_slot *s,
			  int res, unsigned int cflags)
{
	struct kmbuf *k = rd->backend;
	uint32_t bid;

	if (!(cflags & IORING_CQE_F_BUFFER)) {
		/* failed reads keep no buffer, and neither does one at the
		 * end of the file: 0 bytes, which the pipeline calls short */
		if (res <= 0)
			return res;
		return stable_rd_err(rd, -EIO, "the kernel read %d bytes but posted no buffer",
				     res);
	}
	bid = cflags >> IORING_CQE_BUFFER_SHIFT;
	if (bid >= k->entries)
		return stable_rd_err(rd, -EIO, "the kernel posted buffer %u of %u", bid,
				     k->entries);
	k->bid[s->index] = bid;
	s->mem = k->base + (size_t)bid * k->buf_size;
	if (res > 0)
		stable_mark_defined(s->mem, (size_t)res);
	return res < 0 ? res : 0;
}

static void kmbuf_backend_cqe(struct stable_reader *rd, uint64_t ud, int res)
{
	struct kmbuf *k = rd->backend;
	unsigned int b = (unsigned int)(ud & ~STABLE_TAG_BACKEND);

	if (b < k->nbatch)
		k->busy &= ~(1ull << b);
	/* A refused return is our bug; the buffers stay lost, and we say so. */
	if (res < 0) {
		k->return_errors++;
		stable_rd_err(rd, res, "the kernel refused a buffer return: %s", strerror(-res));
	}
}

const struct stable_backend_ops stable_backend_kmbuf_ro = {
	.name = "kmbuf-ro",
	.guarantee = STABLE_GUARANTEE_KERNEL_RO,
	.init = kmbuf_init,
	.fini = kmbuf_fini,
	.queue_read = kmbuf_queue_read,
	.complete = kmbuf_complete,
	.put = kmbuf_put,
	.backend_cqe = kmbuf_backend_cqe,
};
