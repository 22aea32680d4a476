/*
 * stabled's internal interfaces: the export table, the counters, the log,
 * and a connection as the protocol code sees it. The protocol files
 * (handshake.c, protocol.c, outq.c) never touch a socket: they consume
 * bytes from conn->in and queue replies on conn->out, so the worker's
 * event loop and the fuzzer drive the same code.
 */
#ifndef STABLED_H
#define STABLED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "stable/stable.h"

#define STABLED_NAME "stabled"
#define STABLED_MAX_EXPORTS 64

/* --- log.c --------------------------------------------------------------- */
enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
void log_open(bool use_syslog, bool verbose);
void log_close(void);
void log_silence(void);	/* the fuzzer */
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* --- stats.c ------------------------------------------------------------- */
struct stats {
	atomic_ullong connections;	/* accepted, ever */
	atomic_ullong connections_now;
	atomic_ullong connections_refused;
	atomic_ullong requests;
	atomic_ullong read_requests;
	atomic_ullong bytes;		/* verified bytes sent */
	atomic_ullong verify_failures;
	atomic_ullong retries;
	atomic_ullong rebuilds;
	atomic_ullong table_reloads;
	atomic_ullong delayed_rereads;	/* failed pieces read again later */
	atomic_ullong read_errors;	/* chunks answered with EIO */
	atomic_ullong errors;		/* requests answered with an error */
	atomic_ullong protocol_errors;	/* connections closed for bad input */
};
extern struct stats stats;
/* One line, "connections=1 requests=2 ...", into buf. */
void stats_format(char *buf, size_t len);
void stats_log(void);
int stats_write_file(const char *path);
/* Adds what rd counted since *last (same thread as rd) to the totals. */
void stats_absorb(struct stable_reader *rd, struct stable_stats *last);

/* --- exports.c ----------------------------------------------------------- */
struct export {
	char *name;
	char *path;
	struct stable_image *img;
	uint64_t size;
	uint32_t block_size;
	bool parity;
	unsigned int index;
};

struct export_table {
	struct export exp[STABLED_MAX_EXPORTS];
	unsigned int n;
};

/* Adds "NAME=IMAGE" or "IMAGE" (named after its file name minus extension). */
int exports_add(struct export_table *t, const char *arg, char *err, size_t errlen);
void exports_close(struct export_table *t);
/* The export called name; "" is the first (the default export). */
const struct export *exports_find(const struct export_table *t,
				  const char *name, size_t len);

/* --- outq.c: the replies of one connection, in wire order ----------------- */
enum seg_kind { SEG_INLINE, SEG_HEAP, SEG_EXTENT, SEG_ZERO };
#define SEG_INLINE_MAX 40

struct seg {
	enum seg_kind kind;
	uint32_t len;
	const void *p;			/* HEAP, EXTENT */
	const struct stable_extent *ext; /* EXTENT: released once sent */
	struct stable_reader *rd;
	uint8_t data[SEG_INLINE_MAX];	/* INLINE */
};

/* Segments live in fixed blocks so that their addresses (and the iovecs
 * of a send in flight) stay valid while more replies are queued. */
#define SEGS_PER_BLOCK 64
struct seg_block {
	struct seg_block *next;
	unsigned int head, tail;	/* [head, tail) are queued */
	struct seg segs[SEGS_PER_BLOCK];
};

struct outq {
	struct seg_block *first, *last, *spare;
	unsigned int count;		/* queued segments */
	size_t sent;			/* bytes of the first segment already sent */
	uint64_t bytes;			/* queued, not yet sent */
	unsigned int extents;		/* extents held by queued segments */
};

int outq_bytes(struct outq *q, const void *p, size_t len);
/* Queues len bytes of ext from p; the queue releases ext after sending. */
int outq_extent(struct outq *q, struct stable_reader *rd,
		const struct stable_extent *ext, const void *p, size_t len);
int outq_zeroes(struct outq *q, size_t len);
/* Fills up to max iovecs (about max_bytes) from the head; returns the count. */
unsigned int outq_iov(const struct outq *q, struct iovec *iov, unsigned int max,
		      size_t max_bytes);
/* n bytes went out: frees finished segments and releases their extents.
 * Returns how many extents were released. */
unsigned int outq_advance(struct outq *q, size_t n);
/* Drops everything (connection closing), releasing extents. */
void outq_clear(struct outq *q);

/* --- connections: handshake.c and protocol.c ------------------------------ */
struct server_config {
	unsigned int max_request;	/* bytes, at most NBD_MAX_REQUEST */
	unsigned int max_extents_per_conn;
	unsigned int piece_size;	/* a reader buffer's bytes */
	unsigned int delayed_rereads;	/* per failed piece, at most LATER_MAX */
};

