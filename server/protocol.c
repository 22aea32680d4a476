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

/*
 * The header of a reply chunk, structured (20 bytes) or, after
 * NBD_OPT_EXTENDED_HEADERS, extended (32 bytes, echoing the request's
 * offset req_off, 64-bit length), then extra_len (at most 8) bytes of
 * its payload.
 */
static void chunk_hdr(struct conn *c, uint16_t flags, uint16_t type,
		      uint64_t handle, uint64_t req_off, uint64_t len,
		      const void *extra, size_t extra_len)
{
	uint8_t h[NBD_EXT_REPLY_LEN + 8], *p = h;

	p = nbd_put32(p, c->extended ? NBD_EXTENDED_REPLY_MAGIC : NBD_STRUCTURED_REPLY_MAGIC);
	p = nbd_put16(p, flags);
	p = nbd_put16(p, type);
	p = nbd_put64(p, handle);
	if (c->extended) {
		p = nbd_put64(p, req_off);
		p = nbd_put64(p, len);
	} else {
		p = nbd_put32(p, (uint32_t)len);
	}
	if (extra_len > 8) {	/* a caller's bug: never overrun h */
		conn_fail(c, "internal error: %zu payload bytes after a reply header",
			  extra_len);
		return;
	}
	if (extra_len)
		memcpy(p, extra, extra_len);
	if (outq_bytes(&c->out, h, (size_t)(p - h) + extra_len))
		oom(c);
}

/* NBD_REPLY_TYPE_ERROR (offset == NULL) or ERROR_OFFSET with a message. */
static void error_chunk(struct conn *c, uint64_t handle, uint64_t req_off,
			uint16_t flags, uint32_t error, const uint64_t *offset,
			const char *msg)
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
		  handle, req_off, (uint64_t)(p - buf), NULL, 0);
	if (outq_bytes(&c->out, buf, (size_t)(p - buf)))
		oom(c);
	atomic_fetch_add(&stats.errors, 1);
}

/*
 * The whole answer to a request that carries no data: a simple reply, or
 * with extended headers (which allow no simple replies) an error chunk
 * or an empty NBD_REPLY_TYPE_NONE chunk, both final.
 */
static void status_reply(struct conn *c, uint64_t handle, uint32_t error,
			 const char *msg)
{
	if (!c->extended)
		simple_reply(c, handle, error);
	else if (error)
		error_chunk(c, handle, c->req_off, NBD_REPLY_FLAG_DONE, error, NULL, msg);
	else
		chunk_hdr(c, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, handle, c->req_off,
			  0, NULL, 0);
}

