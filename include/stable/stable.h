/*
 * libstable: verified reads of checksummed images.
 *
 * An image (struct stable_image) is opened once, validated completely and
 * then never changes: it may be shared by any number of threads. Reading
 * happens through a reader (struct stable_reader), which owns an io_uring,
 * a pool of buffers and its counters: one reader per thread. A read hands
 * out an extent, a const view of verified bytes that nobody can change
 * until it is released (how strongly "nobody" holds is the reader's
 * guarantee, see docs/libstable.md).
 *
 * Every function returns 0 (or a count) on success and a negative errno
 * on failure; the reader's message (stable_errmsg) then says which block,
 * which check, what was expected and what was found.
 */
#ifndef STABLE_STABLE_H
#define STABLE_STABLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STABLE_VERSION "0.1.0"

/* What protects the bytes of an extent from change after verification. */
enum stable_guarantee {
	STABLE_GUARANTEE_NONE = 0,	/* private memory: code that does not write to it */
	STABLE_GUARANTEE_RO_VIEW = 1,	/* a view that cannot be made writable; the library's own alias can write */
	STABLE_GUARANTEE_RO_FIXED = 2,	/* no writable mapping anywhere; only the reader's io_uring can write */
	STABLE_GUARANTEE_SEALED = 3,	/* sealed memfd: no writer anywhere, kernel-enforced */
	STABLE_GUARANTEE_KERNEL_RO = 4,	/* kernel-owned pages mapped read-only (kmbuf) */
};

enum stable_backend {
	STABLE_BACKEND_AUTO = 0,	/* the strongest this kernel offers */
	STABLE_BACKEND_PRIVATE,		/* io_uring reads into private memory */
	STABLE_BACKEND_SEALED,
	STABLE_BACKEND_KMBUF_RO,
	STABLE_BACKEND_RO_VIEW,		/* one sealed memfd, read through a hidden alias */
	STABLE_BACKEND_RO_FIXED,	/* one sealed memfd, read as io_uring fixed buffers */
	STABLE_BACKEND_AUTO_FAST,	/* the strongest without a cost per read, else AUTO */
};

struct stable_image;
struct stable_reader;

/* --- checksums ---------------------------------------------------------- */

/* crc32c; chain like zlib's crc32(): stable_crc32c(0, ...) starts. */
uint32_t stable_crc32c(uint32_t crc, const void *buf, size_t len);

/* --- images ------------------------------------------------------------- */

#define STABLE_OPEN_EXPECT_DIGEST (1u << 0)	/* fail unless the root digest matches */
#define STABLE_OPEN_DIRECT	  (1u << 1)	/* read data with O_DIRECT */
#define STABLE_OPEN_WRITABLE	  (1u << 2)	/* open files for repair */
/*
 * Never re-read the checksum table. By default a block that still fails
 * after its re-reads makes the image re-read its header and table from
 * the file: a consistent writer that rewrote the block and then its
 * checksum (docs/format.md, "Updating an image in place") is then served
 * the new bytes. An image opened with STABLE_OPEN_EXPECT_DIGEST never
 * reloads: its digest pins the table.
 */
#define STABLE_OPEN_NO_RELOAD	  (1u << 3)

struct stable_open_options {
	unsigned int flags;
	uint32_t expected_digest;	/* with STABLE_OPEN_EXPECT_DIGEST */
	const char *data_path;		/* sidecar: use this data file instead */
};

enum stable_layout {
	STABLE_LAYOUT_INLINE = 0,
	STABLE_LAYOUT_SIDECAR = 1,
};

struct stable_image_info {
	uint32_t version;
	enum stable_layout layout;
	uint32_t block_size;
	uint32_t flags;			/* raw header flags */
	uint64_t data_length;		/* logical bytes */
	uint8_t uuid[16];
	uint64_t data_blocks;		/* stored data blocks */
	uint64_t parity_blocks;
	uint32_t parity_group;		/* 0: no parity */
	uint32_t extent_size;		/* 0: not compressed */
	uint64_t extents;
	uint64_t data_offset;
	uint64_t parity_offset;
	uint64_t table_offset;
	uint64_t table_length;
	uint64_t index_offset;
	uint64_t index_length;
	uint32_t root_digest;
	const char *path;		/* the image (or manifest) */
	const char *data_path;		/* the file data blocks are read from */
};

