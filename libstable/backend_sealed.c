/*
 * The sealed backend, for kernels without kmbuf rings: each read lands in
 * a fresh memfd through a writable mapping that exists only until the
 * read completes; then the memfd is sealed against every write and mapped
 * read-only, and only then verified. From that moment no thread, process
 * or I/O can change the bytes (guarantee SEALED, docs/libstable.md). The
 * price is a memfd, two mappings and fresh pages per read.
 *
 * Where the kernel can copy from the image into a memfd itself
 * (sendfile), that is done when the read is queued, and a no-op stands
 * in for the read on the ring: no writable mapping to set up, fault in
 * and tear down, and no pages zeroed only to be overwritten. The
 * io_uring read into a writable mapping stays as the fallback.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "reader.h"
#include "seal.h"
#include "util.h"

/* A slot's memfd, and what the kernel copied into it at queue time. */
struct sealed_slot {
	struct stable_sealed m;
	ssize_t got;		/* bytes, or -errno */
	int filled;		/* copied with sendfile: the ring has a no-op */
};

/* rd->backend: the reader's own state. */
struct sealed {
	int no_fill;		/* sendfile into a memfd failed here: read instead */
};

static int sealed_init(struct stable_reader *rd, char *err, size_t errlen)
{
	struct stable_sealed probe = STABLE_SEALED_INIT;
	int ret;

	/* Sealing needs memfd_create (3.17) and F_ADD_SEALS: try once. */
	ret = stable_sealed_copy(&probe, "", 1);
	if (ret)
		return stable_set_err(err, errlen, -EOPNOTSUPP,
				      "sealed memfds are not available: %s", strerror(-ret));
	stable_sealed_drop(&probe);
	rd->backend = calloc(1, sizeof(struct sealed));
	if (!rd->backend)
		return stable_set_err(err, errlen, -ENOMEM, "no memory");
	for (unsigned int i = 0; i < rd->nslots; i++) {
		struct sealed_slot *ss = calloc(1, sizeof(*ss));

		if (!ss)
			return stable_set_err(err, errlen, -ENOMEM, "no memory");
		ss->m = (struct stable_sealed)STABLE_SEALED_INIT;
		rd->slots[i].priv = ss;
	}
	return 0;
}

static void sealed_fini(struct stable_reader *rd)
{
	for (unsigned int i = 0; i < rd->nslots; i++) {
		if (rd->slots[i].priv)
			stable_sealed_drop(&((struct sealed_slot *)rd->slots[i].priv)->m);
		free(rd->slots[i].priv);
		rd->slots[i].priv = NULL;
	}
	free(rd->backend);
	rd->backend = NULL;
}

static int sealed_queue_read(struct stable_reader *rd, struct stable_slot *s,
			     int fd, uint64_t off, size_t len, uint64_t tag)
{
	struct sealed_slot *ss = s->priv;
	struct stable_sealed *m = &ss->m;
	struct sealed *sd = rd->backend;
	int ret;

	stable_sealed_drop(m);
	ss->filled = 0;
	if (!sd->no_fill) {
		/* room for the no-op first: a copy made for nothing costs */
		if (!io_uring_sq_space_left(&rd->ring))
			return -EBUSY;
		ss->got = stable_sealed_fill(m, fd, off, len);
		if (ss->got != -EINVAL && ss->got != -EXDEV && ss->got != -ENOSYS) {
			/* an I/O error too is the read's result, reported at
			 * completion like any other */
			struct io_uring_sqe *sqe = io_uring_get_sqe(&rd->ring);

			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data64(sqe, tag);
			ss->filled = 1;
			return 0;
		}
		sd->no_fill = 1;	/* this kernel cannot: read as before */
	}
	ret = stable_sealed_create(m, len);
	if (ret)
		return ret;
	ret = stable_queue_plain_read(rd, m->rw, fd, off, len, tag);
	if (ret)
		stable_sealed_drop(m);
	return ret;
}

static int sealed_complete(struct stable_reader *rd, struct stable_slot *s,
			   int res, unsigned int cflags)
{
	struct sealed_slot *ss = s->priv;
	struct stable_sealed *m = &ss->m;
	int ret;

	(void)rd;
	(void)cflags;
	if (ss->filled) {	/* the no-op's result means nothing */
		if (ss->got < 0)
			return (int)ss->got;
		res = (int)ss->got;
	}
	ret = stable_sealed_seal(m);
	if (ret)
		return ret;
	s->mem = m->ro;
	if (res > 0)
		stable_mark_defined(m->ro, (size_t)res);
	if (ss->filled)
		return res;	/* what sendfile copied (0 stands as the cqe's 0) */
	return res < 0 ? res : 0;
}

static void sealed_put(struct stable_reader *rd, struct stable_slot *s)
{
	(void)rd;
	stable_sealed_drop(&((struct sealed_slot *)s->priv)->m);
	s->mem = NULL;
}

const struct stable_backend_ops stable_backend_sealed = {
	.name = "sealed",
	.guarantee = STABLE_GUARANTEE_SEALED,
	.init = sealed_init,
	.fini = sealed_fini,
	.queue_read = sealed_queue_read,
	.complete = sealed_complete,
	.put = sealed_put,
};
