/*
 * stabled: serves checksummed stable images over NBD, read-only, so that
 * a client never receives a byte that was not verified. This file reads
 * the command line, opens the exports, sets up the listening sockets,
 * starts the workers, and then accepts connections and handles signals
 * until SIGTERM (or, with --run, until the command exits).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buffers.h"
#include "listen.h"
#include "nbd.h"
#include "run.h"
#include "stabled.h"
#include "worker.h"

#define EXIT_USAGE 2

struct options {
	const char *port, *bind, *unix_path, *run, *stats_file, *pid_file;
	bool foreground, syslog, verbose, port_given, bind_given, buffers_given;
	unsigned int threads, max_conns, timeout, idle_timeout, buffer_mib;
	enum stable_guarantee require;
	enum stable_backend backend;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: stabled [OPTIONS] IMAGE|NAME=IMAGE...\n"
"Serve checksummed stable images over NBD, read-only; every byte sent has\n"
"been verified against its checksum. An export is named after its image's\n"
"file name without the extension, or NAME; the first is also the default\n"
"export (the empty name).\n"
"\n"
"  -p, --port=PORT            TCP port (10809)\n"
"  -b, --bind=ADDR            address to listen on (127.0.0.1: this host only)\n"
"  -U, --unix=PATH            listen on a Unix socket instead of TCP\n"
"  -f, --foreground           do not become a daemon; log to stderr\n"
"      --run=CMD              run CMD with $uri, $port, $unixsocket set, then\n"
"                             stop and exit with its status\n"
"  -t, --threads=N            worker threads (the number of CPUs, at least 4)\n"
"      --require-guarantee=L  refuse to start below none|ro-view|ro-fixed|sealed|\n"
"                             kernel-ro\n"
"      --backend=B            auto-fast (default: kmbuf-ro, else ro-fixed, else as\n"
"                             auto), auto (the strongest available), private,\n"
"                             ro-view, ro-fixed, sealed or kmbuf-ro\n"
"      --buffers=MIB          read buffers per worker and export (4 to 512; 32,\n"
"                             lowered to fit 1 GiB in all)\n"
"      --max-connections=N    refuse connections beyond N (64)\n"
"      --timeout=S            close a handshake or an unread reply after S s (30)\n"
"      --idle-timeout=S       close a connection idle for S s (0: never)\n"
"      --stats-file=PATH      write the counters there on SIGUSR1 and at exit\n"
"  -P, --pid-file=PATH        write the server's pid there once it serves\n"
"      --syslog               log to syslog even in the foreground\n"
"  -v, --verbose              log every connection\n"
"  -h, --help                 this help\n"
"  -V, --version              the version\n"
"\n"
"SIGUSR1 logs the counters; SIGTERM finishes in-flight requests and exits.\n");
}

static unsigned int parse_uint(const char *opt, const char *s, unsigned int min,
			       unsigned int max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "stabled: %s: '%s' is not a number from %u to %u\n",
			opt, s, min, max);
		exit(EXIT_USAGE);
	}
	return (unsigned int)v;
}

static enum stable_guarantee parse_guarantee(const char *s)
{
	enum stable_guarantee g;

	if (stable_guarantee_from_name(s, &g)) {
		fprintf(stderr, "stabled: --require-guarantee: '%s' is not none, ro-view, ro-fixed, sealed or kernel-ro\n",
			s);
		exit(EXIT_USAGE);
	}
	return g;
}

static enum stable_backend parse_backend(const char *s)
{
	enum stable_backend b;

	if (stable_backend_from_name(s, &b)) {
		fprintf(stderr, "stabled: --backend: '%s' is not auto-fast, auto, private, ro-view, ro-fixed, sealed or kmbuf-ro\n",
			s);
		exit(EXIT_USAGE);
	}
	return b;
}

enum { OPT_RUN = 256, OPT_REQUIRE, OPT_BACKEND, OPT_BUFFERS, OPT_MAXCONN, OPT_TIMEOUT, OPT_IDLE,
       OPT_STATS, OPT_SYSLOG };


static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'b' },
		{ "unix", required_argument, NULL, 'U' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "run", required_argument, NULL, OPT_RUN },
		{ "threads", required_argument, NULL, 't' },
		{ "require-guarantee", required_argument, NULL, OPT_REQUIRE },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "buffers", required_argument, NULL, OPT_BUFFERS },
		{ "max-connections", required_argument, NULL, OPT_MAXCONN },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE },
		{ "stats-file", required_argument, NULL, OPT_STATS },
		{ "pid-file", required_argument, NULL, 'P' },
		{ "syslog", no_argument, NULL, OPT_SYSLOG },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int c;

	*o = (struct options){
		.port = "10809", .bind = "127.0.0.1",
		/* at least 4: a worker serves its connections one at a time */
		.threads = cpus > 4 ? (unsigned int)(cpus > 64 ? 64 : cpus) : 4,
		.max_conns = 64, .timeout = 30, .buffer_mib = 32,
		/* a daemon's reads must be cheap: sealed only where ro-fixed fails */
		.backend = STABLE_BACKEND_AUTO_FAST,
	};
	while ((c = getopt_long(argc, argv, "p:b:U:ft:P:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			parse_uint("--port", optarg, 0, 65535);
			o->port = optarg;
			o->port_given = true;
			break;
		case 'b': o->bind = optarg; o->bind_given = true; break;
		case 'U': o->unix_path = optarg; break;
		case 'f': o->foreground = true; break;
		case OPT_RUN: o->run = optarg; break;
		case 't': o->threads = parse_uint("--threads", optarg, 1, 64); break;
		case OPT_REQUIRE: o->require = parse_guarantee(optarg); break;
		case OPT_BACKEND: o->backend = parse_backend(optarg); break;
		case OPT_MAXCONN:
			o->max_conns = parse_uint("--max-connections", optarg, 1, 100000);
			break;
		case OPT_TIMEOUT: o->timeout = parse_uint("--timeout", optarg, 1, 86400); break;
		case OPT_BUFFERS:
			o->buffer_mib = parse_uint("--buffers", optarg, 4, 512);
			o->buffers_given = true;
			break;
		case OPT_IDLE:
			o->idle_timeout = parse_uint("--idle-timeout", optarg, 0, 1u << 30);
			break;
		case OPT_STATS: o->stats_file = optarg; break;
		case 'P': o->pid_file = optarg; break;
		case OPT_SYSLOG: o->syslog = true; break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("stabled %s (libstable %s)\n", STABLE_VERSION, STABLE_VERSION); exit(0);
		default: usage(stderr); exit(EXIT_USAGE);
		}
	}
	if (optind == argc) {
		fprintf(stderr, "stabled: no image to export\n");
		usage(stderr);
		exit(EXIT_USAGE);
	}
}

