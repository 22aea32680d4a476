/*
 * Description: misuse of the reader API gets a clear error and leaves the
 * pool intact: zero length, reads past the end and offset overflow,
 * double release, releasing a foreign pointer, every extent held
 * (-ENOBUFS), freeing a reader that still holds extents (-EBUSY). Also
 * that extents start where asked, never exceed what was asked, and that
 * the counters count; that the command-line names parse; and that
 * ro-fixed over RLIMIT_MEMLOCK (without CAP_IPC_LOCK) is refused with a
 * message naming the limit, and auto-fast then takes sealed; and a pool
 * too big to pin is refused, not an OOM kill.
 */
#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "tap.h"
#include "testutil.h"

#define LEN (300000)

/* Drops CAP_IPC_LOCK from this process's effective set. 0 or -errno. */
static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

/*
 * In a child (the limit and the capability stay there): 1 MiB of
 * RLIMIT_MEMLOCK, no CAP_IPC_LOCK, and a reader of 16 x 1 MiB. The child
 * reports by exit code: 0 all as expected, 1 ro-fixed was not refused as
 * it should be, 2 auto-fast did not fall back to sealed, 3 kmbuf-ro
 * failed otherwise than with -EOPNOTSUPP, 77 cannot set up.
 */
static int memlock_child(struct stable_image *img)
{
	struct stable_reader_options ro = { .backend = STABLE_BACKEND_RO_FIXED, .buffers = 16 };
	struct rlimit lim = { 1u << 20, 1u << 20 };
	struct stable_reader *rd;
	char err[512] = "";
	int ret;

	if (drop_ipc_lock() || setrlimit(RLIMIT_MEMLOCK, &lim))
		return 77;
	ret = stable_reader_new(&rd, img, &ro, err, sizeof(err));
	fprintf(stderr, "# ro-fixed: %d: %s\n", ret, err);
	if (ret != -EOPNOTSUPP || !strstr(err, "over RLIMIT_MEMLOCK (1024 KiB)"))
		return 1;
	/* kmbuf-ro's ring is locked memory too: refused, not a hard error */
	ro.backend = STABLE_BACKEND_KMBUF_RO;
	ret = stable_reader_new(&rd, img, &ro, err, sizeof(err));
	fprintf(stderr, "# kmbuf-ro: %d: %s\n", ret, err);
	if (ret == 0)
		stable_reader_free(rd);
	else if (ret != -EOPNOTSUPP)
		return 3;
	ro.backend = STABLE_BACKEND_AUTO_FAST;
	ret = stable_reader_new(&rd, img, &ro, err, sizeof(err));
	if (ret)
		return 2;
	fprintf(stderr, "# auto-fast: %s\n", stable_reader_backend_name(rd));
	ret = strcmp(stable_reader_backend_name(rd), "sealed") &&
	      strcmp(stable_reader_backend_name(rd), "kmbuf-ro") ? 2 : 0;
	stable_reader_free(rd);
	return ret;
}

static void memlock(struct stable_image *img)
{
	int status = 0;
	pid_t pid;

	if (geteuid() != 0) {
		skip("ro-fixed over RLIMIT_MEMLOCK: not root, the limit applies anyway");
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(memlock_child(img));
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		skip("cannot drop CAP_IPC_LOCK or set RLIMIT_MEMLOCK here");
		return;
	}
	ok(WIFEXITED(status) && WEXITSTATUS(status) != 1,
	   "ro-fixed over RLIMIT_MEMLOCK without CAP_IPC_LOCK: -EOPNOTSUPP naming the limit");
	ok(WIFEXITED(status) && WEXITSTATUS(status) != 3,
	   "kmbuf-ro over RLIMIT_MEMLOCK: -EOPNOTSUPP, or it fits");
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "auto-fast then takes a backend that pins nothing (sealed, or kmbuf-ro)");
}

