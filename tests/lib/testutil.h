/*
 * Helpers for the C tests: scratch folders, deterministic data, and
 * making images through the library.
 */
#ifndef STABLE_TESTUTIL_H
#define STABLE_TESTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stable/mkimage.h"
#include "stable/stable.h"
#include "tap.h"

/* A fresh folder under $STABLE_TMP (or /tmp), removed by tu_cleanup(). */
static char tu_dir[4096];

static inline const char *tu_tmpdir(void)
{
	const char *base = getenv("STABLE_TMP");

	if (!base || !*base)
		base = "/tmp";
	mkdir(base, 0755);
	snprintf(tu_dir, sizeof(tu_dir), "%s/unit.XXXXXX", base);
	if (!mkdtemp(tu_dir)) {
		perror(tu_dir);
		exit(2);
	}
	return tu_dir;
}

static inline void tu_cleanup(void)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tu_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tu_dir);
}

static inline char *tu_path(const char *name)
{
	static char buf[8][4200];
	static int i;
	char *p = buf[i++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s", tu_dir, name);
	return p;
}

/* A deterministic xorshift generator: a test's runs are repeatable. */
static inline uint64_t tu_rnd(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* Runs fn once per backend (kmbuf-ro skips where the kernel lacks it). */
#define TU_EACH_BACKEND(fn) do {				\
	fn(STABLE_BACKEND_PRIVATE, "private");			\
	fn(STABLE_BACKEND_SEALED, "sealed");			\
	fn(STABLE_BACKEND_RO_VIEW, "ro-view");			\
	fn(STABLE_BACKEND_RO_FIXED, "ro-fixed");		\
	fn(STABLE_BACKEND_KMBUF_RO, "kmbuf-ro");		\
} while (0)

/* Deterministic, compressible-in-parts data: a counter mixed with text. */
static inline void tu_fill(uint8_t *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		if ((i / 8192) % 2) {
			buf[i] = (uint8_t)("stable pages for reads "[i % 23]);
		} else {
			x ^= x << 13; x ^= x >> 17; x ^= x << 5;
			buf[i] = (uint8_t)x;
		}
	}
}

static inline int tu_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = len ? write(fd, buf, len) : 0;
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

static inline long long tu_file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long long)st.st_size;
}

/* Flips bit `bit` of the byte at off. */
static inline int tu_flip(const char *path, uint64_t off, int bit)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	int ret = -EIO;

	if (fd < 0)
		return -errno;
	if (pread(fd, &b, 1, (off_t)off) == 1) {
		b ^= (uint8_t)(1u << bit);
		if (pwrite(fd, &b, 1, (off_t)off) == 1)
			ret = 0;
	}
	close(fd);
	return ret;
}

/* Is this a kernel built without madvise(2) (the VM's minimal config)? */
static inline int tu_no_madvise(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int nosys;

	if (p == MAP_FAILED)
		return 0;
	nosys = madvise(p, 4096, MADV_DONTFORK) && errno == ENOSYS;
	munmap(p, 4096);
	return nosys;
}

/*
 * May a test skip this backend because the kernel lacks it? Not kmbuf-ro
 * where STABLE_REQUIRE_KMBUF is set (the VM suite): there a missing
 * backend is a failure, not a skip. ro-view needs MADV_DONTFORK, so it
 * may skip only where the kernel has no madvise(2) at all; ro-fixed pins
 * its buffers, so only where RLIMIT_MEMLOCK applies (not for root).
 */
static inline int tu_may_skip(enum stable_backend b, int ret)
{
	const char *req = getenv("STABLE_REQUIRE_KMBUF");

	if (ret == -EOPNOTSUPP && b == STABLE_BACKEND_RO_VIEW)
		return tu_no_madvise();
	if (ret == -EOPNOTSUPP && b == STABLE_BACKEND_RO_FIXED)
		return geteuid() != 0;
	return ret == -EOPNOTSUPP && b == STABLE_BACKEND_KMBUF_RO && !(req && *req == '1');
}

/*
 * Opens the image at path and a reader on it. Returns 1 when both are
 * ready; else 0 with the image closed, after a skip (the kernel lacks the
 * backend, and tu_may_skip allows it) or a failed check naming why.
 */
static inline int tu_open_reader(const char *path, const struct stable_reader_options *ro,
				 const char *bname, struct stable_image **img,
				 struct stable_reader **rd)
{
	char err[512] = "";
	int ret = stable_image_open(img, path, NULL, err, sizeof(err));

	if (!ok(ret == 0, "%s: open %s: %s", bname, path, ret ? err : "ok"))
		return 0;
	ret = stable_reader_new(rd, *img, ro, err, sizeof(err));
	if (ret == 0)
		return 1;
	if (tu_may_skip(ro->backend, ret))
		skip("%s: %s", bname, err);
	else
		ok(0, "%s: reader: %s", bname, err);
	stable_image_close(*img);
	return 0;
}

/* The guarantee a forced backend reports, and that of bytes it rebuilt. */
static inline enum stable_guarantee tu_guarantee(enum stable_backend b)
{
	return b == STABLE_BACKEND_KMBUF_RO ? STABLE_GUARANTEE_KERNEL_RO :
	       b == STABLE_BACKEND_SEALED ? STABLE_GUARANTEE_SEALED :
	       b == STABLE_BACKEND_RO_FIXED ? STABLE_GUARANTEE_RO_FIXED :
	       b == STABLE_BACKEND_RO_VIEW ? STABLE_GUARANTEE_RO_VIEW : STABLE_GUARANTEE_NONE;
}

static inline enum stable_guarantee tu_rebuilt_guarantee(enum stable_backend b)
{
	return b == STABLE_BACKEND_PRIVATE ? STABLE_GUARANTEE_NONE : STABLE_GUARANTEE_SEALED;
}

/* Reads [off, off+len) through rd into out; returns 0 or the error. */
static inline int tu_read_all(struct stable_reader *rd, uint64_t off, size_t len,
			      uint8_t *out)
{
	const struct stable_extent *ext;
	size_t done = 0;
	int ret;

	while (done < len) {
		ret = stable_read(rd, off + done, len - done, &ext);
		if (ret)
			return ret;
		if (ext->offset != off + done || ext->length == 0 ||
		    ext->length > len - done) {
			stable_release(rd, ext);
			return -ERANGE;
		}
		memcpy(out + done, ext->data, ext->length);
		done += ext->length;
		stable_release(rd, ext);
	}
	return 0;
}
#endif
