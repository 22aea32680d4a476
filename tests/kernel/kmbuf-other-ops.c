/*
 * Description: a kmbuf group is invisible to opcodes that cannot take a
 * kernel address: a recv with buffer selection on it fails with -ENOBUFS
 * and takes no buffer. Provided (pbuf) rings next to a kmbuf ring in the
 * same io_uring work as before, for reads and recvs, so the refactors of
 * the series changed nothing for them.
 */
#include "kmbuf-test.h"
#include <sys/socket.h>

#define PB_ENTRIES	8

int main(void)
{
	size_t page = sysconf(_SC_PAGESIZE);
	struct io_uring_buf_ring *br;
	struct io_uring_buf_reg preg;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	unsigned int flags;
	unsigned char *pbufs, *kmap;
	int fd, sv[2], res, bid, i;
	char msg[64];
	char *path;

	t_start("kmbuf-other-ops");
	kmbuf_setup(&ring, 8);
	path = kmbuf_pattern_file("kmbuf-other-ops", 4 * page);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		t_fail("open(%s) = %s", path, strerror(errno));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		t_fail("socketpair = %s", strerror(errno));

	t_expect(kmbuf_register(&ring, 1, 4, page, 0), 0);
	kmap = kmbuf_map(&ring, 1, 4 * page, PROT_READ, MAP_SHARED);
	if (kmap == MAP_FAILED)
		t_fail("mmap = %s", strerror(errno));

	/* recv cannot use kernel buffers: the group looks empty */
	memset(msg, 'x', sizeof(msg));
	if (write(sv[1], msg, sizeof(msg)) != sizeof(msg))
		t_fail("write(socket) = %s", strerror(errno));
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_recv(sqe, sv[0], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 1;
	kmbuf_wait(&ring, &res, &flags, NULL);
	if (res != -ENOBUFS || (flags & IORING_CQE_F_BUFFER))
		t_fail("recv on a kmbuf group: res %d flags %#x, want -ENOBUFS", res, flags);
	/* and it took nothing: all four buffers are still there */
	for (i = 0; i < 4; i++) {
		res = kmbuf_read(&ring, fd, 0, (__u64)i * page, 1, &bid);
		if (res != (int)page || bid < 0)
			t_fail("read %d after recv: res %d bid %d", i, res, bid);
	}

	/* a provided ring on group 2, in application memory */
	br = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pbufs = malloc(PB_ENTRIES * page);
	if (br == MAP_FAILED || !pbufs)
		t_fail("allocating the pbuf ring");
	memset(&preg, 0, sizeof(preg));
	preg.ring_addr = (unsigned long)br;
	preg.ring_entries = PB_ENTRIES;
	preg.bgid = 2;
	t_expect(io_uring_register_buf_ring(&ring, &preg, 0), 0);
	io_uring_buf_ring_init(br);
	for (i = 0; i < PB_ENTRIES; i++)
		io_uring_buf_ring_add(br, pbufs + (size_t)i * page, page, i,
				      io_uring_buf_ring_mask(PB_ENTRIES), i);
	io_uring_buf_ring_advance(br, PB_ENTRIES);

	res = kmbuf_read(&ring, fd, 0, page, 2, &bid);
	if (res != (int)page || bid != 0)
		t_fail("read into pbuf: res %d bid %d, want %zu bid 0", res, bid, page);
	kmbuf_check_pattern(pbufs, page, page, "pbuf read");
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_recv(sqe, sv[0], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 2;
	kmbuf_wait(&ring, &res, &flags, NULL);
	if (res != (int)sizeof(msg) || !(flags & IORING_CQE_F_BUFFER) ||
	    (flags >> IORING_CQE_BUFFER_SHIFT) != 1)
		t_fail("recv into pbuf: res %d flags %#x", res, flags);
	if (memcmp(pbufs + page, msg, sizeof(msg)))
		t_fail("recv into pbuf: wrong data");
	/* the kmbuf return opcode refuses the pbuf group */
	t_expect(kmbuf_return(&ring, 2, (__u16 *)&(__u16){ 0 }, 1), -EINVAL);

	close(sv[0]);
	close(sv[1]);
	close(fd);
	unlink(path);
	io_uring_queue_exit(&ring);
	t_pass();
}
