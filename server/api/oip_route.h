/*
 * oip_route.h - the Open Inference Protocol v2 routes (oip.h) for the route table (route.h):
 * POST /v2/models/segloss/infer as an upload (the whole body in one buffer whose binary
 * section starts aligned, evaluated on a worker thread), the GET routes of /v2 (metadata,
 * health, ready), and the protocol's error format, application/json {"error": detail}, which
 * every /v2 route answers its errors in. The table's arg is the routes (routes.h).
 */
#ifndef SERVER_OIP_ROUTE_H
#define SERVER_OIP_ROUTE_H

#include "http/route.h"

extern const route_upload oip_route_infer;
extern const route_errors oip_route_errors;

/* GET /v2... : the pattern of req->route says which. */
void oip_route_get(void *arg, const route_request *req, route_response *out);

#endif
