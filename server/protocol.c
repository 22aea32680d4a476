/*
 * The transmission phase: parsing requests from a byte buffer, answering
 * them with simple or structured replies, and reads through libstable's
 * asynchronous API. A read is cut into pieces of one reader buffer; each
 * verified extent that comes back is queued by reference (never copied);
 * a block that cannot be verified, re-read or rebuilt becomes an error
 * chunk at its offset (structured replies) or fails the whole request
 * (simple replies), so no unverified byte is ever queued. When the
 * reader runs out of buffers the rest of a read waits, and goes on once
 * queued extents have been sent and released.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd.h"
#include "stabled.h"

#define U(x) ((unsigned long long)(x))
/* Stop taking requests while this much is queued for a slow client. */
#define OUT_BACKLOG (64u << 20)
/* Read requests answered at once per connection. */
#define MAX_READS 256
/* A DF read must fit one reader buffer. */
#define DF_MAX (1u << 20)

void conn_fail(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	c->state = CS_DEAD;
	c->failed = true;
	atomic_fetch_add(&stats.protocol_errors, 1);
}

static void oom(struct conn *c)
{
	conn_fail(c, "out of memory for a reply");
}

static void simple_reply(struct conn *c, uint64_t handle, uint32_t error)
{
	uint8_t h[NBD_SIMPLE_REPLY_LEN], *p = h;

	p = nbd_put32(p, NBD_SIMPLE_REPLY_MAGIC);
	p = nbd_put32(p, error);
	nbd_put64(p, handle);
	if (outq_bytes(&c->out, h, sizeof(h)))
		oom(c);
	if (error)
		atomic_fetch_add(&stats.errors, 1);
}

static void chunk_hdr(struct conn *c, uint16_t flags, uint16_t type,
		      uint64_t handle, uint32_t len, const void *extra,
		      size_t extra_len)
{
	uint8_t h[NBD_CHUNK_HDR_LEN + 8], *p = h;

	p = nbd_put32(p, NBD_STRUCTURED_REPLY_MAGIC);
	p = nbd_put16(p, flags);
	p = nbd_put16(p, type);
	p = nbd_put64(p, handle);
	p = nbd_put32(p, len);
	if (extra_len)
		memcpy(p, extra, extra_len);
	if (outq_bytes(&c->out, h, NBD_CHUNK_HDR_LEN + extra_len))
		oom(c);
}

/* NBD_REPLY_TYPE_ERROR (offset == NULL) or ERROR_OFFSET with a message. */
static void error_chunk(struct conn *c, uint64_t handle, uint16_t flags,
			uint32_t error, const uint64_t *offset, const char *msg)
{
	size_t mlen = strlen(msg);
	uint8_t buf[6 + 200 + 8], *p = buf;

	if (mlen > 200)
		mlen = 200;
	p = nbd_put32(p, error);
	p = nbd_put16(p, (uint16_t)mlen);
	memcpy(p, msg, mlen);
	p += mlen;
	if (offset)
		p = nbd_put64(p, *offset);
	chunk_hdr(c, flags, offset ? NBD_REPLY_TYPE_ERROR_OFFSET : NBD_REPLY_TYPE_ERROR,
		  handle, (uint32_t)(p - buf), NULL, 0);
	if (outq_bytes(&c->out, buf, (size_t)(p - buf)))
		oom(c);
	atomic_fetch_add(&stats.errors, 1);
}

/* An error answer to any request, in the form the negotiation allows. */
static void request_error(struct conn *c, uint16_t type, uint64_t handle,
			  uint32_t error, const char *msg)
{
	if (c->structured && type == NBD_CMD_READ)
		error_chunk(c, handle, NBD_REPLY_FLAG_DONE, error, NULL, msg);
	else
		simple_reply(c, handle, error);
}

/* --- reads ----------------------------------------------------------------- */

static struct stable_reader *reader(struct conn *c)
{
	return c->readers[c->exp->index];
}

static void log_extent_event(struct conn *c, const struct stable_extent *e)
{
	uint64_t bs = c->exp->block_size;

	if (e->flags & STABLE_EXTENT_REBUILT)
		log_warn("export %s: block %llu (bytes %llu-%llu): checksum mismatch, rebuilt from parity; served verified data",
			 c->exp->name, U(e->offset / bs), U(e->offset),
			 U(e->offset + e->length - 1));
	else if (e->flags & STABLE_EXTENT_RETRIED)
		log_warn("export %s: bytes %llu-%llu (blocks from %llu): checksum mismatch, verified after a re-read",
			 c->exp->name, U(e->offset), U(e->offset + e->length - 1),
			 U(e->offset / bs));
}

