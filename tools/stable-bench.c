/*
 * stable-bench: the same read workload through each libstable backend and
 * two baselines, measured side by side in one run (make bench-lib):
 *
 *   pbuf-inplace  a provided-buffer ring of user memory, verified in place:
 *                 fast, but the bytes can change after they were verified
 *   copy-verify   a read into private memory, a copy, and verification of
 *                 the copy: safe against the reader's own buffer, one copy
 *
 * Prints throughput and CPU seconds per GiB (user + system, all threads
 * of the process including io_uring workers). Figures, never pass/fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "stable/stable.h"

struct bench {
	const char *path;
	struct stable_image *img;
	struct stable_image_info info;
	size_t size;		/* bytes per read */
	unsigned int depth;
	uint64_t bytes;		/* bytes to read per run */
	int random, direct;
	uint64_t rng;
	uint64_t next;		/* sequential cursor */
};

struct result {
	double secs, cpu;
	uint64_t bytes, bad;
	int err;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct rusage u;

	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 +
	       (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

/* The next read's logical offset: sequential (wrapping) or random, aligned to size. */
static uint64_t next_offset(struct bench *b)
{
	uint64_t slots = b->info.data_length / b->size, off;

	if (b->random) {
		b->rng ^= b->rng << 13;
		b->rng ^= b->rng >> 7;
		b->rng ^= b->rng << 17;
		return (b->rng % slots) * b->size;
	}
	off = b->next;
	b->next = (b->next + b->size) % (slots * b->size);
	return off;
}

/* Checks the blocks of one read landed at buf for logical offset off. */
static uint64_t verify(struct bench *b, const uint8_t *buf, uint64_t off, size_t len)
{
	uint32_t bs = b->info.block_size, want;
	uint64_t bad = 0;

	for (size_t i = 0; i < len; i += bs) {
		stable_image_block_crc(b->img, (off + i) / bs, &want);
		bad += stable_crc32c(0, buf + i, bs) != want;
	}
	return bad;
}

static void run_libstable(struct bench *b, enum stable_backend backend, struct result *r)
{
	struct stable_reader_options ro = { .backend = backend, .buffers = b->depth,
					    .buffer_size = b->size < 4096 ? 4096 : b->size,
					    .max_retries = 2 };
	struct stable_completion c[64];
	struct stable_reader *rd;
	uint64_t submitted = 0;
	char err[512];
	int n;

	if (stable_reader_new(&rd, b->img, &ro, err, sizeof(err))) {
		r->err = 1;
		fprintf(stderr, "# %s\n", err);
		return;
	}
	while (r->bytes < b->bytes) {
		while (submitted - r->bytes < (uint64_t)b->depth * b->size &&
		       submitted < b->bytes &&
		       stable_submit(rd, next_offset(b), b->size, 0) == 0)
			submitted += b->size;
		n = stable_reap(rd, c, 64);
		if (n == 0)
			stable_wait(rd);
		for (int i = 0; i < n; i++) {
			if (c[i].result) {
				r->bad++;
				r->bytes += b->size;
				continue;
			}
			r->bytes += c[i].ext->length;
			stable_release(rd, c[i].ext);
		}
	}
	while (stable_inflight(rd)) {
		stable_wait(rd);
		n = stable_reap(rd, c, 64);
		for (int i = 0; i < n; i++)
			if (c[i].result == 0)
				stable_release(rd, c[i].ext);
	}
	stable_reader_free(rd);
}

/* Baselines: raw io_uring on the data file. */
static int open_data(struct bench *b)
{
	int fd = open(b->info.data_path, O_RDONLY | (b->direct ? O_DIRECT : 0));

	if (fd < 0)
		cli_error("%s: %s", b->info.data_path, strerror(errno));
	return fd;
}

static void run_pbuf(struct bench *b, struct result *r)
{
	const unsigned int entries = 64;
	struct io_uring_buf_reg reg = { 0 };
	struct io_uring_buf_ring *br;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	uint8_t *mem;
	uint64_t submitted = 0;
	unsigned int inflight = 0;
	int fd = open_data(b);

	if (fd < 0 || io_uring_queue_init(64, &ring, 0)) {
		r->err = 1;
		return;
	}
	br = mmap(NULL, entries * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
		  MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (posix_memalign((void **)&mem, 4096, entries * b->size) || br == MAP_FAILED) {
		r->err = 1;
		return;
	}
	reg.ring_addr = (unsigned long)br;
	reg.ring_entries = entries;
	reg.bgid = 1;
	if (io_uring_register_buf_ring(&ring, &reg, 0)) {
		fprintf(stderr, "# provided buffer rings not supported\n");
		r->err = 1;
		return;
	}
	io_uring_buf_ring_init(br);
	for (unsigned int i = 0; i < entries; i++)
		io_uring_buf_ring_add(br, mem + i * b->size, (unsigned int)b->size, (unsigned short)i,
				      io_uring_buf_ring_mask(entries), (int)i);
	io_uring_buf_ring_advance(br, (int)entries);
	while (r->bytes < b->bytes) {
		while (inflight < b->depth && submitted < b->bytes) {
			uint64_t off = next_offset(b);

			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_read(sqe, fd, NULL, (unsigned int)b->size,
					   b->info.data_offset + off);
			sqe->flags |= IOSQE_BUFFER_SELECT;
			sqe->buf_group = 1;
			io_uring_sqe_set_data64(sqe, off);
			inflight++;
			submitted += b->size;
		}
		io_uring_submit_and_wait(&ring, 1);
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			unsigned int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

			if (cqe->res == (int)b->size && (cqe->flags & IORING_CQE_F_BUFFER))
				r->bad += verify(b, mem + bid * b->size,
						 io_uring_cqe_get_data64(cqe), b->size);
			else
				r->bad++;
			io_uring_buf_ring_add(br, mem + bid * b->size, (unsigned int)b->size,
					      (unsigned short)bid, io_uring_buf_ring_mask(entries), 0);
			io_uring_buf_ring_advance(br, 1);
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			r->bytes += b->size;
		}
	}
	io_uring_queue_exit(&ring);
	free(mem);
	munmap(br, entries * sizeof(struct io_uring_buf));
	close(fd);
}

static void run_copy(struct bench *b, struct result *r)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	uint8_t *mem, *copy;
	uint64_t submitted = 0;
	unsigned int inflight = 0, nfree = 0, free_slots[64];
	int fd = open_data(b);

	if (fd < 0 || io_uring_queue_init(64, &ring, 0) ||
	    posix_memalign((void **)&mem, 4096, (size_t)b->depth * b->size) ||
	    posix_memalign((void **)&copy, 4096, b->size)) {
		r->err = 1;
		return;
	}
	/* reads complete in any order: a buffer is reused only once it is free */
	while (nfree < b->depth) {
		free_slots[nfree] = nfree;
		nfree++;
	}
	while (r->bytes < b->bytes) {
		while (inflight < b->depth && submitted < b->bytes) {
			uint64_t off = next_offset(b);
			unsigned int slot = free_slots[--nfree];

			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_read(sqe, fd, mem + (size_t)slot * b->size,
					   (unsigned int)b->size, b->info.data_offset + off);
			io_uring_sqe_set_data64(sqe, off << 8 | slot);
			inflight++;
			submitted += b->size;
		}
		io_uring_submit_and_wait(&ring, 1);
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);

			if (cqe->res == (int)b->size) {
				memcpy(copy, mem + (size_t)(ud & 0xff) * b->size, b->size);
				r->bad += verify(b, copy, ud >> 8, b->size);
			} else {
				r->bad++;
			}
			free_slots[nfree++] = (unsigned int)(ud & 0xff);
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			r->bytes += b->size;
		}
	}
	io_uring_queue_exit(&ring);
	free(mem);
	free(copy);
	close(fd);
}

