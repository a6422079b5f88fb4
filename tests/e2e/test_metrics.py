#!/usr/bin/env python3
"""GET /metrics as Prometheus reads it, after real traffic (standard library, promtool).

A real seglossd on a free loopback port gets a known mix of requests: evaluations recorded
under a run, the runs list, a run, its history as JSON and as CSV, an evaluation, its overlay,
the dashboard, 404s and a 405 on each kind of route. Then one scrape is checked:
`promtool check metrics` (Debian: prometheus) finds no problem in it; every 405 is counted
under its own route template and as reason method_not_allowed, the 404s as not_found; the
runs, history, evaluation and overlay routes each have their own route label (one latency
series each); every request is counted exactly once; the batch items of the answered
evaluations are counted once, during or after the upload; and bucket bounds print as Prometheus
clients print them (le="1048576", never "1.04858e+06"). Ends with 'N passed, N failed'.
"""
import json
import os
import re
import shutil
import subprocess
import time

import harness as h
from harness import check, finish, request

WATCHDOG_S = 120
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """[(name, {label: value}, value)] of the exposition's samples."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m:
            samples.append((m.group(1), dict(LABEL.findall(m.group(2) or "")),
                            float(m.group(3))))
    return samples


def value(samples, name, **labels):
    return sum(v for n, ls, v in samples
               if n == name and all(ls.get(k) == want for k, want in labels.items()))


def traffic(d):
    """Sends the mix; returns {(route label, status): count} of what was sent."""
    sent = {}

    def send(label, method, path, want, body=None, headers=None):
        status, _, answer = request(d, method, path, body=body, headers=headers)
        check(f"{method} {path} -> {want}", status == want, f"{status} {answer[:200]!r}")
        sent[(label, str(status))] = sent.get((label, str(status)), 0) + 1
        return answer

    ids = []
    for step in (1, 2):
        ctype, body = h.multipart(h.small_parts({"run": "metrics-run", "step": step}))
        answer = send("/v1/evaluate", "POST", "/v1/evaluate", 200, body,
                      {"Content-Type": ctype})
        ids.append(json.loads(answer)["id"])
    send("/v1/runs", "GET", "/v1/runs", 200)
    send("/v1/runs/{run}", "GET", "/v1/runs/metrics-run", 200)
    send("/v1/runs/{run}/history", "GET", "/v1/runs/metrics-run/history?key=loss.total", 200)
    send("/v1/runs/{run}/history", "GET", "/v1/runs/metrics-run/history?format=csv", 200)
    send("/v1/evaluations/{id}", "GET", f"/v1/evaluations/{ids[0]}", 200)
    send("/v1/evaluations/{id}/overlay.png", "GET", f"/v1/evaluations/{ids[0]}/overlay.png",
         200)
    send("/", "GET", "/", 200)
    send("/v1/info", "GET", "/v1/info", 200)
    # 405s, each on its own kind of route
    send("/v1/evaluate", "GET", "/v1/evaluate", 405)
    send("/livez", "DELETE", "/livez", 405)
    send("/v2/models/segloss/infer", "GET", "/v2/models/segloss/infer", 405)
    send("/v1/runs", "POST", "/v1/runs", 405, b"")
    send("/v1/runs/{run}/history", "DELETE", "/v1/runs/metrics-run/history", 405)
    # 404s
    send("unmatched", "GET", "/nothing-here", 404)
    send("/v1/runs/{run}", "GET", "/v1/runs/no-such-run", 404)
    return sent


def main():
    h.install_watchdog(WATCHDOG_S)
    promtool = shutil.which("promtool")
    if not check("promtool is installed (Debian: prometheus)", promtool is not None,
                 "apt-get install prometheus (scripts/install-deps.sh)"):
        finish()
    d = h.Daemon("metrics")
    if not check("daemon starts", d.wait_ready(), d.tail()):
        finish()
    try:
        sent = traffic(d)
        # A request is counted when its connection's work ends (MHD's completion callback),
        # which can come just after the client has read the answer: scrape until every request
        # sent is in (5 s at most; the checks below then say what is missing).
        deadline = time.time() + 5
        while True:
            status, hd, text = request(d, "GET", "/metrics")
            text = text.decode()
            total = sum(v for n, ls, v in parse(text) if n == "segloss_http_requests_total"
                        and ls.get("route") not in ("/livez", "/metrics"))
            if total >= sum(sent.values()) or time.time() > deadline:
                break
            time.sleep(0.05)
        check("GET /metrics is 200 text/plain; version=0.0.4",
              status == 200 and hd.get("content-type", "").startswith("text/plain"),
              f"{status} {hd.get('content-type')}")
        lint = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                              capture_output=True, timeout=60)
        check("promtool check metrics finds no problem", lint.returncode == 0
              and not lint.stdout.strip() and not lint.stderr.strip(),
              f"exit {lint.returncode}: {(lint.stdout + lint.stderr)[:600]}")
        samples = parse(text)
        for (route, code), count in sorted(sent.items()):
            got = value(samples, "segloss_http_requests_total", route=route, status=code)
            check(f"requests_total{{route=\"{route}\",status=\"{code}\"}} = {count}",
                  got == count, f"{got}")
        counted = {(ls.get("route"), ls.get("status")) for n, ls, v in samples
                   if n == "segloss_http_requests_total"
                   and ls.get("route") not in ("/livez", "/metrics")}
        extra = counted - set(sent)
        # /livez answered the start-up probe and /metrics the scrapes: they are in the scrape,
        # besides what was sent
        check("no request is counted under a route or status it was not sent to",
              not extra, f"{sorted(extra)}")
        n405 = sum(c for (_, code), c in sent.items() if code == "405")
        n404 = sum(c for (_, code), c in sent.items() if code == "404")
        check(f"rejections_total{{reason=\"method_not_allowed\"}} = {n405} (every 405)",
              value(samples, "segloss_rejections_total", reason="method_not_allowed") == n405,
              f"{value(samples, 'segloss_rejections_total', reason='method_not_allowed')}")
        check(f"rejections_total{{reason=\"not_found\"}} = {n404} (the 404s only)",
              value(samples, "segloss_rejections_total", reason="not_found") == n404,
              f"{value(samples, 'segloss_rejections_total', reason='not_found')}")
        for route in ("/v1/runs", "/v1/runs/{run}", "/v1/runs/{run}/history",
                      "/v1/evaluations/{id}", "/v1/evaluations/{id}/overlay.png", "/"):
            want = sum(c for (r, _), c in sent.items() if r == route)
            got = value(samples, "segloss_http_request_duration_seconds_count", route=route)
            check(f"latency series of route=\"{route}\" counts its {want} requests",
                  got == want, f"{got}")
        answered = sum(c for (r, code), c in sent.items()
                       if r == "/v1/evaluate" and code == "200")  # one batch item each
        whens = sorted(ls.get("evaluated") for n, ls, _ in samples
                       if n == "segloss_batch_items_total")
        items = sum(value(samples, "segloss_batch_items_total", evaluated=when)
                    for when in ("during_upload", "after_upload"))
        check(f"batch_items_total over during_upload and after_upload = {answered} (the "
              "answered evaluations' items)",
              whens == ["after_upload", "during_upload"] and items == answered,
              f"{whens} {items}")
        bounds = [ls["le"] for n, ls, _ in samples
                  if n.endswith("_bucket") and ls.get("le") not in (None, "+Inf")]
        bad = [b for b in bounds if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", b)]
        check("every bucket bound is a plain decimal (no exponent)", bounds and not bad,
              f"{sorted(set(bad))}")
        body_bounds = [ls["le"] for n, ls, _ in samples
                       if n == "segloss_http_request_body_bytes_bucket"]
        check("body-size buckets are exact integers: le=\"1048576\", le=\"1073741824\"",
              "1048576" in body_bounds and "1073741824" in body_bounds
              and all(re.fullmatch(r"[0-9]+|\+Inf", b) for b in body_bounds), f"{body_bounds}")
    except Exception as e:  # one broken step must not hide the summary
        check("metrics run", False, f"{type(e).__name__}: {e}")
    finish()


if __name__ == "__main__":
    main()