/*
 * Piece [off, off + len) failed with ret: returns where its bad range
 * ends (the failed block's end) and sets *bad to the first bad byte,
 * logging the event with what libstable says about it.
 */
static uint64_t failed_range(struct conn *c, int ret, const struct stable_error *e,
			     uint64_t off, uint64_t len, uint64_t *bad)
{
	uint64_t bs = c->exp->block_size, end;

	if (ret == -EIO && e && e->length && e->offset < off + len &&
	    e->offset + e->length > off) {
		*bad = e->offset > off ? e->offset : off;
		end = e->offset + e->length;
		log_err("export %s: block %llu (bytes %llu-%llu): crc32c expected 0x%08x, found 0x%08x; cannot be verified, re-read or rebuilt: client %s gets EIO for it",
			c->exp->name, U(e->block), U(e->offset), U(e->offset + e->length - 1),
			e->expected_crc, e->found_crc, c->peer);
	} else {
		/* no block named: fail up to the next block boundary */
		*bad = off;
		end = (off / bs + 1) * bs;
		log_err("export %s: read at %llu failed (%s); client %s gets EIO: %s",
			c->exp->name, U(off), strerror(-ret), c->peer,
			stable_errmsg(reader(c)));
	}
	atomic_fetch_add(&stats.read_errors, 1);
	return end < off + len ? end : off + len;
}

static bool rreq_settled(const struct rreq *r)
{
	return !r->inflight && !r->todo && r->cursor == r->end;
}

static void rreq_free(struct conn *c, struct rreq *r)
{
	struct rreq **pp = &c->reads;

	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	c->nreads--;
	for (unsigned int i = 0; i < r->next_ext; i++)
		stable_release(reader(c), r->ext[i]);
	c->gathered -= r->next_ext;
	while (r->todo) {
		struct piece *p = r->todo;

		r->todo = p->next;
		free(p);
	}
	free(r->ext);
	free(r);
}

static void queue_extent(struct conn *c, const struct stable_extent *e)
{
	if (outq_extent(&c->out, reader(c), e, e->data, e->length)) {
		stable_release(reader(c), e);
		oom(c);
		return;
	}
	atomic_fetch_add(&stats.bytes, e->length);
}

/* Keeps r->ext sorted by offset; pieces complete in any order. */
static void gather(struct conn *c, struct rreq *r, const struct stable_extent *e)
{
	unsigned int i;

	if (r->next_ext == r->cap) {
		unsigned int cap = r->cap ? r->cap * 2 : 8;
		const struct stable_extent **n = realloc(r->ext, cap * sizeof(*n));

		if (!n) {
			stable_release(reader(c), e);
			oom(c);
			return;
		}
		r->ext = n;
		r->cap = cap;
	}
	for (i = r->next_ext; i > 0 && r->ext[i - 1]->offset > e->offset; i--)
		r->ext[i] = r->ext[i - 1];
	r->ext[i] = e;
	r->next_ext++;
	c->gathered++;
}

/* Simple replies: queues the extents that continue what is on the wire. */
static void emit_prefix(struct conn *c, struct rreq *r)
{
	unsigned int n = 0;

	while (n < r->next_ext && r->ext[n]->offset == r->start + r->emitted) {
		if (!r->header_sent) {
			simple_reply(c, r->handle, 0);
			r->header_sent = true;
		}
		r->emitted += r->ext[n]->length;
		queue_extent(c, r->ext[n++]);
	}
	memmove(r->ext, r->ext + n, (r->next_ext - n) * sizeof(*r->ext));
	r->next_ext -= n;
	c->gathered -= n;
}

