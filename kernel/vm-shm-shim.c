/*
 * An LD_PRELOAD shim for fio in the VM (make bench-server-vm): the test
 * kernel is built without CONFIG_SYSVIPC, and Debian's fio keeps its job
 * table in a System V shared memory segment (shmget fails with ENOSYS,
 * fio exits). Here a private segment is a shared anonymous mapping; fio
 * attaches it before it forks its jobs, so they share it as they would
 * the real one. Only IPC_PRIVATE segments, which is all fio asks for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define SHIM_SEGMENTS 64

static struct {
	void *addr;
	size_t size;
} segments[SHIM_SEGMENTS];
static int nr_segments;

int shmget(key_t key, size_t size, int flags)
{
	void *addr;

	(void)flags;
	if (key != IPC_PRIVATE) {
		errno = ENOSYS;
		return -1;
	}
	if (nr_segments == SHIM_SEGMENTS) {
		errno = ENOSPC;
		return -1;
	}
	addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (addr == MAP_FAILED)
		return -1;
	segments[nr_segments].addr = addr;
	segments[nr_segments].size = size;
	return nr_segments++;
}

void *shmat(int id, const void *addr, int flags)
{
	(void)addr;
	(void)flags;
	if (id < 0 || id >= nr_segments) {
		errno = EINVAL;
		return (void *)-1;
	}
	return segments[id].addr;
}

/* the mapping lives until exit, as a removed but attached segment would */
int shmdt(const void *addr)
{
	(void)addr;
	return 0;
}

int shmctl(int id, int cmd, struct shmid_ds *buf)
{
	if (id < 0 || id >= nr_segments) {
		errno = EINVAL;
		return -1;
	}
	if (cmd == IPC_RMID)
		return 0;
	if (cmd == IPC_STAT && buf) {
		*buf = (struct shmid_ds){ .shm_segsz = segments[id].size };
		return 0;
	}
	errno = EINVAL;
	return -1;
}
