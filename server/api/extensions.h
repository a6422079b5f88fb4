/*
 * extensions.h - plugs the runs store, the runs API and the dashboard into the HTTP server.
 *
 * http.c knows only its own routes and two seams (extension routes, a result hook); this file
 * fills them: results that carry `run` are recorded in the store before their 200 is sent
 * (a refusal becomes the answer instead), /v1/runs... and /v1/evaluations/... go to runs_api,
 * and GET / and the dashboard's files come from the embedded assets. main() opens it before
 * the server starts and closes it after the server has stopped.
 */
#ifndef SERVER_EXTENSIONS_H
#define SERVER_EXTENSIONS_H

#include <stddef.h>

#include "config.h"
#include "http.h"

typedef struct extensions extensions;

/* Opens the store under cfg->data_dir and fills *ext for http_server_start. Returns 0, or -1
 * with a message in err (e.g. the data directory is not writable). */
int extensions_open(const server_config *cfg, extensions **out, http_extensions *ext, char *err,
                    size_t err_len);

/* Closes the store. Call after http_server_stop. Accepts NULL. */
void extensions_close(extensions *x);

#endif
