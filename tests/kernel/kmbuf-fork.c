/*
 * Description: fork() with a read-only kmbuf mapping is safe. The child
 * shares the buffers and sees the data; the parent unregistering the ring,
 * closing the io_uring and unmapping does not pull the pages from under
 * the child, which still reads the same bytes; and the child cannot write
 * them either (the write faults with SIGSEGV).
 */
#include "kmbuf-test.h"
#include <signal.h>
#include <sys/wait.h>

int main(void)
{
	size_t page = sysconf(_SC_PAGESIZE);
	struct io_uring ring;
	unsigned char *map;
	int fd, go[2], res, bid, status;
	char c = 'g';
	pid_t pid;
	char *path;

	t_start("kmbuf-fork");
	kmbuf_setup(&ring, 8);
	path = kmbuf_pattern_file("kmbuf-fork", 2 * page);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		t_fail("open(%s) = %s", path, strerror(errno));
	if (pipe(go))
		t_fail("pipe = %s", strerror(errno));
	t_expect(kmbuf_register(&ring, 1, 2, 2 * page, STABLE_KMBUF_RING_RDONLY), 0);
	map = kmbuf_map(&ring, 1, 4 * page, PROT_READ, MAP_SHARED);
	if (map == MAP_FAILED)
		t_fail("mmap = %s", strerror(errno));
	res = kmbuf_read(&ring, fd, 0, 0, 1, &bid);
	if (res != (int)(2 * page) || bid < 0)
		t_fail("read: res %d bid %d", res, bid);

	pid = fork();
	if (pid < 0)
		t_fail("fork = %s", strerror(errno));
	if (pid == 0) {
		unsigned char *b = map + (size_t)bid * 2 * page;
		size_t i;

		close(go[1]);
		for (i = 0; i < 2 * page; i++)
			if (b[i] != kmbuf_pattern(i))
				_exit(2);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		/* the parent has torn everything down by now */
		for (i = 0; i < 2 * page; i++)
			if (b[i] != kmbuf_pattern(i))
				_exit(4);
		b[0] = 0;	/* must fault */
		_exit(5);
	}
	close(go[0]);
	t_expect(kmbuf_unregister(&ring, 1), 0);
	io_uring_queue_exit(&ring);
	if (munmap(map, 4 * page))
		t_fail("munmap = %s", strerror(errno));
	if (write(go[1], &c, 1) != 1)
		t_fail("write(go) = %s", strerror(errno));
	if (waitpid(pid, &status, 0) != pid)
		t_fail("waitpid = %s", strerror(errno));
	if (WIFEXITED(status))
		t_fail("child exited with %d (2/4: wrong data, 5: write succeeded)",
		       WEXITSTATUS(status));
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV)
		t_fail("child status %#x, want death by SIGSEGV", status);

	close(fd);
	unlink(path);
	t_pass();
}
