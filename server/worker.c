/*
 * The event loop of a worker thread, on io_uring: one recv and at most
 * one sendmsg in flight per connection, the sendmsg gathering queued
 * reply headers and verified extents straight from libstable's buffers
 * (no copy into a send buffer). Extents are released when the send that
 * carries their last byte completes. Timeouts are checked once a second.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>
/* io_uring writes received bytes behind valgrind's back, and waits in a
 * call valgrind thinks never blocks: see on_recv and submit_and_wait */
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)0)
#endif

#include "worker.h"

#define RING_ENTRIES 512
#define SEND_IOVS 64
/* A send waits for all its bytes (MSG_WAITALL): keep it to what a slow
 * but live client reads well within --timeout. 64 iovecs: 256 measured
 * slower (bigger sends that stall on a full socket cost more CPU). */
#define SEND_BYTES (8u << 20)

enum op { OP_RECV = 1, OP_SEND = 2, OP_CANCEL = 3 };
/* user_data below 4096 is not a connection: */
#define UD_EVENT 1ull			/* the eventfd read */
#define UD_READER(i) (((uint64_t)(i) << 3) | 2)	/* a reader's fd is readable */

struct wconn {
	struct conn c;
	struct worker *w;
	struct wconn *prev, *next;
	int fd;
	bool recv_posted, send_posted, closing;
	unsigned int inflight;
	time_t born, last_rx, last_tx;
	struct iovec iov[SEND_IOVS];
	struct msghdr msg;
	char peer[64];
};

struct newconn {
	int fd;
	char peer[64];
};

struct worker {
	unsigned int id;
	pthread_t thread;
	struct io_uring ring;
	int efd;
	uint64_t ebuf;
	pthread_mutex_t lock;
	struct newconn *incoming;	/* under lock */
	unsigned int nincoming, capincoming;
	bool stop;			/* under lock */
	struct stable_reader *readers[STABLED_MAX_EXPORTS];
	struct stable_stats reader_last[STABLED_MAX_EXPORTS];
	bool reader_polled[STABLED_MAX_EXPORTS];
	struct wconn *conns;
	unsigned int nconns;
	bool fed;			/* a send was posted this turn */
	const struct worker_config *cfg;
	time_t stop_at;
};

static struct worker *workers;
static unsigned int nworkers, next_worker;

static time_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static struct io_uring_sqe *sqe_get(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

static uint64_t ud(struct wconn *wc, enum op op)
{
	return (uint64_t)(uintptr_t)wc | op;
}

static void post_event_read(struct worker *w)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	io_uring_prep_read(sqe, w->efd, &w->ebuf, sizeof(w->ebuf), 0);
	io_uring_sqe_set_data64(sqe, UD_EVENT);
}

static void post_reader_poll(struct worker *w, unsigned int i)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	io_uring_prep_poll_add(sqe, stable_reader_fd(w->readers[i]), POLLIN);
	io_uring_sqe_set_data64(sqe, UD_READER(i));
	w->reader_polled[i] = true;
}

/* Answers the reads libstable has finished; returns how many. */
static int reap_readers(struct worker *w)
{
	int n = 0;

	for (unsigned int i = 0; i < w->cfg->exports->n; i++) {
		if (!stable_inflight(w->readers[i]))
			continue;
		n += reads_reap(w->readers[i]);
		if (stable_inflight(w->readers[i]) && !w->reader_polled[i])
			post_reader_poll(w, i);
	}
	return n;
}

static void post_recv(struct wconn *wc)
{
	struct io_uring_sqe *sqe = sqe_get(wc->w);

	io_uring_prep_recv(sqe, wc->fd, wc->c.in + wc->c.in_len,
			   CONN_IN_SIZE - wc->c.in_len, 0);
	io_uring_sqe_set_data64(sqe, ud(wc, OP_RECV));
	wc->recv_posted = true;
	wc->inflight++;
}

