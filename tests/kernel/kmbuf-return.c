/*
 * Description: IORING_OP_KMBUF_RETURN hands buffers back by ID. Valid
 * single and batched returns give cqe->res = count; an ID out of range
 * fails with -EINVAL, a buffer the kernel already holds (returned twice,
 * twice within one batch, or never posted) with -EALREADY; a zero or too
 * large count is -EINVAL, an unknown group -ENOENT, a provided-buffer
 * group -EINVAL. A failed batch returns nothing: the valid IDs in it are
 * still the application's afterwards.
 */
#include "kmbuf-test.h"

#define NR_BUFS	4

static int read_one(struct io_uring *ring, int fd, int *bid)
{
	int res = kmbuf_read(ring, fd, 0, 0, 1, bid);

	if (res > 0 && *bid < 0)
		t_fail("read res %d without a buffer", res);
	return res;
}

int main(void)
{
	size_t page = sysconf(_SC_PAGESIZE);
	struct stable_kmbuf_reg reg;
	struct io_uring ring;
	__u16 ids[2 * NR_BUFS], held[NR_BUFS];
	int fd, bid, i, res;
	char *path;

	t_start("kmbuf-return");
	kmbuf_setup(&ring, 16);
	path = kmbuf_pattern_file("kmbuf-return", page);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		t_fail("open(%s) = %s", path, strerror(errno));
	t_expect(kmbuf_register(&ring, 1, NR_BUFS, page, 0), 0);

	/* nothing was posted yet: every buffer is the kernel's */
	ids[0] = 0;
	t_expect(kmbuf_return(&ring, 1, ids, 1), -EALREADY);

	for (i = 0; i < NR_BUFS; i++) {
		res = read_one(&ring, fd, &bid);
		if (res != (int)page)
			t_fail("read %d = %d", i, res);
		held[i] = bid;
	}

	/* single return, then the same again */
	t_expect(kmbuf_return(&ring, 1, &held[0], 1), 1);
	t_expect(kmbuf_return(&ring, 1, &held[0], 1), -EALREADY);
	/* out of range, anywhere in the batch, wins and returns nothing */
	ids[0] = held[1];
	ids[1] = NR_BUFS;
	t_expect(kmbuf_return(&ring, 1, ids, 2), -EINVAL);
	ids[1] = 65535;
	t_expect(kmbuf_return(&ring, 1, ids, 2), -EINVAL);
	/* a duplicate within a batch returns nothing */
	ids[0] = held[1];
	ids[1] = held[2];
	ids[2] = held[1];
	t_expect(kmbuf_return(&ring, 1, ids, 3), -EALREADY);
	/* the buffer the kernel holds (held[0]) fails the whole batch */
	ids[0] = held[1];
	ids[1] = held[0];
	t_expect(kmbuf_return(&ring, 1, ids, 2), -EALREADY);
	/* counts */
	t_expect(kmbuf_return(&ring, 1, ids, 0), -EINVAL);
	t_expect(kmbuf_return(&ring, 1, ids, NR_BUFS + 1), -EINVAL);
	t_expect(kmbuf_return(&ring, 1, ids, 32769), -EINVAL);
	/* groups */
	t_expect(kmbuf_return(&ring, 9, &held[1], 1), -ENOENT);
	memset(&reg, 0, sizeof(reg));
	reg.ring_entries = 4;
	reg.bgid = 2;
	reg.flags = KMBUF_TEST_PBUF_RING_MMAP;
	t_expect(kmbuf_sys_register(ring.ring_fd, IORING_REGISTER_PBUF_RING, &reg), 0);
	t_expect(kmbuf_return(&ring, 2, &held[1], 1), -EINVAL);
	/* a bad address */
	t_expect(kmbuf_return(&ring, 1, (const __u16 *)8, 1), -EFAULT);

	/* the failed batches returned nothing: one buffer is free, no more */
	res = read_one(&ring, fd, &bid);
	if (res != (int)page || bid != held[0])
		t_fail("read after failed batches: res %d bid %d, want %zu bid %d",
		       res, bid, page, held[0]);
	res = read_one(&ring, fd, &bid);
	if (res != -ENOBUFS)
		t_fail("read with all buffers out = %d, want -ENOBUFS", res);

	/* a batch of all of them */
	t_expect(kmbuf_return(&ring, 1, held, NR_BUFS), NR_BUFS);
	t_expect(kmbuf_return(&ring, 1, held, NR_BUFS), -EALREADY);
	for (i = 0; i < NR_BUFS; i++) {
		res = read_one(&ring, fd, &bid);
		if (res != (int)page)
			t_fail("read %d after batch return = %d", i, res);
	}

	close(fd);
	unlink(path);
	io_uring_queue_exit(&ring);
	t_pass();
}