/* Every piece of a simple or DF read is in: answer it whole. */
static void finish_gathered(struct conn *c, struct rreq *r)
{
	if (r->flags & NBD_CMD_FLAG_DF) {
		uint64_t bytes = 0;
		uint8_t o[8];

		if (r->failed) {
			error_chunk(c, r->handle, NBD_REPLY_FLAG_DONE, NBD_EIO, &r->bad_offset,
				    "data failed verification");
		} else {
			for (unsigned int i = 0; i < r->next_ext; i++)
				bytes += r->ext[i]->length;
			nbd_put64(o, r->start);
			chunk_hdr(c, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, r->handle,
				  (uint32_t)(bytes + 8), o, 8);
			for (unsigned int i = 0; i < r->next_ext; i++)
				queue_extent(c, r->ext[i]);
			c->gathered -= r->next_ext;
			r->next_ext = 0;
		}
	} else if (r->failed) {
		if (r->header_sent)
			/* error 0 is on the wire already: the spec says hang up */
			conn_fail(c, "read at %llu failed after its reply header was sent",
				  U(r->start));
		else
			simple_reply(c, r->handle, NBD_EIO);
	} else {
		emit_prefix(c, r);
	}
	rreq_free(c, r);	/* releases whatever was not queued */
}

/* A piece came back: answer with what it says, or note it for the end. */
static void piece_done(struct piece *p, const struct stable_completion *cp)
{
	struct rreq *r = p->r;
	struct conn *c = r->c;
	const bool structured = c->structured && !(r->flags & NBD_CMD_FLAG_DF);
	uint64_t off = p->off, len = p->len, bad = 0, end;
	bool last;

	r->inflight--;
	c->reads_inflight--;
	stats_absorb(reader(c), &c->reader_last[c->exp->index]);
	if (c->state == CS_DEAD) {
		if (cp->result == 0)
			stable_release(reader(c), cp->ext);
		free(p);
		return;
	}
	if (cp->result == 0) {
		const struct stable_extent *e = cp->ext;

		if (e->flags & (STABLE_EXTENT_REBUILT | STABLE_EXTENT_RETRIED))
			log_extent_event(c, e);
		end = off + e->length;
	} else {
		end = failed_range(c, cp->result, &cp->error, off, len, &bad);
	}
	if (end < off + len) {		/* the rest goes round again */
		p->off = end;
		p->len = (uint32_t)(off + len - end);
		p->next = r->todo;
		r->todo = p;
	} else {
		free(p);
	}
	last = rreq_settled(r);
	if (cp->result == 0) {
		if (structured) {
			uint8_t o[8];

			nbd_put64(o, off);
			chunk_hdr(c, last ? NBD_REPLY_FLAG_DONE : 0, NBD_REPLY_TYPE_OFFSET_DATA,
				  r->handle, (uint32_t)(cp->ext->length + 8), o, 8);
			queue_extent(c, cp->ext);
		} else {
			gather(c, r, cp->ext);
			if (r->header_sent)
				emit_prefix(c, r);
		}
	} else if (structured) {
		error_chunk(c, r->handle, last ? NBD_REPLY_FLAG_DONE : 0, NBD_EIO, &bad,
			    "data failed verification");
	} else if (!r->failed || bad < r->bad_offset) {
		r->failed = true;
		r->bad_offset = bad;
	}
	if (last) {
		if (structured)
			rreq_free(c, r);
		else
			finish_gathered(c, r);
	}
}

int reads_reap(struct stable_reader *rd)
{
	struct stable_completion cs[32];
	int n, total = 0;

	do {
		n = stable_reap(rd, cs, 32);
		if (n < 0) {
			log_err("stable_reap: %s", strerror(-n));
			return total;
		}
		for (int i = 0; i < n; i++)
			piece_done((struct piece *)(uintptr_t)cs[i].user_data, &cs[i]);
		total += n;
	} while (n == 32);
	return total;
}

/* The next piece of r to submit, cut at reader-buffer boundaries. */
static struct piece *next_piece(struct conn *c, struct rreq *r)
{
	struct piece *p = r->todo;
	uint64_t w = c->cfg->piece_size, len;

	if (p) {
		r->todo = p->next;
		return p;
	}
	if (r->cursor == r->end)
		return NULL;
	p = malloc(sizeof(*p));
	if (!p)
		return NULL;
	len = w - r->cursor % w;
	if (len > r->end - r->cursor)
		len = r->end - r->cursor;
	*p = (struct piece){ .r = r, .off = r->cursor, .len = (uint32_t)len };
	r->cursor += len;
	return p;
}

/*
 * Submits the waiting pieces of c's reads, oldest request first, until
 * the reader or the connection's share of buffers runs out. Returns
 * false if something is still waiting.
 */
