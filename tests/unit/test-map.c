/*
 * Description: stable_image_map() calls a run zero only where a verified
 * read returns zeroes: a plain image's blocks that are holes in the file
 * with the checksum of zeroes (the last block short), and a compressed
 * image's zero extents (a sidecar image: the raw file's own holes).
 * Walking the map from any offset gives the source's layout; a hole
 * punched into data (the negative control: its checksum is not that of
 * zeroes, and reading it fails) stays data, as do zeroes written out in
 * full; bad arguments are -EINVAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "testutil.h"

#define BS 4096
#define NB 64				/* whole blocks, then a short one */
#define LEN (NB * BS + 1000)

static uint8_t src[LEN];

/* Is byte i of the source in a zero region of this layout? */
static int zero_at(const int *zero_blocks, uint64_t i)
{
	return zero_blocks[i / BS];
}

/*
 * Walks the map from off to the end; 1 if every run is at least a byte,
 * within the request and of one kind that the layout agrees with for
 * each of its bytes. *runs counts the runs with consecutive ones of one
 * kind merged (a call may stop early, at a hole's edge for one).
 */
static int walk_agrees(struct stable_image *img, uint64_t off, uint64_t end,
		       const int *zero_blocks, unsigned int *runs)
{
	unsigned int last = 99;

	*runs = 0;
	while (off < end) {
		uint64_t run = 0;
		unsigned int flags = 99;

		if (stable_image_map(img, off, end - off, &run, &flags) || !run ||
		    run > end - off || (flags & ~STABLE_MAP_ZERO)) {
			diag("at %llu: run %llu flags %u", (unsigned long long)off,
			     (unsigned long long)run, flags);
			return 0;
		}
		for (uint64_t i = off; i < off + run; i += 97)
			if (zero_at(zero_blocks, i) != !!(flags & STABLE_MAP_ZERO)) {
				diag("byte %llu: map says %s", (unsigned long long)i,
				     flags ? "zero" : "data");
				return 0;
			}
		off += run;
		*runs += flags != last;
		last = flags;
	}
	return 1;
}

