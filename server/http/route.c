/*
 * route.c - finding a request's route in the table, and the answers every route shares (404,
 * 405, errors in a route's format); see route.h.
 */
#include "http/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/problem.h"

const route_errors route_problem_errors = {PROBLEM_CONTENT_TYPE, problem_json};

void route_response_free(route_response *out)
{
    if (!out)
        return;
    free(out->body);
    out->body = NULL;
    out->body_len = 0;
}

/* Whether path fits pattern; the first {name}'s segment goes to *seg, *seg_len. */
static bool pattern_matches(const char *pattern, const char *path, const char **seg,
                            size_t *seg_len)
{
    *seg = NULL;
    *seg_len = 0;
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *close = strchr(pattern, '}');
            if (!close)
                return false;
            pattern = close + 1;
            if (*path == '/')
                return false; /* an empty segment */
            const char *start = path;
            while (*path && *path != '/')
                path++;
            if (!*seg) {
                *seg = start;
                *seg_len = (size_t)(path - start);
            }
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    return *pattern == '\0' && *path == '\0';
}

static bool entry_fits(const route_entry *e, const char *path, const char **seg, size_t *seg_len)
{
    return pattern_matches(e->pattern, path, seg, seg_len) && (!e->accepts || e->accepts(path));
}

void route_find(const route_table *t, const char *method, const char *path, route_match *m)
{
    bool head = strcmp(method, "HEAD") == 0;
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < t->count; i++) {
        const route_entry *e = &t->entries[i];
        const char *seg;
        size_t seg_len;
        if (!entry_fits(e, path, &seg, &seg_len))
            continue;
        if (!m->path_route)
            m->path_route = e;
        size_t used = strlen(m->allow);
        snprintf(m->allow + used, sizeof m->allow - used, "%s%s%s", used ? ", " : "", e->method,
                 strcmp(e->method, "GET") == 0 ? ", HEAD" : "");
        if (!m->route &&
            (strcmp(e->method, method) == 0 || (head && strcmp(e->method, "GET") == 0))) {
            m->route = e;
            m->segment = seg;
            m->segment_len = seg_len;
        }
    }
}

/* How many leading segments path and pattern share ({name} takes any). */
static size_t shared_segments(const char *pattern, const char *path)
{
    size_t n = 0;
    while (*pattern == '/' && *path == '/') {
        pattern++;
        path++;
        size_t pl = strcspn(pattern, "/"), sl = strcspn(path, "/?");
        bool any = pattern[0] == '{' && sl > 0;
        if (!any && (pl != sl || strncmp(pattern, path, pl) != 0))
            break;
        n++;
        pattern += pl;
        path += sl;
    }
    return n;
}

const route_errors *route_errors_for(const route_table *t, const char *path)
{
    const route_entry *best = NULL;
    size_t best_n = 0;
    for (size_t i = 0; t && i < t->count; i++) {
        const route_entry *e = &t->entries[i];
        const char *seg;
        size_t seg_len;
        if (entry_fits(e, path, &seg, &seg_len)) {
            best = e;
            break;
        }
        size_t n = shared_segments(e->pattern, path);
        if (n > best_n) {
            best = e;
            best_n = n;
        }
    }
    return best && best->errors ? best->errors : &route_problem_errors;
}

void route_error(const route_errors *errs, int status, const char *detail, const char *request_id,
                 route_response *out)
{
    free(out->body);
    out->status = status;
    out->content_type = errs->content_type;
    out->etag[0] = '\0';
    out->body = errs->body(status, detail, request_id, &out->body_len);
    if (detail != out->detail)
        snprintf(out->detail, sizeof out->detail, "%s", detail ? detail : "");
}

void route_not_found(const route_table *t, const char *method, const char *path,
                     const route_match *m, const char *request_id, route_response *out)
{
    char detail[ROUTE_DETAIL_MAX];
    const route_errors *errs = route_errors_for(t, path);
    if (!m->path_route) {
        snprintf(detail, sizeof detail, "no route %.200s; see GET /v1/info for the routes", path);
        route_error(errs, 404, detail, request_id, out);
        return;
    }
    snprintf(detail, sizeof detail, "%.200s takes %s, not %.16s", path, m->allow, method);
    route_error(errs, 405, detail, request_id, out);
    out->header_name = "Allow";
    snprintf(out->header_value, sizeof out->header_value, "%s", m->allow);
}

void route_answer(const route_table *t, const route_request *req, route_response *out)
{
    memset(out, 0, sizeof *out);
    route_match m;
    route_find(t, req->method, req->path, &m);
    if (!m.route) {
        route_not_found(t, req->method, req->path, &m, req->request_id, out);
        return;
    }
    const route_errors *errs = m.route->errors ? m.route->errors : &route_problem_errors;
    if (!m.route->handle) {
        route_error(errs, 500, "internal error: this route takes a body", req->request_id, out);
        return;
    }
    if (m.segment_len >= ROUTE_MAX_SEGMENT) {
        route_error(errs, 404, "the name in the path is too long", req->request_id, out);
        return;
    }
    char segment[ROUTE_MAX_SEGMENT];
    memcpy(segment, m.segment ? m.segment : "", m.segment_len);
    segment[m.segment_len] = '\0';
    route_request in = *req;
    in.route = m.route;
    in.segment = segment;
    m.route->handle(t->arg, &in, out);
    if (out->status >= 400 && !out->body)
        route_error(errs, out->status, out->detail, req->request_id, out);
}
