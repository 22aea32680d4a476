/*
 * stable-info: what an image is. The header fields as libstable validated
 * them, the storage under the data (sector sizes and I/O hints, through
 * libblkid or sysfs), and what the data holds (a filesystem or partition
 * table, probed by libblkid). Text for people, --json for scripts.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <blkid/blkid.h>

#include "cli.h"
#include "json.h"
#include "stable/stable.h"

/* A compressed image is probed through verified reads of its two ends. */
#define PROBE_HEAD (4u << 20)
#define PROBE_TAIL (1u << 20)
#define MAX_VALUES 32

#define U(x) ((unsigned long long)(x))

static void usage(FILE *f)
{
	fprintf(f,
"Usage: stable-info [OPTIONS] IMAGE\n"
"Print what IMAGE (an image or a sidecar manifest) is: its header fields,\n"
"the topology of the file or device holding its data, and any filesystem\n"
"or partition table found inside the data.\n"
"\n"
"  -j, --json             print one JSON object instead of text\n"
"  -n, --no-probe         skip the topology and content probes\n"
"  -h, --help             this help\n"
"  -V, --version          the version\n"
"\n"
"Exit status: 0 success, 2 usage error or an image that does not open.\n");
}

struct topology {
	int found;
	char source[192];	/* "blkid" or "sysfs /sys/dev/block/M:m" */
	char why[160];		/* when not found */
	unsigned long logical, physical, min_io, opt_io, align;
};

struct content {
	int probed;
	const char *method;	/* "raw" or "verified" */
	uint64_t offset, length;	/* what was probed, in the data file or data */
	char why[640];		/* not probed, or probe result in words */
	int nvalues;
	char *name[MAX_VALUES];
	char *value[MAX_VALUES];
};

/* --- topology ------------------------------------------------------------ */

static int topology_blkid(const char *path, struct topology *t)
{
	blkid_probe pr = blkid_new_probe_from_filename(path);
	blkid_topology tp;

	if (!pr) {
		snprintf(t->why, sizeof(t->why), "blkid cannot open %s: %s", path,
			 strerror(errno));
		return -1;
	}
	tp = blkid_probe_get_topology(pr);
	if (tp) {
		t->found = 1;
		snprintf(t->source, sizeof(t->source), "blkid %s", path);
		t->logical = blkid_topology_get_logical_sector_size(tp);
		t->physical = blkid_topology_get_physical_sector_size(tp);
		t->min_io = blkid_topology_get_minimum_io_size(tp);
		t->opt_io = blkid_topology_get_optimal_io_size(tp);
		t->align = blkid_topology_get_alignment_offset(tp);
	} else {
		snprintf(t->why, sizeof(t->why), "blkid found no topology for %s", path);
	}
	blkid_free_probe(pr);
	return t->found ? 0 : -1;
}

static int read_ulong(const char *dir, const char *name, unsigned long *v)
{
	char path[256];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return -1;
	ok = fscanf(f, "%lu", v) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

/*
 * A regular file has no topology of its own: report that of the block
 * device its filesystem lives on (a partition's queue is its disk's).
 */
static void topology_sysfs(dev_t dev, struct topology *t)
{
	char dir[128], queue[160];

	if (major(dev) == 0) {
		snprintf(t->why, sizeof(t->why),
			 "a regular file on a filesystem without a block device (st_dev %u:%u)",
			 major(dev), minor(dev));
		return;
	}
	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	snprintf(queue, sizeof(queue), "%s/queue", dir);
	if (access(queue, F_OK) != 0)
		snprintf(queue, sizeof(queue), "%s/../queue", dir);
	if (read_ulong(queue, "logical_block_size", &t->logical) ||
	    read_ulong(queue, "physical_block_size", &t->physical) ||
	    read_ulong(queue, "minimum_io_size", &t->min_io) ||
	    read_ulong(queue, "optimal_io_size", &t->opt_io)) {
		snprintf(t->why, sizeof(t->why),
			 "a regular file on device %u:%u, whose queue limits sysfs does not show",
			 major(dev), minor(dev));
		return;
	}
	if (read_ulong(dir, "alignment_offset", &t->align))
		t->align = 0;
	t->found = 1;
	snprintf(t->source, sizeof(t->source), "sysfs %s (the device under the file)",
		 dir);
}

static void get_topology(const char *path, struct topology *t)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(t->why, sizeof(t->why), "%s: %s", path, strerror(errno));
		return;
	}
	if (S_ISBLK(st.st_mode)) {
		topology_blkid(path, t);
		return;
	}
	topology_sysfs(st.st_dev, t);
}

