/*
 * Description: the buffers of a kernel-managed ring are mapped at
 * IORING_OFF_KMBUF_RING | bgid << IORING_OFF_KMBUF_SHIFT with a length of
 * exactly ring_entries * buf_size. Shorter or longer mappings, offsets of
 * groups that do not exist, the provided-ring offset for a kmbuf group and
 * a kmbuf offset for a provided ring all fail with EINVAL. The buffers
 * start out zeroed, and a mapping outlives the ring's unregistration.
 */
#include "kmbuf-test.h"

static void expect_map_fails(struct io_uring *ring, size_t len, off_t off,
			     const char *what)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, ring->ring_fd, off);

	if (p != MAP_FAILED)
		t_fail("mmap(%s, len %zu, off %#llx) succeeded, want EINVAL",
		       what, len, (unsigned long long)off);
	if (errno != EINVAL)
		t_fail("mmap(%s, len %zu, off %#llx) errno %d (%s), want EINVAL",
		       what, len, (unsigned long long)off, errno, strerror(errno));
}

int main(void)
{
	struct stable_kmbuf_reg reg;
	struct io_uring ring;
	size_t page = sysconf(_SC_PAGESIZE), size = 8 * 2 * page, i;
	unsigned char *p, *q;

	t_start("kmbuf-mmap");
	kmbuf_setup(&ring, 8);

	t_expect(kmbuf_register(&ring, 5, 8, 2 * page, 0), 0);
	expect_map_fails(&ring, size - page, stable_kmbuf_map_offset(5), "short");
	expect_map_fails(&ring, size + page, stable_kmbuf_map_offset(5), "long");
	expect_map_fails(&ring, size, stable_kmbuf_map_offset(6), "no such group");
	expect_map_fails(&ring, page, 0x80000000ULL | (5ULL << 16), "pbuf offset");

	p = kmbuf_map(&ring, 5, size, PROT_READ, MAP_SHARED);
	if (p == MAP_FAILED)
		t_fail("mmap(kmbuf 5, %zu) = %s", size, strerror(errno));
	for (i = 0; i < size; i++)
		if (p[i])
			t_fail("byte %zu of a fresh ring is %#x, want 0", i, p[i]);
	/* a second mapping of the same ring sees the same pages */
	q = kmbuf_map(&ring, 5, size, PROT_READ, MAP_SHARED);
	if (q == MAP_FAILED)
		t_fail("second mmap(kmbuf 5) = %s", strerror(errno));

	/* a provided ring's offset does not reach kmbuf rings and back */
	memset(&reg, 0, sizeof(reg));
	reg.ring_entries = 8;
	reg.bgid = 7;
	reg.flags = KMBUF_TEST_PBUF_RING_MMAP;
	t_expect(kmbuf_sys_register(ring.ring_fd, IORING_REGISTER_PBUF_RING, &reg), 0);
	expect_map_fails(&ring, page, stable_kmbuf_map_offset(7), "kmbuf offset of pbuf");

	/* unregister: no new mappings, the old ones stay readable */
	t_expect(kmbuf_unregister(&ring, 5), 0);
	expect_map_fails(&ring, size, stable_kmbuf_map_offset(5), "unregistered");
	for (i = 0; i < size; i += page)
		if (p[i] || q[i])
			t_fail("byte %zu after unregister is %#x/%#x", i, p[i], q[i]);
	if (munmap(p, size) || munmap(q, size))
		t_fail("munmap = %s", strerror(errno));

	io_uring_queue_exit(&ring);
	t_pass();
}
