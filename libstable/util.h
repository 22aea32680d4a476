/*
 * Small helpers shared inside libstable: checked arithmetic, whole-buffer
 * file I/O that retries short transfers, and error message formatting.
 */
#ifndef STABLE_UTIL_H
#define STABLE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

static inline int stable_add_overflow(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_add_overflow(a, b, r);
}

static inline int stable_mul_overflow(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_mul_overflow(a, b, r);
}

static inline uint64_t stable_div_round_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static inline uint64_t stable_min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * io_uring writes memory behind valgrind's back: tell it the bytes a read
 * completed are defined, so `make test-valgrind` sees real errors only.
 */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define stable_mark_defined(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#endif
#endif
#ifndef stable_mark_defined
#define stable_mark_defined(p, n) ((void)(p), (void)(n))
#endif

/*
 * Reads len bytes at off, retrying short reads; returns the bytes read
 * (less than len only at end of file) or a negative errno.
 */
ssize_t stable_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* Writes all of buf at off; returns 0 or a negative errno. */
int stable_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* Size of a regular file or block device, or a negative errno. */
int stable_fd_size(int fd, uint64_t *size);

/* vsnprintf into err if errlen > 0; returns ret, for "return error(...)". */
int stable_set_err(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * After -ENOMEM from pinning or locking bytes of what: -EOPNOTSUPP with a
 * message naming RLIMIT_MEMLOCK when the bytes are over it (a backend
 * the limit rules out, so the automatic choice goes on), else 0. Root
 * (CAP_IPC_LOCK) is not held to the limit: it is named only when it bites.
 */
int stable_memlock_refusal(size_t bytes, const char *what, char *err, size_t errlen);

#endif
