/*
 * Description: a consistent writer updates an image in place while a
 * reader that opened it earlier reads on (docs/format.md, "Updating an
 * image in place").
 *  - Step by step, with and without parity: before the header commits
 *    the update the reader delivers the old version (rebuilt from the
 *    old parity) or fails with -EIO, never the new bytes unchecked;
 *    after it, the reader reloads the table and delivers the new version.
 *  - Negative control: with STABLE_OPEN_NO_RELOAD the committed update
 *    is never served; the reader fails, which shows the reload is what
 *    serves it.
 *  - Together: a writer thread rewrites random blocks for a while and
 *    reader threads read every block over and over; every block
 *    delivered is one whole version (never torn), and once the writer
 *    stops a full pass delivers exactly the final versions.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "rewrite.h"
#include "tap.h"
#include "testutil.h"

#define BS 4096u
#define NBLOCKS 64u
#define READERS 2
#define RUN_SECONDS 2
#define MIN_REWRITES 20

static void make_versioned(const char *img, unsigned int parity_group)
{
	static uint8_t src[NBLOCKS * BS];
	struct stable_mkimage_options mo = { .block_size = BS, .parity_group = parity_group };
	char err[512] = "";
	uint32_t digest;

	for (uint64_t b = 0; b < NBLOCKS; b++)
		vb_fill(src + b * BS, BS, b, 0);
	tu_write_file(tu_path("src"), src, sizeof(src));
	if (!ok(stable_mkimage(tu_path("src"), img, &mo, &digest, err, sizeof(err)) == 0,
		"make an image of versioned blocks (parity group %u)", parity_group))
		diag("%s", err);
}

/* Reads block b: its version, or -errno. -ERANGE for bytes not one version. */
static int64_t read_version(struct stable_reader *rd, uint64_t b)
{
	uint8_t buf[BS];	/* one per thread */
	uint64_t v;
	int ret = tu_read_all(rd, b * BS, BS, buf);

	if (ret)
		return ret;
	return vb_check(buf, BS, b, &v) ? -ERANGE : (int64_t)v;
}

/* The writer's steps one by one, the reader looking after each. */
static void steps(enum stable_backend backend, const char *bname, unsigned int group)
{
	struct stable_reader_options ro = { .max_retries = 2, .backend = backend };
	/* Before the commit: parity still old gives the old version back. */
	const int64_t mid = group ? 1 : -EIO;
	struct stable_image *img;
	struct stable_reader *rd;
	struct stable_stats st;
	struct rw_image w;
	uint8_t data[BS];

	make_versioned(tu_path("img"), group);
	if (!tu_open_reader(tu_path("img"), &ro, bname, &img, &rd))
		return;
	is(read_version(rd, 5), 0, "%s/%u: block 5 is at version 0", bname, group);
	is(rw_open(&w, tu_path("img")), 0, "the writer opens the image");
	is(rw_rewrite(&w, 5, 1, 0, 0), 0, "the writer rewrites block 5 as version 1, all steps");
	is(read_version(rd, 5), 1, "%s/%u: the reader serves version 1", bname, group);
	stable_reader_stats(rd, &st);
	is(st.table_reloads, 1, "%s/%u: after one table reload", bname, group);

	vb_fill(data, BS, 5, 2);
	rw_put_data(&w, 5, data);
	is(read_version(rd, 5), mid, "%s/%u: data written: %s", bname, group,
	   group ? "the old version, rebuilt" : "-EIO");
	rw_put_parity(&w, 5);
	is(read_version(rd, 5), -EIO, "%s/%u: parity written: -EIO", bname, group);
	rw_put_sums(&w, 5, data);
	is(read_version(rd, 5), -EIO, "%s/%u: checksums written, header not: -EIO",
	   bname, group);
	is(read_version(rd, 6), 0, "%s/%u: the block beside it still reads", bname, group);
	rw_commit(&w);
	is(read_version(rd, 5), 2, "%s/%u: committed: version 2", bname, group);
	stable_reader_free(rd);
	stable_image_close(img);

	/* Negative control: an image that may not reload. */
	{
		struct stable_open_options oo = { .flags = STABLE_OPEN_NO_RELOAD };
		char err[512];

		stable_image_open(&img, tu_path("img"), &oo, err, sizeof(err));
		stable_reader_new(&rd, img, &ro, err, sizeof(err));
		is(rw_rewrite(&w, 9, 1, 0, 0), 0, "the writer rewrites block 9");
		is(read_version(rd, 9), -EIO,
		   "%s/%u: negative control: without reloads the update is never served",
		   bname, group);
		stable_reader_free(rd);
		stable_image_close(img);
	}
	rw_close(&w);
}

