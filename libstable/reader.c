/*
 * Readers: choosing a backend, the extent slots, and the public calls
 * around the verification pipeline. A reader is used by one thread at a
 * time; the image under it may be shared.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "reader.h"
#include "util.h"

#define DEFAULT_BUFFERS 16
#define DEFAULT_BUFFER_SIZE (1u << 20)
#define MAX_BUFFERS 4096

/* Strongest first: AUTO takes the first whose init succeeds. */
static const struct stable_backend_ops *const strongest_first[] = {
	&stable_backend_kmbuf_ro,
	&stable_backend_sealed,
	&stable_backend_ro_fixed,
	&stable_backend_ro_view,
	&stable_backend_private,
};

/*
 * AUTO_FAST: the strongest of those that cost nothing per read first;
 * sealed (fresh pages and a mapping per read) only when neither works.
 */
static const struct stable_backend_ops *const fast_first[] = {
	&stable_backend_kmbuf_ro,
	&stable_backend_ro_fixed,
	&stable_backend_sealed,
	&stable_backend_ro_view,
	&stable_backend_private,
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define NBACKENDS COUNT(strongest_first)
_Static_assert(COUNT(fast_first) == NBACKENDS, "both orders list every backend");

static const char *const guarantee_names[] = {
	[STABLE_GUARANTEE_NONE] = "none",
	[STABLE_GUARANTEE_RO_VIEW] = "ro-view",
	[STABLE_GUARANTEE_RO_FIXED] = "ro-fixed",
	[STABLE_GUARANTEE_SEALED] = "sealed",
	[STABLE_GUARANTEE_KERNEL_RO] = "kernel-ro",
};

static const char *const backend_names[] = {
	[STABLE_BACKEND_AUTO] = "auto",
	[STABLE_BACKEND_AUTO_FAST] = "auto-fast",
	[STABLE_BACKEND_PRIVATE] = "private",
	[STABLE_BACKEND_RO_VIEW] = "ro-view",
	[STABLE_BACKEND_RO_FIXED] = "ro-fixed",
	[STABLE_BACKEND_SEALED] = "sealed",
	[STABLE_BACKEND_KMBUF_RO] = "kmbuf-ro",
};

const char *stable_guarantee_name(enum stable_guarantee g)
{
	if ((unsigned int)g >= COUNT(guarantee_names))
		return "unknown";
	return guarantee_names[g];
}

/* The index of name in a table of names (with holes), or -EINVAL. */
static int name_index(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (names[i] && !strcmp(name, names[i]))
			return (int)i;
	return -EINVAL;
}

int stable_guarantee_from_name(const char *name, enum stable_guarantee *g)
{
	int i = name_index(guarantee_names, COUNT(guarantee_names), name);

	if (i >= 0)
		*g = (enum stable_guarantee)i;
	return i < 0 ? i : 0;
}

int stable_backend_from_name(const char *name, enum stable_backend *b)
{
	int i = name_index(backend_names, COUNT(backend_names), name);

	if (i >= 0)
		*b = (enum stable_backend)i;
	return i < 0 ? i : 0;
}

int stable_rd_err(struct stable_reader *rd, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rd->errmsg, sizeof(rd->errmsg), fmt, ap);
	va_end(ap);
	return ret;
}

static const struct stable_backend_ops *forced(enum stable_backend b)
{
	if ((unsigned int)b >= COUNT(backend_names) || !backend_names[b])
		return NULL;
	for (size_t i = 0; i < NBACKENDS; i++)
		if (!strcmp(strongest_first[i]->name, backend_names[b]))
			return strongest_first[i];
	return NULL;
}

static int pick_backend(struct stable_reader *rd,
			const struct stable_reader_options *o, char *err,
			size_t errlen)
{
	enum stable_guarantee want = o ? o->min_guarantee : STABLE_GUARANTEE_NONE;
	enum stable_backend b = o ? o->backend : STABLE_BACKEND_AUTO;
	const struct stable_backend_ops *const *order = strongest_first;
	char why[256] = "";
	int ret = -EOPNOTSUPP;

	if (b == STABLE_BACKEND_AUTO_FAST)
		order = fast_first;
	else if (b != STABLE_BACKEND_AUTO) {
		rd->ops = forced(b);
		if (!rd->ops)
			return stable_set_err(err, errlen, -EOPNOTSUPP,
					      "backend %d is not built into this libstable",
					      (int)b);
		if (rd->ops->guarantee < want)
			return stable_set_err(err, errlen, -EOPNOTSUPP,
					      "backend %s gives guarantee %s, below the required %s",
					      rd->ops->name,
					      stable_guarantee_name(rd->ops->guarantee),
					      stable_guarantee_name(want));
		return rd->ops->init(rd, err, errlen);
	}
	for (size_t i = 0; i < NBACKENDS; i++) {
		if (order[i]->guarantee < want)
			continue;
		rd->ops = order[i];
		ret = rd->ops->init(rd, why, sizeof(why));
		if (ret == 0)
			return 0;
		rd->ops->fini(rd);
		rd->ops = NULL;
		if (ret != -EOPNOTSUPP)
			return stable_set_err(err, errlen, ret, "%s", why);
	}
	return stable_set_err(err, errlen, -EOPNOTSUPP,
			      "no backend reaches guarantee %s on this kernel%s%s",
			      stable_guarantee_name(want), why[0] ? ": " : "", why);
}