static void post_send(struct wconn *wc)
{
	struct io_uring_sqe *sqe = sqe_get(wc->w);

	memset(&wc->msg, 0, sizeof(wc->msg));
	wc->msg.msg_iov = wc->iov;
	wc->msg.msg_iovlen = outq_iov(&wc->c.out, wc->iov, SEND_IOVS, SEND_BYTES);
	io_uring_prep_sendmsg(sqe, wc->fd, &wc->msg, MSG_NOSIGNAL | MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, ud(wc, OP_SEND));
	wc->send_posted = true;
	wc->inflight++;
	wc->w->fed = true;
}

static void post_cancel(struct wconn *wc, enum op op)
{
	struct io_uring_sqe *sqe = sqe_get(wc->w);

	io_uring_prep_cancel64(sqe, ud(wc, op), 0);
	io_uring_sqe_set_data64(sqe, ud(wc, OP_CANCEL));
	wc->inflight++;
}

static void conn_new(struct worker *w, const struct newconn *nc)
{
	struct wconn *wc = calloc(1, sizeof(*wc));

	if (wc)
		snprintf(wc->peer, sizeof(wc->peer), "%s", nc->peer);
	if (!wc || conn_init(&wc->c, w->cfg->exports, &w->cfg->server, w->readers,
			     w->reader_last, wc->peer)) {
		log_err("connection from %s: out of memory", nc->peer);
		close(nc->fd);
		free(wc);
		atomic_fetch_sub(&stats.connections_now, 1);
		return;
	}
	wc->w = w;
	wc->fd = nc->fd;
	wc->born = wc->last_rx = wc->last_tx = now_s();
	wc->next = w->conns;
	if (w->conns)
		w->conns->prev = wc;
	w->conns = wc;
	w->nconns++;
	if (w->stop)
		conn_shutdown(&wc->c);
	log_debug("worker %u: connection from %s", w->id, wc->peer);
}

static void conn_free(struct worker *w, struct wconn *wc)
{
	log_debug("connection from %s closed after %llu requests: %s", wc->peer,
		  wc->c.requests, wc->c.why[0] ? wc->c.why : "done");
	if (wc->c.failed)
		log_info("connection from %s closed: %s", wc->peer, wc->c.why);
	conn_fini(&wc->c);
	close(wc->fd);
	if (wc->prev)
		wc->prev->next = wc->next;
	else
		w->conns = wc->next;
	if (wc->next)
		wc->next->prev = wc->prev;
	w->nconns--;
	free(wc);
	atomic_fetch_sub(&stats.connections_now, 1);
}

/* Starts closing: wake whatever is in flight, free once it has returned. */
static void start_close(struct wconn *wc)
{
	if (wc->closing)
		return;
	wc->closing = true;
	shutdown(wc->fd, SHUT_RDWR);
	if (wc->recv_posted)
		post_cancel(wc, OP_RECV);
	if (wc->send_posted)
		post_cancel(wc, OP_SEND);
}

/* Moves a connection on after an event; returns false once it is freed. */
static bool service(struct worker *w, struct wconn *wc)
{
	struct conn *c = &wc->c;

	if (!wc->closing && c->state != CS_DEAD)
		conn_process(c);
	if (c->state == CS_CLOSING && !c->out.count && !c->nreads)
		c->state = CS_DEAD;
	/* after SIGTERM, a connection with nothing left to answer is done */
	if (c->shutting_down && c->state == CS_TRANSMISSION && !c->out.count &&
	    !c->nreads && !wc->recv_posted) {
		snprintf(c->why, sizeof(c->why), "server shutting down");
		c->state = CS_DEAD;
	}
	if (c->state == CS_DEAD || wc->closing) {
		start_close(wc);
		if (!wc->inflight && !c->reads_inflight) {
			conn_free(w, wc);
			return false;
		}
		return true;
	}
	if (!wc->send_posted && c->out.count)
		post_send(wc);
	if (!wc->recv_posted && !c->shutting_down && c->state != CS_CLOSING) {
		conn_compact(c);
		if (c->in_len < CONN_IN_SIZE)
			post_recv(wc);
	}
	return true;
}

