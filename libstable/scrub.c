/*
 * Scrubbing: a sequential pass over every stored block (data, then
 * parity) checking each against the table, then an inflate of every
 * compressed extent whose blocks passed. With repair, each bad data block
 * is rebuilt from its group and written back, each bad parity block is
 * recomputed from its data blocks, and both are read back and checked.
 * This is a scan of the files, not a reader: it reads into private memory
 * with plain pread, in large chunks, so it runs at the speed of the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <zlib.h>

#include "image.h"
#include "parity.h"
#include "util.h"
#include "stable/scrub.h"

#define CHUNK (1u << 20)
#define SCRUB_LANES 2
#define U(x) ((unsigned long long)(x))

struct scrub {
	struct stable_image *img;
	const struct stable_hdr *h;
	uint8_t *buf, *out, *scratch;
	uint8_t *ahead[SCRUB_LANES];	/* one buffer per lane of scan() */
	unsigned int lanes;
	pthread_mutex_t lock;		/* lanes share the list and counters */
	size_t bufsize;
	uint8_t *bad;			/* bitmap over stored blocks */
	struct stable_bad_block *list;
	size_t nlist, caplist;
	struct stable_scrub_report *rep;
	char *err;
	size_t errlen;
};

static int is_bad(const struct scrub *s, uint64_t b)
{
	return s->bad[b / 8] >> (b % 8) & 1;
}

static int add_bad(struct scrub *s, uint64_t b, uint32_t found, const char *why)
{
	const struct stable_hdr *h = s->h;
	struct stable_bad_block *x;
	int fd;

	if (s->nlist == s->caplist) {
		size_t cap = s->caplist ? s->caplist * 2 : 64;
		void *p = realloc(s->list, cap * sizeof(*s->list));

		if (!p)
			return stable_set_err(s->err, s->errlen, -ENOMEM, "no memory");
		s->list = p;
		s->caplist = cap;
	}
	x = &s->list[s->nlist++];
	memset(x, 0, sizeof(*x));
	s->bad[b / 8] |= (uint8_t)(1u << (b % 8));
	x->kind = b < h->data_blocks ? STABLE_BLOCK_DATA : STABLE_BLOCK_PARITY;
	x->block = b < h->data_blocks ? b : b - h->data_blocks;
	stable_image_locate(s->img, b, &fd, &x->file_offset);
	if (b < h->data_blocks && !(h->flags & STABLE_HF_COMPRESSED)) {
		x->offset = b * h->block_size;
		x->length = stable_block_valid(h, b);
	} else if (b < h->data_blocks) {
		/* a compressed block: the logical range of its extent */
		uint64_t e = stable_index_find(h, s->img->index, b);

		x->offset = e * h->extent_size;
		x->length = stable_min_u64(h->extent_size, h->data_length - x->offset);
	} else {
		/* a parity block covers its whole group */
		uint64_t first = x->block * h->parity_group;
		uint64_t last = stable_min_u64(first + h->parity_group, h->data_blocks);

		x->offset = first * h->block_size;
		x->length = stable_min_u64(last * h->block_size, h->data_length) - x->offset;
	}
	x->expected_crc = stable_image_crc(s->img, b);
	x->found_crc = found;
	x->why = why;
	s->rep->bad_blocks++;
	return 0;
}

