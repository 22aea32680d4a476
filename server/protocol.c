/*
 * The transmission phase: parsing requests from a byte buffer, answering
 * them with simple or structured replies, and reads through libstable.
 * A read gathers verified extents and queues them by reference; a block
 * that cannot be verified, re-read or rebuilt becomes an error chunk
 * (structured replies) or fails the whole request (simple replies), so
 * no unverified byte is ever queued. When the reader runs out of buffers
 * the read is parked and resumed once queued extents have been sent.
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

static void release_gathered(struct conn *c)
{
	struct pending_read *r = &c->pend;

	for (unsigned int i = 0; i < r->ngather; i++)
		stable_release(reader(c), r->gather[i]);
	r->ngather = 0;
}

/* Queues the gathered extents, as one data chunk when structured. */
static void emit_gathered(struct conn *c, uint16_t chunk_flags)
{
	struct pending_read *r = &c->pend;
	uint64_t off, bytes = 0;
	uint8_t o[8];

	if (!r->ngather)
		return;
	off = r->gather[0]->offset;
	for (unsigned int i = 0; i < r->ngather; i++)
		bytes += r->gather[i]->length;
	if (c->structured) {
		nbd_put64(o, off);
		chunk_hdr(c, chunk_flags, NBD_REPLY_TYPE_OFFSET_DATA, r->handle,
			  (uint32_t)(bytes + 8), o, 8);
	} else if (!r->header_sent) {
		simple_reply(c, r->handle, 0);
		r->header_sent = true;
	}
	for (unsigned int i = 0; i < r->ngather; i++) {
		const struct stable_extent *e = r->gather[i];

		if (outq_extent(&c->out, reader(c), e, e->data, e->length)) {
			/* the queue takes no more: give back the rest */
			for (; i < r->ngather; i++)
				stable_release(reader(c), r->gather[i]);
			oom(c);
			break;
		}
	}
	atomic_fetch_add(&stats.bytes, bytes);
	r->ngather = 0;
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
 * A block in [pos, ...) failed: returns the end of the bad range and
 * logs the event with what libstable says about it.
 */
static uint64_t failed_range(struct conn *c, int ret, uint64_t pos, uint64_t *bad)
{
	struct stable_error e;
	uint64_t bs = c->exp->block_size, end;

	if (ret == -EIO && !stable_last_error(reader(c), &e) && e.length &&
	    e.offset + e.length > pos) {
		*bad = e.offset > pos ? e.offset : pos;
		end = e.offset + e.length;
		log_err("export %s: block %llu (bytes %llu-%llu): cannot be verified, re-read or rebuilt; client %s gets EIO for it: %s",
			c->exp->name, U(e.block), U(e.offset), U(e.offset + e.length - 1),
			c->peer, stable_errmsg(reader(c)));
	} else {
		*bad = pos;
		end = (pos / bs + 1) * bs;
		log_err("export %s: read at %llu failed (%s); client %s gets EIO: %s",
			c->exp->name, U(pos), strerror(-ret), c->peer,
			stable_errmsg(reader(c)));
	}
	atomic_fetch_add(&stats.read_errors, 1);
	return end;
}

/* Works on the pending read; returns false if it must wait for buffers. */
static bool continue_read(struct conn *c)
{
	struct pending_read *r = &c->pend;
	struct stable_reader *rd = reader(c);
	const bool df = r->flags & NBD_CMD_FLAG_DF;
	const unsigned int cap = sizeof(r->gather) / sizeof(r->gather[0]);

	while (r->pos < r->end && c->state != CS_DEAD) {
		const struct stable_extent *e;
		uint64_t bad, end;
		int ret;

		if (r->ngather == cap ||
		    c->out.extents + r->ngather >= c->cfg->max_extents_per_conn) {
			if (df && r->ngather)
				return false;
			emit_gathered(c, 0);
			if (c->out.extents >= c->cfg->max_extents_per_conn)
				return false;
		}
		ret = stable_read(rd, r->pos, (size_t)(r->end - r->pos), &e);
		stats_absorb(rd, &c->reader_last[c->exp->index]);
		if (ret == 0) {
			if (e->flags & (STABLE_EXTENT_REBUILT | STABLE_EXTENT_RETRIED))
				log_extent_event(c, e);
			r->gather[r->ngather++] = e;
			r->pos += e->length;
			continue;
		}
		if (ret == -ENOBUFS) {
			if (!df)
				emit_gathered(c, 0);
			return false;
		}
		end = failed_range(c, ret, r->pos, &bad);
		if (!c->structured) {
			if (r->header_sent) {
				/* error 0 is on the wire already: hard disconnect */
				emit_gathered(c, 0);
				conn_fail(c, "read at %llu failed after the reply header was sent",
					  U(r->pos));
				r->active = false;
				return true;
			}
			release_gathered(c);
			simple_reply(c, r->handle, NBD_EIO);
			r->active = false;
			return true;
		}
		if (df) {
			release_gathered(c);
			error_chunk(c, r->handle, NBD_REPLY_FLAG_DONE, NBD_EIO, &bad,
				    "data failed verification");
			r->active = false;
			return true;
		}
		emit_gathered(c, 0);
		error_chunk(c, r->handle, 0, NBD_EIO, &bad, "data failed verification");
		r->errors++;
		r->pos = end < r->end ? end : r->end;
	}
	if (c->structured) {
		if (r->ngather)
			emit_gathered(c, NBD_REPLY_FLAG_DONE);
		else
			chunk_hdr(c, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, r->handle,
				  0, NULL, 0);
	} else {
		emit_gathered(c, 0);
	}
	r->active = false;
	return true;
}

bool protocol_resume(struct conn *c)
{
	if (!c->pend.active)
		return true;
	if (c->state == CS_DEAD) {
		release_gathered(c);
		c->pend.active = false;
		return true;
	}
	return continue_read(c);
}

static void start_read(struct conn *c, uint64_t handle, uint16_t flags,
		       uint64_t off, uint32_t len)
{
	c->pend = (struct pending_read){
		.active = true, .flags = flags, .handle = handle,
		.start = off, .pos = off, .end = off + len,
	};
	atomic_fetch_add(&stats.read_requests, 1);
	continue_read(c);
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
		if (c->pend.active || c->out.bytes > OUT_BACKLOG ||
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
	if (c->pend.active && c->exp)
		release_gathered(c);
	c->pend.active = false;
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

		if (c->pend.active) {
			if (!protocol_resume(c))
				return progress;
			progress = true;
		}
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