/* --- content --------------------------------------------------------------- */

static void content_free(struct content *c)
{
	for (int i = 0; i < c->nvalues; i++) {
		free(c->name[i]);
		free(c->value[i]);
	}
	c->nvalues = 0;
}

/* Probes [off, off + len) of fd for a filesystem or a partition table. */
static void probe_fd(int fd, uint64_t off, uint64_t len, struct content *c)
{
	blkid_probe pr = blkid_new_probe();
	int ret, n;

	if (!pr) {
		snprintf(c->why, sizeof(c->why), "blkid_new_probe failed");
		return;
	}
	if (blkid_probe_set_device(pr, fd, (blkid_loff_t)off, (blkid_loff_t)len)) {
		snprintf(c->why, sizeof(c->why), "blkid cannot probe %llu bytes at %llu",
			 U(len), U(off));
		goto out;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID |
					  BLKID_SUBLKS_TYPE | BLKID_SUBLKS_SECTYPE |
					  BLKID_SUBLKS_USAGE | BLKID_SUBLKS_VERSION);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
	c->probed = 1;
	ret = blkid_do_safeprobe(pr);
	if (ret == 1) {
		snprintf(c->why, sizeof(c->why), "no filesystem or partition table found");
		goto out;
	}
	if (ret == -2) {
		snprintf(c->why, sizeof(c->why),
			 "ambiguous: signatures of more than one filesystem");
		goto out;
	}
	if (ret < 0) {
		snprintf(c->why, sizeof(c->why), "blkid probe failed");
		goto out;
	}
	n = blkid_probe_numof_values(pr);
	for (int i = 0; i < n && c->nvalues < MAX_VALUES; i++) {
		const char *name, *data;
		size_t size;

		if (blkid_probe_get_value(pr, i, &name, &data, &size))
			continue;
		c->name[c->nvalues] = strdup(name);
		/* size counts the terminating NUL that blkid adds */
		c->value[c->nvalues] = strndup(data, size);
		if (!c->name[c->nvalues] || !c->value[c->nvalues]) {
			free(c->name[c->nvalues]);
			free(c->value[c->nvalues]);
			break;
		}
		c->nvalues++;
	}
	snprintf(c->why, sizeof(c->why), "found");
out:
	blkid_free_probe(pr);
}

/* Copies the verified bytes [off, off + len) of the image into fd at off. */
static int copy_verified(struct stable_reader *rd, int fd, uint64_t off,
			 uint64_t len, struct content *c)
{
	const struct stable_extent *ext;

	while (len > 0) {
		int ret = stable_read(rd, off, (size_t)len, &ext);

		if (ret) {
			snprintf(c->why, sizeof(c->why), "not probed: %s",
				 stable_errmsg(rd));
			return ret;
		}
		if (pwrite(fd, ext->data, ext->length, (off_t)off) != (ssize_t)ext->length) {
			snprintf(c->why, sizeof(c->why), "not probed: memfd write: %s",
				 strerror(errno));
			stable_release(rd, ext);
			return -EIO;
		}
		off += ext->length;
		len -= ext->length;
		stable_release(rd, ext);
	}
	return 0;
}

/*
 * Compressed data has no byte range to hand blkid, so the two ends of the
 * data (where superblocks and partition tables live) are read verified
 * into a sparse memfd of the data's full length, and that is probed.
 */
static void probe_compressed(struct stable_image *img,
			     const struct stable_image_info *info, struct content *c)
{
	uint64_t len = info->data_length;
	uint64_t head = len < PROBE_HEAD ? len : PROBE_HEAD;
	uint64_t tail = len - head < PROBE_TAIL ? len - head : PROBE_TAIL;
	struct stable_reader *rd;
	char err[512];
	int fd;

	c->method = "verified";
	c->offset = 0;
	c->length = len;
	if (stable_reader_new(&rd, img, NULL, err, sizeof(err))) {
		snprintf(c->why, sizeof(c->why), "not probed: %s", err);
		return;
	}
	fd = memfd_create("stable-info-probe", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)len) < 0) {
		snprintf(c->why, sizeof(c->why), "not probed: memfd: %s", strerror(errno));
	} else if (!copy_verified(rd, fd, 0, head, c) &&
		   !copy_verified(rd, fd, len - tail, tail, c)) {
		probe_fd(fd, 0, len, c);
	}
	if (fd >= 0)
		close(fd);
	stable_reader_free(rd);
}