/*
 * Opens and validates an image (inline or sidecar manifest): header,
 * checksum table, compression index and file sizes. On failure returns a
 * negative errno and writes one line naming the path, the field and the
 * value into err (if errlen > 0).
 */
int stable_image_open(struct stable_image **out, const char *path,
		      const struct stable_open_options *opts,
		      char *err, size_t errlen);
void stable_image_close(struct stable_image *img);
void stable_image_get_info(const struct stable_image *img,
			   struct stable_image_info *info);

/*
 * The checksum table entry of stored block `block` (data blocks first,
 * then parity blocks), for tools that check blocks themselves. 0, or
 * -EINVAL past the last block.
 */
int stable_image_block_crc(const struct stable_image *img, uint64_t block,
			   uint32_t *crc);

/*
 * The image's map, for sparse copies: from `offset`, the length of the run
 * of one kind (at most `length`, to the end of the data) in *run, and in
 * *flags STABLE_MAP_ZERO if the run reads as zeroes with nothing stored
 * for it, else 0 (data, zeroes or not). Zero is claimed only where a
 * verified read would return zeroes: a compressed image's zero extents,
 * and a plain image's blocks that are holes in the data file and whose
 * checksum is that of zeroes. A call looks at a bounded number of blocks;
 * call again from offset + *run for the rest. 0, or -EINVAL (offset past
 * the end, length 0, a NULL pointer).
 */
#define STABLE_MAP_ZERO 1u
int stable_image_map(const struct stable_image *img, uint64_t offset,
		     uint64_t length, uint64_t *run, unsigned int *flags);

/* "0a1b2c3d": the root digest as stable-mkimage prints it. */
int stable_digest_parse(const char *text, uint32_t *digest);

/* --- readers ------------------------------------------------------------ */

struct stable_reader_options {
	enum stable_backend backend;		/* AUTO unless forced */
	enum stable_guarantee min_guarantee;	/* refuse a weaker backend */
	unsigned int buffers;			/* pool size, default 16 */
	size_t buffer_size;			/* bytes per buffer, default 1 MiB */
	unsigned int max_retries;		/* re-reads on mismatch, default 2 */
	unsigned int flags;
};

#define STABLE_READER_NO_PARITY	(1u << 0)	/* never rebuild (tests) */
/*
 * Only the first thread that reads through the reader may ever use it:
 * its io_uring then refuses submissions, and the cloning of its fixed
 * buffers, from any other thread or process, even one holding its fd
 * (IORING_SETUP_SINGLE_ISSUER, Linux 6.0; without it the flag does
 * nothing). For readers that stay on one thread, as stabled's do.
 */
#define STABLE_READER_ONE_THREAD (1u << 1)
#define STABLE_READER_DEFAULT_RETRIES 2

int stable_reader_new(struct stable_reader **out, struct stable_image *img,
		      const struct stable_reader_options *opts,
		      char *err, size_t errlen);
/* Returns -EBUSY (and frees nothing) while extents are still held. */
int stable_reader_free(struct stable_reader *rd);

enum stable_guarantee stable_reader_guarantee(const struct stable_reader *rd);
const char *stable_reader_backend_name(const struct stable_reader *rd);
const char *stable_guarantee_name(enum stable_guarantee g);
/*
 * Command-line names: "none", "ro-view", "ro-fixed", "sealed",
 * "kernel-ro"; "auto", "auto-fast", "private", "ro-view", "ro-fixed",
 * "sealed", "kmbuf-ro". 0, or -EINVAL for a name that is none of them.
 */
int stable_guarantee_from_name(const char *name, enum stable_guarantee *g);
int stable_backend_from_name(const char *name, enum stable_backend *b);
/* The message of the reader's last failure, "" if none. */
const char *stable_errmsg(const struct stable_reader *rd);

