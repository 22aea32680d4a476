/*
 * The sealed backend, for kernels without kmbuf rings: each read lands in
 * a fresh memfd through a writable mapping that exists only until the
 * read completes; then the memfd is sealed against every write and mapped
 * read-only, and only then verified. From that moment no thread, process
 * or I/O can change the bytes (guarantee SEALED, docs/libstable.md). The
 * price is a memfd, two mappings and fresh pages per read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "reader.h"
#include "seal.h"
#include "util.h"

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
	for (unsigned int i = 0; i < rd->nslots; i++) {
		struct stable_sealed *m = malloc(sizeof(*m));

		if (!m)
			return stable_set_err(err, errlen, -ENOMEM, "no memory");
		*m = (struct stable_sealed)STABLE_SEALED_INIT;
		rd->slots[i].priv = m;
	}
	return 0;
}

static void sealed_fini(struct stable_reader *rd)
{
	for (unsigned int i = 0; i < rd->nslots; i++) {
		if (rd->slots[i].priv)
			stable_sealed_drop(rd->slots[i].priv);
		free(rd->slots[i].priv);
		rd->slots[i].priv = NULL;
	}
}

static int sealed_queue_read(struct stable_reader *rd, struct stable_slot *s,
			     int fd, uint64_t off, size_t len, uint64_t tag)
{
	struct stable_sealed *m = s->priv;
	int ret;

	stable_sealed_drop(m);
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
	struct stable_sealed *m = s->priv;
	int ret;

	(void)rd;
	(void)cflags;
	ret = stable_sealed_seal(m);
	if (ret)
		return ret;
	s->mem = m->ro;
	if (res > 0)
		stable_mark_defined(m->ro, (size_t)res);
	return res < 0 ? res : 0;
}

static void sealed_put(struct stable_reader *rd, struct stable_slot *s)
{
	(void)rd;
	stable_sealed_drop(s->priv);
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
