/*
 * Making checksummed images: the library side of stable-mkimage.
 */
#ifndef STABLE_MKIMAGE_H
#define STABLE_MKIMAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STABLE_DEFAULT_BLOCK_SIZE 4096
#define STABLE_DEFAULT_EXTENT_SIZE 65536
#define STABLE_EXTENT_BLOCKS 8	/* default extent with blocks over 8 KiB */

struct stable_mkimage_options {
	uint32_t block_size;		/* 0: 4096 */
	int sidecar;			/* write a manifest; data stays in SOURCE */
	int compress;			/* zlib extents (inline only) */
	uint32_t extent_size;		/* 0: 64 KiB, or 8 blocks if larger */
	uint32_t parity_group;		/* 0: no parity */
	/* Called now and then with bytes done of total; may be NULL. */
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *progress_arg;
};

/*
 * Makes IMAGE (or, with sidecar, the manifest) from SOURCE, a file or a
 * block device, and returns its root digest. The output is written to a
 * temporary file and renamed into place, so a failed run leaves nothing.
 */
int stable_mkimage(const char *source, const char *image,
		   const struct stable_mkimage_options *opts,
		   uint32_t *root_digest, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
