/*
 * Listening sockets. The default is TCP on 127.0.0.1 only: an export is
 * served to anyone who can connect, so reaching it from the network must
 * be asked for (-b 0.0.0.0 or -b ::). systemd socket activation hands us
 * ready sockets from fd 3 on (sd_listen_fds(3) protocol, written here
 * from its description: LISTEN_PID must be our pid, LISTEN_FDS the count).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "listen.h"

#define BACKLOG 128

static int add(struct listeners *l, int fd, char *err, size_t errlen)
{
	if (l->n == MAX_LISTEN) {
		close(fd);
		snprintf(err, errlen, "more than %d listening sockets", MAX_LISTEN);
		return -EMFILE;
	}
	l->fd[l->n++] = fd;
	return 0;
}

int listen_systemd(struct listeners *l, char *err, size_t errlen)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end;
	long n;

	if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	n = strtol(fds, &end, 10);
	if (*end || n < 1 || n > MAX_LISTEN) {
		snprintf(err, errlen, "LISTEN_FDS=%s is not a count from 1 to %d",
			 fds, MAX_LISTEN);
		return -EINVAL;
	}
	for (int fd = 3; fd < 3 + n; fd++) {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (add(l, fd, err, errlen))
			return -EMFILE;
	}
	/* not for our children (--run) */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	l->activated = true;
	return (int)n;
}

int listen_tcp(struct listeners *l, const char *addr, const char *port,
	       char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	int ret, bound = 0;

	ret = getaddrinfo(addr, port, &hints, &res);
	if (ret) {
		snprintf(err, errlen, "%s port %s: %s", addr, port, gai_strerror(ret));
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int one = 1, fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
					 ai->ai_protocol);

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, BACKLOG)) {
			snprintf(err, errlen, "%s port %s: %s", addr, port, strerror(errno));
			close(fd);
			continue;
		}
		if (l->port <= 0) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);

			if (!getsockname(fd, (struct sockaddr *)&ss, &sl))
				l->port = ntohs(ss.ss_family == AF_INET6 ?
						((struct sockaddr_in6 *)&ss)->sin6_port :
						((struct sockaddr_in *)&ss)->sin_port);
		}
		if (add(l, fd, err, errlen))
			break;
		bound++;
	}
	freeaddrinfo(res);
	return bound ? 0 : -EADDRNOTAVAIL;
}

int listen_unix(struct listeners *l, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: a Unix socket path has at most %zu bytes",
			 path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	unlink(path);	/* a stale socket from an earlier run */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, BACKLOG)) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	return add(l, fd, err, errlen);
}

void listen_close(struct listeners *l)
{
	for (unsigned int i = 0; i < l->n; i++)
		close(l->fd[i]);
	l->n = 0;
}

void peer_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";

	if (getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		snprintf(buf, len, "unknown");
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s->sin6_port));
	} else {
		snprintf(buf, len, "unix");
	}
}
