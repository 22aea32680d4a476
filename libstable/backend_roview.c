/*
 * Two backends for kernels without kmbuf rings, for when the sealed
 * backend's fresh memfd per read costs too much. Both put every buffer of
 * the reader in one memfd, allocated once and reused, and give callers
 * pointers into a read-only view of it. The memfd is sealed with
 * F_SEAL_FUTURE_WRITE before the view is mapped, so the view has no
 * VM_MAYWRITE: no mprotect, /proc/PID/mem, process_vm_writev or I/O aimed
 * at it can write, and nobody who finds the memfd can write it either.
 * They differ in how reads reach the pages (docs/libstable.md):
 *
 * ro-fixed: the pages are registered with the reader's io_uring as fixed
 * buffers through a writable mapping that is unmapped right after. From
 * then on no writable mapping of them exists anywhere: only a fixed-buffer
 * read on the reader's own ring writes them, and the library queues one
 * only for a slot no caller holds (guarantee RO_FIXED). Needs the pages
 * pinned, which counts against RLIMIT_MEMLOCK unless CAP_IPC_LOCK.
 *
 * ro-view: reads land through a writable alias that only the library
 * knows, left out of fork()ed children (guarantee RO_VIEW). What it does
 * not stop, and ro-fixed does: a stray store into the alias itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "reader.h"
#include "util.h"

#define POOL_SEALS (F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* rd->backend */
struct roview {
	uint8_t *alias;		/* ro-view: writable, where reads land */
	uintptr_t fixed;	/* ro-fixed: where the buffers were registered (unmapped) */
	const uint8_t *view;	/* read-only: what callers get */
	size_t len;
};

static void roview_fini(struct stable_reader *rd)
{
	struct roview *v = rd->backend;

	if (!v)
		return;
	if (v->fixed)
		io_uring_unregister_buffers(&rd->ring);
	if (v->alias)
		munmap(v->alias, v->len);
	if (v->view)
		munmap((void *)v->view, v->len);
	free(v);
	rd->backend = NULL;
}

/* The view must not be made writable; a kernel that allows it is refused. */
static int check_view(struct roview *v, char *err, size_t errlen)
{
	if (mprotect((void *)v->view, 4096, PROT_READ | PROT_WRITE) == 0)
		return stable_set_err(err, errlen, -EOPNOTSUPP,
				      "a read-only view of a sealed memfd can be made writable on this kernel");
	return 0;
}

/* ro-view: a child must not inherit a way to write the parent's buffers. */
static int keep_alias(struct stable_reader *rd, struct roview *v, char *err, size_t errlen)
{
	(void)rd;
	if (madvise(v->alias, v->len, MADV_DONTFORK))
		return stable_set_err(err, errlen, -EOPNOTSUPP,
				      "MADV_DONTFORK: %s (a fork()ed child would inherit the writable alias)",
				      strerror(errno));
	return 0;
}

/* ro-fixed: one fixed buffer per slot (its index is the slot's), then no alias. */
static int register_and_unmap(struct stable_reader *rd, struct roview *v, char *err,
			      size_t errlen)
{
	struct iovec *iov = calloc(rd->nslots, sizeof(*iov));
	int ret;

	if (!iov)
		return stable_set_err(err, errlen, -ENOMEM, "no memory");
	for (unsigned int i = 0; i < rd->nslots; i++) {
		iov[i].iov_base = v->alias + (size_t)i * rd->buffer_size;
		iov[i].iov_len = rd->buffer_size;
	}
	ret = io_uring_register_buffers(&rd->ring, iov, rd->nslots);
	free(iov);
	if (ret == -ENOMEM && stable_memlock_refusal(v->len, "buffers for io_uring", err, errlen))
		return -EOPNOTSUPP;
	if (ret)
		return stable_set_err(err, errlen, -EOPNOTSUPP,
				      "registering a memfd's pages as io_uring fixed buffers: %s",
				      strerror(-ret));
	v->fixed = (uintptr_t)v->alias;
	munmap(v->alias, v->len);
	v->alias = NULL;
	return 0;
}

typedef int (*reach_fn)(struct stable_reader *rd, struct roview *v, char *err, size_t errlen);

