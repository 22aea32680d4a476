/*
 * The NBD protocol as stabled speaks it: magic numbers, option, reply,
 * command and flag values, written from the protocol description
 * (NetworkBlockDevice/nbd, doc/proto.md, with the INFO, STRUCTURED_REPLY,
 * BLOCK_STATUS, WRITE_ZEROES and EXTENDED_HEADERS extensions merged).
 * Everything on the wire is big-endian; the helpers below are the only
 * place that knows.
 */
#ifndef STABLED_NBD_H
#define STABLED_NBD_H

#include <stdint.h>

/* --- handshake ----------------------------------------------------------- */
#define NBD_MAGIC		0x4e42444d41474943ull	/* "NBDMAGIC" */
#define NBD_OPTS_MAGIC		0x49484156454f5054ull	/* "IHAVEOPT" */
#define NBD_REP_MAGIC		0x0003e889045565a9ull

/* handshake flags (server) and client flags */
#define NBD_FLAG_FIXED_NEWSTYLE	(1u << 0)
#define NBD_FLAG_NO_ZEROES	(1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE NBD_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_C_NO_ZEROES	NBD_FLAG_NO_ZEROES

/* transmission flags */
#define NBD_FLAG_HAS_FLAGS	(1u << 0)
#define NBD_FLAG_READ_ONLY	(1u << 1)
#define NBD_FLAG_SEND_FLUSH	(1u << 2)
#define NBD_FLAG_SEND_FUA	(1u << 3)
#define NBD_FLAG_ROTATIONAL	(1u << 4)
#define NBD_FLAG_SEND_TRIM	(1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF	(1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN	(1u << 8)
#define NBD_FLAG_SEND_RESIZE	(1u << 9)
#define NBD_FLAG_SEND_CACHE	(1u << 10)

/* options */
#define NBD_OPT_EXPORT_NAME	1
#define NBD_OPT_ABORT		2
#define NBD_OPT_LIST		3
#define NBD_OPT_STARTTLS	5
#define NBD_OPT_INFO		6
#define NBD_OPT_GO		7
#define NBD_OPT_STRUCTURED_REPLY 8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT 10
#define NBD_OPT_EXTENDED_HEADERS 11

/* option replies; errors have bit 31 set */
#define NBD_REP_ACK		1
#define NBD_REP_SERVER		2
#define NBD_REP_INFO		3
#define NBD_REP_META_CONTEXT	4
#define NBD_REP_ERR(n)		((1u << 31) | (n))
#define NBD_REP_ERR_UNSUP	NBD_REP_ERR(1)
#define NBD_REP_ERR_POLICY	NBD_REP_ERR(2)
#define NBD_REP_ERR_INVALID	NBD_REP_ERR(3)
#define NBD_REP_ERR_PLATFORM	NBD_REP_ERR(4)
#define NBD_REP_ERR_TLS_REQD	NBD_REP_ERR(5)
#define NBD_REP_ERR_UNKNOWN	NBD_REP_ERR(6)
#define NBD_REP_ERR_SHUTDOWN	NBD_REP_ERR(7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR(8)
#define NBD_REP_ERR_TOO_BIG	NBD_REP_ERR(9)
#define NBD_REP_ERR_EXT_HEADER_REQD NBD_REP_ERR(10)

/* NBD_REP_INFO types */
#define NBD_INFO_EXPORT		0
#define NBD_INFO_NAME		1
#define NBD_INFO_DESCRIPTION	2
#define NBD_INFO_BLOCK_SIZE	3

/* --- transmission ------------------------------------------------------- */
#define NBD_REQUEST_MAGIC	0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC	0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu
/* with NBD_OPT_EXTENDED_HEADERS: 32-byte requests and replies, 64-bit lengths */
#define NBD_EXTENDED_REQUEST_MAGIC 0x21e41c71u
#define NBD_EXTENDED_REPLY_MAGIC 0x6e8a278cu

#define NBD_CMD_READ		0
#define NBD_CMD_WRITE		1
#define NBD_CMD_DISC		2
#define NBD_CMD_FLUSH		3
#define NBD_CMD_TRIM		4
#define NBD_CMD_CACHE		5
#define NBD_CMD_WRITE_ZEROES	6
#define NBD_CMD_BLOCK_STATUS	7

#define NBD_CMD_FLAG_FUA	(1u << 0)
#define NBD_CMD_FLAG_NO_HOLE	(1u << 1)
#define NBD_CMD_FLAG_DF		(1u << 2)
#define NBD_CMD_FLAG_REQ_ONE	(1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO	(1u << 4)
#define NBD_CMD_FLAG_PAYLOAD_LEN (1u << 5)	/* extended: length is a payload */

#define NBD_REPLY_FLAG_DONE	(1u << 0)

#define NBD_REPLY_TYPE_NONE	0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_BLOCK_STATUS_EXT 6
#define NBD_REPLY_TYPE_ERROR	((1u << 15) + 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET ((1u << 15) + 2)

/* error values: the spec fixes these numbers, whatever errno.h says */
#define NBD_EPERM		1
#define NBD_EIO			5
#define NBD_ENOMEM		12
#define NBD_EINVAL		22
#define NBD_ENOSPC		28
#define NBD_EOVERFLOW		75
#define NBD_ENOTSUP		95
#define NBD_ESHUTDOWN		108

#define NBD_STATE_HOLE		(1u << 0)
#define NBD_STATE_ZERO		(1u << 1)

/* sizes of fixed parts */
#define NBD_OPT_HDR_LEN		16	/* magic, option, length */
#define NBD_REQUEST_LEN		28
#define NBD_SIMPLE_REPLY_LEN	16
#define NBD_CHUNK_HDR_LEN	20
#define NBD_EXT_REQUEST_LEN	32
#define NBD_EXT_REPLY_LEN	32
#define NBD_MAX_STRING		4096	/* names and messages */
#define NBD_MAX_REQUEST		(32u << 20)	/* the spec's 32 MiB */

static inline uint16_t nbd_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t nbd_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t nbd_get64(const uint8_t *p)
{
	return (uint64_t)nbd_get32(p) << 32 | nbd_get32(p + 4);
}

static inline uint8_t *nbd_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static inline uint8_t *nbd_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static inline uint8_t *nbd_put64(uint8_t *p, uint64_t v)
{
	nbd_put32(p, (uint32_t)(v >> 32));
	return nbd_put32(p + 4, (uint32_t)v);
}

#endif