bool protocol_submit(struct conn *c)
{
	struct stable_reader *rd;

	c->blocked = false;
	if (!c->reads || c->state == CS_DEAD)
		return true;
	rd = reader(c);
	for (struct rreq *r = c->reads, *next; r; r = next) {
		next = r->next;
		while (r->todo || r->cursor < r->end) {
			struct piece *p;
			int ret;

			if (c->out.extents + c->gathered + c->reads_inflight >=
			    c->cfg->max_extents_per_conn) {
				c->blocked = true;
				break;
			}
			p = next_piece(c, r);
			if (!p) {
				oom(c);
				return true;
			}
			ret = stable_submit(rd, p->off, p->len, (uintptr_t)p);
			if (ret == 0) {
				r->inflight++;
				c->reads_inflight++;
				continue;
			}
			p->next = r->todo;	/* try again later */
			r->todo = p;
			if (ret == -ENOBUFS || ret == -EBUSY) {
				c->blocked = true;
				break;
			}
			{
				/* cannot even be submitted: answer as a failed piece */
				struct stable_completion f = { .user_data = (uintptr_t)p,
							       .result = ret };

				r->todo = p->next;
				r->inflight++;
				c->reads_inflight++;
				piece_done(p, &f);
				if (c->state == CS_DEAD)
					return true;
			}
			break;	/* r may be gone */
		}
		if (c->blocked) {
			/* a simple reply holding buffers must not wait for others
			 * to release theirs: send its verified prefix now */
			if (!c->structured)
				for (struct rreq *q = c->reads; q; q = q->next)
					if (q->next_ext)
						emit_prefix(c, q);
			return false;
		}
	}
	return true;
}

static void start_read(struct conn *c, uint64_t handle, uint16_t flags,
		       uint64_t off, uint32_t len)
{
	struct rreq *r = calloc(1, sizeof(*r)), **pp = &c->reads;

	if (!r) {
		oom(c);
		return;
	}
	*r = (struct rreq){ .c = c, .handle = handle, .flags = flags,
			    .start = off, .end = off + len, .cursor = off };
	while (*pp)
		pp = &(*pp)->next;
	*pp = r;
	c->nreads++;
	atomic_fetch_add(&stats.read_requests, 1);
	protocol_submit(c);
}

/* --- requests -------------------------------------------------------------- */

/* 0, or the NBD error for a range outside the export. */
static uint32_t check_range(const struct conn *c, uint64_t off, uint32_t len)
{
	if (len == 0 || off > c->exp->size || len > c->exp->size - off)
		return NBD_EINVAL;
	return 0;
}

static void request(struct conn *c, uint16_t flags, uint16_t type,
		    uint64_t handle, uint64_t off, uint32_t len)
{
	uint32_t err;
	char msg[120];

	log_debug("request type %u flags 0x%x offset %llu length %u", type, flags,
		  U(off), len);
	switch (type) {
	case NBD_CMD_READ:
		if (flags & ~(c->structured ? NBD_CMD_FLAG_DF : 0)) {
			request_error(c, type, handle, NBD_EINVAL, "unsupported flags for a read");
			return;
		}
		if (len > c->cfg->max_request) {
			snprintf(msg, sizeof(msg), "read of %u bytes: the limit is %u",
				 len, c->cfg->max_request);
			request_error(c, type, handle, NBD_EINVAL, msg);
			return;
		}
		if (check_range(c, off, len)) {
			snprintf(msg, sizeof(msg), "read of %u bytes at %llu: the export has %llu",
				 len, U(off), U(c->exp->size));
			request_error(c, type, handle, NBD_EINVAL, msg);
			return;
		}
		if ((flags & NBD_CMD_FLAG_DF) && len > DF_MAX) {
			request_error(c, type, handle, NBD_EOVERFLOW,
				  "unfragmented reads are limited to 1 MiB");
			return;
		}
		start_read(c, handle, flags, off, len);
		return;
	case NBD_CMD_WRITE:
		if (len > c->cfg->max_request) {
			conn_fail(c, "write of %u bytes: more than the %u we would skip",
				  len, c->cfg->max_request);
			return;
		}
		c->skip = len;
		simple_reply(c, handle, NBD_EPERM);
		return;
	case NBD_CMD_DISC:
		c->state = CS_CLOSING;
		snprintf(c->why, sizeof(c->why), "client disconnected (NBD_CMD_DISC)");
		return;
	case NBD_CMD_FLUSH:
		simple_reply(c, handle, flags || off || len ? NBD_EINVAL : 0);
		return;
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES:
		simple_reply(c, handle, NBD_EPERM);
		return;
	case NBD_CMD_CACHE:
		err = flags ? NBD_EINVAL : check_range(c, off, len);
		simple_reply(c, handle, err);
		return;
	case NBD_CMD_BLOCK_STATUS:
		if (!c->meta_alloc || (flags & ~NBD_CMD_FLAG_REQ_ONE) ||
		    check_range(c, off, len)) {
			simple_reply(c, handle, NBD_EINVAL);
			return;
		} else {
			uint8_t d[12], *p = d;

			/* every byte of an image is data */
			p = nbd_put32(p, 1);
			p = nbd_put32(p, len);
			nbd_put32(p, 0);
			chunk_hdr(c, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS,
				  handle, sizeof(d), NULL, 0);
			if (outq_bytes(&c->out, d, sizeof(d)))
				oom(c);
		}
		return;
	default:
		simple_reply(c, handle, NBD_EINVAL);
		return;
	}
}

