/*
 * Description: the asynchronous API. Many reads submitted at once come
 * back through stable_reap with their user_data and the right bytes; the
 * reader's fd polls readable exactly while completions wait; a full pool
 * answers -ENOBUFS; a reap with nothing pending makes no system call;
 * a corrupt block comes back as a completion with -EIO naming the block
 * (in its error and its own message) while the other reads of the batch
 * succeed; freeing with reads in flight is refused.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tap.h"
#include "testutil.h"

#define BS 4096
#define LEN (256 * BS)
#define SLOTS 8

static int readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static void run(enum stable_backend backend, const char *bname)
{
	static uint8_t src[LEN];
	struct stable_reader_options ro = { .buffers = SLOTS, .buffer_size = 16 * BS,
					    .max_retries = 1, .backend = backend };
	struct stable_completion c[SLOTS];
	const struct stable_extent *held[SLOTS];
	struct stable_image *img;
	struct stable_reader *rd;
	char err[512] = "";
	uint32_t digest;
	int ret, n, got = 0, right = 0, eio = 0, bad_block = -1, msg_ok = 0;
	int msg_ok_success = 0;
	uint32_t bad_flags = ~0u;
	const struct stable_extent *ext;
	struct stable_error e;

	tu_tmpdir();
	diag("backend %s", bname);
	tu_fill(src, LEN, 11);
	tu_write_file(tu_path("src"), src, LEN);
	ret = stable_mkimage(tu_path("src"), tu_path("img"), NULL, &digest, err, sizeof(err));
	ok(ret == 0, "make the image");
	if (!tu_open_reader(tu_path("img"), &ro, bname, &img, &rd)) {
		tu_cleanup();
		return;
	}
	is(stable_reader_guarantee(rd), tu_guarantee(backend), "%s: guarantee", bname);
	ok(stable_reader_fd(rd) >= 0, "the reader has a pollable fd");
	ok(!readable(stable_reader_fd(rd), 0), "not readable before any read");

	for (int i = 0; i < SLOTS; i++)
		is(stable_submit(rd, (uint64_t)i * 20 * BS + 100, 3 * BS, 1000 + i), 0,
		   "submit read %d", i);
	is(stable_submit(rd, 0, 1, 99), -ENOBUFS, "a ninth submit with eight slots busy");
	is(stable_inflight(rd), SLOTS, "eight in flight");
	is(stable_reader_free(rd), -EBUSY, "free with reads in flight is refused");
	is(stable_flush(rd), 0, "flush");
	ok(readable(stable_reader_fd(rd), 5000), "the fd polls readable once reads complete");
	while (got < SLOTS) {
		n = stable_reap(rd, c, SLOTS);
		if (n < 0 || (n == 0 && stable_wait(rd) < 0))
			break;
		for (int i = 0; i < n; i++) {
			int k = (int)c[i].user_data - 1000;

			held[got++] = c[i].ext;
			if (c[i].result == 0 && k >= 0 && k < SLOTS &&
			    c[i].ext->offset == (uint64_t)k * 20 * BS + 100 &&
			    c[i].ext->length == 3 * BS &&
			    memcmp(c[i].ext->data, src + k * 20 * BS + 100, 3 * BS) == 0)
				right++;
		}
	}
	is(right, SLOTS, "every completion has its user_data, offset, length and bytes");
	ok(!readable(stable_reader_fd(rd), 0), "not readable once everything is reaped");
	is(stable_reap(rd, c, SLOTS), 0, "a reap with nothing in flight returns 0");
	is(stable_reap(rd, c, SLOTS), 0, "and again");
	/* a value we put there ourselves shows whether reap still reads it */
	eventfd_write(stable_reader_fd(rd), 1);
	is(stable_reap(rd, c, SLOTS), 0, "a reap with nothing pending");
	ok(readable(stable_reader_fd(rd), 0),
	   "made no read of the fd (no system call with nothing pending)");
	eventfd_read(stable_reader_fd(rd), &(eventfd_t){ 0 });
	is(stable_submit(rd, 0, 1, 99), -ENOBUFS, "a submit while all extents are held");
	is(stable_release_batch(rd, held, SLOTS), 0, "release all in one batch");
	is(stable_reader_free(rd), 0, "free after everything is released");

	/* A bad block in one read of a batch. Block 41 is at 4096 * 42. */
	tu_flip(tu_path("img"), 4096 * 42 + 7, 2);
	stable_reader_new(&rd, img, &ro, err, sizeof(err));
	for (int i = 0; i < 4; i++)
		stable_submit(rd, (uint64_t)(40 + i) * BS, BS, (uint64_t)i);
	got = 0;
	right = 0;
	msg_ok = 0;
	while (got < 4) {
		n = stable_reap(rd, c, 4);
		if (n < 0 || (n == 0 && stable_wait(rd) < 0))
			break;
		for (int i = 0; i < n; i++, got++) {
			if (c[i].result == -EIO) {
				eio++;
				bad_block = (int)c[i].error.block;
				bad_flags = c[i].error.flags;
				msg_ok = c[i].message && strstr(c[i].message, "block 41");
				if (!msg_ok)
					diag("message: %s", c[i].message ? c[i].message : "(null)");
			} else if (c[i].result == 0) {
				msg_ok_success += c[i].message == NULL;
				right += memcmp(c[i].ext->data,
						src + (40 + c[i].user_data) * BS, BS) == 0;
				stable_release(rd, c[i].ext);
			}
		}
	}
	is(eio, 1, "one completion fails");
	is(bad_block, 41, "it names block 41");
	ok(msg_ok, "its own message names block 41");
	is(msg_ok_success, 3, "the successful completions carry no message");
	is(right, 3, "the other three deliver the right bytes");
	is(bad_flags, 0, "a checksum mismatch is not flagged a short read");

	/* The file cut 100 bytes into block 60, as if truncated while open:
	 * the blocks before read, block 60 fails as a short read. */
	ok(truncate(tu_path("img"), 4096 * 61 + 100) == 0, "truncate the image in block 60");
	ret = stable_read(rd, 59 * BS, BS, &ext);
	is(ret, 0, "block 59, whole in the file, reads");
	if (!ret)
		stable_release(rd, ext);
	is(stable_read(rd, 60 * BS, BS, &ext), -EIO, "block 60, cut short, fails with EIO");
	memset(&e, 0, sizeof(e));
	ret = stable_last_error(rd, &e);
	is(ret, 0, "its error is recorded");
	if (ret)
		diag("message: %s", stable_errmsg(rd));
	is(e.block, 60, "it names block 60");
	ok(e.flags & STABLE_ERROR_SHORT_READ, "flagged a short read");
	ok(strstr(stable_errmsg(rd), "the image file ends before it") != NULL,
	   "the message says the file ends before the block");
	is(stable_reader_free(rd), 0, "free");
	stable_image_close(img);
	tu_cleanup();
}

int main(void)
{
	TU_EACH_BACKEND(run);
	return tap_done();
}