/*
 * The default (auto-fast) settled for a backend with a cost per read, or
 * a weaker one: say why ro-fixed was refused, from a reader made to try it.
 */
static void explain_fallback(const char *backend, const struct stable_reader_options *ro,
			     struct stable_image *img)
{
	struct stable_reader_options want = *ro;
	struct stable_reader *rd;
	char why[512] = "";

	if (!strcmp(backend, "kmbuf-ro") || !strcmp(backend, "ro-fixed"))
		return;
	want.backend = STABLE_BACKEND_RO_FIXED;
	want.min_guarantee = STABLE_GUARANTEE_NONE;
	if (stable_reader_new(&rd, img, &want, why, sizeof(why)) == 0) {
		stable_reader_free(rd);
		return;
	}
	log_warn("backend %s, not ro-fixed: %s", backend, why);
}

static void log_summary(const struct options *o, const struct export_table *t,
			const struct listeners *l, const struct stable_reader_options *ro)
{
	enum stable_guarantee g;
	const char *backend;

	workers_describe(&g, &backend);
	log_info("stabled %s: %u export%s, backend %s, guarantee %s, %u worker thread%s, read-only",
		 STABLE_VERSION, t->n, t->n == 1 ? "" : "s", backend,
		 stable_guarantee_name(g), o->threads, o->threads == 1 ? "" : "s");
	if (o->backend == STABLE_BACKEND_AUTO_FAST && o->require <= STABLE_GUARANTEE_RO_FIXED &&
	    t->n > 0)
		explain_fallback(backend, ro, t->exp[0].img);
	for (unsigned int i = 0; i < t->n; i++) {
		const struct export *e = &t->exp[i];

		log_info("export '%s'%s: %s, %llu bytes, block size %u, %s",
			 e->name, i == 0 ? " (default)" : "", e->path,
			 (unsigned long long)e->size, e->block_size,
			 e->parity ? "parity: blocks can be rebuilt" : "no parity");
	}
	if (l->activated)
		log_info("listening on %u socket%s from systemd", l->n, l->n == 1 ? "" : "s");
	else if (o->unix_path)
		log_info("listening on unix socket %s", o->unix_path);
	else
		log_info("listening on %s port %d", o->bind, l->port);
}

