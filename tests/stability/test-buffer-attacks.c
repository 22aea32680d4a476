/*
 * Description: while a reader holds verified extents, attackers try to
 * change their bytes: threads of the same process (stores, memset,
 * mprotect then store), other processes (process_vm_writev, writes to
 * /proc/PID/mem, a forked child writing its inherited mapping) and the
 * kernel's own I/O aimed at the buffer address (read(2), an io_uring READ
 * with that plain address, an O_DIRECT read, vmsplice). The reader then
 * hashes the bytes again and compares with what it verified.
 *
 * Also write(2) to the file behind the mapping (a memfd), reopened through
 * /proc/self/map_files; a stray store that happens to hit another,
 * writable mapping of the same pages, found in /proc/self/maps; the
 * buffer registered as an io_uring fixed buffer of a ring of our own; and
 * the reader's own fixed buffers, found in its ring's fdinfo, cloned into
 * a ring of our own and read into, from the reader's thread and from
 * another (readers are STABLE_READER_ONE_THREAD, as stabled's are).
 *
 * Expected: under the sealed and kmbuf-ro backends no byte changes and
 * every attack fails (SIGSEGV caught and counted, or an errno). ro-view
 * stops every attack but the store through its writable alias, which is
 * the library's own; ro-fixed every attack but the read into its own
 * fixed buffers from the reader's own thread. Those do change bytes (each backend's documented limit,
 * asserted so that the table stays true). Under the private backend the
 * attacks do change bytes: the negative control that shows this suite
 * catches what it claims to catch. A backend the kernel lacks is skipped.
 * With --report FILE a markdown table is written too.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "tap.h"
#include "testutil.h"

#define LEN (1 << 20)
#define EXT 65536

struct attack_result {
	int succeeded;		/* the write call returned success / no signal */
	int how;		/* errno, or -SIGSEGV */
};

typedef void (*attack_fn)(uint8_t *p, struct attack_result *r);

static __thread sigjmp_buf *tls_jump;
static const char *image_path;

static void on_segv(int sig)
{
	if (tls_jump)
		siglongjmp(*tls_jump, sig);
	_exit(99);
}

/* Runs a store sequence, catching SIGSEGV/SIGBUS. */
#define GUARDED(r, body) do {						\
	sigjmp_buf jb_;							\
	int sig_;							\
	tls_jump = &jb_;						\
	sig_ = sigsetjmp(jb_, 1);					\
	if (sig_ == 0) {						\
		body;							\
		(r)->succeeded = 1;					\
	} else {							\
		(r)->succeeded = 0;					\
		(r)->how = -sig_;					\
	}								\
	tls_jump = NULL;						\
} while (0)

static void do_store(uint8_t *p, struct attack_result *r)
{
	GUARDED(r, ((volatile uint8_t *)p)[100] ^= 0xff);
}

static void do_memset(uint8_t *p, struct attack_result *r)
{
	GUARDED(r, memset(p, 0x5a, 4096));
}

struct thread_arg {
	uint8_t *p;
	struct attack_result *r;
	attack_fn fn;
};

static void *thread_main(void *a)
{
	struct thread_arg *t = a;

	t->fn(t->p, t->r);
	return NULL;
}

static void in_thread(uint8_t *p, struct attack_result *r, attack_fn fn)
{
	struct thread_arg t = { p, r, fn };
	pthread_t th;

	pthread_create(&th, NULL, thread_main, &t);
	pthread_join(th, NULL);
}

static void thread_store(uint8_t *p, struct attack_result *r) { in_thread(p, r, do_store); }
static void thread_memset(uint8_t *p, struct attack_result *r) { in_thread(p, r, do_memset); }

static void mprotect_store(uint8_t *p, struct attack_result *r)
{
	if (mprotect(p, 4096, PROT_READ | PROT_WRITE) < 0) {
		r->how = errno;
		r->succeeded = 0;
		return;
	}
	do_store(p, r);
}

