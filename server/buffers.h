/* How many read buffers each worker's reader gets (buffers.c). */
#ifndef STABLED_BUFFERS_H
#define STABLED_BUFFERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buffers_request {
	unsigned int mib;		/* --buffers, or its default */
	bool given;			/* set on the command line */
	unsigned int threads, exports;
	uint32_t piece_size;		/* bytes per buffer */
};

/*
 * Sets *pieces, the buffers per reader, and returns 0, with a note in
 * msg if the default had to be lowered (empty otherwise); or returns
 * -E2BIG with msg saying why the total cannot be had.
 */
int buffers_plan(const struct buffers_request *q, unsigned int *pieces,
		 char *msg, size_t len);

#endif
