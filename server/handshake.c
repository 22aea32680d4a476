/*
 * The fixed newstyle handshake: the greeting, the client's flags, and
 * option haggling up to NBD_OPT_EXPORT_NAME or NBD_OPT_GO. Input is taken
 * from a byte buffer and replies are queued, so any byte sequence can be
 * fed here without a socket (see server/fuzz/). A client that breaks a
 * MUST of the spec (bad magic, unknown client flags, oversized option)
 * is disconnected; an option we do not know or cannot parse gets an
 * error reply and haggling goes on.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nbd.h"
#include "stabled.h"

/* Option data we are willing to buffer: names and queries are short. */
#define MAX_OPTION_LEN (64u << 10)

static const char meta_alloc_name[] = "base:allocation";

uint16_t export_tflags(const struct conn *c)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY | NBD_FLAG_SEND_FLUSH |
		     NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE;

	if (c->structured)
		f |= NBD_FLAG_SEND_DF;
	return f;
}

static void reply(struct conn *c, uint32_t opt, uint32_t type,
		  const void *data, size_t len)
{
	uint8_t h[20], *p = h;

	p = nbd_put64(p, NBD_REP_MAGIC);
	p = nbd_put32(p, opt);
	p = nbd_put32(p, type);
	nbd_put32(p, (uint32_t)len);
	if (outq_bytes(&c->out, h, sizeof(h)) || outq_bytes(&c->out, data, len))
		conn_fail(c, "out of memory for an option reply");
}

