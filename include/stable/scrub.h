/*
 * Scrubbing: checking every stored block of an image (and, with repair,
 * rewriting those that parity can rebuild). The library side of
 * stable-verify.
 */
#ifndef STABLE_SCRUB_H
#define STABLE_SCRUB_H

#include <stdint.h>
#include "stable/stable.h"

#ifdef __cplusplus
extern "C" {
#endif

enum stable_block_kind {
	STABLE_BLOCK_DATA = 0,
	STABLE_BLOCK_PARITY = 1,
};

struct stable_bad_block {
	enum stable_block_kind kind;
	uint64_t block;			/* stored block number (parity: group) */
	uint64_t file_offset;		/* where it lives in its file */
	uint64_t offset;		/* logical byte range (data blocks) */
	uint64_t length;
	uint32_t expected_crc;
	uint32_t found_crc;
	int repaired;			/* rewritten and verified again */
	const char *why;		/* "crc32c mismatch", "short read", ... */
};

#define STABLE_SCRUB_REPAIR (1u << 0)

struct stable_scrub_report {
	uint64_t blocks_checked;
	uint64_t bytes_checked;
	uint64_t bad_blocks;
	uint64_t repaired;
	uint64_t bad_extents;		/* compressed extents that do not inflate */
};

/*
 * Checks every data and parity block and inflates every compressed extent.
 * cb is called for each bad block. Returns 0 when the image is clean (or
 * every bad block was repaired), 1 when corruption remains, or a negative
 * errno for an I/O or usage error (message in err).
 * With STABLE_SCRUB_REPAIR the image must be opened STABLE_OPEN_WRITABLE.
 */
int stable_scrub(struct stable_image *img, unsigned int flags,
		 void (*cb)(void *arg, const struct stable_bad_block *bad),
		 void *arg, struct stable_scrub_report *report,
		 char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