enum conn_state {
	CS_CLIENT_FLAGS,	/* greeting queued, waiting for the client's flags */
	CS_OPTIONS,
	CS_TRANSMISSION,
	CS_CLOSING,		/* send what is queued, then close */
	CS_DEAD,		/* close now */
};

/*
 * A read request in progress. It is cut into pieces that each fit one
 * reader buffer and submitted to libstable asynchronously; a piece that
 * completes short (an extent ends early) or past a bad block is put back
 * on the todo list for the rest.
 */
struct piece {
	struct rreq *r;
	struct piece *next;
	uint64_t off;
	uint32_t len;
	unsigned int delays;		/* delayed re-reads so far (later.c) */
	uint64_t due_ns;		/* on r->later: when to read it again */
};

struct rreq {
	struct conn *c;
	struct rreq *next;		/* in c->reads, oldest first */
	uint64_t handle;
	uint16_t flags;
	uint64_t start, end, cursor;	/* [start, cursor) is cut into pieces */
	struct piece *todo;		/* cut, not (yet again) submitted */
	struct piece *later;		/* failed, to be read again (later.c) */
	unsigned int inflight;		/* pieces submitted, not completed */
	bool failed;			/* simple or DF: a block failed */
	bool header_sent;		/* simple: error 0 is on the wire */
	uint64_t bad_offset;		/* DF: where the first failure is */
	/* simple and DF replies: verified extents in hand, by offset */
	const struct stable_extent **ext;
	unsigned int next_ext, cap;
	uint64_t emitted;		/* simple: bytes queued, in order */
};

#define CONN_IN_SIZE (128u << 10)

struct conn {
	enum conn_state state;
	const struct export_table *exports;
	const struct server_config *cfg;
	struct stable_reader **readers;	/* one per export, owned by the worker */
	struct stable_stats *reader_last; /* per export, for stats_absorb */
	const char *peer;

	bool no_zeroes, structured, meta_alloc;
	bool extended;			/* NBD_OPT_EXTENDED_HEADERS: 32-byte headers */
	const struct export *meta_exp;	/* the export SET_META_CONTEXT named */
	uint64_t req_off;		/* the offset of the request being answered */
	bool shutting_down;		/* the server is stopping */
	bool failed;			/* closed for a reason worth logging */
	const struct export *exp;	/* chosen export in transmission */
	uint64_t skip;			/* input bytes to discard (write payload) */
	uint8_t *in;
	size_t in_start, in_len;	/* unconsumed input is in[in_start, in_len) */
	struct outq out;
	struct rreq *reads;		/* read requests being answered */
	unsigned int nreads;
	unsigned int reads_inflight;	/* pieces in libstable: keep c alive */
	unsigned int gathered;		/* extents held in rreq->ext arrays */
	bool blocked;			/* a read waits for buffers */
	uint64_t later_due_ns;		/* the earliest piece on a later list, or 0 */
	unsigned long long requests;
	char why[160];			/* why the connection was closed */
};

/* The context id stabled gives base:allocation. */
#define META_ALLOC_ID 1

int conn_init(struct conn *c, const struct export_table *t,
	      const struct server_config *cfg, struct stable_reader **readers,
	      struct stable_stats *reader_last, const char *peer);
void conn_fini(struct conn *c);
/*
 * Submits what waiting reads it can, then consumes what it can of c->in.
 * Stops when the input is used up, a read waits for buffers, or the state
 * becomes CLOSING/DEAD. Returns true if it made progress. Replies to
 * reads are queued when reads_reap() hands their completions back.
 */
bool conn_process(struct conn *c);
/* Moves unconsumed input to the front; never while a recv fills c->in. */
void conn_compact(struct conn *c);
/* Marks the connection for closing after its queue drains (SIGTERM). */
void conn_shutdown(struct conn *c);

/* internal to handshake.c / protocol.c */
size_t handshake_consume(struct conn *c, const uint8_t *p, size_t len);
size_t protocol_consume(struct conn *c, const uint8_t *p, size_t len);
bool protocol_submit(struct conn *c);
/*
 * later.c: a piece whose block failed verification is read again after
 * a delay before its client gets EIO, since a writer updating the image
 * in place leaves a block unverifiable until it has written the table.
 */
#define LATER_MAX 4
/* Returns true if p is put on r->later (false: its tries are spent). */
bool later_defer(struct conn *c, struct rreq *r, struct piece *p);
/* Moves the pieces that are due back to their reads' todo lists. */
void later_wake(struct conn *c);
/* Nanoseconds (CLOCK_MONOTONIC), the clock of due_ns. */
uint64_t later_now_ns(void);
/* Reaps rd's finished reads and answers them; returns how many. */
int reads_reap(struct stable_reader *rd);
void conn_fail(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
uint16_t export_tflags(const struct conn *c);

#endif