/*
 * The reader's io_uring, with the most the kernel takes of: SUBMIT_ALL
 * (5.18), so that one request failing at submission does not leave the
 * ones queued after it unsubmitted and a waiter waiting forever; and for
 * ONE_THREAD, SINGLE_ISSUER (6.0) on a ring that starts disabled, so that
 * the thread enabling it at its first submission is the only one it takes.
 */
static int ring_init(struct stable_reader *rd)
{
	static const unsigned int tries[] = {
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED,
		IORING_SETUP_SUBMIT_ALL,
		0,
	};
	/* every slot has at most one read in flight, and a backend may
	 * queue one request of its own before each */
	unsigned int entries = rd->nslots < 4 ? 8 : 2 * rd->nslots;
	int ret = -EINVAL;

	for (size_t i = rd->flags & STABLE_READER_ONE_THREAD ? 0 : 1;
	     i < COUNT(tries) && ret == -EINVAL; i++) {
		ret = io_uring_queue_init(entries, &rd->ring, tries[i]);
		rd->ring_disabled = ret == 0 && (tries[i] & IORING_SETUP_R_DISABLED);
	}
	return ret;
}

static int setup(struct stable_reader *rd, const struct stable_reader_options *o,
		 char *err, size_t errlen)
{
	const struct stable_hdr *h = &rd->img->hdr;
	int ret;

	rd->nslots = o && o->buffers ? o->buffers : DEFAULT_BUFFERS;
	rd->buffer_size = o && o->buffer_size ? o->buffer_size : DEFAULT_BUFFER_SIZE;
	rd->max_retries = o ? o->max_retries : STABLE_READER_DEFAULT_RETRIES;
	rd->flags = o ? o->flags : 0;
	if (rd->nslots > MAX_BUFFERS)
		return stable_set_err(err, errlen, -EINVAL,
				      "buffers %u is more than %u", rd->nslots, MAX_BUFFERS);
	if (rd->buffer_size % 4096 || rd->buffer_size > (64u << 20))
		return stable_set_err(err, errlen, -EINVAL,
				      "buffer_size %zu is not a multiple of 4096 up to 64 MiB",
				      rd->buffer_size);
	/* A buffer holds at least one block, or one compressed extent. */
	if (rd->buffer_size < h->block_size)
		rd->buffer_size = h->block_size;
	if (rd->buffer_size < h->extent_size)
		rd->buffer_size = h->extent_size;

	rd->slots = calloc(rd->nslots, sizeof(*rd->slots));
	rd->free_slots = calloc(rd->nslots, sizeof(*rd->free_slots));
	rd->scratch = malloc(h->block_size);
	if (!rd->slots || !rd->free_slots || !rd->scratch)
		return stable_set_err(err, errlen, -ENOMEM, "no memory for the reader");
	/* the stack pops slot 0 first */
	for (unsigned int i = 0; i < rd->nslots; i++)
		rd->free_slots[rd->nfree++] = rd->nslots - 1 - i;
	for (unsigned int i = 0; i < rd->nslots; i++) {
		rd->slots[i].index = i;
		rd->slots[i].aux_sealed = (struct stable_sealed)STABLE_SEALED_INIT;
	}
	rd->stash = calloc(rd->nslots, sizeof(*rd->stash));
	if (!rd->stash)
		return stable_set_err(err, errlen, -ENOMEM, "no memory for the reader");
	ret = ring_init(rd);
	if (ret < 0)
		return stable_set_err(err, errlen, ret, "io_uring_queue_init: %s",
				      strerror(-ret));
	rd->ring_ok = 1;
	rd->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rd->efd < 0 || io_uring_register_eventfd(&rd->ring, rd->efd) < 0)
		return stable_set_err(err, errlen, -errno, "eventfd: %s", strerror(errno));
	return pick_backend(rd, o, err, errlen);
}

static void teardown(struct stable_reader *rd)
{
	if (rd->ops)
		rd->ops->fini(rd);
	if (rd->ring_ok)
		io_uring_queue_exit(&rd->ring);
	if (rd->efd >= 0)
		close(rd->efd);
	free(rd->stash);
	free(rd->cmsg);
	for (unsigned int i = 0; rd->slots && i < rd->nslots; i++) {
		free(rd->slots[i].aux);
		stable_sealed_drop(&rd->slots[i].aux_sealed);
	}
	free(rd->slots);
	free(rd->free_slots);
	free(rd->scratch);
	free(rd);
}

