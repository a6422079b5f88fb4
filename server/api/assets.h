/*
 * assets.h - the dashboard's files, embedded in the binary at build time by
 * scripts/embed_assets.sh from server/dashboard/, so GET / needs nothing from outside the daemon.
 */
#ifndef SERVER_ASSETS_H
#define SERVER_ASSETS_H

#include <stddef.h>

typedef struct embedded_asset {
    const char *path; /* "/index.html", "/app.js", ... */
    const char *content_type;
    const unsigned char *data;
    size_t size;
} embedded_asset;

extern const embedded_asset embedded_assets[];
extern const size_t embedded_asset_count;

/* The asset served at path ("/" is "/index.html"), or NULL. */
const embedded_asset *asset_find(const char *path);

#endif
