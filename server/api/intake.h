/*
 * intake.h - work on a POST /v1/evaluate body while it is still arriving.
 *
 * A batch's answer needs every byte, but most of the work does not: a PNG mask can be decoded
 * as soon as its part is complete, and batch item i evaluated as soon as its slice of a .npy
 * logits part and its labels (its PNG mask, or its slice of one (N,H,W) .npy mask part) are
 * both in. A body whose masks come before the logits (a client's choice; the Python client's
 * order) thus has every item but the last done by the time the upload ends. A params part
 * that is complete before the first item is parsed first and the items are evaluated with it;
 * one that comes later stops item evaluation, and the items already done are not handed over.
 * What was done is handed to the evaluation as an evaluation_prepared; the library merges
 * per-item statistics exactly, so the answer is bit for bit the one of evaluating the whole
 * batch at the end, and anything unexpected (a bad mask or params part, a 16-bit mask) just
 * leaves that work to the evaluation, which reports errors as always.
 *
 * The upload threads only look at the parser and hand over (intake_progress); the work runs on
 * one dedicated thread of the server (intake_worker), a step at a time, round-robin over the
 * requests that have something to do, so per-request order holds and no request waits behind
 * another's whole batch. Memory: the decoded masks (the labels the evaluation needs anyway),
 * one result per item and, when results are recorded, the predicted-class map.
 *
 * SEGLOSS_OVERLAP=0 in the environment turns it off (intake_new returns NULL), for comparison.
 *
 * Thread-safety: intake_progress from the thread feeding the parser; intake_close and
 * intake_release from any one thread, once each, in that order.
 */
#ifndef SERVER_INTAKE_H
#define SERVER_INTAKE_H

#include <stdbool.h>

#include "http/multipart.h"
#include "segloss/segloss.h"
#include "service/evaluation.h"
#include "service/params.h"

typedef struct intake_worker intake_worker;
typedef struct intake intake;

/* The server's worker thread (evaluations go through ctx, one at a time like every other).
 * NULL on failure. */
intake_worker *intake_worker_new(segloss_ctx *ctx, const segloss_limits *limits);
/* Stops and joins the thread; requests still listed are dropped. Accepts NULL. */
void intake_worker_free(intake_worker *w);

/* A request's intake, NULL when overlap is off or memory ran out (the request goes without).
 * want_argmax: a result hook will want the predicted-class map. max_params_bytes: the limit the
 * evaluation parses the params part with (the same parse, the same outcome). */
intake *intake_new(intake_worker *w, bool want_argmax, size_t max_params_bytes);

/* The parameters items are evaluated with: fill them from the query string before the first
 * intake_progress; the worker adds the params part to them when it comes before the first item
 * (see above). */
params_request *intake_params(intake *in);

/* The parser has taken more bytes: hand over what became possible. Never runs the work. Once
 * the parser has read the closing delimiter no further step starts (one in progress finishes):
 * what is left is the evaluation's, on all the context's threads, so all the intake hands over
 * was done during the upload. */
void intake_progress(intake *in, const multipart_parser *parser);

/* Batch items evaluated so far (for tests and logs). */
size_t intake_items_done(intake *in);

/* No more work: waits for a step in progress (at most one mask or one item), after which the
 * parser is no longer read and may be freed. Returns what was done (valid until
 * intake_release; everything is to be checked by the evaluation, see evaluation_prepared).
 * Accepts NULL (returns NULL). */
const evaluation_prepared *intake_close(intake *in);

/* Gives the request's reference back (after intake_close). Accepts NULL. */
void intake_release(intake *in);

#endif
