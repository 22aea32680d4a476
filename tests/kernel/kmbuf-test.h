/*
 * Helpers shared by the kernel-managed buffer ring tests in tests/kernel/.
 *
 * Every test is one program proving one behaviour, liburing style: it
 * prints a TAP plan and result, and exits 0 on pass, 77 on skip (the
 * running kernel lacks the series) and 1 on failure. A failure message
 * names the call and the values seen. Files the tests read live in
 * $KMBUF_TEST_DIR (default /tmp); in the VM that is an ext4 file system
 * on a virtio disk, so O_DIRECT works there.
 */
#ifndef KMBUF_TEST_H
#define KMBUF_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <liburing.h>
#include <stable/kmbuf_uapi.h>

/* IOU_PBUF_RING_MMAP, missing from bookworm's headers */
#define KMBUF_TEST_PBUF_RING_MMAP	1

#define T_EXIT_PASS	0
#define T_EXIT_FAIL	1
#define T_EXIT_SKIP	77

static const char *t_name = "kmbuf";

static inline void t_start(const char *name)
{
	t_name = name;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("1..1\n");
}

static inline __attribute__((noreturn, format(printf, 1, 2)))
void t_fail(const char *fmt, ...)
{
	va_list ap;

	printf("not ok 1 - %s: ", t_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(T_EXIT_FAIL);
}

static inline __attribute__((noreturn)) void t_pass(void)
{
	printf("ok 1 - %s\n", t_name);
	fflush(stdout);
	exit(T_EXIT_PASS);
}

static inline __attribute__((noreturn)) void t_skip(const char *why)
{
	/* a skip-all plan; tap-exec.sh turns exit 77 into 0 for prove */
	printf("# %s: %s\n", t_name, why);
	printf("ok 1 - %s # SKIP %s\n", t_name, why);
	fflush(stdout);
	exit(T_EXIT_SKIP);
}

/* Note progress in the TAP stream, so a hang or crash shows where. */
#define t_note(...) do { printf("# "); printf(__VA_ARGS__); printf("\n"); } while (0)

/* Compare an int result with the expected value; fail naming the call. */
#define t_expect(call, want) do {					\
	long __got = (long)(call);					\
	if (__got != (long)(want))					\
		t_fail("%s = %ld (%s), want %ld (%s)", #call, __got,	\
		       __got < 0 ? strerror((int)-__got) : "-",		\
		       (long)(want),					\
		       (want) < 0 ? strerror((int)-(want)) : "-");	\
} while (0)

static inline int kmbuf_sys_register(int ring_fd, unsigned int op, void *arg)
{
	int ret = syscall(__NR_io_uring_register, ring_fd, op, arg, 1);

	return ret < 0 ? -errno : ret;
}

static inline int kmbuf_register(struct io_uring *ring, __u16 bgid,
				 __u32 entries, __u64 buf_size, __u16 flags)
{
	struct stable_kmbuf_reg reg;

	memset(&reg, 0, sizeof(reg));
	reg.buf_size = buf_size;
	reg.ring_entries = entries;
	reg.bgid = bgid;
	reg.flags = flags;
	return kmbuf_sys_register(ring->ring_fd, IORING_REGISTER_KMBUF_RING, &reg);
}

static inline int kmbuf_unregister(struct io_uring *ring, __u16 bgid)
{
	struct stable_kmbuf_reg reg;

	memset(&reg, 0, sizeof(reg));
	reg.bgid = bgid;
	return kmbuf_sys_register(ring->ring_fd, IORING_UNREGISTER_KMBUF_RING, &reg);
}

/* mmap the buffers of a group; returns MAP_FAILED with errno set on error. */
static inline void *kmbuf_map(struct io_uring *ring, __u16 bgid, size_t len,
			      int prot, int flags)
{
	return mmap(NULL, len, prot, flags, ring->ring_fd,
		    (off_t)stable_kmbuf_map_offset(bgid));
}

