/*
 * The export table: one opened, validated stable image per export, named
 * on the command line as NAME=IMAGE or after the image's file name
 * without its extension. Images are opened once and shared by all worker
 * threads (a stable_image is immutable after opening).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd.h"
#include "stabled.h"

static int name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return 0;
	return 1;
}

/* "dir/disk.img" -> "disk"; "dir/.hidden" stays ".hidden". */
static char *name_from_path(const char *path)
{
	const char *base = strrchr(path, '/');
	const char *dot;

	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	if (!dot || dot == base)
		return strdup(base);
	return strndup(base, (size_t)(dot - base));
}

int exports_add(struct export_table *t, const char *arg, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	struct stable_image_info info;
	struct export *e;
	char why[512];
	int ret;

	if (t->n == STABLED_MAX_EXPORTS) {
		snprintf(err, errlen, "%s: more than %d exports", arg, STABLED_MAX_EXPORTS);
		return -E2BIG;
	}
	e = &t->exp[t->n];
	memset(e, 0, sizeof(*e));
	if (eq) {
		e->name = strndup(arg, (size_t)(eq - arg));
		e->path = strdup(eq + 1);
	} else {
		e->name = name_from_path(arg);
		e->path = strdup(arg);
	}
	if (!e->name || !e->path) {
		ret = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", arg);
		goto fail;
	}
	if (!name_ok(e->name)) {
		ret = -EINVAL;
		snprintf(err, errlen, "%s: export name '%s' is empty, too long or has control characters",
			 arg, e->name);
		goto fail;
	}
	for (unsigned int i = 0; i < t->n; i++)
		if (!strcmp(t->exp[i].name, e->name)) {
			ret = -EEXIST;
			snprintf(err, errlen, "%s: export name '%s' is already taken by %s (use NAME=IMAGE)",
				 arg, e->name, t->exp[i].path);
			goto fail;
		}
	ret = stable_image_open(&e->img, e->path, NULL, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	stable_image_get_info(e->img, &info);
	e->size = info.data_length;
	e->block_size = info.block_size;
	e->parity = info.parity_group != 0;
	e->index = t->n++;
	return 0;
fail:
	free(e->name);
	free(e->path);
	memset(e, 0, sizeof(*e));
	return ret;
}

void exports_close(struct export_table *t)
{
	for (unsigned int i = 0; i < t->n; i++) {
		stable_image_close(t->exp[i].img);
		free(t->exp[i].name);
		free(t->exp[i].path);
	}
	t->n = 0;
}

const struct export *exports_find(const struct export_table *t,
				  const char *name, size_t len)
{
	if (len == 0)
		return t->n ? &t->exp[0] : NULL;
	for (unsigned int i = 0; i < t->n; i++)
		if (strlen(t->exp[i].name) == len && !memcmp(t->exp[i].name, name, len))
			return &t->exp[i];
	return NULL;
}
