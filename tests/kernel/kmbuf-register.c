/*
 * Description: IORING_REGISTER_KMBUF_RING validates every field: buf_size
 * non-zero, page aligned and not absurd; ring_entries a power of two below
 * 65536; only known flags; reserved fields zero; a mappable group ID; the
 * size product checked for overflow. A group ID is used by one kind of
 * ring only (-EEXIST), and each unregister opcode only removes its own
 * kind. Registration after an unregister works again.
 */
#include "kmbuf-test.h"

static int reg_raw(struct io_uring *ring, struct stable_kmbuf_reg *reg)
{
	return kmbuf_sys_register(ring->ring_fd, IORING_REGISTER_KMBUF_RING, reg);
}

int main(void)
{
	struct stable_kmbuf_reg reg;
	struct io_uring ring;
	long page = sysconf(_SC_PAGESIZE);
	int ret;

	t_start("kmbuf-register");
	kmbuf_setup(&ring, 8);

	/* buf_size */
	t_expect(kmbuf_register(&ring, 1, 4, 0, 0), -EINVAL);
	t_expect(kmbuf_register(&ring, 1, 4, page + 1, 0), -EINVAL);
	t_expect(kmbuf_register(&ring, 1, 4, 512, 0), -EINVAL);
	t_expect(kmbuf_register(&ring, 1, 4, 1ULL << 40, 0), -EINVAL);
	/* ring_entries */
	t_expect(kmbuf_register(&ring, 1, 0, page, 0), -EINVAL);
	t_expect(kmbuf_register(&ring, 1, 3, page, 0), -EINVAL);
	t_expect(kmbuf_register(&ring, 1, 65536, page, 0), -EINVAL);
	t_expect(kmbuf_register(&ring, 1, 1U << 20, page, 0), -EINVAL);
	/* flags: pbuf flags and unknown bits are refused */
	t_expect(kmbuf_register(&ring, 1, 4, page, 1), -EINVAL);
	t_expect(kmbuf_register(&ring, 1, 4, page, 2), -EINVAL);
	t_expect(kmbuf_register(&ring, 1, 4, page, 1U << 14), -EINVAL);
	/* group IDs that cannot be expressed in the mmap offset */
	t_expect(kmbuf_register(&ring, STABLE_KMBUF_MAX_BGID + 1, 4, page, 0), -EINVAL);
	t_expect(kmbuf_register(&ring, 65535, 4, page, 0), -EINVAL);
	/* reserved fields */
	memset(&reg, 0, sizeof(reg));
	reg.buf_size = page;
	reg.ring_entries = 4;
	reg.bgid = 1;
	reg.resv[4] = 1;
	t_expect(reg_raw(&ring, &reg), -EINVAL);
	reg.resv[4] = 0;
	reg.min_left = 1;
	t_expect(reg_raw(&ring, &reg), -EINVAL);
	/* 32768 buffers of 2 GiB - 4 KiB: far more memory than any limit */
	ret = kmbuf_register(&ring, 1, 32768, 0x7ffff000ULL, 0);
	if (ret != -ENOMEM && ret != -E2BIG && ret != -EOVERFLOW)
		t_fail("huge kmbuf_register = %d, want -ENOMEM/-E2BIG/-EOVERFLOW", ret);

	/* success, then every kind of clash on the same group ID */
	t_expect(kmbuf_register(&ring, 1, 4, page, 0), 0);
	t_expect(kmbuf_register(&ring, 1, 4, page, 0), -EEXIST);
	t_expect(kmbuf_register(&ring, 1, 8, 2 * page, STABLE_KMBUF_RING_RDONLY), -EEXIST);
	memset(&reg, 0, sizeof(reg));
	reg.ring_entries = 4;
	reg.bgid = 1;
	reg.flags = KMBUF_TEST_PBUF_RING_MMAP;
	t_expect(kmbuf_sys_register(ring.ring_fd, IORING_REGISTER_PBUF_RING, &reg), -EEXIST);
	/* the pbuf unregister does not remove a kmbuf ring */
	memset(&reg, 0, sizeof(reg));
	reg.bgid = 1;
	t_expect(kmbuf_sys_register(ring.ring_fd, IORING_UNREGISTER_PBUF_RING, &reg), -EINVAL);

	/* a provided ring on group 2 blocks a kmbuf ring there */
	memset(&reg, 0, sizeof(reg));
	reg.ring_entries = 4;
	reg.bgid = 2;
	reg.flags = KMBUF_TEST_PBUF_RING_MMAP;
	t_expect(kmbuf_sys_register(ring.ring_fd, IORING_REGISTER_PBUF_RING, &reg), 0);
	t_expect(kmbuf_register(&ring, 2, 4, page, 0), -EEXIST);
	t_expect(kmbuf_unregister(&ring, 2), -EINVAL);

	/* unregister: unknown group, bad fields, then the real thing */
	t_expect(kmbuf_unregister(&ring, 3), -ENOENT);
	memset(&reg, 0, sizeof(reg));
	reg.bgid = 1;
	reg.flags = STABLE_KMBUF_RING_RDONLY;
	t_expect(kmbuf_sys_register(ring.ring_fd, IORING_UNREGISTER_KMBUF_RING, &reg), -EINVAL);
	t_expect(kmbuf_unregister(&ring, 1), 0);
	t_expect(kmbuf_unregister(&ring, 1), -ENOENT);
	/* the group ID is free again, for either kind */
	t_expect(kmbuf_register(&ring, 1, 2, page, STABLE_KMBUF_RING_RDONLY), 0);
	t_expect(kmbuf_register(&ring, 0, 32768, page, 0), 0);
	t_expect(kmbuf_register(&ring, STABLE_KMBUF_MAX_BGID, 1, 16 * page, 0), 0);

	io_uring_queue_exit(&ring);
	t_pass();
}
