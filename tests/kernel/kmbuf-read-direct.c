/*
 * Description: O_DIRECT reads into kmbuf buffers (on the VM's ext4 disk)
 * go straight into the ring's pages: many reads in flight at once, each
 * CQE names its buffer, and every byte matches the file. A read at an
 * unaligned offset fails with -EINVAL and its buffer goes back to the
 * ring (the next reads can still use every buffer).
 */
#include "kmbuf-test.h"

#define NR_BUFS	16
#define BSZ	(64 * 1024)

int main(void)
{
	size_t fsize = 4 * 1024 * 1024;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	unsigned int flags;
	unsigned char *map;
	__u16 ids[NR_BUFS];
	__u64 ud;
	int fd, i, res, bid, round, nr;
	char *path;

	t_start("kmbuf-read-direct");
	kmbuf_setup(&ring, 32);
	path = kmbuf_pattern_file("kmbuf-read-direct", fsize);
	fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0 && errno == EINVAL)
		t_skip("O_DIRECT not supported in KMBUF_TEST_DIR");
	if (fd < 0)
		t_fail("open(%s, O_DIRECT) = %s", path, strerror(errno));

	t_expect(kmbuf_register(&ring, 1, NR_BUFS, BSZ, STABLE_KMBUF_RING_RDONLY), 0);
	map = kmbuf_map(&ring, 1, NR_BUFS * BSZ, PROT_READ, MAP_SHARED);
	if (map == MAP_FAILED)
		t_fail("mmap(kmbuf 1) = %s", strerror(errno));

	/* an unaligned O_DIRECT read fails and keeps no buffer */
	res = kmbuf_read(&ring, fd, 0, 1, 1, &bid);
	if (res != -EINVAL || bid != -1)
		t_fail("unaligned O_DIRECT read: res %d bid %d, want -EINVAL", res, bid);

	for (round = 0; round < (int)(fsize / BSZ / NR_BUFS); round++) {
		for (i = 0; i < NR_BUFS; i++) {
			sqe = io_uring_get_sqe(&ring);
			kmbuf_prep_read(sqe, fd, 0,
					((__u64)round * NR_BUFS + i) * BSZ, 1);
			sqe->user_data = (__u64)round * NR_BUFS + i;
		}
		io_uring_submit(&ring);
		for (nr = 0; nr < NR_BUFS; nr++) {
			kmbuf_wait(&ring, &res, &flags, &ud);
			if (res != BSZ || !(flags & IORING_CQE_F_BUFFER))
				t_fail("O_DIRECT read %llu: res %d flags %#x",
				       (unsigned long long)ud, res, flags);
			bid = flags >> IORING_CQE_BUFFER_SHIFT;
			kmbuf_check_pattern(map + (size_t)bid * BSZ, BSZ, ud * BSZ,
					    "O_DIRECT read");
			ids[nr] = bid;
		}
		t_expect(kmbuf_return(&ring, 1, ids, NR_BUFS), NR_BUFS);
	}

	close(fd);
	unlink(path);
	io_uring_queue_exit(&ring);
	t_pass();
}
