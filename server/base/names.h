/*
 * names.h - the names a client gives its results: runs and splits.
 *
 * A run name is a path segment in /v1/runs/{run} and a split a word such as "val" or "test":
 * both are short and of A-Z a-z 0-9 . _ - only, so they need no escaping in a URL, a page token
 * or a log line. These are the one copy of the rules: params.c checks what a request names, the
 * runs store what it keeps and looks up.
 */
#ifndef SERVER_NAMES_H
#define SERVER_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* A run name is a path segment in /v1/runs/{run}: short and URL-safe. */
#define NAMES_RUN_MAX 128
/* A split is a word such as "val" or "test". */
#define NAMES_SPLIT_MAX 64

/* 1..max characters of A-Z a-z 0-9 . _ - */
bool names_ok(const char *name, size_t max);
/* A run name: names_ok with NAMES_RUN_MAX. */
bool names_run_ok(const char *run);
/* A split: names_ok with NAMES_SPLIT_MAX. */
bool names_split_ok(const char *split);
/* What a request may call a run or split it records into: names_ok, and not starting with '.'
 * ("." and ".." are no path segment a client can send as is). */
bool names_new_ok(const char *name, size_t max);

#endif
