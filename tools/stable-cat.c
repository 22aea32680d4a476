/*
 * stable-cat: write a verified range of an image to stdout through
 * libstable. Nothing of a block that fails verification is written.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "stable/stable.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: stable-cat [OPTIONS] IMAGE [OFFSET [LENGTH]]\n"
"Write the verified bytes of IMAGE from OFFSET (0) for LENGTH (to the end)\n"
"to stdout. A block that cannot be verified, re-read or rebuilt stops the\n"
"output before it, with its number on stderr.\n"
"\n"
"  -d, --digest=HEX       refuse the image unless its root digest is HEX\n"
"  -D, --direct           read with O_DIRECT\n"
"  -B, --backend=NAME     auto (default: the strongest), auto-fast, private,\n"
"                         ro-view, ro-fixed, sealed or kmbuf-ro\n"
"  -r, --retries=N        re-reads of a block that fails its checksum (2)\n"
"  -h, --help             this help\n"
"  -V, --version          the version\n"
"\n"
"Exit status: 0 success, 1 a block failed verification, 2 usage or I/O error.\n");
}

static int write_all(const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static enum stable_backend parse_backend(const char *name)
{
	enum stable_backend b;

	if (stable_backend_from_name(name, &b))
		cli_die("--backend: unknown backend '%s' (auto, auto-fast, private, ro-view, ro-fixed, sealed, kmbuf-ro)",
			name);
	return b;
}

static int copy_range(struct stable_reader *rd, uint64_t off, uint64_t len)
{
	const struct stable_extent *ext;
	int ret;

	while (len > 0) {
		size_t want = len > (1u << 30) ? (1u << 30) : (size_t)len;

		ret = stable_read(rd, off, want, &ext);
		if (ret) {
			cli_error("%s", stable_errmsg(rd));
			return ret == -EIO ? EXIT_CORRUPT : EXIT_USAGE;
		}
		ret = write_all(ext->data, ext->length);
		off += ext->length;
		len -= ext->length;
		stable_release(rd, ext);
		if (ret) {
			cli_error("stdout: %s", strerror(-ret));
			return EXIT_USAGE;
		}
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "digest", required_argument, NULL, 'd' },
		{ "direct", no_argument, NULL, 'D' },
		{ "backend", required_argument, NULL, 'B' },
		{ "retries", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct stable_open_options oo = { 0 };
	/* one thread reads: nothing else may use the reader's ring */
	struct stable_reader_options ro = { .max_retries = STABLE_READER_DEFAULT_RETRIES,
					    .flags = STABLE_READER_ONE_THREAD };
	struct stable_image_info info;
	struct stable_image *img;
	struct stable_reader *rd;
	uint64_t off = 0, len = UINT64_MAX, v;
	char err[1024];
	int c, status;

	cli_prog = "stable-cat";
	while ((c = getopt_long(argc, argv, "d:DB:r:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (stable_digest_parse(optarg, &oo.expected_digest))
				cli_die("--digest: '%s' is not 8 hex digits", optarg);
			oo.flags |= STABLE_OPEN_EXPECT_DIGEST;
			break;
		case 'D': oo.flags |= STABLE_OPEN_DIRECT; break;
		case 'B': ro.backend = parse_backend(optarg); break;
		case 'r':
			if (cli_parse_size(optarg, &v) || v > 100)
				cli_die("--retries: '%s' is not a count up to 100", optarg);
			ro.max_retries = (unsigned int)v;
			break;
		default: cli_other_option(c, usage);
		}
	}
	cli_operands(argc, optind, 1, 3, usage);
	if (argc - optind >= 2 && cli_parse_size(argv[optind + 1], &off))
		cli_die("OFFSET '%s' is not a byte count", argv[optind + 1]);
	if (argc - optind == 3 && cli_parse_size(argv[optind + 2], &len))
		cli_die("LENGTH '%s' is not a byte count", argv[optind + 2]);

	if (stable_image_open(&img, argv[optind], &oo, err, sizeof(err)))
		cli_die("%s", err);
	stable_image_get_info(img, &info);
	if (off > info.data_length)
		cli_die("%s: OFFSET %llu is past the end (%llu bytes)", argv[optind],
			(unsigned long long)off, (unsigned long long)info.data_length);
	if (len == UINT64_MAX)
		len = info.data_length - off;
	else if (len > info.data_length - off)
		cli_die("%s: range %llu+%llu is past the end (%llu bytes)", argv[optind],
			(unsigned long long)off, (unsigned long long)len,
			(unsigned long long)info.data_length);
	if (stable_reader_new(&rd, img, &ro, err, sizeof(err))) {
		stable_image_close(img);
		cli_die("%s: %s", argv[optind], err);
	}
	status = copy_range(rd, off, len);
	stable_reader_free(rd);
	stable_image_close(img);
	return status;
}
