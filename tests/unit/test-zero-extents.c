/*
 * Description: a compressed image stores an extent of zeroes (a hole in
 * a sparse source) as an index entry alone, flagged ZERO, with no blocks.
 * Through every backend, reads that start, end or lie in such extents
 * give the right bytes, synchronously (stable_read) and in a batch of
 * asynchronous reads mixing them with stored extents (which complete
 * through stable_reap, with the reader's fd readable, like any other);
 * their extents carry the guarantee of inflated data (a sealed copy, or
 * none on the private backend) and are released as usual.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"

#define XS 65536		/* the default extent size */
#define NX 8			/* extents: data, zero, zero, data, zero, data, zero, zero */
#define LEN (NX * XS - 1000)	/* the last extent short */

static const int is_zero[NX] = { 0, 1, 1, 0, 1, 0, 1, 1 };
static uint8_t src[LEN];

static int readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* Reads [off, off + len) with stable_read, extent by extent; 1 if right. */
static int read_sync(struct stable_reader *rd, uint64_t off, size_t len,
		     enum stable_guarantee g)
{
	while (len) {
		const struct stable_extent *e;
		int good;

		if (stable_read(rd, off, len, &e))
			return 0;
		good = e->offset == off && e->length <= len && e->guarantee == g &&
		       memcmp(e->data, src + off, e->length) == 0;
		off += e->length;
		len -= e->length;
		stable_release(rd, e);
		if (!good)
			return 0;
	}
	return 1;
}

static void run(enum stable_backend backend, const char *bname)
{
	struct stable_reader_options ro = { .buffers = 8, .buffer_size = XS,
					    .max_retries = 1, .backend = backend };
	struct stable_mkimage_options mo = { .compress = 1 };
	struct stable_completion c[NX];
	struct stable_image *img;
	struct stable_reader *rd;
	enum stable_guarantee g;
	char err[512] = "";
	int ret, got = 0, right = 0;
	long long ones_size;

	tu_tmpdir();
	diag("backend %s", bname);
	/* the same source with 0x01 for the zeroes deflates as small, but
	 * each such extent takes a block: the control for the image size */
	memset(src, 1, sizeof(src));
	for (int x = 0; x < NX; x++)
		if (!is_zero[x])
			tu_fill(src + (size_t)x * XS, XS, 5 + x);
	tu_write_file(tu_path("ones"), src, LEN);
	ret = stable_mkimage(tu_path("ones"), tu_path("ones.img"), &mo, NULL, err, sizeof(err));
	ones_size = tu_file_size(tu_path("ones.img"));
	for (int x = 0; x < NX; x++)
		if (is_zero[x])
			memset(src + (size_t)x * XS, 0, x == NX - 1 ? XS - 1000 : XS);
	tu_write_file(tu_path("src"), src, LEN);
	ret = ret ? ret : stable_mkimage(tu_path("src"), tu_path("img"), &mo, NULL, err,
					  sizeof(err));
	ok(ret == 0, "make a compressed image of 3 data and 5 zero extents: %s", err);
	if (!tu_open_reader(tu_path("img"), &ro, bname, &img, &rd)) {
		tu_cleanup();
		return;
	}
	g = tu_rebuilt_guarantee(backend);	/* every extent here is inflated */
	ok(ones_size - tu_file_size(tu_path("img")) >= 5 * 4096,
	   "the image (%lld bytes) stores nothing for the 5 zero extents (%lld with 0x01s)",
	   tu_file_size(tu_path("img")), ones_size);

	ok(read_sync(rd, 0, LEN, g), "%s: stable_read of the whole image", bname);
	ok(read_sync(rd, XS + 100, 3000, g), "%s: a read inside a zero extent", bname);
	ok(read_sync(rd, XS - 500, 1000, g), "%s: a read from data into zeroes", bname);
	ok(read_sync(rd, 3 * XS - 500, 1000, g), "%s: a read from zeroes into data", bname);
	ok(read_sync(rd, LEN - 10, 10, g), "%s: the last bytes, in a short zero extent", bname);

	/* one asynchronous read per extent, zero and stored mixed */
	for (int x = 0; x < NX; x++) {
		size_t len = x == NX - 1 ? XS - 1000 : XS;

		is(stable_submit(rd, (uint64_t)x * XS, len, (uint64_t)x), 0,
		   "submit extent %d (%s)", x, is_zero[x] ? "zero" : "data");
	}
	is(stable_inflight(rd), NX, "all in flight");
	ok(readable(stable_reader_fd(rd), 5000), "the fd polls readable");
	while (got < NX) {
		int n = stable_reap(rd, c, NX);

		if (n < 0 || (n == 0 && stable_wait(rd) < 0))
			break;
		for (int i = 0; i < n; i++, got++) {
			const struct stable_extent *e = c[i].ext;
			uint64_t x = c[i].user_data;

			if (c[i].result == 0 && x < NX && e->offset == x * XS &&
			    e->guarantee == g &&
			    memcmp(e->data, src + x * XS, e->length) == 0 &&
			    e->length == (x == NX - 1 ? XS - 1000 : XS))
				right++;
			else
				diag("extent %llu: result %d", (unsigned long long)x,
				     c[i].result);
			if (c[i].result == 0)
				stable_release(rd, e);
		}
	}
	is(right, NX, "%s: every completion has its extent's bytes", bname);
	is(stable_inflight(rd), 0, "nothing left in flight");
	is(stable_reap(rd, c, NX), 0, "a reap after that finds nothing");
	is(stable_reader_free(rd), 0, "free");
	stable_image_close(img);
	tu_cleanup();
}

int main(void)
{
	TU_EACH_BACKEND(run);
	return tap_done();
}