/* Checks n stored blocks from b of which got bytes landed in buf. */
static int check_chunk(struct scrub *s, const uint8_t *buf, uint64_t b, uint64_t n,
		       ssize_t got)
{
	const uint32_t bs = s->h->block_size;
	uint64_t bytes = 0;
	int ret = 0;

	for (uint64_t i = 0; i < n && !ret; i++) {
		uint32_t valid = stable_block_valid(s->h, b + i), crc;

		if ((uint64_t)got < i * bs + valid) {
			pthread_mutex_lock(&s->lock);
			ret = add_bad(s, b + i, 0, "short read: the file ends inside the block");
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		bytes += valid;
		crc = stable_crc32c(0, buf + i * bs, valid);
		if (crc != stable_image_crc(s->img, b + i)) {
			pthread_mutex_lock(&s->lock);
			ret = add_bad(s, b + i, crc, "crc32c mismatch");
			pthread_mutex_unlock(&s->lock);
		}
	}
	pthread_mutex_lock(&s->lock);
	s->rep->blocks_checked += n;
	s->rep->bytes_checked += bytes;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

struct lane {
	struct scrub *s;
	uint8_t *buf;
	uint64_t first, end;	/* the range being scanned */
	unsigned int index, lanes;
	int ret;
};

/*
 * One lane's share of a scan: every lanes-th chunk. Each lane reads its
 * chunk and checksums it on the same core while the chunk is still in
 * that core's cache, so two lanes on two cores beat a plain one-thread
 * read; a copy then a checksum on one core would not.
 */
static void *lane_main(void *arg)
{
	struct lane *l = arg;
	struct scrub *s = l->s;
	const uint32_t bs = s->h->block_size;
	const uint64_t per = s->bufsize / bs;

	for (uint64_t b = l->first + l->index * per; b < l->end && !l->ret;
	     b += (uint64_t)l->lanes * per) {
		uint64_t n = stable_min_u64(per, l->end - b), off;
		ssize_t got;
		int fd;

		stable_image_locate(s->img, b, &fd, &off);
		got = stable_pread_full(fd, l->buf, (size_t)(n * bs), off);
		if (got < 0) {
			pthread_mutex_lock(&s->lock);
			l->ret = stable_set_err(s->err, s->errlen, (int)got, "%s: read at %llu: %s",
						s->img->path, U(off), strerror((int)-got));
			pthread_mutex_unlock(&s->lock);
		} else {
			l->ret = check_chunk(s, l->buf, b, n, got);
		}
	}
	return NULL;
}

static int cmp_bad(const void *a, const void *b)
{
	const struct stable_bad_block *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->block < y->block ? -1 : x->block > y->block;
}

/* Checks stored blocks [first, first + count) in SCRUB_LANES threads. */
static int scan(struct scrub *s, uint64_t first, uint64_t count)
{
	struct lane l[SCRUB_LANES];
	pthread_t th[SCRUB_LANES];
	unsigned int lanes = s->lanes;
	int ret = 0;

	for (unsigned int i = 0; i < lanes; i++) {
		l[i] = (struct lane){ .s = s, .buf = s->ahead[i], .first = first,
				      .end = first + count, .index = i, .lanes = lanes };
		if (i > 0 && pthread_create(&th[i], NULL, lane_main, &l[i]) != 0)
			lanes = i;	/* fewer lanes: the others take over */
	}
	for (unsigned int i = lanes; i < s->lanes; i++)
		l[i].lanes = lanes;
	if (lanes < s->lanes) {
		/* could not start every lane: scan it all in this thread */
		for (unsigned int i = 1; i < lanes; i++)
			pthread_join(th[i], NULL);
		l[0] = (struct lane){ .s = s, .buf = s->ahead[0], .first = first,
				      .end = first + count, .index = 0, .lanes = 1 };
		lanes = 1;
	}
	lane_main(&l[0]);
	for (unsigned int i = 1; i < lanes; i++)
		pthread_join(th[i], NULL);
	for (unsigned int i = 0; i < lanes && !ret; i++)
		ret = l[i].ret;
	/* lanes found bad blocks out of order */
	if (s->nlist > 1)
		qsort(s->list, s->nlist, sizeof(*s->list), cmp_bad);
	return ret;
}

/* Inflates every extent whose blocks all passed, to catch bad streams. */
static int check_extents(struct scrub *s, void (*cb)(void *, const struct stable_bad_block *),
			 void *arg)
{
	const struct stable_hdr *h = s->h;
	uint64_t n = stable_hdr_extents(h);

	for (uint64_t e = 0; e < n; e++) {
		struct stable_index_entry ent;
		uint64_t nb, loff = e * h->extent_size, off;
		uLongf out_len = stable_min_u64(h->extent_size, h->data_length - loff);
		uLongf want = out_len;
		int fd, bad = 0;
		ssize_t got;

		stable_index_get(s->img->index, e, &ent);
		if (ent.flags & (STABLE_XF_RAW | STABLE_XF_ZERO))
			continue;	/* nothing to inflate */
		nb = stable_div_round_up(ent.stored_bytes, h->block_size);
		for (uint64_t b = ent.first_block; b < ent.first_block + nb; b++)
			bad |= is_bad(s, b);
		if (bad)
			continue;
		stable_image_locate(s->img, ent.first_block, &fd, &off);
		got = stable_pread_full(fd, s->buf, ent.stored_bytes, off);
		if (got != (ssize_t)ent.stored_bytes)
			continue;	/* a concurrent truncation; scan reported it */
		if (uncompress(s->out, &out_len, s->buf, ent.stored_bytes) != Z_OK ||
		    out_len != want) {
			struct stable_bad_block x = {
				.kind = STABLE_BLOCK_DATA, .block = ent.first_block,
				.file_offset = off, .offset = loff, .length = want,
				.why = "compressed extent passed its checksums but does not inflate",
			};

			s->rep->bad_extents++;
			if (cb)
				cb(arg, &x);
		}
	}
	return 0;
}

/* Reads stored block b back and checks it: 1 good, 0 bad. */
static int reverify(struct scrub *s, uint64_t b)
{
	uint32_t valid = stable_block_valid(s->h, b);
	uint64_t off;
	int fd;

	stable_image_locate(s->img, b, &fd, &off);
	return stable_pread_full(fd, s->scratch, valid, off) == (ssize_t)valid &&
	       stable_crc32c(0, s->scratch, valid) == stable_image_crc(s->img, b);
}

/* Recomputes parity block p (stored number) from its data blocks. */
static int recompute_parity(struct scrub *s, uint64_t p)
{
	const struct stable_hdr *h = s->h;
	uint64_t g = p - h->data_blocks, first = g * h->parity_group;
	uint64_t last = stable_min_u64(first + h->parity_group, h->data_blocks);
	uint64_t off;
	int fd;

	memset(s->out, 0, h->block_size);
	for (uint64_t b = first; b < last; b++) {
		uint32_t valid = stable_block_valid(h, b);

		if (is_bad(s, b))
			return -EIO;
		stable_image_locate(s->img, b, &fd, &off);
		if (stable_pread_full(fd, s->scratch, valid, off) != (ssize_t)valid)
			return -EIO;
		stable_xor_into(s->out, s->scratch, valid);
	}
	return stable_crc32c(0, s->out, h->block_size) == stable_image_crc(s->img, p)
	       ? 0 : -EIO;
}

static void repair(struct scrub *s, struct stable_bad_block *x, uint64_t b)
{
	const struct stable_hdr *h = s->h;
	struct stable_rebuild r;
	uint64_t off;
	int fd, ret;

	if (b < h->data_blocks) {
		ret = stable_rebuild_block(s->img, b, s->out, s->scratch, &r);
		if (ret) {
			x->why = r.why;
			return;
		}
	} else if (recompute_parity(s, b)) {
		x->why = "its group has a bad data block too";
		return;
	}
	stable_image_locate(s->img, b, &fd, &off);
	if (stable_pwrite_full(fd, s->out, stable_block_valid(h, b), off)) {
		x->why = "writing the rebuilt block failed";
		return;
	}
	if (reverify(s, b)) {
		x->repaired = 1;
		s->rep->repaired++;
	} else {
		x->why = "the rewritten block does not read back verified";
	}
}

static int run(struct scrub *s, unsigned int flags,
	       void (*cb)(void *, const struct stable_bad_block *), void *arg)
{
	const struct stable_hdr *h = s->h;
	uint64_t total = h->data_blocks + h->parity_blocks;
	int ret;

	s->bufsize = h->block_size > CHUNK ? h->block_size : CHUNK;
	if (s->bufsize < h->extent_size)
		s->bufsize = h->extent_size;
	if (posix_memalign((void **)&s->buf, 4096, s->bufsize) ||
	    posix_memalign((void **)&s->out, 4096,
			   h->extent_size > h->block_size ? h->extent_size : h->block_size) ||
	    posix_memalign((void **)&s->scratch, 4096, h->block_size) ||
	    !(s->bad = calloc(total / 8 + 1, 1)))
		return stable_set_err(s->err, s->errlen, -ENOMEM, "no memory");
	for (int i = 0; i < SCRUB_LANES; i++)
		if (posix_memalign((void **)&s->ahead[i], 4096, s->bufsize))
			return stable_set_err(s->err, s->errlen, -ENOMEM, "no memory");
	posix_fadvise(s->img->data_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	s->lanes = (unsigned int)sysconf(_SC_NPROCESSORS_ONLN);
	if (s->lanes < 1)
		s->lanes = 1;
	if (s->lanes > SCRUB_LANES)
		s->lanes = SCRUB_LANES;
	ret = scan(s, 0, h->data_blocks);
	if (!ret)
		ret = scan(s, h->data_blocks, h->parity_blocks);
	if (ret)
		return ret;
	for (size_t i = 0; i < s->nlist; i++) {
		struct stable_bad_block *x = &s->list[i];
		uint64_t b = x->kind == STABLE_BLOCK_DATA ? x->block
							   : h->data_blocks + x->block;

		if (flags & STABLE_SCRUB_REPAIR)
			repair(s, x, b);
	}
	/* After repairs, so that a repaired block's bit no longer blocks inflate. */
	for (size_t i = 0; i < s->nlist; i++) {
		struct stable_bad_block *x = &s->list[i];
		uint64_t b = x->kind == STABLE_BLOCK_DATA ? x->block
							   : h->data_blocks + x->block;

		if (x->repaired)
			s->bad[b / 8] &= (uint8_t)~(1u << (b % 8));
		if (cb)
			cb(arg, x);
	}
	if (h->flags & STABLE_HF_COMPRESSED)
		check_extents(s, cb, arg);
	return s->rep->bad_blocks > s->rep->repaired || s->rep->bad_extents ? 1 : 0;
}

int stable_scrub(struct stable_image *img, unsigned int flags,
		 void (*cb)(void *arg, const struct stable_bad_block *bad),
		 void *arg, struct stable_scrub_report *report, char *err,
		 size_t errlen)
{
	struct stable_scrub_report dummy;
	struct scrub s = { .img = img, .err = err, .errlen = errlen,
			   .lock = PTHREAD_MUTEX_INITIALIZER };
	int ret;

	if (!img)
		return stable_set_err(err, errlen, -EINVAL, "no image");
	if ((flags & STABLE_SCRUB_REPAIR) && !(img->flags & STABLE_OPEN_WRITABLE))
		return stable_set_err(err, errlen, -EINVAL,
				      "%s: repair needs the image opened writable", img->path);
	if ((flags & STABLE_SCRUB_REPAIR) && (img->flags & STABLE_OPEN_DIRECT))
		return stable_set_err(err, errlen, -EINVAL,
				      "%s: repair does not work with O_DIRECT", img->path);
	s.h = &img->hdr;
	s.rep = report ? report : &dummy;
	memset(s.rep, 0, sizeof(*s.rep));
	ret = run(&s, flags, cb, arg);
	free(s.buf);
	for (int i = 0; i < SCRUB_LANES; i++)
		free(s.ahead[i]);
	pthread_mutex_destroy(&s.lock);
	free(s.out);
	free(s.scratch);
	free(s.bad);
	free(s.list);
	return ret;
}
