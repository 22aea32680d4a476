/*
 * The private backend: io_uring reads into buffers of our own, aligned
 * for O_DIRECT. Fastest and available everywhere, but the only thing
 * that keeps verified bytes unchanged is that no code writes to them:
 * guarantee NONE (docs/libstable.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "reader.h"
#include "util.h"

static int private_init(struct stable_reader *rd, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < rd->nslots; i++) {
		void *p;

		if (posix_memalign(&p, 4096, rd->buffer_size))
			return stable_set_err(err, errlen, -ENOMEM,
					      "no memory for %u buffers of %zu bytes",
					      rd->nslots, rd->buffer_size);
		rd->slots[i].priv = p;
	}
	return 0;
}

static void private_fini(struct stable_reader *rd)
{
	for (unsigned int i = 0; i < rd->nslots; i++) {
		free(rd->slots[i].priv);
		rd->slots[i].priv = NULL;
	}
}

static int private_queue_read(struct stable_reader *rd, struct stable_slot *s,
			      int fd, uint64_t off, size_t len, uint64_t tag)
{
	return stable_queue_plain_read(rd, s->priv, fd, off, len, tag);
}

static int private_complete(struct stable_reader *rd, struct stable_slot *s,
			    int res, unsigned int cflags)
{
	(void)rd;
	(void)cflags;
	if (res < 0)
		return res;
	stable_mark_defined(s->priv, (size_t)res);
	s->mem = s->priv;
	return 0;
}

static void private_put(struct stable_reader *rd, struct stable_slot *s)
{
	(void)rd;
	s->mem = NULL;
}

const struct stable_backend_ops stable_backend_private = {
	.name = "private",
	.guarantee = STABLE_GUARANTEE_NONE,
	.init = private_init,
	.fini = private_fini,
	.queue_read = private_queue_read,
	.complete = private_complete,
	.put = private_put,
};
