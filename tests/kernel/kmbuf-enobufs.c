/*
 * Description: a kmbuf ring runs dry: once every buffer is posted to the
 * application, a read selecting from the group fails with -ENOBUFS and
 * takes no buffer. Returning one buffer in the same submission as the next
 * read (linked, one io_uring_enter) makes that read succeed, into the
 * buffer just returned. The ring's ID counters wrap many times over.
 */
#include "kmbuf-test.h"

#define NR_BUFS	2

int main(void)
{
	size_t page = sysconf(_SC_PAGESIZE);
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	unsigned int flags;
	__u64 ud;
	int fd, bid, i, res, round;
	__u16 held[NR_BUFS], ret_id;
	char *path;

	t_start("kmbuf-enobufs");
	kmbuf_setup(&ring, 16);
	path = kmbuf_pattern_file("kmbuf-enobufs", 4 * page);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		t_fail("open(%s) = %s", path, strerror(errno));
	t_expect(kmbuf_register(&ring, 3, NR_BUFS, page, 0), 0);

	for (i = 0; i < NR_BUFS; i++) {
		res = kmbuf_read(&ring, fd, 0, 0, 3, &bid);
		if (res != (int)page || bid < 0)
			t_fail("read %d: res %d bid %d", i, res, bid);
		held[i] = bid;
	}
	res = kmbuf_read(&ring, fd, 0, 0, 3, &bid);
	if (res != -ENOBUFS || bid != -1)
		t_fail("read on an empty ring: res %d bid %d, want -ENOBUFS", res, bid);

	/*
	 * Steady state: return one buffer and read into it, linked, in one
	 * submission; 70000 rounds wrap the 16-bit ring counters.
	 */
	for (round = 0; round < 70000; round++) {
		ret_id = held[round % NR_BUFS];
		sqe = io_uring_get_sqe(&ring);
		kmbuf_prep_return(sqe, 3, &ret_id, 1);
		sqe->flags |= IOSQE_IO_LINK;
		sqe->user_data = 1;
		sqe = io_uring_get_sqe(&ring);
		kmbuf_prep_read(sqe, fd, 0, (round % 4) * page, 3);
		sqe->user_data = 2;
		kmbuf_wait(&ring, &res, &flags, &ud);
		if (ud != 1 || res != 1)
			t_fail("round %d: return cqe ud %llu res %d, want 1", round,
			       (unsigned long long)ud, res);
		kmbuf_wait(&ring, &res, &flags, &ud);
		if (ud != 2 || res != (int)page || !(flags & IORING_CQE_F_BUFFER))
			t_fail("round %d: read cqe ud %llu res %d flags %#x", round,
			       (unsigned long long)ud, res, flags);
		if ((flags >> IORING_CQE_BUFFER_SHIFT) != ret_id)
			t_fail("round %d: read got bid %u, want the returned %u", round,
			       flags >> IORING_CQE_BUFFER_SHIFT, ret_id);
	}

	close(fd);
	unlink(path);
	io_uring_queue_exit(&ring);
	t_pass();
}