static void get_content(struct stable_image *img, const struct stable_image_info *info,
			struct content *c)
{
	int fd;

	if (info->data_length == 0) {
		snprintf(c->why, sizeof(c->why), "not probed: no data");
		return;
	}
	if (info->extent_size) {
		probe_compressed(img, info, c);
		return;
	}
	/* Plain data lies as it is in the data file: probe it in place. */
	c->method = "raw";
	c->offset = info->data_offset;
	c->length = info->data_length;
	fd = open(info->data_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(c->why, sizeof(c->why), "not probed: %s: %s", info->data_path,
			 strerror(errno));
		return;
	}
	probe_fd(fd, info->data_offset, info->data_length, c);
	close(fd);
}

/* --- output ------------------------------------------------------------------ */

static void format_uuid(const uint8_t *u, char *out)
{
	sprintf(out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		u[10], u[11], u[12], u[13], u[14], u[15]);
}

static const char *const flag_names[] = { "sidecar", "compressed", "parity" };

static void format_flags(uint32_t flags, char *out, size_t len)
{
	size_t n = 0;

	out[0] = 0;
	for (unsigned int i = 0; i < 3; i++)
		if (flags & (1u << i))
			n += (size_t)snprintf(out + n, len - n, "%s%s", n ? "," : "",
					      flag_names[i]);
	if (!n)
		snprintf(out, len, "none");
}

static void print_text(const struct stable_image_info *i, const struct topology *t,
		       const struct content *c, int probe)
{
	char uuid[40], flags[64];

	format_uuid(i->uuid, uuid);
	format_flags(i->flags, flags, sizeof(flags));
	printf("image:            %s\n", i->path);
	printf("version:          %u\n", i->version);
	printf("layout:           %s\n", i->layout == STABLE_LAYOUT_SIDECAR ? "sidecar" : "inline");
	printf("block size:       %u\n", i->block_size);
	printf("data length:      %llu\n", U(i->data_length));
	printf("flags:            0x%x (%s)\n", i->flags, flags);
	printf("uuid:             %s\n", uuid);
	printf("data blocks:      %llu\n", U(i->data_blocks));
	printf("parity group:     %u\n", i->parity_group);
	printf("parity blocks:    %llu\n", U(i->parity_blocks));
	printf("extent size:      %u\n", i->extent_size);
	printf("extents:          %llu\n", U(i->extents));
	printf("data offset:      %llu\n", U(i->data_offset));
	printf("parity offset:    %llu\n", U(i->parity_offset));
	printf("table offset:     %llu\n", U(i->table_offset));
	printf("table length:     %llu\n", U(i->table_length));
	printf("index offset:     %llu\n", U(i->index_offset));
	printf("index length:     %llu\n", U(i->index_length));
	printf("root digest:      %08x\n", i->root_digest);
	printf("data path:        %s\n", i->data_path);
	if (!probe)
		return;
	if (t->found) {
		printf("topology:         %s\n", t->source);
		printf("  logical sector size:  %lu\n", t->logical);
		printf("  physical sector size: %lu\n", t->physical);
		printf("  minimum I/O size:     %lu\n", t->min_io);
		printf("  optimal I/O size:     %lu\n", t->opt_io);
		printf("  alignment offset:     %lu\n", t->align);
	} else {
		printf("topology:         unknown: %s\n", t->why);
	}
	if (!c->probed) {
		printf("content:          %s\n", c->why);
		return;
	}
	if (!strcmp(c->method, "raw"))
		printf("content:          %s (probed in place: %llu bytes at offset %llu of the data file)\n",
		       c->why, U(c->length), U(c->offset));
	else
		printf("content:          %s (probed through verified reads of the first %u and last %u bytes: compressed)\n",
		       c->why, PROBE_HEAD, PROBE_TAIL);
	for (int k = 0; k < c->nvalues; k++)
		printf("  %s=%s\n", c->name[k], c->value[k]);
}