static void on_recv(struct wconn *wc, int res)
{
	struct conn *c = &wc->c;

	wc->recv_posted = false;
	if (res > 0) {
		VALGRIND_MAKE_MEM_DEFINED(c->in + c->in_len, (size_t)res);
		c->in_len += (size_t)res;
		wc->last_rx = now_s();
		return;
	}
	if (res == -ECANCELED || wc->closing)
		return;
	if (c->state == CS_TRANSMISSION || c->state == CS_OPTIONS ||
	    c->state == CS_CLIENT_FLAGS) {
		if (res == 0)
			snprintf(c->why, sizeof(c->why), "client closed the connection");
		else
			snprintf(c->why, sizeof(c->why), "recv: %s", strerror(-res));
		/* what is queued can no longer matter to anyone */
		c->state = CS_DEAD;
	}
}

/* Returns true if extents were released (parked reads may go on). */
static bool on_send(struct wconn *wc, int res)
{
	struct conn *c = &wc->c;
	unsigned int released = 0;

	wc->send_posted = false;
	if (res > 0) {
		released = outq_advance(&c->out, (size_t)res);
		wc->last_tx = now_s();
	} else if (res < 0 && res != -EAGAIN && res != -EINTR) {
		if (!wc->closing && c->state != CS_DEAD)
			snprintf(c->why, sizeof(c->why), "send: %s", strerror(-res));
		c->state = CS_DEAD;
	}
	return released > 0;
}

static void take_incoming(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	for (unsigned int i = 0; i < w->nincoming; i++)
		conn_new(w, &w->incoming[i]);
	w->nincoming = 0;
	pthread_mutex_unlock(&w->lock);
}

static void check_timeouts(struct worker *w, time_t now)
{
	const struct worker_config *cfg = w->cfg;

	for (struct wconn *wc = w->conns; wc; wc = wc->next) {
		struct conn *c = &wc->c;

		if (wc->closing || c->state == CS_DEAD)
			continue;
		if ((c->state == CS_CLIENT_FLAGS || c->state == CS_OPTIONS) &&
		    now - wc->born >= (time_t)cfg->timeout) {
			conn_fail(c, "handshake not finished after %u s", cfg->timeout);
		} else if (c->out.count && now - wc->last_tx >= (time_t)cfg->timeout) {
			conn_fail(c, "client read none of %llu queued bytes in %u s",
				  (unsigned long long)c->out.bytes, cfg->timeout);
		} else if (cfg->idle_timeout && c->state == CS_TRANSMISSION &&
			   !c->out.count && !c->nreads &&
			   now - wc->last_rx >= (time_t)cfg->idle_timeout) {
			c->state = CS_CLOSING;
			snprintf(c->why, sizeof(c->why), "idle for %u s", cfg->idle_timeout);
		} else if (w->stop && w->stop_at && now >= w->stop_at) {
			conn_fail(c, "requests not finished %u s after SIGTERM",
				  cfg->drain_timeout);
		}
	}
}

/*
 * Submits what is queued and waits up to ts for a completion. valgrind
 * (3.19) does not know that io_uring_enter can block and keeps its big
 * lock while a thread waits in it, so every other thread (the acceptor,
 * the other workers) stops for good. Under valgrind the wait is a poll
 * of the ring's fd, a call it knows blocks; natively, one io_uring_enter.
 */
