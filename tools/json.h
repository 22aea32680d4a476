/*
 * Minimal JSON output for the tools' --json modes: strings escaped so that
 * any path or label (control bytes, invalid UTF-8) still yields valid JSON.
 * Objects are written by hand with these helpers; no parser, no tree.
 */
#ifndef STABLE_TOOLS_JSON_H
#define STABLE_TOOLS_JSON_H

#include <stdint.h>
#include <stdio.h>

/* Writes s as a JSON string literal (quotes included); NULL writes null. */
void json_string(FILE *f, const char *s);

/* Writes `"key": ` with key escaped, preceded by ",\n" unless first. */
void json_key(FILE *f, int *first, int indent, const char *key);

void json_kv_str(FILE *f, int *first, int indent, const char *key, const char *v);
void json_kv_u64(FILE *f, int *first, int indent, const char *key, uint64_t v);
void json_kv_bool(FILE *f, int *first, int indent, const char *key, int v);

#endif
