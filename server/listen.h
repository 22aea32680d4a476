/* Listening sockets: TCP, Unix, or inherited through systemd's LISTEN_FDS. */
#ifndef STABLED_LISTEN_H
#define STABLED_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#define MAX_LISTEN 16

struct listeners {
	int fd[MAX_LISTEN];
	unsigned int n;
	int port;		/* the TCP port bound (for --run's $port), or -1 */
	bool activated;		/* the fds came from systemd */
};

/* Takes LISTEN_FDS if LISTEN_PID is us; returns how many (0 if none). */
int listen_systemd(struct listeners *l, char *err, size_t errlen);
/* Binds addr:port (every address it resolves to); port 0 picks one. */
int listen_tcp(struct listeners *l, const char *addr, const char *port,
	       char *err, size_t errlen);
int listen_unix(struct listeners *l, const char *path, char *err, size_t errlen);
void listen_close(struct listeners *l);
/* "127.0.0.1:5555" or "unix" for an accepted socket. */
void peer_name(int fd, char *buf, size_t len);

#endif
