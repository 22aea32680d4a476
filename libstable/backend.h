/*
 * The seam between the verification pipeline and the memory reads land
 * in. A backend decides where a read's bytes go and what protects them:
 * private buffers, sealed memfds, or kernel-owned read-only buffers. The
 * pipeline (pipeline.c) only ever asks a backend to prepare a read into a
 * slot, to tell it where the bytes landed, and to take the buffer back;
 * a new backend is one new file plus a line in reader.c's table.
 */
#ifndef STABLE_BACKEND_H
#define STABLE_BACKEND_H

#include <liburing.h>
#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "stable/stable.h"

struct stable_reader;

/* user_data of completions that are not a slot's read */
#define STABLE_TAG_IGNORED	UINT64_MAX
#define STABLE_TAG_BACKEND	(1ull << 62)

/* An extent slot: one buffer's worth of data, from read to release. */
struct stable_slot {
	struct stable_extent ext;	/* what the caller sees; first member */
	enum { SLOT_FREE, SLOT_BUSY, SLOT_HELD } state;
	unsigned int index;
	const uint8_t *mem;		/* where the last read landed */
	uint8_t *aux;			/* private: rebuilt or inflated bytes */
	size_t aux_size;
	struct stable_sealed aux_sealed; /* a sealed copy of aux, when handed out */
	void *priv;			/* the backend's per-slot state */
	/* the request and its first read, planned by stable_pipeline_plan() */
	uint64_t user_data;
	uint64_t req_off;
	size_t req_len;
	uint64_t b0, nblocks;		/* stored blocks of the first read */
};

struct stable_backend_ops {
	const char *name;
	enum stable_guarantee guarantee;
	/* Sets up the pool; -EOPNOTSUPP (with a message) if this kernel can't. */
	int (*init)(struct stable_reader *rd, char *err, size_t errlen);
	void (*fini)(struct stable_reader *rd);
	/*
	 * Queues on rd->ring a read of len bytes at off of fd into s's
	 * buffer, with user_data tag. A buffer s still holds from an earlier
	 * read is given up first. It may queue requests of its own before
	 * it (tagged STABLE_TAG_BACKEND | x), such as buffer returns. Returns
	 * 0, or -errno with nothing of it queued (or only harmless NOPs
	 * tagged STABLE_TAG_IGNORED).
	 */
	int (*queue_read)(struct stable_reader *rd, struct stable_slot *s,
			  int fd, uint64_t off, size_t len, uint64_t tag);
	/* A completion of a request the backend queued for itself; may be NULL. */
	void (*backend_cqe)(struct stable_reader *rd, uint64_t user_data, int res);
	/* The read completed (a cqe's res and flags): set s->mem. Returns
	 * -errno, 0 (res stands), or the bytes read when the backend did
	 * the read itself and the cqe was a stand-in. */
	int (*complete)(struct stable_reader *rd, struct stable_slot *s,
			int res, unsigned int cflags);
	/* s's buffer is no longer needed (released, or about to be re-read);
	 * a no-op when s holds none, so callers may call it twice. */
	void (*put)(struct stable_reader *rd, struct stable_slot *s);
};

extern const struct stable_backend_ops stable_backend_private;
extern const struct stable_backend_ops stable_backend_sealed;
extern const struct stable_backend_ops stable_backend_ro_view;
extern const struct stable_backend_ops stable_backend_ro_fixed;
extern const struct stable_backend_ops stable_backend_kmbuf_ro;

/* Gets an SQE and fills it with a plain read into buf, tagged. -EBUSY if the SQ is full. */
int stable_queue_plain_read(struct stable_reader *rd, void *buf, int fd,
			    uint64_t off, size_t len, uint64_t tag);

#endif