/* The pool, its writable mapping, then how reads reach it, then the view. */
static int pool_init(struct stable_reader *rd, reach_fn reach, char *err, size_t errlen)
{
	struct roview *v = calloc(1, sizeof(*v));
	int fd, ret = 0;
	void *p;

	if (!v)
		return stable_set_err(err, errlen, -ENOMEM, "no memory");
	rd->backend = v;
	v->len = (size_t)rd->nslots * rd->buffer_size;
	fd = memfd_create(rd->ops->name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return stable_set_err(err, errlen, -EOPNOTSUPP, "memfd_create: %s",
				      strerror(errno));
	if (ftruncate(fd, (off_t)v->len)) {
		ret = stable_set_err(err, errlen, -ENOMEM, "sizing a memfd of %zu bytes: %s",
				     v->len, strerror(errno));
		goto out;
	}
	p = mmap(NULL, v->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		ret = stable_set_err(err, errlen, -ENOMEM, "mapping %zu bytes: %s", v->len,
				     strerror(errno));
		goto out;
	}
	v->alias = p;
	ret = reach(rd, v, err, errlen);
	if (ret)
		goto out;
	/* F_SEAL_FUTURE_WRITE (5.1): what exists stays, no new writer comes */
	if (fcntl(fd, F_ADD_SEALS, POOL_SEALS)) {
		ret = stable_set_err(err, errlen, -EOPNOTSUPP, "sealing the buffer memfd: %s",
				     strerror(errno));
		goto out;
	}
	/* ro-fixed's pages are all allocated and pinned already: map them all
	 * now, so that RSS shows them and no first read of a slot faults */
	p = mmap(NULL, v->len, PROT_READ, MAP_SHARED | (v->fixed ? MAP_POPULATE : 0), fd, 0);
	if (p == MAP_FAILED) {
		ret = stable_set_err(err, errlen, -ENOMEM, "mapping the read-only view: %s",
				     strerror(errno));
		goto out;
	}
	v->view = p;
	ret = check_view(v, err, errlen);
out:
	close(fd);	/* the mappings keep the pages; no fd left to find */
	return ret;
}

static int roview_init(struct stable_reader *rd, char *err, size_t errlen)
{
	return pool_init(rd, keep_alias, err, errlen);
}

static int rofixed_init(struct stable_reader *rd, char *err, size_t errlen)
{
	uint64_t len = (uint64_t)rd->nslots * rd->buffer_size;

	/* every page is allocated and pinned now, not when first read into:
	 * a pool the machine cannot spare is refused, not an OOM kill */
	if (len / 4096 > (uint64_t)sysconf(_SC_PHYS_PAGES) / 4)
		return stable_set_err(err, errlen, -EOPNOTSUPP,
				      "pinning %llu MiB of buffers is more than a quarter of this machine's memory",
				      (unsigned long long)(len >> 20));
	return pool_init(rd, register_and_unmap, err, errlen);
}

static int roview_queue_read(struct stable_reader *rd, struct stable_slot *s,
			     int fd, uint64_t off, size_t len, uint64_t tag)
{
	struct roview *v = rd->backend;

	return stable_queue_plain_read(rd, v->alias + (size_t)s->index * rd->buffer_size,
				       fd, off, len, tag);
}

static int rofixed_queue_read(struct stable_reader *rd, struct stable_slot *s,
			      int fd, uint64_t off, size_t len, uint64_t tag)
{
	struct roview *v = rd->backend;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&rd->ring);

	if (!sqe)
		return -EBUSY;
	/* the address only names a place in the registered buffer */
	io_uring_prep_read_fixed(sqe, fd, (void *)(v->fixed + (size_t)s->index * rd->buffer_size),
				 (unsigned int)len, off, (int)s->index);
	io_uring_sqe_set_data64(sqe, tag);
	return 0;
}

static int roview_complete(struct stable_reader *rd, struct stable_slot *s,
			   int res, unsigned int cflags)
{
	struct roview *v = rd->backend;

	(void)cflags;
	if (res < 0)
		return res;
	s->mem = v->view + (size_t)s->index * rd->buffer_size;
	stable_mark_defined(s->mem, (size_t)res);
	return 0;
}

static void roview_put(struct stable_reader *rd, struct stable_slot *s)
{
	(void)rd;
	s->mem = NULL;
}

const struct stable_backend_ops stable_backend_ro_view = {
	.name = "ro-view",
	.guarantee = STABLE_GUARANTEE_RO_VIEW,
	.init = roview_init,
	.fini = roview_fini,
	.queue_read = roview_queue_read,
	.complete = roview_complete,
	.put = roview_put,
};

const struct stable_backend_ops stable_backend_ro_fixed = {
	.name = "ro-fixed",
	.guarantee = STABLE_GUARANTEE_RO_FIXED,
	.init = rofixed_init,
	.fini = roview_fini,
	.queue_read = rofixed_queue_read,
	.complete = roview_complete,
	.put = roview_put,
};
