/*
 * The output queue of a connection: reply headers (copied, small), option
 * replies (heap) and verified extents (referenced, never copied), in the
 * order they go on the wire. An extent is released only once its last
 * byte has been handed to the kernel, so the bytes the client gets are
 * the bytes that were verified.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stabled.h"

static const uint8_t zero_page[4096];

static struct seg *push(struct outq *q)
{
	struct seg_block *b = q->last;

	if (!b || b->tail == SEGS_PER_BLOCK) {
		struct seg_block *nb = q->spare;

		if (nb)
			q->spare = NULL;
		else if (!(nb = malloc(sizeof(*nb))))
			return NULL;
		nb->next = NULL;
		nb->head = nb->tail = 0;
		if (b)
			b->next = nb;
		else
			q->first = nb;
		q->last = b = nb;
	}
	q->count++;
	return &b->segs[b->tail++];
}

/* Undoes the last push (an allocation after it failed). */
static void unpush(struct outq *q)
{
	q->last->tail--;
	q->count--;
}

int outq_bytes(struct outq *q, const void *p, size_t len)
{
	struct seg *s;

	if (!len)
		return 0;
	s = push(q);
	if (!s)
		return -ENOMEM;
	s->len = (uint32_t)len;
	s->ext = NULL;
	s->rd = NULL;
	if (len <= SEG_INLINE_MAX) {
		s->kind = SEG_INLINE;
		memcpy(s->data, p, len);
		s->p = s->data;
	} else {
		void *copy = malloc(len);

		if (!copy) {
			unpush(q);
			return -ENOMEM;
		}
		memcpy(copy, p, len);
		s->kind = SEG_HEAP;
		s->p = copy;
	}
	q->bytes += len;
	return 0;
}

int outq_extent(struct outq *q, struct stable_reader *rd,
		const struct stable_extent *ext, const void *p, size_t len)
{
	struct seg *s = push(q);

	if (!s)
		return -ENOMEM;
	s->kind = SEG_EXTENT;
	s->len = (uint32_t)len;
	s->p = p;
	s->ext = ext;
	s->rd = rd;
	q->bytes += len;
	q->extents++;
	return 0;
}

int outq_zeroes(struct outq *q, size_t len)
{
	while (len) {
		size_t n = len < sizeof(zero_page) ? len : sizeof(zero_page);
		struct seg *s = push(q);

		if (!s)
			return -ENOMEM;
		s->kind = SEG_ZERO;
		s->len = (uint32_t)n;
		s->p = zero_page;
		s->ext = NULL;
		s->rd = NULL;
		q->bytes += n;
		len -= n;
	}
	return 0;
}

unsigned int outq_iov(const struct outq *q, struct iovec *iov, unsigned int max,
		      size_t max_bytes)
{
	unsigned int n = 0;
	size_t skip = q->sent, bytes = 0;

	for (const struct seg_block *b = q->first; b && n < max && bytes < max_bytes;
	     b = b->next)
		for (unsigned int i = b->head; i < b->tail && n < max && bytes < max_bytes; i++) {
			const struct seg *s = &b->segs[i];

			iov[n].iov_base = (void *)((const uint8_t *)s->p + skip);
			iov[n].iov_len = s->len - skip;
			bytes += iov[n].iov_len;
			skip = 0;
			n++;
		}
	return n;
}

static unsigned int pop(struct outq *q)
{
	struct seg_block *b = q->first;
	struct seg *s = &b->segs[b->head++];
	unsigned int released = 0;

	if (s->kind == SEG_HEAP)
		free((void *)s->p);
	if (s->kind == SEG_EXTENT && s->ext) {
		stable_release(s->rd, s->ext);
		q->extents--;
		released = 1;
	}
	q->count--;
	q->sent = 0;
	if (b->head == b->tail) {
		q->first = b->next;
		if (!q->first)
			q->last = NULL;
		if (!q->spare)
			q->spare = b;
		else
			free(b);
	}
	return released;
}

unsigned int outq_advance(struct outq *q, size_t n)
{
	unsigned int released = 0;

	q->bytes -= n;
	while (n && q->count) {
		const struct seg *s = &q->first->segs[q->first->head];
		size_t left = s->len - q->sent;

		if (n < left) {
			q->sent += n;
			return released;
		}
		n -= left;
		released += pop(q);
	}
	return released;
}

void outq_clear(struct outq *q)
{
	while (q->count)
		pop(q);
	free(q->spare);
	q->spare = NULL;
	q->bytes = 0;
}