/* Set up a ring, and skip the test if the kernel lacks kmbuf rings. */
static inline void kmbuf_setup(struct io_uring *ring, unsigned int entries)
{
	int ret = io_uring_queue_init(entries, ring, 0);

	if (ret == -ENOSYS || ret == -EPERM)
		t_skip("io_uring not available");
	if (ret)
		t_fail("io_uring_queue_init = %d", ret);
	ret = kmbuf_register(ring, STABLE_KMBUF_MAX_BGID, 1, 4096, 0);
	if (ret == -EINVAL || ret == -EOPNOTSUPP)
		t_skip("kernel lacks IORING_REGISTER_KMBUF_RING");
	if (ret)
		t_fail("probe kmbuf_register = %d", ret);
	ret = kmbuf_unregister(ring, STABLE_KMBUF_MAX_BGID);
	if (ret)
		t_fail("probe kmbuf_unregister = %d", ret);
}

static inline void kmbuf_prep_read(struct io_uring_sqe *sqe, int fd,
				   unsigned int len, __u64 off, __u16 bgid)
{
	io_uring_prep_read(sqe, fd, NULL, len, off);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = bgid;
}

static inline void kmbuf_prep_return(struct io_uring_sqe *sqe, __u16 bgid,
				     const __u16 *ids, unsigned int nr)
{
	io_uring_prep_rw(STABLE_IORING_OP_KMBUF_RETURN, sqe, 0, ids, nr, 0);
	sqe->buf_group = bgid;
}

/* Submit what is queued and reap one completion. */
static inline void kmbuf_wait(struct io_uring *ring, int *res, unsigned int *flags,
			      __u64 *user_data)
{
	struct io_uring_cqe *cqe;
	int ret;

	io_uring_submit(ring);
	ret = io_uring_wait_cqe(ring, &cqe);
	if (ret)
		t_fail("io_uring_wait_cqe = %d", ret);
	*res = cqe->res;
	*flags = cqe->flags;
	if (user_data)
		*user_data = cqe->user_data;
	io_uring_cqe_seen(ring, cqe);
}

/* Return buffers synchronously: one SQE, one CQE; returns cqe->res. */
static inline int kmbuf_return(struct io_uring *ring, __u16 bgid,
			       const __u16 *ids, unsigned int nr)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	unsigned int flags;
	int res;

	kmbuf_prep_return(sqe, bgid, ids, nr);
	kmbuf_wait(ring, &res, &flags, NULL);
	return res;
}

/* Read one buffer's worth at off; returns cqe->res, bid in *bid or -1. */
static inline int kmbuf_read(struct io_uring *ring, int fd, unsigned int len,
			     __u64 off, __u16 bgid, int *bid)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	unsigned int flags;
	int res;

	kmbuf_prep_read(sqe, fd, len, off, bgid);
	kmbuf_wait(ring, &res, &flags, NULL);
	*bid = (flags & IORING_CQE_F_BUFFER) ? (int)(flags >> IORING_CQE_BUFFER_SHIFT) : -1;
	return res;
}

/* The byte at file offset off in a pattern file: never constant runs. */
static inline unsigned char kmbuf_pattern(uint64_t off)
{
	uint64_t x = off / 8 + 0x9e3779b97f4a7c15ULL;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	return (unsigned char)((x >> (8 * (off % 8))) ^ (off >> 12));
}

/* Create $KMBUF_TEST_DIR/name with size bytes of the pattern; returns path. */
static inline char *kmbuf_pattern_file(const char *name, size_t size)
{
	const char *dir = getenv("KMBUF_TEST_DIR");
	static char path[4096];
	unsigned char buf[65536];
	size_t off = 0, i, n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s.%d", dir && *dir ? dir : "/tmp",
		 name, (int)getpid());
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0)
		t_fail("open(%s) = %s", path, strerror(errno));
	while (off < size) {
		n = size - off < sizeof(buf) ? size - off : sizeof(buf);
		for (i = 0; i < n; i++)
			buf[i] = kmbuf_pattern(off + i);
		if (write(fd, buf, n) != (ssize_t)n)
			t_fail("write(%s) failed: %s", path, strerror(errno));
		off += n;
	}
	if (fsync(fd))
		t_fail("fsync(%s) = %s", path, strerror(errno));
	close(fd);
	return path;
}

/* Check len bytes at p against the pattern from file offset off. */
static inline void kmbuf_check_pattern(const unsigned char *p, size_t len,
				       uint64_t off, const char *what)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] != kmbuf_pattern(off + i))
			t_fail("%s: byte %zu (file offset %llu) is %#x, want %#x",
			       what, i, (unsigned long long)(off + i), p[i],
			       kmbuf_pattern(off + i));
	}
}

#endif /* KMBUF_TEST_H */