#define STABLE_EXTENT_RETRIED	(1u << 0)	/* verified after a re-read */
#define STABLE_EXTENT_REBUILT	(1u << 1)	/* rebuilt from parity */
#define STABLE_EXTENT_INFLATED	(1u << 2)	/* decompressed after verifying */

struct stable_extent {
	const void *data;
	size_t length;
	uint64_t offset;		/* logical offset of data[0] */
	enum stable_guarantee guarantee; /* what protects these bytes */
	unsigned int flags;
};

/*
 * Reads [offset, offset + length) and hands out a verified extent that
 * starts at offset. It may be shorter than asked (at most one buffer, or
 * up to a block that needs repair): call again for the rest. Returns 0,
 * or -EINVAL (range), -EIO (a block could not be verified, re-read or
 * rebuilt: see stable_last_error), -ENOBUFS (every extent is held).
 */
int stable_read(struct stable_reader *rd, uint64_t offset, size_t length,
		const struct stable_extent **ext);
/* Returns -EINVAL for an extent this reader does not hold (double release). */
int stable_release(struct stable_reader *rd, const struct stable_extent *ext);

/* Which block failed, and how, after -EIO. */
struct stable_error {
	uint64_t block;			/* stored block number */
	uint64_t offset;		/* logical byte range it covers */
	uint64_t length;
	uint32_t expected_crc;
	uint32_t found_crc;		/* 0 with STABLE_ERROR_SHORT_READ */
	int error;
	uint32_t flags;			/* STABLE_ERROR_* */
};
/* The block was not read whole: the file ends before it (truncated while
 * open), so there was nothing to checksum. */
#define STABLE_ERROR_SHORT_READ (1u << 0)

/* --- asynchronous reads ----------------------------------------------------
 *
 * stable_submit() queues a read and returns at once; stable_reap() hands
 * back finished ones without blocking. stable_reader_fd() is an fd that
 * polls readable while completions wait, for the caller's own event loop
 * (epoll, or a poll request on its own io_uring). Each completion's
 * extent follows the rules of stable_read(): it starts at the offset
 * asked and may be shorter than asked; it is held until released.
 * Verification, re-reads and rebuilds run inside stable_reap().
 */
struct stable_completion {
	uint64_t user_data;
	int result;				/* 0, or -errno as stable_read() */
	const struct stable_extent *ext;	/* when result is 0 */
	struct stable_error error;		/* when result is -EIO */
	/* When result < 0: this read's message (as stable_errmsg() would
	 * have said right after it), valid until the next stable_submit()
	 * or stable_read() on the reader. NULL on success. */
	const char *message;
};

/* Returns 0, -EINVAL (range), or -ENOBUFS (every slot reading or held). */
int stable_submit(struct stable_reader *rd, uint64_t offset, size_t length,
		  uint64_t user_data);
/* Pushes queued reads to the kernel (stable_reap does it too). */
int stable_flush(struct stable_reader *rd);
/* Up to max completions into c, without blocking; returns the count.
 * With nothing queued, in flight or waiting: 0, and no system call. */
int stable_reap(struct stable_reader *rd, struct stable_completion *c,
		unsigned int max);
/* Blocks until at least one completion is ready (or none in flight). */
int stable_wait(struct stable_reader *rd);
int stable_reader_fd(struct stable_reader *rd);
/* Reads submitted and not yet reaped. */
unsigned int stable_inflight(const struct stable_reader *rd);
/* Releases n extents; stops at the first bad one and returns its error. */
int stable_release_batch(struct stable_reader *rd,
			 const struct stable_extent *const *ext, unsigned int n);

int stable_last_error(const struct stable_reader *rd, struct stable_error *e);

struct stable_stats {
	uint64_t reads;			/* extents handed out */
	uint64_t bytes;			/* bytes handed out */
	uint64_t verify_failures;	/* block checksum mismatches seen */
	uint64_t retries;		/* re-reads after a mismatch */
	uint64_t rebuilds;		/* blocks rebuilt from parity */
	uint64_t errors;		/* reads failed with an error */
	uint64_t table_reloads;		/* mismatches resolved by a newer checksum table */
};
void stable_reader_stats(const struct stable_reader *rd,
			 struct stable_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