struct race {
	struct stable_image *img;
	struct stable_reader_options ro;
	const char *path;
	int stop;
	uint64_t final[NBLOCKS];
	uint64_t rewrites, delivered, torn, errors;
	pthread_mutex_t lock;
};

static void *writer(void *arg)
{
	struct race *r = arg;
	uint64_t rnd = 7, v = 0;
	struct rw_image w;

	if (rw_open(&w, r->path))
		return NULL;
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		uint64_t b = tu_rnd(&rnd) % NBLOCKS;

		r->final[b] = ++v;
		if (rw_rewrite(&w, b, v, 200, 0))
			break;
		__atomic_add_fetch(&r->rewrites, 1, __ATOMIC_RELAXED);
	}
	rw_close(&w);
	return NULL;
}

static void *reader(void *arg)
{
	struct race *r = arg;
	uint64_t delivered = 0, torn = 0, errors = 0;
	struct stable_reader *rd;
	char err[512];

	if (stable_reader_new(&rd, r->img, &r->ro, err, sizeof(err)))
		return NULL;
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		for (uint64_t b = 0; b < NBLOCKS; b++) {
			int64_t v = read_version(rd, b);

			if (v >= 0)
				delivered++;
			else if (v == -ERANGE)
				torn++;
			else
				errors++;
		}
	}
	stable_reader_free(rd);
	pthread_mutex_lock(&r->lock);
	r->delivered += delivered;
	r->torn += torn;
	r->errors += errors;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void race(enum stable_backend backend, const char *bname, unsigned int group)
{
	struct race r = { .ro = { .max_retries = 2, .backend = backend },
			  .path = tu_path("race"), .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t w, rds[READERS];
	struct stable_reader *rd;
	uint64_t wrong = 0;
	char err[512];

	make_versioned(r.path, group);
	if (!tu_open_reader(r.path, &r.ro, bname, &r.img, &rd))
		return;
	stable_reader_free(rd);
	pthread_create(&w, NULL, writer, &r);
	for (int i = 0; i < READERS; i++)
		pthread_create(&rds[i], NULL, reader, &r);
	/* RUN_SECONDS and at least MIN_REWRITES (valgrind starves threads),
	 * a minute at most: progress, not time, is what the race needs */
	for (int t = 0; t < 600; t++) {
		if (t >= RUN_SECONDS * 10 &&
		    __atomic_load_n(&r.rewrites, __ATOMIC_RELAXED) >= MIN_REWRITES)
			break;
		usleep(100000);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
	pthread_join(w, NULL);
	for (int i = 0; i < READERS; i++)
		pthread_join(rds[i], NULL);
	diag("%s/%u: %llu rewrites; %llu blocks delivered, %llu errors, %llu torn",
	     bname, group, (unsigned long long)r.rewrites,
	     (unsigned long long)r.delivered, (unsigned long long)r.errors,
	     (unsigned long long)r.torn);
	ok(r.rewrites >= MIN_REWRITES && r.delivered > NBLOCKS,
	   "%s/%u: the writer and the readers both made progress", bname, group);
	is(r.torn, 0, "%s/%u: no block delivered torn or wrong", bname, group);

	stable_reader_new(&rd, r.img, &r.ro, err, sizeof(err));
	for (uint64_t b = 0; b < NBLOCKS; b++)
		if (read_version(rd, b) != (int64_t)r.final[b])
			wrong++;
	is(wrong, 0, "%s/%u: after the writer stopped every block reads at its last version",
	   bname, group);
	stable_reader_free(rd);
	stable_image_close(r.img);
}

/* The check the race relies on: half of one version and half of another is caught. */
static void torn_is_caught(void)
{
	static uint8_t a[BS], b[BS];
	uint64_t v;

	vb_fill(a, BS, 3, 1);
	vb_fill(b, BS, 3, 2);
	is(vb_check(a, BS, 3, &v), 0, "a whole version checks");
	memcpy(a + BS / 2, b + BS / 2, BS / 2);
	is(vb_check(a, BS, 3, &v), -1, "negative control: a torn block is caught");
}

static void run(enum stable_backend backend, const char *bname)
{
	tu_tmpdir();
	steps(backend, bname, 4);
	steps(backend, bname, 0);
	race(backend, bname, 4);
	race(backend, bname, 0);
	tu_cleanup();
}

int main(void)
{
	torn_is_caught();
	TU_EACH_BACKEND(run);
	return tap_done();
}
