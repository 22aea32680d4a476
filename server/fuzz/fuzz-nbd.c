/*
 * libFuzzer target: the bytes are what a client sends, from the first
 * byte after our greeting. They go through the real handshake and
 * request parser (handshake.c, protocol.c) and reads through libstable
 * on small images, one with a corrupt block that parity rebuilds and one
 * whose corrupt block cannot be rebuilt. The "network" drains the reply
 * queue in a rhythm taken from the first input byte, so that reads also
 * park on exhausted buffers and resume. After every input no extent may
 * still be held: a leak there would starve a real server.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reader.h"
#include "stabled.h"
#include "stable/mkimage.h"

static struct export_table table;
static struct stable_reader *readers[3];
static struct stable_stats last[3];
static const struct server_config cfg = {
	.max_request = 32u << 20, .max_extents_per_conn = 6, .piece_size = 16384,
	/* no delayed re-reads: a failed read is answered within the input's
	 * turns, so the error paths stay reachable */
	.delayed_rereads = 0,
};

static void die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz-nbd: %s: %s\n", what, err);
	abort();
}

static void write_file(const char *path, size_t len, uint32_t seed, long corrupt)
{
	FILE *f = fopen(path, "w");

	if (!f)
		die(path, "cannot create");
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		fputc((int)(seed >> 16), f);
	}
	if (corrupt >= 0) {
		fseek(f, corrupt, SEEK_SET);
		fputc(0x5a, f);
		fputc(0xa5, f);
	}
	fclose(f);
}

static void make_export(const char *dir, const char *name, int parity,
			int compress, long corrupt, unsigned int i)
{
	char raw[512], img[512], arg[1100], err[512];
	struct stable_mkimage_options o = { .block_size = 4096, .sidecar = !compress,
					    .compress = compress,
					    .parity_group = parity ? 4 : 0 };
	struct stable_reader_options ro = { .buffers = 8, .buffer_size = 16384,
					    .max_retries = 1 };
	uint32_t digest;

	snprintf(raw, sizeof(raw), "%s/%s.raw", dir, name);
	snprintf(img, sizeof(img), "%s/%s.stable", dir, name);
	write_file(raw, 96 * 1024 + 1000, i + 1, -1);
	if (stable_mkimage(raw, img, &o, &digest, err, sizeof(err)))
		die("stable_mkimage", err);
	if (corrupt >= 0)	/* the sidecar's data file changes under it */
		write_file(raw, 96 * 1024 + 1000, i + 1, corrupt);
	snprintf(arg, sizeof(arg), "%s=%s", name, img);
	if (exports_add(&table, arg, err, sizeof(err)))
		die("exports_add", err);
	if (stable_reader_new(&readers[i], table.exp[i].img, &ro, err, sizeof(err)))
		die("stable_reader_new", err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/fuzz-nbd.XXXXXX";

	(void)argc;
	(void)argv;
	log_silence();
	if (!mkdtemp(dir))
		die("mkdtemp", "failed");
	make_export(dir, "p", 1, 0, 3 * 4096 + 7, 0);	/* rebuilt from parity */
	make_export(dir, "n", 0, 0, 5 * 4096 + 9, 1);	/* fails: EIO */
	make_export(dir, "z", 0, 1, -1, 2);		/* compressed */
	return 0;
}

/* Answers finished reads, waiting for them if none has finished yet. */
static bool reap(void)
{
	bool any = false, busy = false;

	for (unsigned int i = 0; i < 3; i++) {
		any |= reads_reap(readers[i]) > 0;
		busy |= stable_inflight(readers[i]) > 0;
	}
	if (!any && busy) {
		for (unsigned int i = 0; i < 3; i++)
			if (stable_inflight(readers[i]))
				stable_wait(readers[i]);
		for (unsigned int i = 0; i < 3; i++)
			any |= reads_reap(readers[i]) > 0;
	}
	return any;
}

/* The client reads n bytes (all if n is 0). */
static void drain(struct conn *c, size_t n)
{
	if (!n || n > c->out.bytes)
		n = (size_t)c->out.bytes;
	outq_advance(&c->out, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conn c;
	size_t pos = 1, step, drain_step;

	if (size < 1)
		return 0;
	step = (data[0] & 15) * 7 + 1;		/* bytes per "recv" */
	drain_step = (data[0] >> 4) * 4096;	/* bytes the client reads per turn */
	if (conn_init(&c, &table, &cfg, readers, last, "fuzz"))
		abort();
	while (pos < size && c.state != CS_DEAD) {
		size_t n = size - pos < step ? size - pos : step;

		conn_compact(&c);
		if (n > CONN_IN_SIZE - c.in_len)
			n = CONN_IN_SIZE - c.in_len;
		memcpy(c.in + c.in_len, data + pos, n);
		c.in_len += n;
		pos += n;
		for (int turns = 0; turns < 64; turns++) {
			bool progress = conn_process(&c);

			progress |= reap();
			if (!c.out.bytes && !progress)
				break;
			drain(&c, drain_step);
		}
		if (c.state == CS_CLOSING && !c.out.count)
			break;
	}
	/* the connection goes away: its reads in flight still come back */
	c.state = CS_DEAD;
	for (int turns = 0; c.reads_inflight && turns < 1000; turns++)
		reap();
	if (c.reads_inflight)
		abort();
	drain(&c, 0);
	conn_fini(&c);
	for (unsigned int i = 0; i < 3; i++)
		if (readers[i]->held) {
			fprintf(stderr, "fuzz-nbd: export %u: %u extents still held\n",
				i, readers[i]->held);
			abort();
		}
	return 0;
}
