/*
 * Sealed memfds: memory whose contents no one can change once sealed,
 * enforced by the kernel on every path (write(2) to the fd, writable
 * mappings, mprotect, /proc/PID/mem, process_vm_writev, I/O into it).
 * The sealed backend reads into them; every backend may seal a copy of
 * bytes it had to produce itself (rebuilt or inflated).
 */
#ifndef STABLE_SEAL_H
#define STABLE_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct stable_sealed {
	int fd;
	void *rw;		/* writable mapping until sealed */
	const void *ro;		/* read-only mapping after */
	size_t maplen;
};

#define STABLE_SEALED_INIT { -1, NULL, NULL, 0 }

/* A new memfd of len bytes, mapped writable at m->rw. 0 or -errno. */
int stable_sealed_create(struct stable_sealed *m, size_t len);
/*
 * Unmaps the writable mapping, seals (write, shrink, grow, seal), and
 * maps read-only at m->ro. Fails with -EBUSY if anyone still has the
 * memfd mapped writable: then nothing was verified, nothing is lost. A
 * memfd that was never mapped is sealed with F_SEAL_FUTURE_WRITE in
 * place of F_SEAL_WRITE (seal.c says why).
 */
int stable_sealed_seal(struct stable_sealed *m);
/*
 * A new memfd holding up to len bytes of fd at off, copied by the kernel
 * (sendfile): no writable mapping, no pages zeroed first, nothing
 * faulted in. Returns the bytes copied (fewer at the end of the file)
 * or -errno; -EINVAL or -EXDEV mean this kernel cannot copy between
 * these files, and m is left empty.
 */
ssize_t stable_sealed_fill(struct stable_sealed *m, int fd, uint64_t off, size_t len);
/* A sealed copy of len bytes of data. */
int stable_sealed_copy(struct stable_sealed *m, const void *data, size_t len);
void stable_sealed_drop(struct stable_sealed *m);

#endif
