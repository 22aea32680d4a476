/*
 * Description: a cancelled read never leaks its kmbuf buffer. Reads
 * waiting on an empty pipe (forced to io-wq so they hold a buffer while
 * they block, and plain ones parked on poll) are cancelled with
 * IORING_OP_ASYNC_CANCEL; each completes with -ECANCELED (or -EINTR from
 * io-wq) and no IORING_CQE_F_BUFFER, and afterwards every buffer of the
 * ring can be selected again.
 */
#include "kmbuf-test.h"

#define NR_BUFS	4

int main(void)
{
	size_t page = sysconf(_SC_PAGESIZE);
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	unsigned int flags;
	__u64 ud;
	int fd, pfd[2], res, bid, i, round;
	char *path;

	t_start("kmbuf-cancel");
	kmbuf_setup(&ring, 16);
	path = kmbuf_pattern_file("kmbuf-cancel", page);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		t_fail("open(%s) = %s", path, strerror(errno));
	if (pipe(pfd))
		t_fail("pipe = %s", strerror(errno));
	t_expect(kmbuf_register(&ring, 1, NR_BUFS, page, 0), 0);

	for (round = 0; round < 10; round++) {
		for (i = 0; i < NR_BUFS; i++) {
			sqe = io_uring_get_sqe(&ring);
			kmbuf_prep_read(sqe, pfd[0], 0, 0, 1);
			if (i & 1)
				sqe->flags |= IOSQE_ASYNC;
			sqe->user_data = 100 + i;
		}
		t_expect(io_uring_submit(&ring), NR_BUFS);
		usleep(20000);
		for (i = 0; i < NR_BUFS; i++) {
			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_cancel64(sqe, 100 + i, 0);
			sqe->user_data = 1;
		}
		t_expect(io_uring_submit(&ring), NR_BUFS);
		for (i = 0; i < 2 * NR_BUFS; i++) {
			kmbuf_wait(&ring, &res, &flags, &ud);
			if (ud == 1) {
				if (res != 0 && res != -EALREADY)
					t_fail("round %d: cancel = %d", round, res);
				continue;
			}
			if (res != -ECANCELED && res != -EINTR)
				t_fail("round %d: read %llu = %d, want -ECANCELED",
				       round, (unsigned long long)ud, res);
			if (flags & IORING_CQE_F_BUFFER)
				t_fail("round %d: cancelled read %llu posted buffer %u",
				       round, (unsigned long long)ud,
				       flags >> IORING_CQE_BUFFER_SHIFT);
		}
		/* every buffer is back: NR_BUFS reads succeed, one more does not */
		for (i = 0; i < NR_BUFS; i++) {
			res = kmbuf_read(&ring, fd, 0, 0, 1, &bid);
			if (res != (int)page || bid < 0)
				t_fail("round %d: read %d after cancel: res %d bid %d",
				       round, i, res, bid);
			if (kmbuf_return(&ring, 1, &(__u16){ (__u16)bid }, 1) != 1)
				t_fail("round %d: return of %d failed", round, bid);
		}
	}
	res = kmbuf_read(&ring, fd, 0, 0, 1, &bid);
	if (res != (int)page)
		t_fail("final read: res %d", res);

	close(pfd[0]);
	close(pfd[1]);
	close(fd);
	unlink(path);
	io_uring_queue_exit(&ring);
	t_pass();
}
