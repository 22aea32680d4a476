/*
 * Description: IORING_OP_READ with IOSQE_BUFFER_SELECT on a kmbuf group
 * reads into a buffer the kernel picks; the CQE carries IORING_CQE_F_BUFFER
 * and the buffer ID, and the data is at bid * buf_size in the mapping.
 * Short reads post the buffer with the short length, also when the file
 * was synced and cut mid-page while open (a short read that the kernel
 * retries and that then meets EOF); a read at EOF posts no buffer (it went
 * back to the ring). READV with buffer selection works the same way.
 * Every byte is checked against the file.
 */
#include "kmbuf-test.h"
#include <sys/uio.h>

#define NR_BUFS	8

int main(void)
{
	size_t page = sysconf(_SC_PAGESIZE), bsz = 4 * page;
	size_t fsize = 5 * bsz + 1000;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct iovec iov;
	unsigned int flags;
	unsigned char *map;
	int fd, res, bid, i, seen = 0;
	__u16 ids[NR_BUFS];
	char *path;

	t_start("kmbuf-read");
	kmbuf_setup(&ring, 16);
	path = kmbuf_pattern_file("kmbuf-read", fsize);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		t_fail("open(%s) = %s", path, strerror(errno));

	t_expect(kmbuf_register(&ring, 1, NR_BUFS, bsz, 0), 0);
	map = kmbuf_map(&ring, 1, NR_BUFS * bsz, PROT_READ, MAP_SHARED);
	if (map == MAP_FAILED)
		t_fail("mmap(kmbuf 1) = %s", strerror(errno));

	/* whole buffers: len 0 means "a whole buffer" */
	for (i = 0; i < 5; i++) {
		res = kmbuf_read(&ring, fd, 0, (__u64)i * bsz, 1, &bid);
		if (res != (int)bsz || bid < 0 || bid >= NR_BUFS)
			t_fail("read %d: res %d bid %d, want %zu and a buffer", i, res, bid, bsz);
		if (seen & (1 << bid))
			t_fail("read %d: bid %d handed out twice", i, bid);
		seen |= 1 << bid;
		kmbuf_check_pattern(map + (size_t)bid * bsz, bsz, (__u64)i * bsz, "whole read");
		ids[i] = bid;
	}
	/* a length below the buffer size is honoured */
	res = kmbuf_read(&ring, fd, 100, 3, 1, &bid);
	if (res != 100 || bid < 0)
		t_fail("read of 100: res %d bid %d", res, bid);
	kmbuf_check_pattern(map + (size_t)bid * bsz, 100, 3, "partial read");
	ids[5] = bid;
	/* short read at the end of the file */
	res = kmbuf_read(&ring, fd, 0, 5 * bsz, 1, &bid);
	if (res != 1000 || bid < 0)
		t_fail("short read: res %d bid %d, want 1000 and a buffer", res, bid);
	kmbuf_check_pattern(map + (size_t)bid * bsz, 1000, 5 * bsz, "short read");
	ids[6] = bid;
	/* EOF: nothing read, no buffer posted */
	res = kmbuf_read(&ring, fd, 0, fsize, 1, &bid);
	if (res != 0 || bid != -1)
		t_fail("read at EOF: res %d bid %d, want 0 and no buffer", res, bid);

	/* READV with buffer selection: one iovec giving the length */
	iov.iov_base = NULL;
	iov.iov_len = bsz;
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_readv(sqe, fd, &iov, 1, 2 * bsz);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 1;
	kmbuf_wait(&ring, &res, &flags, NULL);
	if (res != (int)bsz || !(flags & IORING_CQE_F_BUFFER))
		t_fail("readv: res %d flags %#x", res, flags);
	bid = flags >> IORING_CQE_BUFFER_SHIFT;
	kmbuf_check_pattern(map + (size_t)bid * bsz, bsz, 2 * bsz, "readv");
	ids[7] = bid;

	/* all eight are out; give them back and read through them again */
	t_expect(kmbuf_return(&ring, 1, ids, NR_BUFS), NR_BUFS);
	for (i = 0; i < NR_BUFS; i++) {
		res = kmbuf_read(&ring, fd, 0, (__u64)(i % 5) * bsz, 1, &bid);
		if (res != (int)bsz || bid < 0)
			t_fail("second round read %d: res %d bid %d", i, res, bid);
		kmbuf_check_pattern(map + (size_t)bid * bsz, bsz, (__u64)(i % 5) * bsz,
				    "second round");
		ids[i] = bid;
	}
	t_expect(kmbuf_return(&ring, 1, ids, NR_BUFS), NR_BUFS);

	/*
	 * Synced, then cut 100 bytes into a page while open: the read of
	 * that page comes up short, is retried and meets EOF. The buffer
	 * holds the 100 bytes and must be posted with them.
	 */
	if (fsync(fd) < 0 || truncate(path, (off_t)(2 * bsz + 100)) < 0)
		t_fail("fsync/truncate: %s", strerror(errno));
	res = kmbuf_read(&ring, fd, (unsigned int)page, 2 * bsz, 1, &bid);
	if (res != 100 || bid < 0)
		t_fail("read of a page cut short: res %d bid %d, want 100 and a buffer",
		       res, bid);
	kmbuf_check_pattern(map + (size_t)bid * bsz, 100, 2 * bsz, "page cut short");

	close(fd);
	unlink(path);
	io_uring_queue_exit(&ring);
	t_pass();
}