/* Runs fn in a child process; the child's exit code carries the result. */
static void in_child(uint8_t *p, struct attack_result *r,
		     int (*fn)(uint8_t *p, pid_t parent))
{
	pid_t parent = getpid(), pid = fork();
	int status;

	if (pid == 0)
		_exit(fn(p, parent));
	waitpid(pid, &status, 0);
	status = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
	r->succeeded = status == 0;
	r->how = status == 200 ? -SIGSEGV : status;
}

static int child_vm_writev(uint8_t *p, pid_t parent)
{
	char junk[256];
	struct iovec l = { junk, sizeof(junk) }, rem = { p, sizeof(junk) };

	memset(junk, 0x66, sizeof(junk));
	return process_vm_writev(parent, &l, 1, &rem, 1, 0) == (ssize_t)sizeof(junk) ? 0 : errno;
}

static int child_proc_mem(uint8_t *p, pid_t parent)
{
	char path[64], junk[256];
	int fd, ret;

	memset(junk, 0x77, sizeof(junk));
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)parent);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return errno;
	ret = pwrite(fd, junk, sizeof(junk), (off_t)(uintptr_t)p) == (ssize_t)sizeof(junk) ? 0 : errno;
	close(fd);
	return ret;
}

static int child_write_inherited(uint8_t *p, pid_t parent)
{
	struct attack_result r = { 0, 0 };

	(void)parent;
	do_store(p, &r);
	return r.succeeded ? 0 : 200;
}

static void vm_writev(uint8_t *p, struct attack_result *r) { in_child(p, r, child_vm_writev); }
static void proc_mem(uint8_t *p, struct attack_result *r) { in_child(p, r, child_proc_mem); }
static void fork_write(uint8_t *p, struct attack_result *r) { in_child(p, r, child_write_inherited); }

static void read_into(uint8_t *p, struct attack_result *r)
{
	int fd = open("/dev/urandom", O_RDONLY);
	ssize_t n = read(fd, p, 4096);

	r->succeeded = n > 0;
	r->how = n < 0 ? errno : 0;
	close(fd);
}

static void uring_read_into(uint8_t *p, struct attack_result *r)
{
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	int fd = open("/dev/urandom", O_RDONLY);

	io_uring_queue_init(2, &ring, 0);
	io_uring_prep_read(io_uring_get_sqe(&ring), fd, p, 4096, 0);
	io_uring_submit_and_wait(&ring, 1);
	io_uring_wait_cqe(&ring, &cqe);
	r->succeeded = cqe->res > 0;
	r->how = cqe->res < 0 ? -cqe->res : 0;
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
	close(fd);
}

static void direct_read_into(uint8_t *p, struct attack_result *r)
{
	int fd = open(image_path, O_RDONLY | O_DIRECT);
	ssize_t n;

	if (fd < 0) {
		r->succeeded = 0;
		r->how = errno;
		return;
	}
	/* block 20 of the file: different bytes from what p holds */
	n = pread(fd, p, 4096, 20 * 4096);
	r->succeeded = n > 0;
	r->how = n < 0 ? errno : 0;
	close(fd);
}

static void vmsplice_into(uint8_t *p, struct attack_result *r)
{
	char junk[4096];
	struct iovec iov = { p, sizeof(junk) };
	int pfd[2];
	ssize_t n;

	memset(junk, 0x42, sizeof(junk));
	if (pipe(pfd) < 0 || write(pfd[1], junk, sizeof(junk)) != (ssize_t)sizeof(junk)) {
		r->succeeded = 0;
		r->how = errno;
		return;
	}
	n = vmsplice(pfd[0], &iov, 1, 0);	/* from the pipe into p */
	r->succeeded = n > 0;
	r->how = n < 0 ? errno : 0;
	close(pfd[0]);
	close(pfd[1]);
}

/* One line of /proc/self/maps. */
struct mapping {
	unsigned long lo, hi, off, ino;
	char perms[8], dev[16];
};

static int next_mapping(FILE *f, struct mapping *m)
{
	char line[512];

	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %7s %lx %15s %lu", &m->lo, &m->hi, m->perms, &m->off,
			   m->dev, &m->ino) == 6)
			return 1;
	return 0;
}

/* The mapping p is in; 0 if none. */
static int mapping_of(const void *p, struct mapping *m)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	while (f && !found && next_mapping(f, m))
		found = (uintptr_t)p >= m->lo && (uintptr_t)p < m->hi;
	if (f)
		fclose(f);
	return found;
}

