/*
 * Description: include/stable/kmbuf_uapi.h agrees with the patched
 * kernel's include/uapi/linux/io_uring.h: every constant has the same
 * value, and struct stable_kmbuf_reg has the size and field offsets of
 * the kernel's struct io_uring_buf_reg.
 *
 * Built twice (kernel/kernel.mk, target uapi-check): with
 * -DUAPI_KERNEL_SIDE against the headers generated from the patched tree,
 * giving uapi_kernel[], and normally against our header and the system's
 * older <linux/io_uring.h>, giving uapi_ours[] and main().
 */
#include <stddef.h>

#define UAPI_FIELDS(X, REG, RDONLY, OP_RETURN)				\
	X(IORING_REGISTER_KMBUF_RING)					\
	X(IORING_UNREGISTER_KMBUF_RING)					\
	X(IORING_OFF_KMBUF_RING)					\
	X(IORING_OFF_KMBUF_SHIFT)					\
	X(RDONLY)							\
	X(OP_RETURN)							\
	X(sizeof(REG))							\
	X(offsetof(REG, ring_addr))					\
	X(offsetof(REG, buf_size))					\
	X(sizeof(((REG *)0)->buf_size))					\
	X(offsetof(REG, ring_entries))					\
	X(offsetof(REG, bgid))						\
	X(offsetof(REG, flags))						\
	X(sizeof(((REG *)0)->flags))					\
	X(offsetof(REG, min_left))					\
	X(offsetof(REG, resv))						\
	X(sizeof(((REG *)0)->resv))

#define VALUE(e)	(unsigned long long)(e),
#define NAME(e)		#e,

#ifdef UAPI_KERNEL_SIDE
#include <linux/io_uring.h>

const unsigned long long uapi_kernel[] = {
	UAPI_FIELDS(VALUE, struct io_uring_buf_reg, IOU_KMBUF_RING_RDONLY,
		    IORING_OP_KMBUF_RETURN)
};
#else
#include <stdio.h>
#include <stable/kmbuf_uapi.h>

extern const unsigned long long uapi_kernel[];

static const unsigned long long uapi_ours[] = {
	UAPI_FIELDS(VALUE, struct stable_kmbuf_reg, STABLE_KMBUF_RING_RDONLY,
		    STABLE_IORING_OP_KMBUF_RETURN)
};
static const char *const uapi_names[] = {
	UAPI_FIELDS(NAME, struct io_uring_buf_reg, IOU_KMBUF_RING_RDONLY,
		    IORING_OP_KMBUF_RETURN)
};

int main(void)
{
	size_t i, n = sizeof(uapi_ours) / sizeof(uapi_ours[0]);
	int bad = 0;

	printf("1..%zu\n", n);
	for (i = 0; i < n; i++) {
		int ok = uapi_ours[i] == uapi_kernel[i];

		printf("%sok %zu - %s: ours %#llx, kernel %#llx\n", ok ? "" : "not ",
		       i + 1, uapi_names[i], uapi_ours[i], uapi_kernel[i]);
		bad |= !ok;
	}
	return bad;
}
#endif
