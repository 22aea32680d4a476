/*
 * stable: the userspace view of kernel-managed buffer rings (kmbuf), as
 * added to io_uring by the patch series in kernel/patches/.
 *
 * Distribution headers (Debian bookworm's among them) predate the series,
 * so every constant here is guarded and defined only where the system
 * header lacks it. tests/kernel/uapi-check.c proves these values and the
 * layout of struct stable_kmbuf_reg agree with the patched kernel's
 * include/uapi/linux/io_uring.h. docs/uapi.md describes the interface.
 */
#ifndef STABLE_KMBUF_UAPI_H
#define STABLE_KMBUF_UAPI_H

#include <stddef.h>
#include <linux/types.h>
#include <linux/io_uring.h>

/* io_uring_register(2) opcodes */
#ifndef IORING_REGISTER_KMBUF_RING
#define IORING_REGISTER_KMBUF_RING	38
#endif
#ifndef IORING_UNREGISTER_KMBUF_RING
#define IORING_UNREGISTER_KMBUF_RING	39
#endif

/*
 * mmap(2) offset of the buffers of group bgid (bgid < 2048):
 *	IORING_OFF_KMBUF_RING | ((__u64)bgid << IORING_OFF_KMBUF_SHIFT)
 * length exactly ring_entries * buf_size; buffer N at N * buf_size.
 */
#ifndef IORING_OFF_KMBUF_RING
#define IORING_OFF_KMBUF_RING		0x88000000ULL
#endif
#ifndef IORING_OFF_KMBUF_SHIFT
#define IORING_OFF_KMBUF_SHIFT		16
#endif

/*
 * Registration flag: the buffers can only ever be mapped read-only.
 * The kernel's enum constant cannot be tested with #ifdef, so the value
 * is ours; the uapi check keeps it equal to the kernel's.
 */
#define STABLE_KMBUF_RING_RDONLY	(1U << 15)

/*
 * SQE opcode returning buffers to the ring: buf_group = bgid, addr =
 * pointer to __u16 IDs, len = count. Also an enum in the kernel header.
 */
#define STABLE_IORING_OP_KMBUF_RETURN	65

/* The largest group ID whose buffers can be mapped. */
#define STABLE_KMBUF_MAX_BGID		2047

/*
 * struct io_uring_buf_reg as the series defines it: ring_addr of a
 * provided ring and buf_size of a kmbuf ring share the first field.
 * Same size and layout as the system's struct io_uring_buf_reg.
 */
struct stable_kmbuf_reg {
	union {
		__u64	ring_addr;
		__u64	buf_size;
	};
	__u32	ring_entries;
	__u16	bgid;
	__u16	flags;
	__u32	min_left;
	__u32	resv[5];
};

/* Size of the mapping of a ring with these parameters. */
static inline size_t stable_kmbuf_map_size(__u32 ring_entries, __u64 buf_size)
{
	return (size_t)ring_entries * (size_t)buf_size;
}

/* mmap(2) offset of the buffers of group bgid. */
static inline __u64 stable_kmbuf_map_offset(__u16 bgid)
{
	return IORING_OFF_KMBUF_RING | ((__u64)bgid << IORING_OFF_KMBUF_SHIFT);
}

#endif /* STABLE_KMBUF_UAPI_H */