/*
 * A writable mapping of the same file as the one p is in, covering p's
 * file offset: another way to the same pages. Returns p's address in it,
 * or NULL.
 */
static uint8_t *writable_alias(const uint8_t *p)
{
	struct mapping v, m;
	uint8_t *alias = NULL;
	unsigned long want;
	FILE *f;

	if (!mapping_of(p, &v) || !v.ino)
		return NULL;
	want = v.off + ((uintptr_t)p - v.lo);
	f = fopen("/proc/self/maps", "r");
	while (f && !alias && next_mapping(f, &m))
		if (m.ino == v.ino && !strcmp(m.dev, v.dev) && m.perms[1] == 'w' &&
		    want >= m.off && want - m.off < m.hi - m.lo)
			alias = (uint8_t *)(m.lo + (want - m.off));
	if (f)
		fclose(f);
	return alias;
}

/* A stray store that hits a writable alias of the buffer, if one exists. */
static void alias_store(uint8_t *p, struct attack_result *r)
{
	uint8_t *alias = writable_alias(p);

	if (!alias) {
		r->succeeded = 0;
		r->how = ENOENT;	/* no writable way to these pages */
		return;
	}
	do_store(alias, r);
}

/*
 * write(2) to the file behind the buffer's mapping, reopened writable
 * through /proc/self/map_files (root may): a sealed memfd refuses it.
 */
static void file_write(uint8_t *p, struct attack_result *r)
{
	char path[80], junk[256];
	struct mapping m;
	ssize_t n;
	int fd;

	r->succeeded = 0;
	r->how = ENOENT;
	if (!mapping_of(p, &m))
		return;
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", m.lo, m.hi);
	fd = open(path, O_RDWR);
	if (fd < 0) {
		r->how = errno;
		return;
	}
	memset(junk, 0x33, sizeof(junk));
	n = pwrite(fd, junk, sizeof(junk), (off_t)(m.off + ((uintptr_t)p - m.lo)));
	r->succeeded = n > 0;
	r->how = n < 0 ? errno : 0;
	close(fd);
}

/* READ_FIXED of junk from /dev/urandom into a fixed buffer of ring at addr. */
static void read_fixed(struct io_uring *ring, void *addr, int index, struct attack_result *r)
{
	struct io_uring_cqe *cqe;
	int fd = open("/dev/urandom", O_RDONLY);

	io_uring_prep_read_fixed(io_uring_get_sqe(ring), fd, addr, 256, 0, index);
	io_uring_submit_and_wait(ring, 1);
	io_uring_wait_cqe(ring, &cqe);
	r->succeeded = cqe->res > 0;
	r->how = cqe->res < 0 ? -cqe->res : 0;
	io_uring_cqe_seen(ring, cqe);
	close(fd);
}

/* The buffer's pages as a fixed buffer of a ring of our own: pinning asks for write. */
static void fixed_register(uint8_t *p, struct attack_result *r)
{
	struct iovec iov = { p, 4096 };
	struct io_uring ring;
	int ret;

	io_uring_queue_init(2, &ring, 0);
	ret = io_uring_register_buffers(&ring, &iov, 1);
	if (ret) {
		r->succeeded = 0;
		r->how = -ret;
	} else {
		read_fixed(&ring, p, 0, r);
	}
	io_uring_queue_exit(&ring);
}

#ifndef IORING_REGISTER_CLONE_BUFFERS	/* 6.12; not in every uapi header */
#define IORING_REGISTER_CLONE_BUFFERS 30
struct io_uring_clone_buffers {
	__u32 src_fd, flags, src_off, dst_off, nr, pad[3];
};
#endif

/*
 * An io_uring fd of this process with fixed buffers, and where p's pages
 * sit in them (fdinfo lists each buffer's address and length; a reader
 * registers its pool in order, so offsets in the view are offsets from
 * the first). Returns the fd, or -1.
 */
