/*
 * Description: unmapping the buffers while reads into them are in flight
 * changes nothing for the reads: the kernel writes through its own mapping
 * of the ring's pages, so every read completes with its data, which a new
 * mapping shows byte for byte.
 */
#include "kmbuf-test.h"

#define NR_BUFS	16

int main(void)
{
	size_t page = sysconf(_SC_PAGESIZE), bsz = 4 * page;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	unsigned int flags;
	unsigned char *map;
	int fd, dfd, i, res, bid, round, bids[NR_BUFS];
	__u16 ids[NR_BUFS];
	__u64 ud;
	char *path;

	t_start("kmbuf-munmap");
	kmbuf_setup(&ring, 32);
	path = kmbuf_pattern_file("kmbuf-munmap", NR_BUFS * bsz);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		t_fail("open(%s) = %s", path, strerror(errno));
	dfd = open(path, O_RDONLY | O_DIRECT);
	t_expect(kmbuf_register(&ring, 1, NR_BUFS, bsz, 0), 0);

	for (round = 0; round < 8; round++) {
		map = kmbuf_map(&ring, 1, NR_BUFS * bsz, PROT_READ, MAP_SHARED);
		if (map == MAP_FAILED)
			t_fail("mmap = %s", strerror(errno));
		for (i = 0; i < NR_BUFS; i++) {
			sqe = io_uring_get_sqe(&ring);
			kmbuf_prep_read(sqe, (round & 1) && dfd >= 0 ? dfd : fd, 0,
					(__u64)i * bsz, 1);
			sqe->user_data = i;
		}
		io_uring_submit(&ring);
		if (munmap(map, NR_BUFS * bsz))
			t_fail("munmap = %s", strerror(errno));
		for (i = 0; i < NR_BUFS; i++) {
			kmbuf_wait(&ring, &res, &flags, &ud);
			if (res != (int)bsz || !(flags & IORING_CQE_F_BUFFER))
				t_fail("round %d read %llu: res %d flags %#x", round,
				       (unsigned long long)ud, res, flags);
			bids[ud] = flags >> IORING_CQE_BUFFER_SHIFT;
		}
		map = kmbuf_map(&ring, 1, NR_BUFS * bsz, PROT_READ, MAP_SHARED);
		if (map == MAP_FAILED)
			t_fail("mmap again = %s", strerror(errno));
		for (i = 0; i < NR_BUFS; i++) {
			bid = bids[i];
			kmbuf_check_pattern(map + (size_t)bid * bsz, bsz, (__u64)i * bsz,
					    "read while unmapped");
			ids[i] = bid;
		}
		munmap(map, NR_BUFS * bsz);
		t_expect(kmbuf_return(&ring, 1, ids, NR_BUFS), NR_BUFS);
	}

	if (dfd >= 0)
		close(dfd);
	close(fd);
	unlink(path);
	io_uring_queue_exit(&ring);
	t_pass();
}