/* libstable's backends, strongest first, then the two baselines */
static const struct mode {
	const char *name;
	enum stable_backend backend;	/* AUTO: a baseline */
	const char *guarantee;
} modes[] = {
	{ "kmbuf-ro", STABLE_BACKEND_KMBUF_RO, "kernel-ro" },
	{ "sealed", STABLE_BACKEND_SEALED, "sealed" },
	{ "ro-fixed", STABLE_BACKEND_RO_FIXED, "ro-fixed" },
	{ "ro-view", STABLE_BACKEND_RO_VIEW, "ro-view" },
	{ "private", STABLE_BACKEND_PRIVATE, "none" },
	{ "pbuf-inplace", STABLE_BACKEND_AUTO, "none (mutable after check)" },
	{ "copy-verify", STABLE_BACKEND_AUTO, "none (copy)" },
};

static void run(struct bench *b, const struct mode *mode, struct result *r)
{
	double t0, c0;

	memset(r, 0, sizeof(*r));
	b->next = 0;
	b->rng = 0x2545F4914F6CDD1Dull;
	t0 = now();
	c0 = cpu_now();
	if (mode->backend != STABLE_BACKEND_AUTO)
		run_libstable(b, mode->backend, r);
	else if (!strcmp(mode->name, "pbuf-inplace"))
		run_pbuf(b, r);
	else
		run_copy(b, r);
	r->secs = now() - t0;
	r->cpu = cpu_now() - c0;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: stable-bench [OPTIONS] IMAGE\n"
"Read IMAGE through each libstable backend and two baselines, side by side.\n"
"\n"
"  -m, --mode=NAME     only this mode (kmbuf-ro, sealed, ro-fixed, ro-view, private,\n"
"                      pbuf-inplace, copy-verify); default: all\n"
"  -s, --size=N        bytes per read, a multiple of the block size (65536)\n"
"  -r, --random        random aligned offsets (default sequential)\n"
"  -D, --direct        O_DIRECT\n"
"  -q, --depth=N       reads in flight (8, at most 64)\n"
"  -b, --bytes=N       bytes per mode (256M)\n"
"  -h, --help, -V, --version\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "size", required_argument, NULL, 's' },
		{ "random", no_argument, NULL, 'r' },
		{ "direct", no_argument, NULL, 'D' },
		{ "depth", required_argument, NULL, 'q' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench b = { .size = 65536, .depth = 8, .bytes = 256u << 20 };
	struct stable_open_options oo = { 0 };
	const char *only = NULL;
	double base_pbuf = 0, base_copy = 0;
	char err[512];
	uint64_t v;
	int c;

	cli_prog = "stable-bench";
	while ((c = getopt_long(argc, argv, "m:s:rDq:b:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': only = optarg; break;
		case 'r': b.random = 1; break;
		case 'D': b.direct = 1; break;
		case 's':
			if (cli_parse_size(optarg, &v) || v == 0 || v > (16u << 20))
				cli_die("--size: '%s' is not a size up to 16M", optarg);
			b.size = (size_t)v;
			break;
		case 'q':
			if (cli_parse_size(optarg, &v) || v == 0 || v > 64)
				cli_die("--depth: '%s' is not from 1 to 64", optarg);
			b.depth = (unsigned int)v;
			break;
		case 'b':
			if (cli_parse_size(optarg, &v) || v == 0)
				cli_die("--bytes: '%s' is not a size", optarg);
			b.bytes = v;
			break;
		default: cli_other_option(c, usage);
		}
	}
	cli_operands(argc, optind, 1, 1, usage);
	b.path = argv[optind];
	if (b.direct)
		oo.flags |= STABLE_OPEN_DIRECT;
	if (stable_image_open(&b.img, b.path, &oo, err, sizeof(err)))
		cli_die("%s", err);
	stable_image_get_info(b.img, &b.info);
	if (b.info.extent_size)
		cli_die("%s: a compressed image: benchmark an uncompressed one", b.path);
	if (b.size % b.info.block_size || b.info.data_length < b.size)
		cli_die("--size %zu must be a multiple of the block size %u and fit the image",
			b.size, b.info.block_size);

	printf("%-13s %8s %-10s %-6s %10s %12s %9s %9s %s\n", "mode", "size", "pattern", "io",
	       "MiB/s", "cpu-s/GiB", "x-pbuf", "x-copy", "guarantee");
	for (size_t i = sizeof(modes) / sizeof(modes[0]); i-- > 0;) {
		struct result r;
		double mibs;

		/* baselines first (the loop runs backwards), so ratios can follow */
		if (only && strcmp(only, modes[i].name))
			continue;
		run(&b, &modes[i], &r);
		if (r.err) {
			printf("%-13s %8zu %-10s %-6s %10s\n", modes[i].name, b.size,
			       b.random ? "random" : "sequential", b.direct ? "direct" : "cached",
			       "n/a");
			continue;
		}
		mibs = (double)r.bytes / (1 << 20) / r.secs;
		if (!strcmp(modes[i].name, "pbuf-inplace"))
			base_pbuf = mibs;
		if (!strcmp(modes[i].name, "copy-verify"))
			base_copy = mibs;
		printf("%-13s %8zu %-10s %-6s %10.0f %12.3f %9.2f %9.2f %s%s\n", modes[i].name, b.size,
		       b.random ? "random" : "sequential", b.direct ? "direct" : "cached", mibs,
		       r.cpu / ((double)r.bytes / (1 << 30)),
		       base_pbuf ? mibs / base_pbuf : 0.0, base_copy ? mibs / base_copy : 0.0,
		       modes[i].guarantee,
		       r.bad ? " BAD-BLOCKS" : "");
		fflush(stdout);
	}
	stable_image_close(b.img);
	return EXIT_OK;
}
