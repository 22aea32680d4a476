/* --run CMD: the captive mode, like nbdkit's. */
#ifndef STABLED_RUN_H
#define STABLED_RUN_H

#include <sys/types.h>

/* Starts "sh -c CMD" with $uri, $port, $unixsocket, $exportname set. */
pid_t run_start(const char *cmd, const char *unix_path, int port,
		const char *bind_addr);
/* The exit status to pass on for a wait status (128+N for a signal). */
int run_status(int wstatus);

#endif