static void submit_and_wait(struct worker *w, struct __kernel_timespec *ts)
{
	struct io_uring_cqe *cqe;
	struct pollfd p = { .fd = w->ring.ring_fd, .events = POLLIN };

	/*
	 * Sends went out this turn: hand the CPU to whoever they woke
	 * before going on. A client on this machine is woken onto this CPU
	 * (a sync wakeup, which expects the waker to sleep) and can copy
	 * our bytes while they are still in cache, instead of waiting for
	 * this loop or moving to another core. On 2 cores shared with fio,
	 * two 5-round runs: sequential 1 MiB on 4 connections 7704 and
	 * 7091 MiB/s against 6760 and 6494 without, server CPU 0.10-0.12
	 * s/GiB against 0.14-0.15, random 4 KiB 8-20% more IOPS
	 * (docs/benchmarks.md, session 6). With no one else runnable here
	 * it returns at once.
	 */
	if (w->fed) {
		w->fed = false;
		io_uring_submit(&w->ring);
		sched_yield();
	}

	if (!RUNNING_ON_VALGRIND) {
		io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, ts, NULL);
		return;
	}
	io_uring_submit(&w->ring);
	if (!io_uring_cq_ready(&w->ring))
		poll(&p, 1, (int)(ts->tv_sec * 1000 + ts->tv_nsec / 1000000));
}

/* A second, or less if a connection has a delayed re-read due sooner. */
static void wait_until_due(struct worker *w, struct __kernel_timespec *ts)
{
	uint64_t due = 0, now;

	for (struct wconn *wc = w->conns; wc; wc = wc->next)
		if (wc->c.later_due_ns && !wc->closing && wc->c.state != CS_DEAD &&
		    (!due || wc->c.later_due_ns < due))
			due = wc->c.later_due_ns;
	ts->tv_sec = 1;
	ts->tv_nsec = 0;
	if (!due)
		return;
	now = later_now_ns();
	due = due > now ? due - now : 0;
	if (due < 1000000000u) {
		ts->tv_sec = 0;
		ts->tv_nsec = (long long)due;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct __kernel_timespec ts;
	time_t last_check = now_s();
	bool stopping = false;

	post_event_read(w);
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned int head, seen = 0;
		bool released = false;
		time_t now;

		do {
			for (struct wconn *wc = w->conns, *next; wc; wc = next) {
				next = wc->next;
				service(w, wc);
			}
			/* page-cached reads finish during submission: answer
			 * them in this turn rather than after a poll */
		} while (reap_readers(w) > 0);
		if (stopping && !w->nconns)
			break;
		wait_until_due(w, &ts);
		submit_and_wait(w, &ts);
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			uint64_t d = cqe->user_data;
			struct wconn *wc = (struct wconn *)(uintptr_t)(d & ~7ull);

			seen++;
			if (d == UD_EVENT) {
				take_incoming(w);
				pthread_mutex_lock(&w->lock);
				if (w->stop && !stopping) {
					stopping = true;
					w->stop_at = now_s() + w->cfg->drain_timeout;
					for (struct wconn *c = w->conns; c; c = c->next) {
						conn_shutdown(&c->c);
						if (c->recv_posted)
							post_cancel(c, OP_RECV);
					}
				}
				pthread_mutex_unlock(&w->lock);
				if (!stopping)
					post_event_read(w);
				continue;
			}
			if (d < 4096) {
				if ((d & 7) == 2)
					w->reader_polled[d >> 3] = false;
				continue;
			}
			wc->inflight--;
			switch (d & 7) {
			case OP_RECV:
				on_recv(wc, cqe->res);
				break;
			case OP_SEND:
				released |= on_send(wc, cqe->res);
				break;
			default:
				break;
			}
		}
		io_uring_cq_advance(&w->ring, seen);
		(void)released;	/* every connection is serviced each turn */
		now = now_s();
		if (now != last_check) {
			last_check = now;
			check_timeouts(w, now);
		}
	}
	return NULL;
}