static void print_json(const struct stable_image_info *i, const struct topology *t,
		       const struct content *c, int probe)
{
	char uuid[40], digest[9];
	int first = 1, sub;

	format_uuid(i->uuid, uuid);
	snprintf(digest, sizeof(digest), "%08x", i->root_digest);
	fputc('{', stdout);
	json_kv_str(stdout, &first, 2, "image", i->path);
	json_kv_u64(stdout, &first, 2, "version", i->version);
	json_kv_str(stdout, &first, 2, "layout",
		    i->layout == STABLE_LAYOUT_SIDECAR ? "sidecar" : "inline");
	json_kv_u64(stdout, &first, 2, "block_size", i->block_size);
	json_kv_u64(stdout, &first, 2, "data_length", i->data_length);
	json_kv_u64(stdout, &first, 2, "flags", i->flags);
	json_key(stdout, &first, 2, "flag_names");
	fputc('[', stdout);
	sub = 1;
	for (unsigned int k = 0; k < 3; k++) {
		if (!(i->flags & (1u << k)))
			continue;
		if (!sub)
			fputs(", ", stdout);
		sub = 0;
		json_string(stdout, flag_names[k]);
	}
	fputc(']', stdout);
	json_kv_str(stdout, &first, 2, "uuid", uuid);
	json_kv_u64(stdout, &first, 2, "data_blocks", i->data_blocks);
	json_kv_u64(stdout, &first, 2, "parity_group", i->parity_group);
	json_kv_u64(stdout, &first, 2, "parity_blocks", i->parity_blocks);
	json_kv_u64(stdout, &first, 2, "extent_size", i->extent_size);
	json_kv_u64(stdout, &first, 2, "extents", i->extents);
	json_kv_u64(stdout, &first, 2, "data_offset", i->data_offset);
	json_kv_u64(stdout, &first, 2, "parity_offset", i->parity_offset);
	json_kv_u64(stdout, &first, 2, "table_offset", i->table_offset);
	json_kv_u64(stdout, &first, 2, "table_length", i->table_length);
	json_kv_u64(stdout, &first, 2, "index_offset", i->index_offset);
	json_kv_u64(stdout, &first, 2, "index_length", i->index_length);
	json_kv_str(stdout, &first, 2, "root_digest", digest);
	json_kv_str(stdout, &first, 2, "data_path", i->data_path);
	if (probe) {
		json_key(stdout, &first, 2, "topology");
		fputc('{', stdout);
		sub = 1;
		json_kv_bool(stdout, &sub, 4, "found", t->found);
		if (t->found) {
			json_kv_str(stdout, &sub, 4, "source", t->source);
			json_kv_u64(stdout, &sub, 4, "logical_sector_size", t->logical);
			json_kv_u64(stdout, &sub, 4, "physical_sector_size", t->physical);
			json_kv_u64(stdout, &sub, 4, "minimum_io_size", t->min_io);
			json_kv_u64(stdout, &sub, 4, "optimal_io_size", t->opt_io);
			json_kv_u64(stdout, &sub, 4, "alignment_offset", t->align);
		} else {
			json_kv_str(stdout, &sub, 4, "why", t->why);
		}
		fputs("\n  }", stdout);

		json_key(stdout, &first, 2, "content");
		fputc('{', stdout);
		sub = 1;
		json_kv_bool(stdout, &sub, 4, "probed", c->probed);
		if (c->method) {
			json_kv_str(stdout, &sub, 4, "method", c->method);
			json_kv_u64(stdout, &sub, 4, "offset", c->offset);
			json_kv_u64(stdout, &sub, 4, "length", c->length);
		}
		json_kv_str(stdout, &sub, 4, "result", c->why);
		json_key(stdout, &sub, 4, "values");
		fputc('{', stdout);
		{
			int vfirst = 1;

			for (int k = 0; k < c->nvalues; k++)
				json_kv_str(stdout, &vfirst, 6, c->name[k], c->value[k]);
			fputs(vfirst ? "}" : "\n    }", stdout);
		}
		fputs("\n  }", stdout);
	}
	fputs("\n}\n", stdout);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "no-probe", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct stable_image_info info;
	struct stable_image *img;
	struct topology topo = { 0 };
	struct content content = { 0 };
	char err[1024];
	int c, json = 0, probe = 1;

	cli_prog = "stable-info";
	while ((c = getopt_long(argc, argv, "jnhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'n': probe = 0; break;
		default: cli_other_option(c, usage);
		}
	}
	cli_operands(argc, optind, 1, 1, usage);
	if (stable_image_open(&img, argv[optind], NULL, err, sizeof(err)))
		cli_die("%s", err);
	stable_image_get_info(img, &info);
	if (probe) {
		get_topology(info.data_path, &topo);
		get_content(img, &info, &content);
	}
	if (json)
		print_json(&info, &topo, &content, probe);
	else
		print_text(&info, &topo, &content, probe);
	content_free(&content);
	stable_image_close(img);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("stdout: %s", strerror(errno));
		return EXIT_USAGE;
	}
	return EXIT_OK;
}
