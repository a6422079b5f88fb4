/*
 * evaluate_route.h - POST /v1/evaluate as an upload route (route.h): the multipart body parsed
 * as it streams in (multipart.c, one copy into each part's buffer), masks decoded and items
 * evaluated while it still arrives (intake.c), then the evaluation on a worker thread
 * (evaluation.c) and its answer. The table's arg is the routes (routes.h).
 */
#ifndef SERVER_EVALUATE_ROUTE_H
#define SERVER_EVALUATE_ROUTE_H

#include "http/route.h"

extern const route_upload evaluate_route;

#endif