static int worker_init(struct worker *w, unsigned int id,
		       const struct worker_config *cfg, char *err, size_t errlen)
{
	int ret;

	w->id = id;
	w->cfg = cfg;
	pthread_mutex_init(&w->lock, NULL);
	w->efd = eventfd(0, EFD_CLOEXEC);
	if (w->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	ret = io_uring_queue_init(RING_ENTRIES, &w->ring, 0);
	if (ret) {
		snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-ret));
		return ret;
	}
	for (unsigned int i = 0; i < cfg->exports->n; i++) {
		const struct export *e = &cfg->exports->exp[i];
		char why[512];

		ret = stable_reader_new(&w->readers[i], e->img, &cfg->reader, why, sizeof(why));
		if (ret) {
			snprintf(err, errlen, "export %s (%s): %s", e->name, e->path, why);
			return ret;
		}
	}
	return 0;
}

static void worker_fini(struct worker *w)
{
	for (unsigned int i = 0; i < STABLED_MAX_EXPORTS; i++)
		if (w->readers[i] && stable_reader_free(w->readers[i]))
			log_err("worker %u: export %u: %s", w->id, i,
				stable_errmsg(w->readers[i]));
	io_uring_queue_exit(&w->ring);
	close(w->efd);
	free(w->incoming);
	pthread_mutex_destroy(&w->lock);
}

int workers_start(unsigned int n, const struct worker_config *cfg,
		  char *err, size_t errlen)
{
	int ret;

	workers = calloc(n, sizeof(*workers));
	if (!workers) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < n; i++) {
		ret = worker_init(&workers[i], i, cfg, err, errlen);
		nworkers = i + 1;
		if (ret)
			goto fail;
	}
	for (unsigned int i = 0; i < n; i++) {
		ret = -pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
		if (ret) {
			snprintf(err, errlen, "pthread_create: %s", strerror(-ret));
			for (unsigned int j = 0; j < i; j++) {
				pthread_mutex_lock(&workers[j].lock);
				workers[j].stop = true;
				pthread_mutex_unlock(&workers[j].lock);
				eventfd_write(workers[j].efd, 1);
				pthread_join(workers[j].thread, NULL);
			}
			goto fail;
		}
	}
	return 0;
fail:
	for (unsigned int i = 0; i < nworkers; i++)
		worker_fini(&workers[i]);
	free(workers);
	workers = NULL;
	nworkers = 0;
	return ret;
}

void workers_add(int fd, const char *peer)
{
	struct worker *w = &workers[next_worker++ % nworkers];

	pthread_mutex_lock(&w->lock);
	if (w->nincoming == w->capincoming) {
		unsigned int cap = w->capincoming ? w->capincoming * 2 : 16;
		struct newconn *p = realloc(w->incoming, cap * sizeof(*p));

		if (!p) {
			pthread_mutex_unlock(&w->lock);
			log_err("connection from %s: out of memory", peer);
			close(fd);
			atomic_fetch_sub(&stats.connections_now, 1);
			return;
		}
		w->incoming = p;
		w->capincoming = cap;
	}
	w->incoming[w->nincoming].fd = fd;
	snprintf(w->incoming[w->nincoming].peer, sizeof(w->incoming[0].peer), "%s", peer);
	w->nincoming++;
	pthread_mutex_unlock(&w->lock);
	eventfd_write(w->efd, 1);
}

void workers_stop(void)
{
	for (unsigned int i = 0; i < nworkers; i++) {
		pthread_mutex_lock(&workers[i].lock);
		workers[i].stop = true;
		pthread_mutex_unlock(&workers[i].lock);
		eventfd_write(workers[i].efd, 1);
	}
	for (unsigned int i = 0; i < nworkers; i++) {
		pthread_join(workers[i].thread, NULL);
		worker_fini(&workers[i]);
	}
	free(workers);
	workers = NULL;
	nworkers = 0;
}

void workers_describe(enum stable_guarantee *g, const char **backend)
{
	*g = STABLE_GUARANTEE_NONE;
	*backend = "none";
	if (nworkers && workers[0].readers[0]) {
		*g = stable_reader_guarantee(workers[0].readers[0]);
		*backend = stable_reader_backend_name(workers[0].readers[0]);
	}
}
