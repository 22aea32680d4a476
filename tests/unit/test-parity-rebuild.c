/*
 * Description: a reader rebuilds one bad block per parity group from the
 * rest of the group and delivers the right bytes, counting the rebuild;
 * with two bad blocks in one group the read fails with -EIO, the error
 * names the block and the message names the other bad block too; and
 * without parity a bad block fails after the configured re-reads.
 */
#include <errno.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"

#define LEN (64 * 4096 + 1000)

static void run(enum stable_backend backend, const char *bname)
{
	static uint8_t src[LEN], out[LEN];
	struct stable_mkimage_options mo = { .block_size = 4096, .parity_group = 4 };
	struct stable_reader_options ro = { .max_retries = 3, .backend = backend };
	struct stable_image *img;
	struct stable_reader *rd;
	struct stable_stats st;
	struct stable_error e;
	char err[512] = "";
	uint32_t digest;
	int ret;

	tu_tmpdir();
	diag("backend %s", bname);
	tu_fill(src, LEN, 3);
	tu_write_file(tu_path("src"), src, LEN);
	ret = stable_mkimage(tu_path("src"), tu_path("img"), &mo, &digest, err, sizeof(err));
	if (!ok(ret == 0, "make an image with parity groups of 4"))
		diag("%s", err);

	/* Data starts at 4096: block b is at 4096 * (b + 1). One bad block in groups 0, 2 and 16. */
	tu_flip(tu_path("img"), 4096 * 2 + 17, 3);
	tu_flip(tu_path("img"), 4096 * 10 + 4000, 0);
	tu_flip(tu_path("img"), 4096 * 65 + 999, 7);	/* the short last block */

	if (!tu_open_reader(tu_path("img"), &ro, bname, &img, &rd)) {
		tu_cleanup();
		return;
	}
	memset(out, 0, sizeof(out));
	ret = tu_read_all(rd, 0, LEN, out);
	is(ret, 0, "read everything with three bad blocks in three groups");
	ok(memcmp(out, src, LEN) == 0, "every byte is right after rebuilds");
	{
		const struct stable_extent *x;

		ret = stable_read(rd, 1 * 4096 + 10, 100, &x);	/* block 1 is bad */
		ok(ret == 0 && (x->flags & STABLE_EXTENT_REBUILT) &&
		   memcmp(x->data, src + 1 * 4096 + 10, 100) == 0,
		   "%s: a rebuilt extent says so and has the right bytes", bname);
		if (ret == 0) {
			is(x->guarantee, tu_rebuilt_guarantee(backend),
			   "%s: the rebuilt bytes carry the backend's guarantee", bname);
			stable_release(rd, x);
		}
	}
	stable_reader_stats(rd, &st);
	is(st.rebuilds, 4, "four rebuilds counted");
	is(st.retries, 12, "three re-reads per bad block before rebuilding");
	is(st.verify_failures, 16, "each failed check counted");
	stable_reader_free(rd);

	/* A second bad block in group 2 (blocks 8-11). */
	tu_flip(tu_path("img"), 4096 * 12 + 5, 1);
	stable_reader_new(&rd, img, &ro, err, sizeof(err));
	ret = tu_read_all(rd, 8 * 4096, 4 * 4096, out);
	is(ret, -EIO, "two bad blocks in one group fail");
	is(stable_last_error(rd, &e), 0, "the error is recorded");
	is(e.block, 9, "the error names block 9");
	is(e.offset, 9 * 4096, "and its byte offset");
	ok(strstr(stable_errmsg(rd), "block 9 (bytes 36864-40959)") &&
	   strstr(stable_errmsg(rd), "(block 11)"),
	   "the message names both bad blocks: %s", stable_errmsg(rd));
	ret = tu_read_all(rd, 8 * 4096, 4096, out);
	ok(ret == 0 && memcmp(out, src + 8 * 4096, 4096) == 0,
	   "the good block before them still reads");
	stable_reader_free(rd);

	ro.flags = STABLE_READER_NO_PARITY;
	ro.max_retries = 1;
	stable_reader_new(&rd, img, &ro, err, sizeof(err));
	ret = tu_read_all(rd, 0, 4 * 4096, out);
	is(ret, -EIO, "without parity the bad block fails");
	ok(strstr(stable_errmsg(rd), "block 1 ") && strstr(stable_errmsg(rd), "after 1 re-reads") &&
	   strstr(stable_errmsg(rd), "no parity"), "message: %s", stable_errmsg(rd));
	stable_reader_stats(rd, &st);
	is(st.errors, 1, "one error counted");
	stable_reader_free(rd);
	stable_image_close(img);
	tu_cleanup();
}

int main(void)
{
	TU_EACH_BACKEND(run);
	return tap_done();
}
