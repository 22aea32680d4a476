/*
 * Description: with IOU_KMBUF_RING_RDONLY the application can never write
 * the buffers. mmap with PROT_WRITE fails with EACCES (shared or private);
 * mprotect cannot add PROT_WRITE (EACCES); a forced write through
 * /proc/self/mem and ptrace(PTRACE_POKEDATA) fail; process_vm_writev fails
 * with EFAULT; read(2), an io_uring READ and an O_DIRECT read given a
 * buffer address as destination fail with EFAULT. The buffer contents are
 * unchanged after every attempt, and a ring without the flag can be
 * mapped writable.
 */
#include "kmbuf-test.h"
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

static unsigned char *map;
static size_t bsz;

static void check_unchanged(const char *after)
{
	kmbuf_check_pattern(map, bsz, 0, after);
}

int main(void)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct iovec local, remote;
	unsigned char junk[64];
	unsigned int flags;
	ssize_t n;
	pid_t pid;
	void *p;
	int fd, dfd, memfd, res, bid, status;
	char *path;

	bsz = sysconf(_SC_PAGESIZE);
	t_start("kmbuf-rdonly");
	kmbuf_setup(&ring, 8);
	path = kmbuf_pattern_file("kmbuf-rdonly", 2 * bsz);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		t_fail("open(%s) = %s", path, strerror(errno));
	memset(junk, 0xa5, sizeof(junk));

	t_expect(kmbuf_register(&ring, 4, 2, bsz, STABLE_KMBUF_RING_RDONLY), 0);
	/* writable mappings are refused, shared and private */
	p = kmbuf_map(&ring, 4, 2 * bsz, PROT_READ | PROT_WRITE, MAP_SHARED);
	if (p != MAP_FAILED || errno != EACCES)
		t_fail("mmap(PROT_WRITE, MAP_SHARED) = %p errno %d, want EACCES", p, errno);
	p = kmbuf_map(&ring, 4, 2 * bsz, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	if (p != MAP_FAILED || errno != EACCES)
		t_fail("mmap(PROT_WRITE, MAP_PRIVATE) = %p errno %d, want EACCES", p, errno);

	map = kmbuf_map(&ring, 4, 2 * bsz, PROT_READ, MAP_SHARED);
	if (map == MAP_FAILED)
		t_fail("mmap(PROT_READ) = %s", strerror(errno));
	/* fill buffer 0 (the first selected) with file data */
	res = kmbuf_read(&ring, fd, 0, 0, 4, &bid);
	if (res != (int)bsz || bid != 0)
		t_fail("read into kmbuf: res %d bid %d, want %zu bid 0", res, bid, bsz);
	check_unchanged("kernel read");

	/* mprotect, shared and on a private mapping */
	if (mprotect(map, bsz, PROT_READ | PROT_WRITE) == 0 || errno != EACCES)
		t_fail("mprotect(PROT_WRITE) errno %d, want EACCES", errno);
	p = kmbuf_map(&ring, 4, 2 * bsz, PROT_READ, MAP_PRIVATE);
	if (p == MAP_FAILED)
		t_fail("mmap(PROT_READ, MAP_PRIVATE) = %s", strerror(errno));
	if (mprotect(p, bsz, PROT_READ | PROT_WRITE) == 0 || errno != EACCES)
		t_fail("mprotect(PROT_WRITE) of private map errno %d, want EACCES", errno);

	/* FOLL_FORCE through /proc/self/mem, on both mappings */
	memfd = open("/proc/self/mem", O_RDWR);
	if (memfd < 0)
		t_fail("open(/proc/self/mem) = %s", strerror(errno));
	n = pwrite(memfd, junk, sizeof(junk), (off_t)(uintptr_t)map);
	if (n >= 0)
		t_fail("pwrite(/proc/self/mem, shared map) = %zd, want failure", n);
	n = pwrite(memfd, junk, sizeof(junk), (off_t)(uintptr_t)p);
	if (n >= 0)
		t_fail("pwrite(/proc/self/mem, private map) = %zd, want failure", n);
	close(memfd);
	check_unchanged("/proc/self/mem");
	if (memcmp(p, map, bsz))
		t_fail("private mapping differs from the shared one");

	/* ptrace POKE from a tracer: the child pokes into its parent */
	pid = fork();
	if (pid == 0) {
		pid_t parent = getppid();
		long r;

		if (ptrace(PTRACE_ATTACH, parent, 0, 0))
			_exit(2);
		waitpid(parent, NULL, __WALL);
		r = ptrace(PTRACE_POKEDATA, parent, map, 0x4141414141414141L);
		ptrace(PTRACE_DETACH, parent, 0, 0);
		_exit(r == 0 ? 1 : 0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		t_fail("ptrace child did not exit normally: %#x", status);
	if (WEXITSTATUS(status) == 1)
		t_fail("PTRACE_POKEDATA into the read-only buffer succeeded");
	if (WEXITSTATUS(status) == 2)
		t_note("PTRACE_ATTACH not permitted, POKE not tried");
	check_unchanged("ptrace");

	/* process_vm_writev into ourselves */
	local.iov_base = junk;
	local.iov_len = sizeof(junk);
	remote.iov_base = map;
	remote.iov_len = sizeof(junk);
	n = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
	if (n >= 0 || errno != EFAULT)
		t_fail("process_vm_writev = %zd errno %d, want EFAULT", n, errno);
	check_unchanged("process_vm_writev");

	/* the buffer as the destination of read(2) */
	n = pread(fd, map, 64, bsz);
	if (n >= 0 || errno != EFAULT)
		t_fail("pread into buffer = %zd errno %d, want EFAULT", n, errno);
	/* ... of an io_uring READ with a plain address */
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read(sqe, fd, map, 64, bsz);
	kmbuf_wait(&ring, &res, &flags, NULL);
	if (res != -EFAULT)
		t_fail("io_uring read into buffer = %d, want -EFAULT", res);
	/* ... and of an O_DIRECT read */
	dfd = open(path, O_RDONLY | O_DIRECT);
	if (dfd >= 0) {
		n = pread(dfd, map, bsz, bsz);
		if (n >= 0 || errno != EFAULT)
			t_fail("O_DIRECT pread into buffer = %zd errno %d, want EFAULT", n, errno);
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_read(sqe, dfd, map, bsz, bsz);
		kmbuf_wait(&ring, &res, &flags, NULL);
		if (res != -EFAULT)
			t_fail("io_uring O_DIRECT read into buffer = %d, want -EFAULT", res);
		close(dfd);
	} else {
		t_note("O_DIRECT not supported here (%s), not tried", strerror(errno));
	}
	check_unchanged("reads into the buffer");

	/* a ring without the flag maps writable */
	t_expect(kmbuf_register(&ring, 5, 1, bsz, 0), 0);
	p = kmbuf_map(&ring, 5, bsz, PROT_READ | PROT_WRITE, MAP_SHARED);
	if (p == MAP_FAILED)
		t_fail("mmap(PROT_WRITE) of a writable ring = %s", strerror(errno));
	((unsigned char *)p)[0] = 1;

	close(fd);
	unlink(path);
	io_uring_queue_exit(&ring);
	t_pass();
}