/* Every name the command lines accept, and one they must not. */
static void names(void)
{
	static const char *const bnames[] = { "auto", "auto-fast", "private", "ro-view",
					      "ro-fixed", "sealed", "kmbuf-ro" };
	enum stable_guarantee g = STABLE_GUARANTEE_NONE;
	enum stable_backend b = STABLE_BACKEND_AUTO;

	for (unsigned int i = STABLE_GUARANTEE_NONE; i <= STABLE_GUARANTEE_KERNEL_RO; i++)
		ok(stable_guarantee_from_name(stable_guarantee_name(i), &g) == 0 && g == i,
		   "guarantee '%s' names %u", stable_guarantee_name(i), i);
	for (unsigned int i = 0; i < sizeof(bnames) / sizeof(bnames[0]); i++)
		ok(stable_backend_from_name(bnames[i], &b) == 0, "backend '%s' is known", bnames[i]);
	is(stable_backend_from_name("strongest", &b), -EINVAL, "backend 'strongest' is not");
	is(stable_guarantee_from_name("unknown", &g), -EINVAL, "guarantee 'unknown' is not");
	is(stable_guarantee_from_name(NULL, &g), -EINVAL, "a NULL name is not");
}

int main(void)
{
	static uint8_t src[LEN], out[LEN];
	struct stable_reader_options ro = { .buffers = 4, .buffer_size = 65536,
					    .max_retries = 2 };
	const struct stable_extent *ext[5], *e;
	struct stable_image *img;
	struct stable_reader *rd;
	struct stable_stats st;
	struct stable_extent fake;
	char err[512];
	uint32_t digest;
	int ret;

	tu_tmpdir();
	tu_fill(src, LEN, 1);
	ok(tu_write_file(tu_path("src"), src, LEN) == 0, "write the source");
	ret = stable_mkimage(tu_path("src"), tu_path("img"), NULL, &digest, err, sizeof(err));
	if (!ok(ret == 0, "make the image"))
		diag("%s", err);
	ret = stable_image_open(&img, tu_path("img"), NULL, err, sizeof(err));
	if (!ok(ret == 0, "open the image"))
		return tap_done();
	ret = stable_reader_new(&rd, img, &ro, err, sizeof(err));
	if (!ok(ret == 0, "new reader"))
		return tap_done();
	ok(stable_reader_guarantee(rd) >= STABLE_GUARANTEE_SEALED,
	   "by default the strongest backend: %s (guarantee %s)",
	   stable_reader_backend_name(rd),
	   stable_guarantee_name(stable_reader_guarantee(rd)));

	is(stable_read(rd, 0, 0, &e), -EINVAL, "zero-length read");
	ok(strstr(stable_errmsg(rd), "zero bytes"), "message says zero bytes: %s", stable_errmsg(rd));
	is(stable_read(rd, LEN, 1, &e), -EINVAL, "read at the end");
	is(stable_read(rd, LEN - 10, 11, &e), -EINVAL, "read one byte past the end");
	ok(strstr(stable_errmsg(rd), "past the end"), "message says past the end: %s", stable_errmsg(rd));
	is(stable_read(rd, UINT64_MAX - 5, 10, &e), -EINVAL, "offset + length overflows");
	is(stable_read(rd, 0, 10, NULL), -EINVAL, "no extent pointer");

	for (int i = 0; i < 4; i++) {
		ret = stable_read(rd, (uint64_t)i * 1000, 1000, &ext[i]);
		is(ret, 0, "read %d of 4 held extents", i);
		if (ret)
			ext[i] = NULL;
	}
	is(stable_read(rd, 0, 10, &ext[4]), -ENOBUFS, "fifth extent with four held");
	ok(strstr(stable_errmsg(rd), "all 4 extents are held"), "message: %s", stable_errmsg(rd));
	is(stable_reader_free(rd), -EBUSY, "freeing a reader with held extents");
	for (int i = 0; i < 4; i++)
		ok(ext[i] && memcmp(ext[i]->data, src + i * 1000, 1000) == 0 &&
		   ext[i]->length == 1000 && ext[i]->offset == (uint64_t)i * 1000,
		   "held extent %d still has the right bytes", i);
	is(stable_release(rd, ext[1]), 0, "release");
	is(stable_release(rd, ext[1]), -EINVAL, "double release");
	ok(strstr(stable_errmsg(rd), "double release"), "message: %s", stable_errmsg(rd));
	memset(&fake, 0, sizeof(fake));
	is(stable_release(rd, &fake), -EINVAL, "release of a foreign extent");
	is(stable_release(rd, (const struct stable_extent *)((const char *)ext[0] + 1)),
	   -EINVAL, "release of a misaligned pointer into the pool");
	is(stable_release(rd, NULL), -EINVAL, "release of NULL");
	is(stable_release(rd, ext[0]), 0, "release 0");
	is(stable_release(rd, ext[2]), 0, "release 2");
	is(stable_release(rd, ext[3]), 0, "release 3");

	/* A long read comes back in several verified extents. */
	is(tu_read_all(rd, 0, LEN, out), 0, "read everything in extents");
	ok(memcmp(out, src, LEN) == 0, "every byte equals the source");
	is(stable_read(rd, 100, LEN - 100, &e), 0, "a read larger than a buffer");
	ok(e && e->offset == 100 && e->length > 0 && e->length <= 65536,
	   "extent starts where asked and is at most a buffer (%zu)", e ? e->length : 0);
	if (e)
		stable_release(rd, e);
	stable_reader_stats(rd, &st);
	ok(st.reads >= 9 && st.bytes >= LEN + 4000, "counters: %llu reads, %llu bytes",
	   (unsigned long long)st.reads, (unsigned long long)st.bytes);
	is(st.verify_failures, 0, "no verify failures on a clean image");
	is(stable_reader_free(rd), 0, "free the reader");
	stable_image_close(img);

	/* The header area past the header is zeros; damage there is refused too. */
	tu_flip(tu_path("img"), 1000, 0);
	ret = stable_image_open(&img, tu_path("img"), NULL, err, sizeof(err));
	ok(ret == -EINVAL && strstr(err, "header area byte 1000 is 0x01"),
	   "a flipped bit in the header area's padding: %s", err);
	tu_flip(tu_path("img"), 1000, 0);

	ro.min_guarantee = STABLE_GUARANTEE_KERNEL_RO;
	ro.backend = STABLE_BACKEND_PRIVATE;
	stable_image_open(&img, tu_path("img"), NULL, err, sizeof(err));
	ret = stable_reader_new(&rd, img, &ro, err, sizeof(err));
	ok(ret == -EOPNOTSUPP && strstr(err, "below the required kernel-ro"),
	   "forcing private while requiring kernel-ro fails: %s", err);
	stable_image_close(img);

	/* AUTO_FAST: kmbuf-ro, else ro-fixed; sealed only when asked for */
	ro = (struct stable_reader_options){ .backend = STABLE_BACKEND_AUTO_FAST };
	stable_image_open(&img, tu_path("img"), NULL, err, sizeof(err));
	ret = stable_reader_new(&rd, img, &ro, err, sizeof(err));
	if (ok(ret == 0, "auto-fast: a reader: %s", ret ? err : "ok")) {
		ok(!strcmp(stable_reader_backend_name(rd), "kmbuf-ro") ||
		   !strcmp(stable_reader_backend_name(rd), "ro-fixed"),
		   "auto-fast takes a backend without a cost per read: %s",
		   stable_reader_backend_name(rd));
		stable_reader_free(rd);
	}
	ro.min_guarantee = STABLE_GUARANTEE_SEALED;
	ret = stable_reader_new(&rd, img, &ro, err, sizeof(err));
	if (ok(ret == 0, "auto-fast requiring sealed: a reader: %s", ret ? err : "ok")) {
		ok(stable_reader_guarantee(rd) >= STABLE_GUARANTEE_SEALED,
		   "auto-fast requiring sealed skips ro-fixed: %s",
		   stable_reader_backend_name(rd));
		stable_reader_free(rd);
	}
	memlock(img);

	/* a pool ro-fixed would have to pin whole, bigger than RAM allows */
	ro = (struct stable_reader_options){ .backend = STABLE_BACKEND_RO_FIXED,
					     .buffers = 4096, .buffer_size = 64u << 20 };
	ret = stable_reader_new(&rd, img, &ro, err, sizeof(err));
	ok(ret == -EOPNOTSUPP && strstr(err, "more than a quarter of this machine's memory"),
	   "ro-fixed with 256 GiB of buffers: refused before pinning: %s", ret ? err : "created");
	if (ret == 0)
		stable_reader_free(rd);
	stable_image_close(img);
	names();
	tu_cleanup();
	return tap_done();
}
