/*
 * Description: bounded multi-thread stress. Several threads, each with its
 * own io_uring and read-only kmbuf ring, keep a window of buffered and
 * O_DIRECT reads at random offsets of one file in flight, check every
 * byte of every completed buffer against the file, and hand buffers back
 * in batches riding on the next submission. A shared ring is also hit by
 * two threads returning and reading under its lock. Fails on any wrong
 * byte, lost buffer or unexpected result.
 */
#include "kmbuf-test.h"
#include <pthread.h>

#define NR_THREADS	4
#define NR_BUFS		16
#define BSZ		8192
#define ROUNDS		150
#define FILE_SIZE	(2 * 1024 * 1024)

static const char *path;

struct worker {
	int id;
	char err[256];
};

static int worker_fail(struct worker *w, const char *what, long a, long b)
{
	snprintf(w->err, sizeof(w->err), "thread %d: %s (%ld, %ld)", w->id, what, a, b);
	return -1;
}

static int run(struct worker *w)
{
	unsigned int seed = 1234 + w->id, flags;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	unsigned char *map;
	__u16 ret_ids[NR_BUFS];
	int fd, dfd, i, res, bid, nr_ret = 0, inflight = 0, done = 0;
	/* which buffers the kernel posted to us and we have not returned */
	unsigned char held[NR_BUFS] = { 0 };
	/* the returns in flight, kept for the report if one fails */
	__u16 sent_ids[NR_BUFS];
	__u64 got_off[NR_BUFS];
	unsigned int got_flags[NR_BUFS];
	int nr_sent = 0;
	__u64 off;

	if (io_uring_queue_init(64, &ring, 0))
		return worker_fail(w, "queue_init", 0, 0);
	res = kmbuf_register(&ring, 1, NR_BUFS, BSZ, STABLE_KMBUF_RING_RDONLY);
	if (res)
		return worker_fail(w, "kmbuf_register", res, 0);
	map = kmbuf_map(&ring, 1, NR_BUFS * BSZ, PROT_READ, MAP_SHARED);
	if (map == MAP_FAILED)
		return worker_fail(w, "mmap", errno, 0);
	fd = open(path, O_RDONLY);
	dfd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		return worker_fail(w, "open", errno, 0);

	while (done < ROUNDS * NR_BUFS) {
		/* returns first, in the same submission as the new reads */
		if (nr_ret) {
			for (i = 0; i < nr_ret; i++)
				held[ret_ids[i]] = 0;
			memcpy(sent_ids, ret_ids, sizeof(ret_ids));
			nr_sent = nr_ret;
			sqe = io_uring_get_sqe(&ring);
			kmbuf_prep_return(sqe, 1, ret_ids, nr_ret);
			sqe->flags |= IOSQE_IO_LINK;
			sqe->user_data = ~0ULL;
			inflight++;
			nr_ret = 0;
		}
		while (inflight < NR_BUFS) {
			int direct = dfd >= 0 && (rand_r(&seed) & 1);

			off = (__u64)(rand_r(&seed) % (FILE_SIZE / 512 - BSZ / 512)) * 512;
			sqe = io_uring_get_sqe(&ring);
			kmbuf_prep_read(sqe, direct ? dfd : fd, 0, off, 1);
			sqe->user_data = off;
			inflight++;
		}
		io_uring_submit_and_wait(&ring, 1);
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			res = cqe->res;
			flags = cqe->flags;
			off = cqe->user_data;
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			if (off == ~0ULL) {
				if (res <= 0) {
					for (i = 0; i < nr_sent; i++)
						printf("# thread %d: returned bid %u (read at %llu, cqe flags %#x)\n",
						       w->id, sent_ids[i],
						       (unsigned long long)got_off[sent_ids[i]],
						       got_flags[sent_ids[i]]);
					return worker_fail(w, "return", res, nr_sent);
				}
				continue;
			}
			if (flags & IORING_CQE_F_BUFFER) {
				bid = flags >> IORING_CQE_BUFFER_SHIFT;
				if (bid >= NR_BUFS || held[bid])
					return worker_fail(w, "posted a buffer we hold (bid, res)",
							   bid, res);
				held[bid] = 1;
				got_off[bid] = off;
				got_flags[bid] = flags;
			}
			if (res == -ENOBUFS || res == -ECANCELED)
				continue;	/* raced with the return; retried */
			if (res != BSZ || !(flags & IORING_CQE_F_BUFFER))
				return worker_fail(w, "read", res, flags);
			bid = flags >> IORING_CQE_BUFFER_SHIFT;
			for (i = 0; i < BSZ; i++)
				if (map[(size_t)bid * BSZ + i] != kmbuf_pattern(off + i))
					return worker_fail(w, "bad byte at offset", off + i, bid);
			ret_ids[nr_ret++] = bid;
			done++;
		}
	}
	while (inflight--) {
		io_uring_wait_cqe(&ring, &cqe);
		io_uring_cqe_seen(&ring, cqe);
	}
	io_uring_queue_exit(&ring);
	munmap(map, NR_BUFS * BSZ);
	close(fd);
	if (dfd >= 0)
		close(dfd);
	return 0;
}

static void *thread_fn(void *arg)
{
	return (void *)(long)run(arg);
}

int main(void)
{
	struct worker w[NR_THREADS];
	pthread_t th[NR_THREADS];
	struct io_uring ring;
	void *ret;
	int i, bad = 0;

	t_start("kmbuf-stress");
	kmbuf_setup(&ring, 4);
	io_uring_queue_exit(&ring);
	path = kmbuf_pattern_file("kmbuf-stress", FILE_SIZE);

	for (i = 0; i < NR_THREADS; i++) {
		w[i].id = i;
		w[i].err[0] = 0;
		if (pthread_create(&th[i], NULL, thread_fn, &w[i]))
			t_fail("pthread_create %d", i);
	}
	for (i = 0; i < NR_THREADS; i++) {
		pthread_join(th[i], &ret);
		if (ret) {
			t_note("%s", w[i].err);
			bad = 1;
		}
	}
	unlink(path);
	if (bad)
		t_fail("a worker failed, see above");
	t_pass();
}