static int ring_with_buffer_of(const uint8_t *p, uintptr_t *addr, int *index)
{
	struct mapping m;
	unsigned long long base = 0, a;
	unsigned long want;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;
	size_t len;

	if (!mapping_of(p, &m) || !d) {
		if (d)
			closedir(d);
		return -1;
	}
	want = m.off + ((uintptr_t)p - m.lo);
	while (found < 0 && (e = readdir(d))) {
		char path[300], link[64] = "", line[128];
		unsigned int i;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		if (readlink(path, link, sizeof(link) - 1) < 0 || strcmp(link, "anon_inode:[io_uring]"))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", e->d_name);
		f = fopen(path, "r");
		while (f && found < 0 && fgets(line, sizeof(line), f))
			if (sscanf(line, "%u: 0x%llx/%zu", &i, &a, &len) == 3) {
				if (i == 0)
					base = a;
				if (a - base <= want && want < a - base + len) {
					*addr = (uintptr_t)(base + want);
					*index = (int)i;
					found = atoi(e->d_name);
				}
			}
		if (f)
			fclose(f);
	}
	closedir(d);
	return found;
}

/* The reader's own fixed buffers, cloned into a ring of ours and read into. */
static void fixed_clone(uint8_t *p, struct attack_result *r)
{
	struct io_uring_clone_buffers cb = { 0 };
	struct io_uring ring;
	uintptr_t addr;
	int index, ret, src = ring_with_buffer_of(p, &addr, &index);

	r->succeeded = 0;
	r->how = ENOENT;	/* no ring has these pages as fixed buffers */
	if (src < 0)
		return;
	io_uring_queue_init(2, &ring, 0);
	cb.src_fd = (__u32)src;
	ret = io_uring_register(ring.ring_fd, IORING_REGISTER_CLONE_BUFFERS, &cb, 1);
	if (ret < 0)	/* liburing returns -errno */
		r->how = -ret;
	else
		read_fixed(&ring, (void *)addr, index, r);
	io_uring_queue_exit(&ring);
}

/* The same from another thread: a ONE_THREAD reader's ring refuses it. */
static void thread_fixed_clone(uint8_t *p, struct attack_result *r) { in_thread(p, r, fixed_clone); }

static const struct {
	const char *name;
	attack_fn fn;
	int changes_private;	/* expected to change bytes under private */
	const char *beats;	/* the backend whose documented limit it is */
} attacks[] = {
	{ "thread store", thread_store, 1, NULL },
	{ "thread memset", thread_memset, 1, NULL },
	{ "mprotect(+W) then store", mprotect_store, 1, NULL },
	{ "process_vm_writev from another process", vm_writev, 1, NULL },
	{ "write to /proc/PID/mem from another process", proc_mem, 1, NULL },
	{ "fork()ed child writes its inherited mapping", fork_write, 0, NULL },
	{ "read(2) into the buffer", read_into, 1, NULL },
	{ "io_uring READ with the buffer address", uring_read_into, 1, NULL },
	{ "O_DIRECT read into the buffer", direct_read_into, 1, NULL },
	{ "vmsplice from a pipe into the buffer", vmsplice_into, 1, NULL },
	{ "write(2) to the mapping's file, reopened via /proc/self/map_files", file_write, 0, NULL },
	{ "a store through a writable alias found in /proc/self/maps", alias_store, 0, "ro-view" },
	{ "the buffer registered as a fixed buffer of our own io_uring, then READ_FIXED",
	  fixed_register, 1, NULL },
	{ "READ_FIXED into the reader's fixed buffers, cloned from its ring (fdinfo)",
	  fixed_clone, 0, "ro-fixed" },
	{ "the same, cloned by another thread (the reader is STABLE_READER_ONE_THREAD)",
	  thread_fixed_clone, 0, NULL },
};
#define NATTACKS (sizeof(attacks) / sizeof(attacks[0]))

static const struct {
	const char *name;
	enum stable_backend b;
	int protected;
} backends[] = {
	{ "private", STABLE_BACKEND_PRIVATE, 0 },
	{ "sealed", STABLE_BACKEND_SEALED, 1 },
	{ "ro-view", STABLE_BACKEND_RO_VIEW, 1 },
	{ "ro-fixed", STABLE_BACKEND_RO_FIXED, 1 },
	{ "kmbuf-ro", STABLE_BACKEND_KMBUF_RO, 1 },
};

