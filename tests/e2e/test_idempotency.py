#!/usr/bin/env python3
"""Idempotency-Key on POST /v1/evaluate against a real seglossd (SQLite store): a repeat of a
recorded request with the same key gets the first answer (same evaluation id) and merges
nothing, also when its multipart boundary differs and after a kill -9 and restart; the key with
another body is a 422 problem; a malformed key is a 400; without `run` the header changes
nothing. (The PostgreSQL side, replicas included, is tests/unit/store_scenarios.h and
tests/e2e/test_client_scale_out.sh.)"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Daemon, check, finish, install_watchdog, multipart, post_small,  # noqa: E402
                     problem_ok, request, small_parts)


def post(d, parts, query, key=None):
    ctype, body = multipart(parts)  # a new boundary every time, as curl -F does
    headers = {"Content-Type": ctype}
    if key is not None:
        headers["Idempotency-Key"] = key
    return request(d, "POST", "/v1/evaluate" + query, body=body, headers=headers)


def evaluations(d, run):
    status, _, body = request(d, "GET", f"/v1/runs/{run}")
    if status != 200:
        return None
    return json.loads(body)["evaluations"]


def main():
    install_watchdog(120)
    data = None
    d = Daemon("idem")
    if not check("daemon starts", d.wait_ready(), d.tail()):
        finish()
    data = d.data_dir
    q = "?run=idem&step=3"
    st, _, first = post(d, small_parts(), q, key="batch-0001")
    check("first keyed post is 200", st == 200, first[:200])
    first_id = json.loads(first)["id"] if st == 200 else None
    st, _, again = post(d, small_parts(), q, key="batch-0001")
    check("a repeat (new boundary) is 200 with the first answer",
          st == 200 and again == first, again[:200])
    check("the run holds one evaluation", evaluations(d, "idem") == 1, evaluations(d, "idem"))
    st, h, body = post(d, small_parts({"gamma": 3}), q, key="batch-0001")
    why = problem_ok(st, h, body, 422, strict=True)
    check("the key with another body is a 422 problem", not why, why)
    check("  ... whose detail names the key", b"batch-0001" in body, body[:300])
    st, h, body = post(d, small_parts(), q + "&split=test", key="batch-0001")
    check("the key with other parameters is a 422", st == 422, body[:200])
    st, h, body = post(d, small_parts(), q, key="bad key with spaces")
    why = problem_ok(st, h, body, 400)
    check("a malformed key is a 400 problem", not why, why)
    st, h, body = post(d, small_parts(), q, key="k" * 256)
    check("a 256-character key is a 400", st == 400, body[:200])
    check("refused posts merged nothing", evaluations(d, "idem") == 1, evaluations(d, "idem"))
    ids = set()
    for _ in range(2):
        st, _, body = post(d, small_parts(), "", key="no-run-key")
        ids.add(json.loads(body)["id"] if st == 200 else None)
    check("without run the key changes nothing (two ids)", len(ids) == 2 and None not in ids,
          ids)
    st, _, body = post_small(d)
    check("without the header nothing changes", st == 200, body[:200])

    d.kill()  # kill -9: the key is on disk with the evaluation
    d2 = Daemon("idem2", data_dir=data)
    if not check("daemon restarts on the same data", d2.wait_ready(), d2.tail()):
        finish()
    st, _, again = post(d2, small_parts(), q, key="batch-0001")
    check("after kill -9 and restart the repeat gets the first answer",
          st == 200 and json.loads(again)["id"] == first_id, again[:200])
    check("  ... and merged nothing", evaluations(d2, "idem") == 1, evaluations(d2, "idem"))
    st, _, body = post(d2, small_parts(), q, key="batch-0002")
    check("a new key records", st == 200 and evaluations(d2, "idem") == 2, body[:200])
    st, _, body = request(d2, "DELETE", "/v1/runs/idem")
    st, _, body = post(d2, small_parts(), q, key="batch-0001")
    check("after DELETE of the run its keys record anew",
          st == 200 and json.loads(body)["id"] != first_id and evaluations(d2, "idem") == 1,
          body[:200])
    finish()


if __name__ == "__main__":
    main()
