/*
 * Opening an image: read the header, the checksum table, the compression
 * index and (for a sidecar manifest) the data file's path; validate each
 * before the next is trusted; check the data file is long enough; compute
 * the root digest and, if the caller pinned one, compare.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "util.h"
#include "stable/stable.h"

#define U(x) ((unsigned long long)(x))

static int read_region(struct stable_image *img, const char *what, uint64_t off,
		       uint64_t len, uint8_t **out, char *err, size_t errlen)
{
	ssize_t n;

	*out = malloc(len ? len : 1);
	if (!*out)
		return stable_set_err(err, errlen, -ENOMEM,
				      "%s: no memory for the %s (%llu bytes)",
				      img->path, what, U(len));
	n = stable_pread_full(img->fd, *out, len, off);
	if (n < 0)
		return stable_set_err(err, errlen, (int)n, "%s: reading the %s: %s",
				      img->path, what, strerror((int)-n));
	if ((uint64_t)n != len)
		return stable_set_err(err, errlen, -EINVAL,
				      "%s: %s truncated: %zd of %llu bytes",
				      img->path, what, n, U(len));
	return 0;
}

static int check_crc(struct stable_image *img, const char *what,
		     const uint8_t *buf, uint64_t len, uint32_t stored,
		     char *err, size_t errlen)
{
	uint32_t crc = stable_crc32c(0, buf, len);

	if (crc != stored)
		return stable_set_err(err, errlen, -EINVAL,
				      "%s: %s checksum mismatch: header says 0x%08x, computed 0x%08x",
				      img->path, what, stored, crc);
	return 0;
}

/* A relative data path is taken relative to the manifest's folder. */
static char *resolve_data_path(const char *manifest, const char *rel)
{
	char *copy, *dir, *out;

	if (rel[0] == '/')
		return strdup(rel);
	copy = strdup(manifest);
	if (!copy)
		return NULL;
	dir = dirname(copy);
	if (asprintf(&out, "%s/%s", dir, rel) < 0)
		out = NULL;
	free(copy);
	return out;
}

static int open_sidecar_data(struct stable_image *img,
			     const struct stable_open_options *o, int oflags,
			     char *err, size_t errlen)
{
	const struct stable_hdr *h = &img->hdr;
	uint8_t *raw;
	uint64_t size;
	int ret;

	ret = read_region(img, "data path", h->path_offset, h->path_length,
			  &raw, err, errlen);
	if (ret)
		return ret;
	if (memchr(raw, 0, h->path_length)) {
		free(raw);
		return stable_set_err(err, errlen, -EINVAL,
				      "%s: data path contains a NUL byte", img->path);
	}
	if (o && o->data_path) {
		img->data_path = strdup(o->data_path);
	} else {
		char *rel = strndup((char *)raw, h->path_length);

		img->data_path = rel ? resolve_data_path(img->path, rel) : NULL;
		free(rel);
	}
	free(raw);
	if (!img->data_path)
		return stable_set_err(err, errlen, -ENOMEM, "%s: no memory", img->path);

	img->data_fd = open(img->data_path, oflags);
	if (img->data_fd < 0)
		return stable_set_err(err, errlen, -errno, "%s: data file %s: %s",
				      img->path, img->data_path, strerror(errno));
	ret = stable_fd_size(img->data_fd, &size);
	if (ret)
		return stable_set_err(err, errlen, ret,
				      "%s: data file %s: not a regular file or block device",
				      img->path, img->data_path);
	if (size < h->data_length)
		return stable_set_err(err, errlen, -EINVAL,
				      "%s: data file %s is %llu bytes, shorter than the %llu bytes the manifest covers",
				      img->path, img->data_path, U(size),
				      U(h->data_length));
	return 0;
}