static void reply_err(struct conn *c, uint32_t opt, uint32_t type,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void reply_err(struct conn *c, uint32_t opt, uint32_t type,
		      const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	reply(c, opt, type, msg, (size_t)n);
}

static void send_info(struct conn *c, uint32_t opt, uint16_t type,
		      const void *data, size_t len)
{
	uint8_t buf[2 + NBD_MAX_STRING];

	nbd_put16(buf, type);
	memcpy(buf + 2, data, len);
	reply(c, opt, NBD_REP_INFO, buf, 2 + len);
}

/*
 * Contexts chosen by SET_META_CONTEXT hold for the export it named only:
 * going to another export leaves none active (the spec's rule).
 */
static void enter_transmission(struct conn *c, const struct export *e)
{
	if (c->meta_exp != e)
		c->meta_alloc = false;
	c->exp = e;
	c->state = CS_TRANSMISSION;
}

/* NBD_OPT_INFO and NBD_OPT_GO: name, requested info types. */
static void opt_info(struct conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
	const struct export *e;
	uint32_t nlen;
	uint16_t nreq;
	bool want_name = false, want_desc = false;
	uint8_t buf[18], *p;

	if (len < 6 || (nlen = nbd_get32(d)) > len - 6 || nlen > NBD_MAX_STRING) {
		reply_err(c, opt, NBD_REP_ERR_INVALID, "option is too short for its name");
		return;
	}
	nreq = nbd_get16(d + 4 + nlen);
	if (len != 4 + nlen + 2 + 2u * nreq) {
		reply_err(c, opt, NBD_REP_ERR_INVALID,
			  "option length %u does not match %u info requests", len, nreq);
		return;
	}
	for (uint16_t i = 0; i < nreq; i++) {
		uint16_t t = nbd_get16(d + 4 + nlen + 2 + 2u * i);

		want_name |= t == NBD_INFO_NAME;
		want_desc |= t == NBD_INFO_DESCRIPTION;
		/* BLOCK_SIZE is always sent; unknown types are ignored */
	}
	e = exports_find(c->exports, (const char *)d + 4, nlen);
	if (!e) {
		reply_err(c, opt, NBD_REP_ERR_UNKNOWN, "no export named '%.*s'",
			  (int)(nlen > 200 ? 200 : nlen), (const char *)d + 4);
		return;
	}
	p = nbd_put64(buf, e->size);
	nbd_put16(p, export_tflags(c));
	send_info(c, opt, NBD_INFO_EXPORT, buf, 10);
	if (want_name)
		send_info(c, opt, NBD_INFO_NAME, e->name, strlen(e->name));
	if (want_desc) {
		char desc[NBD_MAX_STRING];
		int n = snprintf(desc, sizeof(desc), "stable image %s, read-only, verified",
				 e->path);

		if (n > 0)
			send_info(c, opt, NBD_INFO_DESCRIPTION, desc,
				  (size_t)n < sizeof(desc) ? (size_t)n : sizeof(desc) - 1);
	}
	/* min 1: any alignment is served; preferred: the image's block */
	p = nbd_put32(buf, 1);
	p = nbd_put32(p, e->block_size < 512 ? 512 : e->block_size);
	nbd_put32(p, c->cfg->max_request);
	send_info(c, opt, NBD_INFO_BLOCK_SIZE, buf, 12);
	reply(c, opt, NBD_REP_ACK, NULL, 0);
	if (opt == NBD_OPT_GO)
		enter_transmission(c, e);
}

static void opt_export_name(struct conn *c, const uint8_t *d, uint32_t len)
{
	const struct export *e = len <= NBD_MAX_STRING ?
		exports_find(c->exports, (const char *)d, len) : NULL;
	uint8_t buf[10 + 124] = { 0 }, *p;

	if (c->extended) {
		/* the spec forbids it after extended headers; it cannot be
		 * answered with an error, so the connection ends */
		conn_fail(c, "NBD_OPT_EXPORT_NAME after NBD_OPT_EXTENDED_HEADERS");
		return;
	}
	if (!e) {
		/* this option cannot fail politely: the spec says hang up */
		conn_fail(c, "NBD_OPT_EXPORT_NAME: no export named '%.*s'",
			  (int)(len > 200 ? 200 : len), (const char *)d);
		return;
	}
	p = nbd_put64(buf, e->size);
	nbd_put16(p, export_tflags(c));
	if (outq_bytes(&c->out, buf, c->no_zeroes ? 10 : sizeof(buf))) {
		conn_fail(c, "out of memory");
		return;
	}
	enter_transmission(c, e);
}

static void opt_list(struct conn *c, uint32_t len)
{
	uint8_t buf[4 + NBD_MAX_STRING];

	if (len) {
		reply_err(c, NBD_OPT_LIST, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
		return;
	}
	for (unsigned int i = 0; i < c->exports->n; i++) {
		const char *name = c->exports->exp[i].name;
		size_t n = strlen(name);

		nbd_put32(buf, (uint32_t)n);
		memcpy(buf + 4, name, n);
		reply(c, NBD_OPT_LIST, NBD_REP_SERVER, buf, 4 + n);
	}
	reply(c, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

/*
 * NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: export name,
 * then a count of queries, each a length and a string. We know one
 * context, base:allocation (zero runs the image vouches for, and data:
 * protocol.c's block_status).
 */
static void opt_meta(struct conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
	bool set = opt == NBD_OPT_SET_META_CONTEXT, match = false;
	const struct export *e;
	uint32_t nlen, nq, pos;
	uint8_t buf[4 + sizeof(meta_alloc_name)];

	if (!c->structured) {
		reply_err(c, opt, NBD_REP_ERR_INVALID,
			  "negotiate structured replies or extended headers first");
		return;
	}
	if (len < 8 || (nlen = nbd_get32(d)) > len - 8) {
		reply_err(c, opt, NBD_REP_ERR_INVALID, "option is too short for its name");
		return;
	}
	nq = nbd_get32(d + 4 + nlen);
	pos = 8 + nlen;
	/* check the whole structure before acting on any of it */
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t ql;

		if (len - pos < 4 || (ql = nbd_get32(d + pos)) > len - pos - 4) {
			reply_err(c, opt, NBD_REP_ERR_INVALID, "query %u runs past the option", i);
			return;
		}
		pos += 4 + ql;
	}
	if (pos != len) {
		reply_err(c, opt, NBD_REP_ERR_INVALID, "%u bytes after the last query",
			  len - pos);
		return;
	}
	e = exports_find(c->exports, (const char *)d + 4, nlen);
	if (!e) {
		reply_err(c, opt, NBD_REP_ERR_UNKNOWN, "no export named '%.*s'",
			  (int)(nlen > 200 ? 200 : nlen), (const char *)d + 4);
		return;
	}
	pos = 8 + nlen;
	if (nq == 0 && !set)
		match = true;	/* an empty list asks for every context */
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t ql = nbd_get32(d + pos);
		const char *q = (const char *)d + pos + 4;

		if (ql == strlen(meta_alloc_name) && !memcmp(q, meta_alloc_name, ql))
			match = true;
		else if (!set && ql == 5 && !memcmp(q, "base:", 5))
			match = true;
		pos += 4 + ql;
	}
	if (set) {	/* replaces what an earlier SET chose */
		c->meta_alloc = match;
		c->meta_exp = e;
	}
	if (match) {
		nbd_put32(buf, set ? META_ALLOC_ID : 0);
		memcpy(buf + 4, meta_alloc_name, strlen(meta_alloc_name));
		reply(c, opt, NBD_REP_META_CONTEXT, buf, 4 + strlen(meta_alloc_name));
	}
	reply(c, opt, NBD_REP_ACK, NULL, 0);
}

static void option(struct conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
	log_debug("option %u, %u bytes", opt, len);
	if (c->shutting_down && opt != NBD_OPT_ABORT) {
		if (opt == NBD_OPT_EXPORT_NAME)
			conn_fail(c, "server is shutting down");
		else
			reply_err(c, opt, NBD_REP_ERR_SHUTDOWN, "server is shutting down");
		return;
	}
	switch (opt) {
	case NBD_OPT_EXPORT_NAME:
		opt_export_name(c, d, len);
		break;
	case NBD_OPT_ABORT:
		reply(c, opt, NBD_REP_ACK, NULL, 0);
		c->state = CS_CLOSING;
		snprintf(c->why, sizeof(c->why), "client aborted the handshake");
		break;
	case NBD_OPT_LIST:
		opt_list(c, len);
		break;
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		opt_info(c, opt, d, len);
		break;
	case NBD_OPT_STRUCTURED_REPLY:
		if (len) {
			reply_err(c, opt, NBD_REP_ERR_INVALID,
				  "NBD_OPT_STRUCTURED_REPLY takes no data");
			break;
		}
		if (c->extended) {
			/* extended headers include structured replies; going
			 * back to compact ones is not on offer */
			reply_err(c, opt, NBD_REP_ERR_EXT_HEADER_REQD,
				  "extended headers are already negotiated");
			break;
		}
		c->structured = true;
		reply(c, opt, NBD_REP_ACK, NULL, 0);
		break;
	case NBD_OPT_EXTENDED_HEADERS:
		if (len) {
			reply_err(c, opt, NBD_REP_ERR_INVALID,
				  "NBD_OPT_EXTENDED_HEADERS takes no data");
			break;
		}
		if (c->extended) {
			reply_err(c, opt, NBD_REP_ERR_INVALID,
				  "extended headers are already negotiated");
			break;
		}
		c->extended = c->structured = true;
		reply(c, opt, NBD_REP_ACK, NULL, 0);
		break;
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT:
		opt_meta(c, opt, d, len);
		break;
	case NBD_OPT_STARTTLS:
		reply_err(c, opt, NBD_REP_ERR_POLICY, "stabled does not do TLS");
		break;
	default:
		reply_err(c, opt, NBD_REP_ERR_UNSUP, "option %u is not supported", opt);
		break;
	}
}

size_t handshake_consume(struct conn *c, const uint8_t *p, size_t len)
{
	size_t used = 0;

	if (c->state == CS_CLIENT_FLAGS) {
		uint32_t f;

		if (len < 4)
			return 0;
		f = nbd_get32(p);
		if (f & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
			conn_fail(c, "unknown client flags 0x%08x", f);
			return 4;
		}
		c->no_zeroes = f & NBD_FLAG_C_NO_ZEROES;
		c->state = CS_OPTIONS;
		used = 4;
	}
	while (c->state == CS_OPTIONS && len - used >= NBD_OPT_HDR_LEN) {
		const uint8_t *h = p + used;
		uint64_t magic = nbd_get64(h);
		uint32_t opt = nbd_get32(h + 8), olen = nbd_get32(h + 12);

		if (magic != NBD_OPTS_MAGIC) {
			conn_fail(c, "bad option magic 0x%016llx", (unsigned long long)magic);
			return used + NBD_OPT_HDR_LEN;
		}
		if (olen > MAX_OPTION_LEN) {
			conn_fail(c, "option %u has %u bytes of data, more than %u",
				  opt, olen, MAX_OPTION_LEN);
			return used + NBD_OPT_HDR_LEN;
		}
		if (len - used - NBD_OPT_HDR_LEN < olen)
			break;		/* wait for the rest */
		option(c, opt, h + NBD_OPT_HDR_LEN, olen);
		used += NBD_OPT_HDR_LEN + olen;
	}
	return used;
}
