/*
 * Delayed re-reads. libstable re-reads a block that fails verification,
 * reloads the table if the image's header changed, and rebuilds from
 * parity; all of that happens within one read. A writer that updates the
 * image in place (docs/format.md: data, parity, checksums, header) leaves
 * a block unverifiable from its first write until the header is written,
 * which may be milliseconds later. Rather than fail the client's read for
 * that, the piece is read again after 1, 4, 16 and 64 ms; a block that is
 * truly damaged gets its EIO about 85 ms later than it would have. The
 * worker is never blocked: waiting pieces sit on their read's later list
 * and the worker's wait ends when the first is due (worker.c).
 */
#include <time.h>

#include "stabled.h"

static const unsigned int delay_ms[LATER_MAX] = { 1, 4, 16, 64 };

uint64_t later_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool later_defer(struct conn *c, struct rreq *r, struct piece *p)
{
	if (p->delays >= c->cfg->delayed_rereads || p->delays >= LATER_MAX ||
	    c->state == CS_DEAD)
		return false;
	p->due_ns = later_now_ns() + delay_ms[p->delays++] * 1000000ull;
	p->next = r->later;
	r->later = p;
	if (!c->later_due_ns || p->due_ns < c->later_due_ns)
		c->later_due_ns = p->due_ns;
	atomic_fetch_add_explicit(&stats.delayed_rereads, 1, memory_order_relaxed);
	return true;
}

void later_wake(struct conn *c)
{
	uint64_t now, next = 0;

	if (!c->later_due_ns)
		return;
	now = later_now_ns();
	if (now < c->later_due_ns)
		return;
	for (struct rreq *r = c->reads; r; r = r->next) {
		struct piece **pp = &r->later;

		while (*pp) {
			struct piece *p = *pp;

			if (p->due_ns <= now) {
				*pp = p->next;
				p->next = r->todo;
				r->todo = p;
				continue;
			}
			if (!next || p->due_ns < next)
				next = p->due_ns;
			pp = &p->next;
		}
	}
	c->later_due_ns = next;
}