/* The rest of the header area is zeros (docs/format.md): a flipped bit there is damage too. */
static int check_header_area(struct stable_image *img, const char *path, char *err,
			     size_t errlen)
{
	uint8_t area[STABLE_HDR_AREA - STABLE_HDR_SIZE];
	ssize_t n = stable_pread_full(img->fd, area, sizeof(area), STABLE_HDR_SIZE);

	if (n != (ssize_t)sizeof(area))
		return stable_set_err(err, errlen, n < 0 ? (int)n : -EINVAL,
				      "%s: header area truncated", path);
	for (size_t i = 0; i < sizeof(area); i++)
		if (area[i])
			return stable_set_err(err, errlen, -EINVAL,
					      "%s: header area byte %zu is 0x%02x, not zero",
					      path, i + STABLE_HDR_SIZE, area[i]);
	return 0;
}

static int open_files(struct stable_image *img, const char *path,
		      const struct stable_open_options *o, char *err,
		      size_t errlen)
{
	int oflags = O_CLOEXEC | ((img->flags & STABLE_OPEN_WRITABLE) ? O_RDWR : O_RDONLY);
	uint8_t raw[STABLE_HDR_SIZE];
	uint64_t size;
	ssize_t n;
	int ret;

	img->fd = open(path, oflags);
	if (img->fd < 0)
		return stable_set_err(err, errlen, -errno, "%s: %s", path,
				      strerror(errno));
	ret = stable_fd_size(img->fd, &size);
	if (ret)
		return stable_set_err(err, errlen, ret,
				      "%s: not a regular file or block device", path);
	n = stable_pread_full(img->fd, raw, sizeof(raw), 0);
	if (n < 0)
		return stable_set_err(err, errlen, (int)n, "%s: reading the header: %s",
				      path, strerror((int)-n));
	if (n < (ssize_t)sizeof(raw))
		return stable_set_err(err, errlen, -EINVAL,
				      "%s: truncated: %zd bytes, a header needs %d",
				      path, n, STABLE_HDR_SIZE);
	ret = stable_hdr_decode(&img->hdr, raw, size, err, errlen);
	if (ret) {
		char why[512];

		snprintf(why, sizeof(why), "%s", err);
		return stable_set_err(err, errlen, ret, "%s: header: %s", path, why);
	}
	memcpy(img->loaded_hdr, raw, sizeof(raw));
	ret = check_header_area(img, path, err, errlen);
	if (ret)
		return ret;
	if (img->hdr.flags & STABLE_HF_SIDECAR)
		return open_sidecar_data(img, o, oflags, err, errlen);
	img->data_path = strdup(path);
	if (!img->data_path)
		return -ENOMEM;
	img->data_fd = img->fd;
	return 0;
}

/* With STABLE_OPEN_DIRECT, data reads go through an O_DIRECT descriptor. */
static int reopen_direct(struct stable_image *img, char *err, size_t errlen)
{
	int fd = open(img->data_path, O_RDONLY | O_CLOEXEC | O_DIRECT);

	if (fd < 0)
		return stable_set_err(err, errlen, -errno, "%s: O_DIRECT: %s",
				      img->data_path, strerror(errno));
	if (img->data_fd != img->fd)
		close(img->data_fd);
	img->data_fd = fd;
	return 0;
}

static int load(struct stable_image *img, const char *path,
		const struct stable_open_options *o, char *err, size_t errlen)
{
	const struct stable_hdr *h = &img->hdr;
	int ret;

	ret = open_files(img, path, o, err, errlen);
	if (ret)
		return ret;
	ret = read_region(img, "checksum table", h->table_offset,
			  h->table_length, &img->table, err, errlen);
	if (!ret)
		ret = check_crc(img, "checksum table", img->table,
				h->table_length, h->table_crc, err, errlen);
	if (ret)
		return ret;
	if (h->flags & STABLE_HF_COMPRESSED) {
		char why[512];

		ret = read_region(img, "compression index", h->index_offset,
				  h->index_length, &img->index, err, errlen);
		if (!ret)
			ret = check_crc(img, "compression index", img->index,
					h->index_length, h->index_crc, err, errlen);
		if (ret)
			return ret;
		ret = stable_index_check(h, img->index, why, sizeof(why));
		if (ret)
			return stable_set_err(err, errlen, ret, "%s: %s", path, why);
	}
	img->root_digest = stable_root_digest(h, img->table, img->index);
	img->zero_block_crc = stable_zero_crc(h->block_size);
	if ((img->flags & STABLE_OPEN_EXPECT_DIGEST) &&
	    o->expected_digest != img->root_digest)
		return stable_set_err(err, errlen, -EBADMSG,
				      "%s: root digest mismatch: expected %08x, image has %08x",
				      path, o->expected_digest, img->root_digest);
	if (img->flags & STABLE_OPEN_DIRECT)
		return reopen_direct(img, err, errlen);
	return 0;
}