size_t protocol_consume(struct conn *c, const uint8_t *p, size_t len)
{
	size_t used = 0;

	while (c->state == CS_TRANSMISSION) {
		const uint8_t *h = p + used;
		uint32_t magic;

		if (c->skip) {
			size_t n = len - used < c->skip ? len - used : (size_t)c->skip;

			c->skip -= n;
			used += n;
			if (c->skip)
				break;
			continue;
		}
		if (c->blocked || c->nreads >= MAX_READS || c->out.bytes > OUT_BACKLOG ||
		    len - used < NBD_REQUEST_LEN)
			break;
		magic = nbd_get32(h);
		if (magic != NBD_REQUEST_MAGIC) {
			conn_fail(c, "bad request magic 0x%08x", magic);
			return len;
		}
		used += NBD_REQUEST_LEN;
		c->requests++;
		atomic_fetch_add(&stats.requests, 1);
		request(c, nbd_get16(h + 4), nbd_get16(h + 6), nbd_get64(h + 8),
			nbd_get64(h + 16), nbd_get32(h + 24));
	}
	return used;
}

/* --- connections --------------------------------------------------------- */

int conn_init(struct conn *c, const struct export_table *t,
	      const struct server_config *cfg, struct stable_reader **readers,
	      struct stable_stats *reader_last, const char *peer)
{
	uint8_t g[18], *p = g;

	memset(c, 0, sizeof(*c));
	c->exports = t;
	c->cfg = cfg;
	c->readers = readers;
	c->reader_last = reader_last;
	c->peer = peer;
	c->in = malloc(CONN_IN_SIZE);
	if (!c->in)
		return -ENOMEM;
	p = nbd_put64(p, NBD_MAGIC);
	p = nbd_put64(p, NBD_OPTS_MAGIC);
	nbd_put16(p, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (outq_bytes(&c->out, g, sizeof(g))) {
		free(c->in);
		c->in = NULL;
		return -ENOMEM;
	}
	c->state = CS_CLIENT_FLAGS;
	return 0;
}

void conn_fini(struct conn *c)
{
	/* the caller waited for reads_inflight to reach 0 */
	while (c->reads)
		rreq_free(c, c->reads);
	outq_clear(&c->out);
	free(c->in);
	c->in = NULL;
}

void conn_shutdown(struct conn *c)
{
	c->shutting_down = true;
	if (c->state == CS_CLIENT_FLAGS || c->state == CS_OPTIONS) {
		c->state = CS_CLOSING;
		snprintf(c->why, sizeof(c->why), "server shutting down");
	}
}

void conn_compact(struct conn *c)
{
	if (!c->in_start)
		return;
	memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
	c->in_len -= c->in_start;
	c->in_start = 0;
}

bool conn_process(struct conn *c)
{
	bool progress = false;

	for (;;) {
		const uint8_t *p = c->in + c->in_start;
		size_t avail = c->in_len - c->in_start, used = 0;

		if (c->reads && !protocol_submit(c))
			return progress;
		if (c->state == CS_CLIENT_FLAGS || c->state == CS_OPTIONS)
			used = handshake_consume(c, p, avail);
		if (c->state == CS_TRANSMISSION)
			used += protocol_consume(c, p + used, avail - used);
		if (c->state == CS_CLOSING || c->state == CS_DEAD)
			used = avail;	/* nothing more is read */
		c->in_start += used;
		if (used)
			progress = true;
		if (!used || !avail || c->state == CS_CLOSING || c->state == CS_DEAD)
			return progress;
	}
}