static int make_private_socket(char *dir, size_t dlen, char *path, size_t plen)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, dlen, "%s/stabled.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return -errno;
	snprintf(path, plen, "%s/socket", dir);
	return 0;
}

static void accept_one(int lfd, const struct options *o)
{
	char peer[64];
	int one = 1, sndbuf = 4 << 20, fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("accept: %m");
		return;
	}
	peer_name(fd, peer, sizeof(peer));
	if (atomic_load(&stats.connections_now) >= o->max_conns) {
		atomic_fetch_add(&stats.connections_refused, 1);
		log_warn("connection from %s refused: already %u connections", peer,
			 o->max_conns);
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* room for a few 1 MiB replies per send (capped by net.core.wmem_max) */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	atomic_fetch_add(&stats.connections, 1);
	atomic_fetch_add(&stats.connections_now, 1);
	workers_add(fd, peer);
}

/*
 * Becomes a daemon, but keeps the parent waiting until the child says it
 * serves (a byte on the returned fd), so that a failure to start (a
 * guarantee that cannot be met) still makes `stabled` exit 1.
 */
static int daemonize(void)
{
	int p[2], fd;
	pid_t pid;
	char c = '1';

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			c = '1';
		_exit(c == '0' ? 0 : 1);
	}
	close(p[0]);
	setsid();
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return p[1];
}

static void dump_stats(const struct options *o)
{
	int ret;

	stats_log();
	if (o->stats_file && (ret = stats_write_file(o->stats_file)))
		log_err("--stats-file %s: %s", o->stats_file, strerror(-ret));
}

