/*
 * Description: a kmbuf ring can be unregistered while the application
 * holds buffers and while a read into one of its buffers is in flight.
 * The mapping stays valid with its contents; the in-flight read completes
 * into the old ring's memory, posts its buffer, and the data is visible
 * in the mapping; the group ID is free for a new ring at once. A pinned
 * ring cannot be unregistered (-EBUSY), which only the kernel can do and
 * is not tested here.
 */
#include "kmbuf-test.h"

int main(void)
{
	size_t page = sysconf(_SC_PAGESIZE);
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	unsigned char msg[100];
	unsigned int flags;
	unsigned char *map;
	int fd, pfd[2], res, bid, held, i;
	char *path;

	t_start("kmbuf-unregister-inflight");
	kmbuf_setup(&ring, 8);
	path = kmbuf_pattern_file("kmbuf-unregister-inflight", page);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		t_fail("open(%s) = %s", path, strerror(errno));
	if (pipe(pfd))
		t_fail("pipe = %s", strerror(errno));

	t_expect(kmbuf_register(&ring, 1, 4, page, 0), 0);
	map = kmbuf_map(&ring, 1, 4 * page, PROT_READ, MAP_SHARED);
	if (map == MAP_FAILED)
		t_fail("mmap = %s", strerror(errno));
	/* one buffer held by the application */
	res = kmbuf_read(&ring, fd, 0, 0, 1, &held);
	if (res != (int)page || held < 0)
		t_fail("read: res %d bid %d", res, held);

	/* one read in flight: an empty pipe, forced to io-wq */
	sqe = io_uring_get_sqe(&ring);
	kmbuf_prep_read(sqe, pfd[0], 0, 0, 1);
	sqe->flags |= IOSQE_ASYNC;
	sqe->user_data = 7;
	t_expect(io_uring_submit(&ring), 1);
	usleep(100000);

	t_expect(kmbuf_unregister(&ring, 1), 0);
	kmbuf_check_pattern(map + (size_t)held * page, page, 0, "held buffer after unregister");
	/* the ID is free: a new ring, different geometry */
	t_expect(kmbuf_register(&ring, 1, 2, 2 * page, 0), 0);

	for (i = 0; i < (int)sizeof(msg); i++)
		msg[i] = kmbuf_pattern(i);
	if (write(pfd[1], msg, sizeof(msg)) != sizeof(msg))
		t_fail("write(pipe) = %s", strerror(errno));
	kmbuf_wait(&ring, &res, &flags, NULL);
	if (res == -ENOBUFS) {
		t_note("the read selected its buffer after the unregister");
	} else {
		if (res != (int)sizeof(msg) || !(flags & IORING_CQE_F_BUFFER))
			t_fail("in-flight read: res %d flags %#x", res, flags);
		bid = flags >> IORING_CQE_BUFFER_SHIFT;
		if (bid >= 4 || bid == held)
			t_fail("in-flight read posted bid %d (held %d)", bid, held);
		/* the data landed in the old ring, which the old mapping shows */
		kmbuf_check_pattern(map + (size_t)bid * page, sizeof(msg), 0,
				    "in-flight read after unregister");
	}
	/* returning to the new ring: the old IDs are not its buffers */
	bid = held;
	t_expect(kmbuf_return(&ring, 1, (__u16 *)&(__u16){ (__u16)bid }, 1), -EALREADY);

	if (munmap(map, 4 * page))
		t_fail("munmap = %s", strerror(errno));
	close(fd);
	unlink(path);
	io_uring_queue_exit(&ring);
	t_pass();
}
