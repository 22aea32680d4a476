/*
 * Description: closing the io_uring with a kmbuf ring registered, buffers
 * held by the application, a read in flight and the buffers still mapped
 * is safe: the in-flight read is cancelled, the mapping stays readable
 * with its contents until munmap, and nothing is used after free (the VM
 * runs with KASAN). Repeated many times so a leak would show as memory
 * exhaustion.
 */
#include "kmbuf-test.h"

int main(void)
{
	size_t page = sysconf(_SC_PAGESIZE);
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	unsigned char *map;
	int fd, pfd[2], res, bid, iter;
	char *path;

	t_start("kmbuf-close");
	path = kmbuf_pattern_file("kmbuf-close", 16 * page);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		t_fail("open(%s) = %s", path, strerror(errno));
	if (pipe(pfd))
		t_fail("pipe = %s", strerror(errno));

	for (iter = 0; iter < 64; iter++) {
		kmbuf_setup(&ring, 8);
		/* 4 MiB a round: 256 MiB over the loop if nothing came back */
		t_expect(kmbuf_register(&ring, 2, 64, 16 * page, STABLE_KMBUF_RING_RDONLY), 0);
		map = kmbuf_map(&ring, 2, 64 * 16 * page, PROT_READ, MAP_SHARED);
		if (map == MAP_FAILED)
			t_fail("round %d: mmap = %s", iter, strerror(errno));
		res = kmbuf_read(&ring, fd, 0, 0, 2, &bid);
		if (res != (int)(16 * page) || bid < 0)
			t_fail("round %d: read res %d bid %d", iter, res, bid);
		sqe = io_uring_get_sqe(&ring);
		kmbuf_prep_read(sqe, pfd[0], 0, 0, 2);
		if (iter & 1)
			sqe->flags |= IOSQE_ASYNC;
		t_expect(io_uring_submit(&ring), 1);

		io_uring_queue_exit(&ring);
		kmbuf_check_pattern(map + (size_t)bid * 16 * page, 16 * page, 0,
				    "held buffer after close");
		if (munmap(map, 64 * 16 * page))
			t_fail("munmap = %s", strerror(errno));
	}

	close(fd);
	unlink(path);
	t_pass();
}
