/*
 * assets.c - looks up the embedded dashboard files by request path.
 */
#include <string.h>

#include "api/assets.h"

const embedded_asset *asset_find(const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < embedded_asset_count; i++)
        if (strcmp(embedded_assets[i].path, path) == 0)
            return &embedded_assets[i];
    return NULL;
}