int stable_reader_new(struct stable_reader **out,
		      struct stable_image *img,
		      const struct stable_reader_options *opts, char *err,
		      size_t errlen)
{
	struct stable_reader *rd;
	int ret;

	if (!out || !img)
		return stable_set_err(err, errlen, -EINVAL, "no image given");
	*out = NULL;
	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return stable_set_err(err, errlen, -ENOMEM, "no memory for the reader");
	rd->img = img;
	rd->efd = -1;
	ret = setup(rd, opts, err, errlen);
	if (ret) {
		teardown(rd);
		return ret;
	}
	*out = rd;
	return 0;
}

int stable_reader_free(struct stable_reader *rd)
{
	if (!rd)
		return 0;
	if (rd->held || rd->inflight)
		return stable_rd_err(rd, -EBUSY,
				     "reader still holds %u extents and has %u reads in flight: release and reap them first",
				     rd->held, rd->inflight);
	teardown(rd);
	return 0;
}

enum stable_guarantee stable_reader_guarantee(const struct stable_reader *rd)
{
	return rd->ops->guarantee;
}

const char *stable_reader_backend_name(const struct stable_reader *rd)
{
	return rd->ops->name;
}

const char *stable_errmsg(const struct stable_reader *rd)
{
	return rd ? rd->errmsg : "no reader";
}

void stable_reader_stats(const struct stable_reader *rd, struct stable_stats *s)
{
	*s = rd->stats;
}

int stable_last_error(const struct stable_reader *rd, struct stable_error *e)
{
	if (!rd->has_last)
		return -ENOENT;
	*e = rd->last;
	return 0;
}

struct stable_slot *stable_rd_free_slot(struct stable_reader *rd)
{
	return rd->nfree ? &rd->slots[rd->free_slots[--rd->nfree]] : NULL;
}

void stable_rd_slot_free(struct stable_reader *rd, struct stable_slot *s)
{
	s->state = SLOT_FREE;
	rd->free_slots[rd->nfree++] = s->index;
}

int stable_rd_check_range(struct stable_reader *rd, uint64_t off, size_t len)
{
	const struct stable_hdr *h = &rd->img->hdr;
	uint64_t end;

	if (len == 0)
		return stable_rd_err(rd, -EINVAL, "read of zero bytes at %llu",
				     (unsigned long long)off);
	if (stable_add_overflow(off, len, &end) || end > h->data_length)
		return stable_rd_err(rd, -EINVAL,
				     "read of %zu bytes at %llu goes past the end of the image (%llu bytes)",
				     len, (unsigned long long)off,
				     (unsigned long long)h->data_length);
	return 0;
}

int stable_rd_settle(struct stable_reader *rd, struct stable_slot *s, int ret)
{
	if (ret) {
		rd->ops->put(rd, s);
		stable_sealed_drop(&s->aux_sealed);
		stable_rd_slot_free(rd, s);
		rd->stats.errors++;
		return ret;
	}
	s->state = SLOT_HELD;
	rd->held++;
	rd->stats.reads++;
	rd->stats.bytes += s->ext.length;
	return 0;
}

int stable_read(struct stable_reader *rd, uint64_t off, size_t len,
		const struct stable_extent **ext)
{
	struct stable_slot *s;
	uint64_t foff;
	size_t flen;
	ssize_t got;
	int fd, ret;

	if (!rd || !ext)
		return -EINVAL;
	*ext = NULL;
	ret = stable_rd_check_range(rd, off, len);
	if (ret)
		return ret;
	s = stable_rd_free_slot(rd);
	if (!s)
		return stable_rd_err(rd, -ENOBUFS,
				     "all %u extents are held: release one first",
				     rd->nslots);
	s->state = SLOT_BUSY;
	rd->has_last = 0;
	stable_pipeline_plan(rd, s, off, len);
	stable_pipeline_locate(rd, s, &fd, &foff, &flen);
	/* a ZERO extent of a compressed image has nothing stored to read */
	got = flen ? stable_rd_read_sync(rd, s, fd, foff, flen) : 0;
	ret = stable_rd_settle(rd, s, stable_pipeline_finish(rd, s, got));
	if (ret == 0)
		*ext = &s->ext;
	return ret;
}

int stable_release(struct stable_reader *rd, const struct stable_extent *ext)
{
	uintptr_t base, p = (uintptr_t)ext;
	struct stable_slot *s;
	size_t i;

	if (!rd || !ext)
		return -EINVAL;
	base = (uintptr_t)rd->slots;
	if (p < base || (p - base) % sizeof(*s) ||
	    (i = (p - base) / sizeof(*s)) >= rd->nslots)
		return stable_rd_err(rd, -EINVAL,
				     "release of an extent that is not this reader's");
	s = &rd->slots[i];
	if (s->state != SLOT_HELD)
		return stable_rd_err(rd, -EINVAL,
				     "release of extent %zu, which is not held (double release?)",
				     i);
	rd->ops->put(rd, s);
	stable_sealed_drop(&s->aux_sealed);
	stable_rd_slot_free(rd, s);
	rd->held--;
	return 0;
}
