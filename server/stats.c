/*
 * Counters, shared by all threads (relaxed atomics: they are figures for
 * people, not synchronisation). Readable while running: SIGUSR1 logs
 * them and rewrites --stats-file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "stabled.h"

struct stats stats;

#define V(f) ((unsigned long long)atomic_load_explicit(&stats.f, memory_order_relaxed))

void stats_format(char *buf, size_t len)
{
	snprintf(buf, len,
		 "connections=%llu connections_now=%llu connections_refused=%llu "
		 "requests=%llu read_requests=%llu bytes=%llu verify_failures=%llu "
		 "retries=%llu rebuilds=%llu table_reloads=%llu delayed_rereads=%llu "
		 "read_errors=%llu errors=%llu protocol_errors=%llu",
		 V(connections), V(connections_now), V(connections_refused),
		 V(requests), V(read_requests), V(bytes), V(verify_failures),
		 V(retries), V(rebuilds), V(table_reloads), V(delayed_rereads), V(read_errors), V(errors),
		 V(protocol_errors));
}

void stats_log(void)
{
	char line[1024];

	stats_format(line, sizeof(line));
	log_info("stats: %s", line);
}

/* One "name value" per line, replaced atomically (write, then rename). */
int stats_write_file(const char *path)
{
	char line[1024], tmp[4096], *p, *tok;
	FILE *f;
	int ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	stats_format(line, sizeof(line));
	for (p = line; (tok = strsep(&p, " ")) != NULL;) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq = ' ';
		fprintf(f, "%s\n", tok);
	}
	if (fclose(f))
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

void stats_absorb(struct stable_reader *rd, struct stable_stats *last)
{
	struct stable_stats now;

	stable_reader_stats(rd, &now);
	if (now.verify_failures != last->verify_failures)
		atomic_fetch_add_explicit(&stats.verify_failures,
					  now.verify_failures - last->verify_failures,
					  memory_order_relaxed);
	if (now.retries != last->retries)
		atomic_fetch_add_explicit(&stats.retries, now.retries - last->retries,
					  memory_order_relaxed);
	if (now.rebuilds != last->rebuilds)
		atomic_fetch_add_explicit(&stats.rebuilds, now.rebuilds - last->rebuilds,
					  memory_order_relaxed);
	if (now.table_reloads != last->table_reloads)
		atomic_fetch_add_explicit(&stats.table_reloads,
					  now.table_reloads - last->table_reloads,
					  memory_order_relaxed);
	*last = now;
}
