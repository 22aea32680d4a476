/*
 * A minimal libstable program: print an image's bytes, every one of them
 * verified, and say what protects them. Build against the installed
 * library:
 *
 *   cc verified-cat.c $(pkg-config --cflags --libs libstable) -o verified-cat
 */
#include <stdio.h>
#include <stable/stable.h>

int main(int argc, char **argv)
{
	struct stable_image *img;
	struct stable_reader *rd;
	struct stable_image_info info;
	const struct stable_extent *ext;
	char err[512];
	uint64_t off = 0;
	int ret = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	if (stable_image_open(&img, argv[1], NULL, err, sizeof(err)) ||
	    stable_reader_new(&rd, img, NULL, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	fprintf(stderr, "backend %s, guarantee %s\n", stable_reader_backend_name(rd),
		stable_guarantee_name(stable_reader_guarantee(rd)));
	stable_image_get_info(img, &info);
	while (off < info.data_length) {
		ret = stable_read(rd, off, info.data_length - off, &ext);
		if (ret) {
			fprintf(stderr, "%s\n", stable_errmsg(rd));
			break;
		}
		fwrite(ext->data, 1, ext->length, stdout);
		off += ext->length;
		stable_release(rd, ext);
	}
	stable_reader_free(rd);
	stable_image_close(img);
	return ret ? 1 : 0;
}
