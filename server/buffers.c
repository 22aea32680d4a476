/*
 * How many read buffers each worker's reader gets. Every worker keeps a
 * reader per export, so the daemon holds threads x exports x --buffers
 * MiB, and on ro-fixed and kmbuf-ro all of it is pinned from the start:
 * 64 exports served by 16 workers at 32 MiB would pin 32 GiB. So the
 * default (32 MiB per reader) is halved, down to 32 pieces (4 MiB of
 * 128 KiB pieces), until the whole fits a budget: 1 GiB, or an eighth of
 * RAM on a smaller machine. An explicit --buffers is taken as given. In
 * either case a total above a quarter of RAM refuses to start, naming
 * the figures, rather than pinning memory the machine needs.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "buffers.h"

#define MIN_PIECES 32u
#define MAX_PIECES 4096u
#define DEFAULT_BUDGET (1ull << 30)
#define MIB(x) ((unsigned long long)((x) >> 20))

static uint64_t ram_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

int buffers_plan(const struct buffers_request *q, unsigned int *pieces,
		 char *msg, size_t len)
{
	uint64_t ram = ram_bytes();
	uint64_t budget = ram && ram / 8 < DEFAULT_BUDGET ? ram / 8 : DEFAULT_BUDGET;
	uint64_t readers = (uint64_t)q->threads * q->exports, total;
	unsigned int n = MIN_PIECES;

	msg[0] = '\0';
	/* a power of two, what a kmbuf ring holds anyway */
	while (n < MAX_PIECES && (uint64_t)n * 2 * q->piece_size <= (uint64_t)q->mib << 20)
		n *= 2;
	while (!q->given && n > MIN_PIECES && readers * n * q->piece_size > budget)
		n /= 2;
	total = readers * n * q->piece_size;
	if (ram && total > ram / 4) {
		snprintf(msg, len,
			 "%u worker%s x %u export%s x %llu MiB of read buffers is %llu MiB, more than a quarter of RAM (%llu MiB): use fewer --threads%s",
			 q->threads, q->threads == 1 ? "" : "s", q->exports,
			 q->exports == 1 ? "" : "s", MIB((uint64_t)n * q->piece_size),
			 MIB(total), MIB(ram), q->given ? " or a smaller --buffers" : "");
		return -E2BIG;
	}
	if (!q->given && ((uint64_t)n * q->piece_size) >> 20 < q->mib)
		snprintf(msg, len,
			 "read buffers: %llu MiB per worker and export, not %u: %u worker%s x %u export%s at %u MiB would be %llu MiB, over the %llu MiB budget (--buffers sets it)",
			 MIB((uint64_t)n * q->piece_size), q->mib, q->threads,
			 q->threads == 1 ? "" : "s", q->exports, q->exports == 1 ? "" : "s",
			 q->mib, MIB(readers * ((uint64_t)q->mib << 20)), MIB(budget));
	*pieces = n;
	return 0;
}
