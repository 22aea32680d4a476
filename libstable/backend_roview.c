/*
 * The ro-view backend, for kernels without kmbuf rings when the sealed
 * backend's fresh memfd per read costs too much: one memfd holds every
 * buffer of the reader, and the process sees it twice. Reads land
 * through a writable alias that only the library knows; the caller gets
 * a pointer into a read-only view of the same pages. The memfd is sealed
 * with F_SEAL_FUTURE_WRITE before the view is mapped, so the view has no
 * VM_MAYWRITE: no mprotect, /proc/PID/mem, process_vm_writev or I/O aimed
 * at it can write, and nobody who finds the memfd can write it either.
 * The alias is left out of fork()ed children and written only for a slot
 * that no caller holds (guarantee RO_VIEW, docs/libstable.md). What it
 * does not stop, and sealed does: a stray store into the alias itself.
 *
 * Pages are allocated once and reused, so a read costs what a read into
 * private memory costs.
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
	uint8_t *alias;		/* writable: where reads land */
	const uint8_t *view;	/* read-only: what callers get */
	size_t len;
};

static void roview_fini(struct stable_reader *rd)
{
	struct roview *v = rd->backend;

	if (!v)
		return;
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

static int roview_init(struct stable_reader *rd, char *err, size_t errlen)
{
	struct roview *v = calloc(1, sizeof(*v));
	int fd, ret = 0;
	void *p;

	if (!v)
		return stable_set_err(err, errlen, -ENOMEM, "no memory");
	rd->backend = v;
	v->len = (size_t)rd->nslots * rd->buffer_size;
	fd = memfd_create("stable-ro-view", MFD_CLOEXEC | MFD_ALLOW_SEALING);
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
	/* a child must not inherit a way to write the parent's buffers */
	if (madvise(v->alias, v->len, MADV_DONTFORK)) {
		ret = stable_set_err(err, errlen, -EOPNOTSUPP,
				     "MADV_DONTFORK: %s (a fork()ed child would inherit the writable alias)",
				     strerror(errno));
		goto out;
	}
	/* F_SEAL_FUTURE_WRITE (5.1): the alias stays, no new writer comes */
	if (fcntl(fd, F_ADD_SEALS, POOL_SEALS)) {
		ret = stable_set_err(err, errlen, -EOPNOTSUPP, "sealing the buffer memfd: %s",
				     strerror(errno));
		goto out;
	}
	p = mmap(NULL, v->len, PROT_READ, MAP_SHARED, fd, 0);
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

static int roview_queue_read(struct stable_reader *rd, struct stable_slot *s,
			     int fd, uint64_t off, size_t len, uint64_t tag)
{
	struct roview *v = rd->backend;

	return stable_queue_plain_read(rd, v->alias + (size_t)s->index * rd->buffer_size,
				       fd, off, len, tag);
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