int stable_image_open(struct stable_image **out, const char *path,
		      const struct stable_open_options *opts, char *err,
		      size_t errlen)
{
	struct stable_image *img;
	int ret;

	*out = NULL;
	if (!path)
		return stable_set_err(err, errlen, -EINVAL, "no image path given");
	img = calloc(1, sizeof(*img));
	if (!img)
		return stable_set_err(err, errlen, -ENOMEM, "%s: no memory", path);
	img->fd = img->data_fd = -1;
	pthread_mutex_init(&img->reload_lock, NULL);
	img->flags = opts ? opts->flags : 0;
	img->path = strdup(path);
	ret = img->path ? load(img, path, opts, err, errlen) : -ENOMEM;
	if (ret) {
		stable_image_close(img);
		return ret;
	}
	*out = img;
	return 0;
}

void stable_image_close(struct stable_image *img)
{
	if (!img)
		return;
	if (img->data_fd >= 0 && img->data_fd != img->fd)
		close(img->data_fd);
	if (img->fd >= 0)
		close(img->fd);
	free(img->table);
	free(img->index);
	free(img->path);
	free(img->data_path);
	pthread_mutex_destroy(&img->reload_lock);
	free(img);
}

void stable_image_get_info(const struct stable_image *img,
			   struct stable_image_info *i)
{
	const struct stable_hdr *h = &img->hdr;

	memset(i, 0, sizeof(*i));
	i->version = h->version;
	i->layout = (h->flags & STABLE_HF_SIDECAR) ? STABLE_LAYOUT_SIDECAR
						   : STABLE_LAYOUT_INLINE;
	i->block_size = h->block_size;
	i->flags = h->flags;
	i->data_length = h->data_length;
	memcpy(i->uuid, h->uuid, 16);
	i->data_blocks = h->data_blocks;
	i->parity_blocks = h->parity_blocks;
	i->parity_group = h->parity_group;
	i->extent_size = h->extent_size;
	i->extents = stable_hdr_extents(h);
	i->data_offset = h->data_offset;
	i->parity_offset = h->parity_offset;
	i->table_offset = h->table_offset;
	i->table_length = h->table_length;
	i->index_offset = h->index_offset;
	i->index_length = h->index_length;
	i->root_digest = __atomic_load_n(&img->root_digest, __ATOMIC_RELAXED);
	i->path = img->path;
	i->data_path = img->data_path;
}

int stable_image_block_crc(const struct stable_image *img, uint64_t block,
			   uint32_t *crc)
{
	if (!img || block >= img->hdr.data_blocks + img->hdr.parity_blocks)
		return -EINVAL;
	*crc = stable_image_crc(img, block);
	return 0;
}

int stable_digest_parse(const char *text, uint32_t *digest)
{
	uint32_t v = 0;

	if (!text || strlen(text) != 8)
		return -EINVAL;
	for (int i = 0; i < 8; i++) {
		if (!isxdigit((unsigned char)text[i]))
			return -EINVAL;
		v = v << 4 | (uint32_t)(isdigit((unsigned char)text[i]) ? text[i] - '0'
						: (tolower((unsigned char)text[i]) - 'a' + 10));
	}
	*digest = v;
	return 0;
}
