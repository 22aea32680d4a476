/*
 * Description: the buffers of a kmbuf ring are locked memory, accounted
 * to the user against RLIMIT_MEMLOCK like the rest of io_uring's memory,
 * and given back on unregister and on ring close. Run as an unprivileged
 * user (without CAP_IPC_LOCK, which would skip the accounting) with a
 * small limit: a ring that fits registers, a second one that does not
 * fails with -ENOMEM, and register/unregister and create/close cycles can
 * be repeated many times without the limit ever being reached.
 */
#include "kmbuf-test.h"
#include <sys/resource.h>
#include <sys/wait.h>

#define LIMIT	(384 * 1024)
#define RING	(256 * 1024)

static void child(void)
{
	struct rlimit rl = { LIMIT, LIMIT };
	size_t page = sysconf(_SC_PAGESIZE);
	struct io_uring ring;
	int i, ret, tries;

	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		t_fail("setrlimit(MEMLOCK) = %s", strerror(errno));
	if (getuid() == 0 && (setgid(65534) || setuid(65534)))
		t_fail("setuid(65534) = %s", strerror(errno));

	ret = io_uring_queue_init(4, &ring, 0);
	if (ret)
		t_fail("io_uring_queue_init as uid %d = %d", getuid(), ret);
	t_expect(kmbuf_register(&ring, 1, RING / page, page, 0), 0);
	/* the same again does not fit under the limit */
	t_expect(kmbuf_register(&ring, 2, RING / page, page, 0), -ENOMEM);
	t_expect(kmbuf_register(&ring, 2, 1, 2 * LIMIT, 0), -ENOMEM);
	for (i = 0; i < 100; i++) {
		t_expect(kmbuf_unregister(&ring, 1), 0);
		t_expect(kmbuf_register(&ring, 1, RING / page, page, 0), 0);
	}
	/* closing the ring gives the memory back (asynchronously) */
	for (i = 0; i < 20; i++) {
		io_uring_queue_exit(&ring);
		ret = io_uring_queue_init(4, &ring, 0);
		if (ret)
			t_fail("round %d: io_uring_queue_init = %d", i, ret);
		for (tries = 0; tries < 100; tries++) {
			ret = kmbuf_register(&ring, 1, RING / page, page, 0);
			if (ret != -ENOMEM)
				break;
			usleep(50000);
		}
		if (ret)
			t_fail("round %d: register after close = %d", i, ret);
	}
	io_uring_queue_exit(&ring);
	exit(0);
}

int main(void)
{
	struct io_uring ring;
	int status;
	pid_t pid;

	t_start("kmbuf-memlock");
	kmbuf_setup(&ring, 4);
	io_uring_queue_exit(&ring);
	if (getuid() != 0)
		t_skip("needs root to switch to an unprivileged user");

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		child();
	if (waitpid(pid, &status, 0) != pid)
		t_fail("waitpid = %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		t_fail("unprivileged child: status %#x", status);
	t_pass();
}