static const char *how_name(int how, char *buf, size_t len)
{
	if (how == -SIGSEGV)
		return "SIGSEGV";
	if (how == -SIGBUS)
		return "SIGBUS";
	if (how == 0)
		return "-";
	snprintf(buf, len, "%s", strerrorname_np(how) ? strerrorname_np(how) : "?");
	return buf;
}

int main(int argc, char **argv)
{
	static uint8_t src[LEN];
	struct sigaction sa = { .sa_handler = on_segv };
	struct stable_image *img;
	char err[512], buf[32];
	uint32_t digest;
	FILE *report = NULL;

	if (argc == 3 && !strcmp(argv[1], "--report"))
		report = fopen(argv[2], "w");
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);

	tu_tmpdir();
	tu_fill(src, LEN, 5);
	tu_write_file(tu_path("src"), src, LEN);
	image_path = tu_path("img");
	if (!ok(stable_mkimage(tu_path("src"), image_path, NULL, &digest, err,
			       sizeof(err)) == 0, "make the image"))
		diag("%s", err);
	stable_image_open(&img, image_path, NULL, err, sizeof(err));
	if (report)
		fprintf(report, "| attack | backend | attempts | attacks that succeeded | bytes changed | errors seen |\n"
				"|---|---|---:|---:|---:|---|\n");

	for (size_t b = 0; b < sizeof(backends) / sizeof(backends[0]); b++) {
		struct stable_reader_options ro = { .backend = backends[b].b, .buffers = 4,
						    .flags = STABLE_READER_ONE_THREAD };
		struct stable_reader *rd;

		int ret = stable_reader_new(&rd, img, &ro, err, sizeof(err));

		if (ret && tu_may_skip(backends[b].b, ret)) {
			skip("%s: %s", backends[b].name, err);
			continue;
		}
		if (!ok(ret == 0, "%s: reader: %s", backends[b].name, ret ? err : "ok"))
			continue;
		for (size_t a = 0; a < NATTACKS; a++) {
			const struct stable_extent *ext;
			struct attack_result r = { 0, 0 };
			uint32_t before, after;
			uint8_t copy[EXT];
			size_t changed = 0;

			/* a fresh, page-aligned verified extent for each attack */
			if (stable_read(rd, (uint64_t)(a % 8) * EXT, EXT, &ext) ||
			    ext->length != EXT) {
				ok(0, "%s: read for %s: %s", backends[b].name, attacks[a].name,
				   stable_errmsg(rd));
				continue;
			}
			memcpy(copy, ext->data, EXT);
			before = stable_crc32c(0, ext->data, EXT);
			attacks[a].fn((uint8_t *)ext->data, &r);
			after = stable_crc32c(0, ext->data, EXT);
			for (size_t i = 0; i < EXT; i++)
				changed += copy[i] != ((const uint8_t *)ext->data)[i];

			if (attacks[a].beats && !strcmp(attacks[a].beats, backends[b].name))
				ok(changed > 0 && r.succeeded,
				   "%s (its documented limit): %s changed %zu bytes",
				   backends[b].name, attacks[a].name, changed);
			else if (backends[b].protected)
				ok(after == before && changed == 0 && !r.succeeded,
				   "%s: %s: no byte changed, the attack failed (%s)",
				   backends[b].name, attacks[a].name, how_name(r.how, buf, sizeof(buf)));
			else if (attacks[a].changes_private)
				ok(changed > 0, "%s (negative control): %s changed %zu bytes",
				   backends[b].name, attacks[a].name, changed);
			else
				ok(changed == 0, "%s: %s changed no byte",
				   backends[b].name, attacks[a].name);
			if (report)
				fprintf(report, "| %s | %s | 1 | %d | %zu | %s |\n", attacks[a].name,
					backends[b].name, r.succeeded, changed,
					how_name(r.how, buf, sizeof(buf)));
			stable_release(rd, ext);
		}
		stable_reader_free(rd);
	}
	stable_image_close(img);
	if (report)
		fclose(report);
	tu_cleanup();
	return tap_done();
}
