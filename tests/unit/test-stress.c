/*
 * Description: a long random read/release stress on every backend the
 * kernel offers, every byte checked against the source. Reads of random
 * offsets and lengths go through both APIs (synchronous and submit/reap),
 * extents are held in random numbers and released in random order, and
 * each is checked again just before release (verified bytes must not
 * have changed while held). The image is compressed in parts, has parity
 * and has bad blocks, so re-reads, rebuilds and inflation run under load.
 * Bounded by STABLE_STRESS_SECONDS per backend (default 2).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "tap.h"
#include "testutil.h"

#define LEN (3 * 1024 * 1024 + 1234)
#define SLOTS 12

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	return tu_rnd(&rng);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct held {
	const struct stable_extent *ext;
	uint32_t crc;
};

static uint8_t src[LEN];

static int check(const struct stable_extent *e)
{
	return e->length > 0 && e->offset + e->length <= LEN &&
	       memcmp(e->data, src + e->offset, e->length) == 0;
}

#define MIN_OPS 200

static void stress(const char *img_path, enum stable_backend backend,
		   const char *bname, double seconds)
{
	struct stable_reader_options ro = { .backend = backend, .buffers = SLOTS,
					    .buffer_size = 256 * 1024, .max_retries = 1 };
	struct stable_completion c[SLOTS];
	struct held h[SLOTS];
	struct stable_image *img;
	struct stable_reader *rd;
	struct stable_stats st;
	unsigned int nheld = 0;
	uint64_t ops = 0, wrong = 0, changed = 0, errors = 0;
	double end = now() + seconds;
	int ret;

	if (!tu_open_reader(img_path, &ro, bname, &img, &rd))
		return;
	/* at least MIN_OPS requests however slow the machine: not a timed test */
	while (now() < end || ops < MIN_OPS) {
		uint64_t off = rnd() % LEN;
		size_t len = 1 + (size_t)(rnd() % (LEN - off < 600000 ? LEN - off : 600000));
		const struct stable_extent *e = NULL;
		int n;

		if (nheld + stable_inflight(rd) < SLOTS && rnd() % 3) {
			if (rnd() % 2) {
				ret = stable_read(rd, off, len, &e);
				if (ret == 0) {
					wrong += !check(e) || e->offset != off;
					h[nheld].ext = e;
					h[nheld++].crc = stable_crc32c(0, e->data, e->length);
				} else if (errors++ < 3) {
					diag("%s: stable_read(%llu, %zu): %d: %s", bname,
					     (unsigned long long)off, len, ret, stable_errmsg(rd));
				}
			} else {
				ret = stable_submit(rd, off, len, off);
				if (ret && errors++ < 3)
					diag("%s: stable_submit(%llu, %zu): %d: %s", bname,
					     (unsigned long long)off, len, ret, stable_errmsg(rd));
			}
			ops++;
		}
		n = stable_reap(rd, c, SLOTS);
		for (int i = 0; i < n; i++) {
			if (c[i].result) {
				if (errors++ < 3)
					diag("%s: completion of %llu: %d: %s", bname,
					     (unsigned long long)c[i].user_data, c[i].result,
					     stable_errmsg(rd));
				continue;
			}
			wrong += !check(c[i].ext) || c[i].ext->offset != c[i].user_data;
			h[nheld].ext = c[i].ext;
			h[nheld++].crc = stable_crc32c(0, c[i].ext->data, c[i].ext->length);
		}
		/* release a random held extent, checking it first */
		if (nheld && (rnd() % 2 || nheld + stable_inflight(rd) >= SLOTS)) {
			unsigned int k = (unsigned int)(rnd() % nheld);

			changed += stable_crc32c(0, h[k].ext->data, h[k].ext->length) != h[k].crc;
			if (stable_release(rd, h[k].ext))
				wrong++;
			h[k] = h[--nheld];
		}
		if (n == 0 && nheld + stable_inflight(rd) >= SLOTS)
			stable_wait(rd);
	}
	while (stable_inflight(rd)) {
		int n;

		stable_wait(rd);
		n = stable_reap(rd, c, SLOTS);
		for (int i = 0; i < n; i++)
			if (c[i].result == 0)
				h[nheld++].ext = c[i].ext;
	}
	while (nheld)
		stable_release(rd, h[--nheld].ext);
	stable_reader_stats(rd, &st);
	diag("%s: %llu requests, %llu extents, %llu MiB, %llu retries, %llu rebuilds", bname,
	     (unsigned long long)ops, (unsigned long long)st.reads,
	     (unsigned long long)(st.bytes >> 20), (unsigned long long)st.retries,
	     (unsigned long long)st.rebuilds);
	ok(ops >= MIN_OPS, "%s: the stress ran (%llu requests)", bname, (unsigned long long)ops);
	is(wrong, 0, "%s: every delivered byte equals the source", bname);
	is(changed, 0, "%s: no held extent changed before its release", bname);
	is(errors, 0, "%s: no request failed (bad blocks are all rebuildable)", bname);
	ok(st.rebuilds > 0, "%s: rebuilds happened under load (%llu)", bname,
	   (unsigned long long)st.rebuilds);
	is(stable_reader_free(rd), 0, "%s: the pool is whole at the end", bname);
	stable_image_close(img);
}

int main(void)
{
	struct stable_mkimage_options mo = { .compress = 1, .parity_group = 4,
					     .extent_size = 65536 };
	const char *s = getenv("STABLE_STRESS_SECONDS");
	double seconds = s ? atof(s) : 2.0;
	char err[512];
	uint32_t digest;

	tu_tmpdir();
	tu_fill(src, LEN, 21);
	tu_write_file(tu_path("src"), src, LEN);
	if (!ok(stable_mkimage(tu_path("src"), tu_path("img"), &mo, &digest, err,
			       sizeof(err)) == 0, "make a compressed image with parity"))
		diag("%s", err);
	/* one bad stored block in every 16th parity group */
	for (uint64_t g = 0; g < 60; g += 16)
		tu_flip(tu_path("img"), 4096 + (g * 4 + 1) * 4096 + 77, 4);
	stress(tu_path("img"), STABLE_BACKEND_PRIVATE, "private", seconds);
	stress(tu_path("img"), STABLE_BACKEND_SEALED, "sealed", seconds);
	stress(tu_path("img"), STABLE_BACKEND_RO_VIEW, "ro-view", seconds);
	stress(tu_path("img"), STABLE_BACKEND_RO_FIXED, "ro-fixed", seconds);
	stress(tu_path("img"), STABLE_BACKEND_KMBUF_RO, "kmbuf-ro", seconds);
	tu_cleanup();
	return tap_done();
}