int main(int argc, char **argv)
{
	static struct export_table exports;
	struct options o;
	struct listeners l = { .port = -1 };
	struct worker_config wc = { 0 };
	struct pollfd pfd[MAX_LISTEN + 1];
	char err[1024], sockdir[PATH_MAX] = "", sockpath[PATH_MAX];
	sigset_t mask;
	pid_t child = -1;
	int ret, sfd, status = 0, ready_fd = -1;
	bool running = true;

	parse_args(argc, argv, &o);
	log_open(o.syslog, o.verbose);
	signal(SIGPIPE, SIG_IGN);

	for (int i = optind; i < argc; i++)
		if (exports_add(&exports, argv[i], err, sizeof(err))) {
			log_err("%s", err);
			return 1;
		}

	ret = listen_systemd(&l, err, sizeof(err));
	if (ret < 0) {
		log_err("%s", err);
		goto out_exports;
	}
	if (!l.n) {
		if (o.run && !o.unix_path && !o.port_given && !o.bind_given) {
			/* --run alone: a private socket nobody else can reach */
			if (make_private_socket(sockdir, sizeof(sockdir), sockpath,
						sizeof(sockpath))) {
				log_err("--run: cannot make a private socket directory: %m");
				goto out_exports;
			}
			o.unix_path = sockpath;
		}
		if (o.unix_path)
			ret = listen_unix(&l, o.unix_path, err, sizeof(err));
		else
			ret = listen_tcp(&l, o.bind, o.port, err, sizeof(err));
		if (ret) {
			log_err("cannot listen: %s", err);
			goto out_exports;
		}
	}

	/* every thread inherits this mask: signals are read from sfd only */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);

	if (!o.foreground && !o.run && !l.activated) {
		log_close();
		log_open(true, o.verbose);
		ready_fd = daemonize();
		if (ready_fd < 0) {
			log_err("cannot become a daemon: %s", strerror(-ready_fd));
			goto out_listen;
		}
	}

	wc.exports = &exports;
	wc.server.max_request = NBD_MAX_REQUEST;
	/*
	 * Reads are cut into 128 KiB pieces (or a block, if larger), and a
	 * connection holds at most 16 of them (2 MiB) read, verified or
	 * queued: reading far ahead of the socket only evicts verified
	 * bytes from the CPU's cache before they are sent. With 4 fio jobs
	 * of sequential 1 MiB reads, a 2 MiB window served 7250 MiB/s
	 * where half the reader (18 MiB) served 4900, at less CPU per GiB
	 * (docs/benchmarks.md). 16 pieces also hold any DF read (1 MiB,
	 * 9 pieces if unaligned). Each reader has --buffers MiB (32) of
	 * buffers (the free ones are reused most recent first, so few are
	 * ever touched in private memory; kmbuf-ro's are the kernel's and
	 * ro-fixed's are pinned, all resident; a kmbuf ring has a power of
	 * two: 256 of 128 KiB, not 288 rounded up to 512).
	 */
	wc.server.piece_size = 128u << 10;
	for (unsigned int i = 0; i < exports.n; i++)
		if (exports.exp[i].block_size > wc.server.piece_size)
			wc.server.piece_size = exports.exp[i].block_size;
	{
		const struct buffers_request q = {
			.mib = o.buffer_mib, .given = o.buffers_given, .threads = o.threads,
			.exports = exports.n, .piece_size = wc.server.piece_size,
		};

		if (buffers_plan(&q, &wc.reader.buffers, err, sizeof(err))) {
			log_err("refusing to start: %s", err);
			goto out_listen;
		}
		if (err[0])
			log_info("%s", err);
	}
	wc.server.max_extents_per_conn = 16;
	wc.server.delayed_rereads = LATER_MAX;
	wc.reader.min_guarantee = o.require;
	wc.reader.backend = o.backend;
	wc.reader.buffer_size = wc.server.piece_size;
	wc.reader.max_retries = STABLE_READER_DEFAULT_RETRIES;
	/* a reader stays on its worker: no other thread or process may use its ring */
	wc.reader.flags = STABLE_READER_ONE_THREAD;
	wc.timeout = o.timeout;
	wc.idle_timeout = o.idle_timeout;
	wc.drain_timeout = 10;
	ret = workers_start(o.threads, &wc, err, sizeof(err));
	if (ret) {
		if (ret == -EOPNOTSUPP)
			log_err("refusing to start: guarantee %s required: %s",
				stable_guarantee_name(o.require), err);
		else
			log_err("%s", err);
		goto out_listen;
	}
	/* before anyone is told we serve: whoever waits for that reads this */
	log_summary(&o, &exports, &l, &wc.reader);
	if (ready_fd >= 0) {
		/* the parent exits 0 now: we serve */
		if (write(ready_fd, "0", 1) != 1)
			log_warn("cannot tell the parent process we started: %m");
		close(ready_fd);
		ready_fd = -1;
	}

	if (o.pid_file) {
		FILE *pf = fopen(o.pid_file, "w");

		if (!pf || fprintf(pf, "%ld\n", (long)getpid()) < 0 || fclose(pf)) {
			log_err("--pid-file %s: %m", o.pid_file);
			o.pid_file = NULL;
		}
	}
	if (o.run) {
		child = run_start(o.run, o.unix_path, l.port, o.bind);
		if (child < 0) {
			status = 1;
			running = false;
		}
	}

	for (unsigned int i = 0; i < l.n; i++)
		pfd[i] = (struct pollfd){ .fd = l.fd[i], .events = POLLIN };
	pfd[l.n] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	while (running) {
		if (poll(pfd, l.n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("poll: %m");
			status = 1;
			break;
		}
		for (unsigned int i = 0; i < l.n; i++)
			if (pfd[i].revents & POLLIN)
				accept_one(l.fd[i], &o);
		if (pfd[l.n].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			switch (si.ssi_signo) {
			case SIGUSR1:
				dump_stats(&o);
				break;
			case SIGCHLD: {
				int ws;

				if (child > 0 && waitpid(child, &ws, WNOHANG) == child) {
					status = run_status(ws);
					log_info("--run command exited with status %d; stopping", status);
					running = false;
				}
				break;
			}
			case SIGHUP:
				break;
			default:
				log_info("signal %d: finishing in-flight requests, then exiting",
					 (int)si.ssi_signo);
				running = false;
				break;
			}
		}
	}
	listen_close(&l);
	workers_stop();
	if (child > 0 && waitpid(child, NULL, WNOHANG) == 0) {
		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
	}
	dump_stats(&o);
	if (o.pid_file)
		unlink(o.pid_file);
	log_info("stopped");
	close(sfd);
	if (o.unix_path && !l.activated)
		unlink(o.unix_path);
	if (sockdir[0])
		rmdir(sockdir);
	exports_close(&exports);
	log_close();
	return status;

out_listen:
	listen_close(&l);
	if (o.unix_path)
		unlink(o.unix_path);
	if (sockdir[0])
		rmdir(sockdir);
out_exports:
	exports_close(&exports);
	return 1;
}