/* An error answer to any request, in the form the negotiation allows. */
static void request_error(struct conn *c, uint16_t type, uint64_t handle,
			  uint32_t error, const char *msg)
{
	if (c->structured && type == NBD_CMD_READ)
		error_chunk(c, handle, c->req_off, NBD_REPLY_FLAG_DONE, error, NULL, msg);
	else
		status_reply(c, handle, error, msg);
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
 * logging the event with what libstable says about it: the completion's
 * own message when it has one (the reader's last message may be another
 * completion's of the same batch).
 */
static uint64_t failed_range(struct conn *c, int ret, const struct stable_error *e,
			     const char *msg, uint64_t off, uint64_t len, uint64_t *bad)
{
	uint64_t bs = c->exp->block_size, end;

	if (ret == -EIO && e && e->length && e->offset < off + len &&
	    e->offset + e->length > off) {
		*bad = e->offset > off ? e->offset : off;
		end = e->offset + e->length;
		if (e->flags & STABLE_ERROR_SHORT_READ)
			log_err("export %s: block %llu (bytes %llu-%llu): the image file ends before it (truncated while served?): client %s gets EIO for it",
				c->exp->name, U(e->block), U(e->offset),
				U(e->offset + e->length - 1), c->peer);
		else
			log_err("export %s: block %llu (bytes %llu-%llu): crc32c expected 0x%08x, found 0x%08x; cannot be verified, re-read or rebuilt: client %s gets EIO for it",
				c->exp->name, U(e->block), U(e->offset),
				U(e->offset + e->length - 1), e->expected_crc, e->found_crc,
				c->peer);
	} else {
		/* no block named: fail up to the next block boundary */
		*bad = off;
		end = (off / bs + 1) * bs;
		log_err("export %s: read at %llu failed (%s); client %s gets EIO: %s",
			c->exp->name, U(off), strerror(-ret), c->peer,
			msg ? msg : stable_errmsg(reader(c)));
	}
	atomic_fetch_add(&stats.read_errors, 1);
	return end < off + len ? end : off + len;
}

static bool rreq_settled(const struct rreq *r)
{
	return !r->inflight && !r->todo && !r->later && r->cursor == r->end;
}

static void free_pieces(struct piece *p)
{
	while (p) {
		struct piece *next = p->next;

		free(p);
		p = next;
	}
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
	free_pieces(r->todo);
	free_pieces(r->later);
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

/*
 * Structured replies: one data chunk per run of contiguous verified
 * extents gathered in r->ext, the last flagged final if done. A 1 MiB
 * read cut into 128 KiB pieces becomes one chunk, not eight: fewer
 * headers to queue, and fewer reads for the client to parse them.
 */
static void emit_runs(struct conn *c, struct rreq *r, bool done)
{
	unsigned int i = 0, n = r->next_ext;

	while (i < n) {
		uint64_t off = r->ext[i]->offset, len = r->ext[i]->length;
		unsigned int j = i + 1;
		uint8_t o[8];

		while (j < n && r->ext[j]->offset == off + len)
			len += r->ext[j++]->length;
		nbd_put64(o, off);
		chunk_hdr(c, done && j == n ? NBD_REPLY_FLAG_DONE : 0,
			  NBD_REPLY_TYPE_OFFSET_DATA, r->handle, r->start, len + 8, o, 8);
		while (i < j)
			queue_extent(c, r->ext[i++]);
	}
	c->gathered -= n;
	r->next_ext = 0;
}

/* Every piece of a read is in: answer what is left of it. */
static void finish_gathered(struct conn *c, struct rreq *r, bool structured)
{
	if (structured) {
		if (r->next_ext)
			emit_runs(c, r, true);
		else	/* all sent already (or all failed): say it is over */
			chunk_hdr(c, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, r->handle,
				  r->start, 0, NULL, 0);
	} else if (r->flags & NBD_CMD_FLAG_DF) {
		if (r->failed)
			error_chunk(c, r->handle, r->start, NBD_REPLY_FLAG_DONE, NBD_EIO,
				    &r->bad_offset, "data failed verification");
		else
			emit_runs(c, r, true);
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
	if (cp->result == -EIO && later_defer(c, r, p))
		return;		/* read again in a moment (later.c) */
	if (cp->result == 0) {
		const struct stable_extent *e = cp->ext;

		if (e->flags & (STABLE_EXTENT_REBUILT | STABLE_EXTENT_RETRIED))
			log_extent_event(c, e);
		if (p->delays)
			log_warn("export %s: bytes %llu-%llu: verified when read again after %u delays (the image was being updated)",
				 c->exp->name, U(e->offset), U(e->offset + e->length - 1),
				 p->delays);
		p->delays = 0;
		end = off + e->length;
	} else {
		end = failed_range(c, cp->result, &cp->error, cp->message, off, len, &bad);
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
		gather(c, r, cp->ext);
		if (!structured && r->header_sent)
			emit_prefix(c, r);
	} else if (structured) {
		/* the final chunk if nothing verified waits to follow it */
		bool done = last && !r->next_ext;

		error_chunk(c, r->handle, r->start, done ? NBD_REPLY_FLAG_DONE : 0, NBD_EIO,
			    &bad, "data failed verification");
		if (done) {
			rreq_free(c, r);
			return;
		}
	} else if (!r->failed || bad < r->bad_offset) {
		r->failed = true;
		r->bad_offset = bad;
	}
	if (last)
		finish_gathered(c, r, structured);
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
	later_wake(c);
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
			/* a read holding buffers must not wait for others to
			 * release theirs: send what it has verified now (a DF
			 * read needs at most DF_MAX, less than a share) */
			for (struct rreq *q = c->reads; q; q = q->next) {
				if (!q->next_ext)
					continue;
				if (!c->structured)
					emit_prefix(c, q);
				else if (!(q->flags & NBD_CMD_FLAG_DF))
					emit_runs(c, q, false);
			}
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
static uint32_t check_range(const struct conn *c, uint64_t off, uint64_t len)
{
	if (len == 0 || off > c->exp->size || len > c->exp->size - off)
		return NBD_EINVAL;
	return 0;
}

static void read_request(struct conn *c, uint16_t flags, uint64_t handle,
			 uint64_t off, uint64_t len)
{
	char msg[120];

	if (flags & ~(c->structured ? NBD_CMD_FLAG_DF : 0)) {
		request_error(c, NBD_CMD_READ, handle, NBD_EINVAL, "unsupported flags for a read");
		return;
	}
	if (len > c->cfg->max_request) {
		snprintf(msg, sizeof(msg), "read of %llu bytes: the limit is %u",
			 U(len), c->cfg->max_request);
		request_error(c, NBD_CMD_READ, handle, NBD_EINVAL, msg);
		return;
	}
	if (check_range(c, off, len)) {
		snprintf(msg, sizeof(msg), "read of %llu bytes at %llu: the export has %llu",
			 U(len), U(off), U(c->exp->size));
		request_error(c, NBD_CMD_READ, handle, NBD_EINVAL, msg);
		return;
	}
	if ((flags & NBD_CMD_FLAG_DF) && len > DF_MAX) {
		request_error(c, NBD_CMD_READ, handle, NBD_EOVERFLOW,
			      "unfragmented reads are limited to 1 MiB");
		return;
	}
	start_read(c, handle, flags, off, (uint32_t)len);
}

/* Descriptors per block status reply, and map calls (each bounded) per
 * request: a few KiB and a few ms, however large or fragmented the
 * range. The spec lets a reply cover less than was asked. */
#define STATUS_MAX_DESCRIPTORS 256u
#define STATUS_MAX_CALLS (2 * STATUS_MAX_DESCRIPTORS)

/*
 * base:allocation: what stable_image_map() vouches reads as zeroes with
 * nothing stored is HOLE|ZERO (a client may skip it and still gets the
 * bytes a verified read would give); everything else is data. With
 * REQ_ONE, one descriptor.
 */
static void block_status(struct conn *c, uint64_t handle, uint16_t flags,
			 uint64_t off, uint64_t len)
{
	const unsigned int max = flags & NBD_CMD_FLAG_REQ_ONE ? 1 : STATUS_MAX_DESCRIPTORS;
	uint64_t lens[STATUS_MAX_DESCRIPTORS], done = 0, run;
	uint32_t states[STATUS_MAX_DESCRIPTORS];
	uint8_t d[8 + STATUS_MAX_DESCRIPTORS * 16], *p;
	unsigned int n = 0, calls = 0, mf;

	while (done < len && calls++ < STATUS_MAX_CALLS) {
		uint32_t state;

		if (stable_image_map(c->exp->img, off + done, len - done, &run, &mf))
			break;
		state = mf & STABLE_MAP_ZERO ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0;
		if (n && states[n - 1] == state) {
			lens[n - 1] += run;
		} else if (n < max) {
			lens[n] = run;
			states[n++] = state;
		} else {
			break;
		}
		done += run;
	}
	if (!n) {	/* cannot happen for a range check_range() passed */
		lens[n] = len;
		states[n++] = 0;
	}
	p = nbd_put32(d, META_ALLOC_ID);
	if (c->extended)	/* the spec wants the 64-bit form here */
		p = nbd_put32(p, n);
	for (unsigned int i = 0; i < n; i++) {
		if (c->extended) {
			p = nbd_put64(p, lens[i]);
			p = nbd_put64(p, states[i]);
		} else {
			p = nbd_put32(p, (uint32_t)lens[i]);
			p = nbd_put32(p, states[i]);
		}
	}
	chunk_hdr(c, NBD_REPLY_FLAG_DONE,
		  c->extended ? NBD_REPLY_TYPE_BLOCK_STATUS_EXT : NBD_REPLY_TYPE_BLOCK_STATUS,
		  handle, c->req_off, (uint64_t)(p - d), NULL, 0);
	if (outq_bytes(&c->out, d, (size_t)(p - d)))
		oom(c);
}

/*
 * A request's payload: a write's data, or with extended headers any
 * command flagged NBD_CMD_FLAG_PAYLOAD_LEN. It is skipped (we write
 * nothing); one longer than we would ever accept ends the connection,
 * as the spec allows, rather than making us read it. Returns false
 * then.
 */
static bool skip_payload(struct conn *c, uint16_t type, uint64_t len)
{
	if (len > c->cfg->max_request) {
		conn_fail(c, "request type %u with a payload of %llu bytes: more than the %u we would skip",
			  type, U(len), c->cfg->max_request);
		return false;
	}
	c->skip = len;
	return true;
}

static void request(struct conn *c, uint16_t flags, uint16_t type,
		    uint64_t handle, uint64_t off, uint64_t len)
{
	log_debug("request type %u flags 0x%x offset %llu length %llu", type, flags,
		  U(off), U(len));
	c->req_off = off;
	if (c->extended && (flags & NBD_CMD_FLAG_PAYLOAD_LEN)) {
		if (!skip_payload(c, type, len))
			return;
		if (type == NBD_CMD_WRITE)
			status_reply(c, handle, NBD_EPERM, "the export is read-only");
		else
			request_error(c, type, handle, NBD_EINVAL,
				      "this command takes no payload");
		return;
	}
	switch (type) {
	case NBD_CMD_READ:
		read_request(c, flags, handle, off, len);
		return;
	case NBD_CMD_WRITE:
		if (c->extended) {	/* no payload flag: no data follows */
			status_reply(c, handle, NBD_EINVAL,
				     "a write needs NBD_CMD_FLAG_PAYLOAD_LEN with extended headers");
			return;
		}
		if (skip_payload(c, type, len))
			status_reply(c, handle, NBD_EPERM, "the export is read-only");
		return;
	case NBD_CMD_DISC:
		c->state = CS_CLOSING;
		snprintf(c->why, sizeof(c->why), "client disconnected (NBD_CMD_DISC)");
		return;
	case NBD_CMD_FLUSH:
		if (flags || off || len)
			status_reply(c, handle, NBD_EINVAL, "a flush takes no flags, offset or length");
		else
			status_reply(c, handle, 0, "");
		return;
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES:
		status_reply(c, handle, NBD_EPERM, "the export is read-only");
		return;
	case NBD_CMD_CACHE:
		if (flags || check_range(c, off, len))
			status_reply(c, handle, NBD_EINVAL, "bad flags or range for a cache request");
		else
			status_reply(c, handle, 0, "");
		return;
	case NBD_CMD_BLOCK_STATUS:
		if (!c->meta_alloc)
			status_reply(c, handle, NBD_EINVAL, "no metadata context was negotiated");
		else if ((flags & ~NBD_CMD_FLAG_REQ_ONE) || check_range(c, off, len))
			status_reply(c, handle, NBD_EINVAL, "bad flags or range for block status");
		else
			block_status(c, handle, flags, off, len);
		return;
	default:
		status_reply(c, handle, NBD_EINVAL, "unknown command");
		return;
	}
}

/*
 * One request header: 28 bytes, or 32 (a 64-bit length) once extended
 * headers are negotiated. The spec makes the other form a protocol
 * error in each mode: the connection is closed, saying which it was.
 */
size_t protocol_consume(struct conn *c, const uint8_t *p, size_t len)
{
	const size_t hlen = c->extended ? NBD_EXT_REQUEST_LEN : NBD_REQUEST_LEN;
	const uint32_t want = c->extended ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC;
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
		    len - used < 4)
			break;
		/* the magic says at once whether the client sends the other
		 * form, which may be shorter than the header we wait for */
		magic = nbd_get32(h);
		if (magic != want) {
			conn_fail(c, "bad request magic 0x%08x%s", magic,
				  magic == NBD_REQUEST_MAGIC ?
				  ": a compact request after extended headers were negotiated" :
				  magic == NBD_EXTENDED_REQUEST_MAGIC ?
				  ": an extended request without NBD_OPT_EXTENDED_HEADERS" : "");
			return len;
		}
		if (len - used < hlen)
			break;
		used += hlen;
		c->requests++;
		atomic_fetch_add(&stats.requests, 1);
		request(c, nbd_get16(h + 4), nbd_get16(h + 6), nbd_get64(h + 8),
			nbd_get64(h + 16), c->extended ? nbd_get64(h + 24) : nbd_get32(h + 24));
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
