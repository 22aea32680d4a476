/*
 * The log: stderr in the foreground (one line per event, prefixed with
 * the time and the level), syslog(3) as a daemon. Called from any thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "stabled.h"

static bool to_syslog;
static bool debug;
static bool silent;

void log_silence(void)
{
	silent = true;
}

void log_open(bool use_syslog, bool verbose)
{
	to_syslog = use_syslog;
	debug = verbose;
	if (to_syslog)
		openlog(STABLED_NAME, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_close(void)
{
	if (to_syslog)
		closelog();
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[1024];
	va_list ap;

	if (silent || (lvl == LOG_LVL_DEBUG && !debug))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (to_syslog) {
		syslog(prio[lvl], "%s", line);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s: %s: %s\n", when, ts.tv_nsec / 1000000,
			STABLED_NAME, names[lvl], line);
	}
}
