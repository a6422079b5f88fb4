/*
 * problem.c - RFC 9457 problem documents and the code-to-status mapping.
 */
#include "base/problem.h"

#include "base/json_writer.h"
#include "segloss/errors.h"

int problem_status_for_code(int code)
{
    switch (code) {
#define PROBLEM_CODE_STATUS(name, value, message, status)                                          \
    case value: return status;
        SEGLOSS_ERRORS(PROBLEM_CODE_STATUS)
#undef PROBLEM_CODE_STATUS
    default: return 500;
    }
}

const char *problem_title(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Error";
    }
}

char *problem_json(int status, const char *detail, const char *request_id, size_t *len)
{
    json_writer w;
    json_writer_init(&w);
    const char *text = detail && *detail ? detail : problem_title(status);
    json_object_begin(&w);
    json_key(&w, "type");
    json_string(&w, PROBLEM_TYPE);
    json_key(&w, "title");
    json_string(&w, problem_title(status));
    json_key(&w, "status");
    json_int(&w, status);
    json_key(&w, "detail");
    json_string(&w, text);
    json_key(&w, "error");
    json_string(&w, text);
    if (request_id && *request_id) {
        json_key(&w, "request_id");
        json_string(&w, request_id);
    }
    json_object_end(&w);
    return json_writer_finish(&w, len);
}