static void plain(void)
{
	/* blocks 8-23, 32-63 and the short last one are zeroes */
	int zero_blocks[NB + 1] = { 0 };
	struct stable_image_info info;
	struct stable_image *img;
	char err[512] = "";
	unsigned int runs, flags;
	uint64_t run;
	int fd;

	for (int b = 0; b <= NB; b++) {
		zero_blocks[b] = (b >= 8 && b < 24) || b >= 32;
		if (!zero_blocks[b])
			tu_fill(src + (size_t)b * BS, BS, 7 + b);
	}
	tu_write_file(tu_path("plain.raw"), src, LEN);
	ok(stable_mkimage(tu_path("plain.raw"), tu_path("plain.img"), NULL, NULL, err,
			  sizeof(err)) == 0, "make a plain image of a sparse source: %s", err);
	is(stable_image_open(&img, tu_path("plain.img"), NULL, err, sizeof(err)), 0,
	   "open it: %s", err);
	stable_image_get_info(img, &info);

	ok(walk_agrees(img, 0, LEN, zero_blocks, &runs), "the map walked from 0 matches the source");
	is(runs, 4, "in 4 runs: data, zero, data, zero to the short last block");
	ok(walk_agrees(img, 8 * BS + 100, 30 * BS + 7, zero_blocks, &runs),
	   "from inside a zero run to inside data");
	ok(walk_agrees(img, 7 * BS + 5, LEN, zero_blocks, &runs),
	   "from inside data, unaligned, to the end");
	ok(stable_image_map(img, LEN - 10, 10, &run, &flags) == 0 && run == 10 &&
	   flags == STABLE_MAP_ZERO, "the last 10 bytes, in the short block: zero");
	ok(stable_image_map(img, 9 * BS, 1, &run, &flags) == 0 && run == 1 &&
	   flags == STABLE_MAP_ZERO, "a run is never longer than asked");

	is(stable_image_map(img, LEN, 1, &run, &flags), -EINVAL, "offset at the end: -EINVAL");
	is(stable_image_map(img, 0, 0, &run, &flags), -EINVAL, "length 0: -EINVAL");
	is(stable_image_map(img, 0, 1, NULL, &flags), -EINVAL, "NULL run: -EINVAL");
	is(stable_image_map(NULL, 0, 1, &run, &flags), -EINVAL, "NULL image: -EINVAL");
	ok(stable_image_map(img, 0, UINT64_MAX, &run, &flags) == 0 && run == 8 * BS && !flags,
	   "a length past the end is cut to the data: 8 blocks of data");
	stable_image_close(img);

	/* a sidecar image maps the raw source's own holes */
	{
		struct stable_mkimage_options so = { .sidecar = 1 };
		int rfd = open(tu_path("plain.raw"), O_RDWR);

		/* the raw file was written out in full: make its zeroes holes */
		for (int b = 0; rfd >= 0 && b <= NB; b++)
			if (zero_blocks[b] && fallocate(rfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						       (off_t)b * BS, BS))
				diag("punch block %d: %s", b, strerror(errno));
		if (rfd >= 0)
			close(rfd);
		ok(stable_mkimage(tu_path("plain.raw"), tu_path("side.img"), &so, NULL, err,
				  sizeof(err)) == 0, "make a sidecar image of it: %s", err);
		is(stable_image_open(&img, tu_path("side.img"), NULL, err, sizeof(err)), 0,
		   "open it: %s", err);
		ok(walk_agrees(img, 0, LEN, zero_blocks, &runs) && runs == 4,
		   "sidecar: the map of the raw file's holes matches, in 4 runs");
		stable_image_close(img);
	}

	/* the negative control: block 26 becomes a hole, but its checksum
	 * is of data; block 12's zeroes are written out, no longer a hole */
	fd = open(tu_path("plain.img"), O_RDWR);
	ok(fd >= 0 && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)(info.data_offset + 26 * BS), BS) == 0,
	   "punch a hole into data block 26");
	ok(lseek(fd, (off_t)(info.data_offset + 26 * BS), SEEK_DATA) > (off_t)(info.data_offset + 26 * BS),
	   "the file has a hole there now");
	ok(pwrite(fd, src + 12 * BS, BS, (off_t)(info.data_offset + 12 * BS)) == BS,
	   "write block 12's zeroes out");
	close(fd);
	is(stable_image_open(&img, tu_path("plain.img"), NULL, err, sizeof(err)), 0,
	   "open it again: %s", err);
	zero_blocks[12] = 0;
	ok(walk_agrees(img, 0, LEN, zero_blocks, &runs),
	   "punched block 26 is still data, written-out block 12 is data");
	is(runs, 6, "in 6 runs");
	{
		struct stable_reader_options ro = { .max_retries = 1,
						    .backend = STABLE_BACKEND_PRIVATE };
		const struct stable_extent *e = NULL;
		struct stable_reader *rd;

		if (stable_reader_new(&rd, img, &ro, err, sizeof(err)) == 0) {
			int ret = stable_read(rd, 26 * BS, BS, &e);

			is(ret, -EIO, "and reading block 26 fails verification");
			if (!ret)
				stable_release(rd, e);
			stable_reader_free(rd);
		} else {
			ok(0, "a reader: %s", err);
		}
	}
	stable_image_close(img);
}

static void compressed(void)
{
	/* 64 KiB extents: data, zero, zero, data, the short last one zero */
	int zero_blocks[NB + 1] = { 0 };
	struct stable_mkimage_options mo = { .compress = 1 };
	struct stable_image *img;
	char err[512] = "";
	unsigned int runs;

	memset(src, 0, sizeof(src));
	for (int b = 0; b <= NB; b++) {
		int x = b / 16;

		zero_blocks[b] = x == 1 || x == 2 || x == 4;
		if (!zero_blocks[b])
			tu_fill(src + (size_t)b * BS, BS, 3 + b);
	}
	tu_write_file(tu_path("z.raw"), src, LEN);
	ok(stable_mkimage(tu_path("z.raw"), tu_path("z.img"), &mo, NULL, err, sizeof(err)) == 0,
	   "make a compressed image: %s", err);
	is(stable_image_open(&img, tu_path("z.img"), NULL, err, sizeof(err)), 0, "open it: %s", err);
	ok(walk_agrees(img, 0, LEN, zero_blocks, &runs), "compressed: the map matches the source");
	is(runs, 4, "compressed: data, 2 zero extents as one run, data, the last zero");
	ok(walk_agrees(img, 70000, 200000, zero_blocks, &runs), "compressed: from inside an extent");
	stable_image_close(img);
}

int main(void)
{
	tu_tmpdir();
	plain();
	compressed();
	tu_cleanup();
	return tap_done();
}
