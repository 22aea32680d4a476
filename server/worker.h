/*
 * Worker threads: each owns an io_uring event loop, its connections and
 * one stable_reader per export. The main thread accepts and hands each
 * new socket to a worker in turn.
 */
#ifndef STABLED_WORKER_H
#define STABLED_WORKER_H

#include "stabled.h"

struct worker_config {
	struct server_config server;
	const struct export_table *exports;
	struct stable_reader_options reader;
	unsigned int timeout;		/* s: handshake, or a reply not read */
	unsigned int idle_timeout;	/* s: no request at all; 0 = never */
	unsigned int drain_timeout;	/* s: SIGTERM waits this long */
};

struct worker;

int workers_start(unsigned int n, const struct worker_config *cfg,
		  char *err, size_t errlen);
/* Hands a connected socket (and the peer's name) to the next worker. */
void workers_add(int fd, const char *peer);
/* Finishes in-flight requests, closes every connection, joins. */
void workers_stop(void);
/* The guarantee and backend of the first reader (for the start-up log). */
void workers_describe(enum stable_guarantee *g, const char **backend);

#endif
