/*
 * JSON string escaping and key/value helpers for --json output.
 */
#include <string.h>

#include "json.h"

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates and past U+10FFFF are not valid. */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	while (*p) {
		size_t n;

		switch (*p) {
		case '"': fputs("\\\"", f); p++; continue;
		case '\\': fputs("\\\\", f); p++; continue;
		case '\n': fputs("\\n", f); p++; continue;
		case '\t': fputs("\\t", f); p++; continue;
		case '\r': fputs("\\r", f); p++; continue;
		default: break;
		}
		if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p);
			p++;
			continue;
		}
		n = utf8_len(p);
		if (n == 0) {
			/* A byte that is not UTF-8 (paths can hold any): U+FFFD. */
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		fwrite(p, 1, n, f);
		p += n;
	}
	fputc('"', f);
}

void json_key(FILE *f, int *first, int indent, const char *key)
{
	if (!*first)
		fputc(',', f);
	fputc('\n', f);
	*first = 0;
	fprintf(f, "%*s", indent, "");
	json_string(f, key);
	fputs(": ", f);
}

void json_kv_str(FILE *f, int *first, int indent, const char *key, const char *v)
{
	json_key(f, first, indent, key);
	json_string(f, v);
}

void json_kv_u64(FILE *f, int *first, int indent, const char *key, uint64_t v)
{
	json_key(f, first, indent, key);
	fprintf(f, "%llu", (unsigned long long)v);
}

void json_kv_bool(FILE *f, int *first, int indent, const char *key, int v)
{
	json_key(f, first, indent, key);
	fputs(v ? "true" : "false", f);
}
