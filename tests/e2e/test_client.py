#!/usr/bin/env python3
"""The Python client (clients/python, package segloss) against a real seglossd on loopback.

- every golden case (tests/golden, tests/golden_extra) through Client.evaluate with files, numpy
  arrays and torch tensors in the case's own dtype (float32, float16, float64, bfloat16), and
  through Client.log, within 1e-6 of PyTorch's answer; float16/bfloat16 conversion on request
  equals posting logits converted by numpy/torch (bit for bit);
- the error type's fields; no retry on a 4xx; retries with Retry-After on 503/429 (one
  Idempotency-Key for all attempts); connection errors retried, then raised;
- log(): queue-full policies (drop with a warning and a counter, block), flush(timeout),
  the context manager, the flush at interpreter exit;
- a loop logging 200 batches while the daemon is kill -9'ed and restarted: after flush the
  run's aggregate equals one post of all 200 batches bit for bit (none counted twice);
- Idempotency-Key reuse with another body is a 422 SeglossError;
- four processes posting shards of one validation set equal one post of all;
- the client's body order (params, masks, logits) lets the daemon evaluate every batch item but
  the last while the body is still arriving, with parameters and torch int64 labels
  (segloss_batch_items_total{evaluated="during_upload"}), and the answer is the one of the
  logits-first order with the params part last, where none is.
"""
import os
import subprocess
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client_common as cc  # noqa: E402

cc.use_debian_python()
import numpy as np  # noqa: E402

from harness import (DAEMON, SANITIZER, Daemon, check, die_with_parent, finish,  # noqa
                     install_watchdog, note, state, tmpdir)

segloss = cc.import_client()
try:
    import torch
except ImportError:  # scripts/install-deps.sh installs python3-torch
    torch = None


def batch(rng, n=2, c=5, h=24, w=24):
    logits = rng.standard_normal((n, c, h, w)).astype(np.float32)
    labels = rng.integers(0, c, (n, h, w)).astype(np.uint8)
    labels[:, :2, :] = 255
    return logits, labels


def aggregate(client, run, split="val"):
    return cc.numbers(client.run(run, confusion_matrix=True)["splits"][split])


def test_golden(client, cases):
    for case in cases:
        p = case.params
        errs = cc.golden_errors(client.evaluate(case.logits_path, case.mask_paths, **p),
                                case.expected)
        check(f"golden {case.name}: files", not errs, errs[:3])
        if case.bf16:
            got = client.evaluate(case.logits, case.labels, dtype="bfloat16", **p)
        else:
            got = client.evaluate(case.logits, case.labels, **p)
        errs = cc.golden_errors(got, case.expected)
        check(f"golden {case.name}: numpy {case.logits.dtype}{' -> bf16' if case.bf16 else ''}",
              not errs, errs[:3])
        if torch is not None:
            t = case.torch_logits()
            errs = cc.golden_errors(client.evaluate(t, torch.from_numpy(case.labels.astype(
                np.int64)), **p), case.expected)
            check(f"golden {case.name}: torch {t.dtype}", not errs, errs[:3])
        client.log(case.logits, case.labels, run=f"golden-{case.name}", step=1,
                   dtype="bfloat16" if case.bf16 else None, **p)
    check("log: flush", client.flush(120))
    check("log: every golden batch sent", client.failed == 0 and client.sent == len(cases),
          f"sent {client.sent} failed {client.failed} {client.errors[:2]}")
    for case in cases:
        agg = client.latest(f"golden-{case.name}", confusion_matrix=True)
        exp = {k: v for k, v in case.expected.items() if k in ("loss", "metrics", "per_class",
                                                                 "pixels", "confusion_matrix")}
        errs = cc.golden_errors(agg, exp)
        check(f"golden {case.name}: log (the run's aggregate)", not errs, errs[:3])


def test_conversions(client, cases):
    """dtype="float16"/"bfloat16": the same numbers as logits converted by numpy / torch."""
    for case in cases[:6]:
        if case.bf16:
            continue
        f32 = case.logits.astype(np.float32)
        want16 = cc.numbers(client.evaluate(f32.astype(np.float16), case.labels, **case.params))
        got16 = cc.numbers(client.evaluate(f32, case.labels, dtype="float16", **case.params))
        check(f"{case.name}: numpy float32 sent as float16 = numpy's float16", got16 == want16)
        if torch is None:
            continue
        t = torch.from_numpy(f32)
        want = cc.numbers(client.evaluate(t.to(torch.bfloat16), case.labels, **case.params))
        got_np = cc.numbers(client.evaluate(f32, case.labels, dtype="bfloat16", **case.params))
        got_t = cc.numbers(client.evaluate(t, case.labels, dtype="bfloat16", **case.params))
        check(f"{case.name}: bfloat16 on request (numpy, torch) = torch's bfloat16",
              got_np == want and got_t == want)
        got = cc.numbers(client.evaluate(t.to(torch.float16), case.labels, **case.params))
        check(f"{case.name}: torch float16 = numpy float16", got == want16)


def test_local(client, cases):
    """segloss.local (ctypes on libsegloss.so) = the daemon, bit for bit, on every case."""
    from segloss import local
    if SANITIZER:
        # a sanitized libsegloss.so cannot be loaded into an unsanitized python
        note(f"segloss.local not checked under the {SANITIZER} sanitizer build")
        return
    try:
        local.library()
    except OSError as e:
        check("segloss.local loads libsegloss.so", False, e)
        return
    for case in cases:
        dtype = "bfloat16" if case.bf16 else None
        want = cc.numbers(client.evaluate(case.logits, case.labels, dtype=dtype, **case.params))
        got = cc.numbers(local.evaluate(case.logits, case.labels, dtype=dtype, **case.params))
        check(f"local {case.name}: = the daemon, bit for bit", got == want,
              [k for k in want if got.get(k) != want.get(k)])
    if torch is not None:
        case = cases[0]
        got = local.evaluate(torch.from_numpy(case.logits), torch.from_numpy(
            case.labels.astype(np.int64)), **case.params)
        errs = cc.golden_errors(got, case.expected)
        check("local: torch tensors", not errs, errs[:3])
    try:
        local.evaluate(cases[0].logits, cases[0].labels, class_weights=[1, 2])
        check("local: a bad parameter raises", False, "no error")
    except local.LocalError as e:
        check("local: a bad parameter raises LocalError naming it", "class_weights" in
              e.detail, e.detail)


def test_errors(d, client):
    rng = np.random.default_rng(1)
    logits, labels = batch(rng)
    try:
        client.evaluate(logits, labels[:1])
        check("422 raises SeglossError", False, "no error")
    except segloss.SeglossError as e:
        check("422 raises SeglossError with the problem's fields",
              e.status == 422 and e.title and e.type == "about:blank" and "mask" in e.detail
              and e.request_id and e.body, vars(e))
        check("a 4xx is not retried", e.retries == 0, e.retries)
    try:
        client.evaluate(logits, labels, class_weights=[1, 2])
    except segloss.SeglossError as e:
        check("a bad parameter is a 422 naming it", e.status == 422 and "class_weights" in
              e.detail, e.detail)
    # Idempotency-Key reuse with another body
    client.evaluate(logits, labels, run="idem", step=1, idempotency_key="k-reuse")
    again = client.evaluate(logits, labels, run="idem", step=1, idempotency_key="k-reuse")
    check("the same key and body: recorded once", client.run("idem")["evaluations"] == 1)
    try:
        client.evaluate(logits + 1, labels, run="idem", step=1, idempotency_key="k-reuse")
        check("key reuse with another body raises", False, "no error")
    except segloss.SeglossError as e:
        check("key reuse with another body is a 422 SeglossError",
              e.status == 422 and "Idempotency-Key" in e.detail and e.retries == 0, vars(e))
    check("a replay answers the first id", again.id and again["id"] == again.id)

    # connection errors: retried, then raised with status None
    dead = segloss.Client(f"http://127.0.0.1:{cc_free_port()}", retries=2, backoff=0.01)
    try:
        dead.evaluate(logits, labels)
        check("no daemon raises", False, "no error")
    except segloss.SeglossError as e:
        check("no daemon: SeglossError after 2 retries", e.status is None and e.retries == 2,
              vars(e))


def cc_free_port():
    from harness import free_port
    return free_port()


def test_retry_policy():
    rng = np.random.default_rng(2)
    logits, labels = batch(rng)
    fake = cc.FakeDaemon([(503, {"Retry-After": "1"}, cc.problem(503, "draining"), 0),
                          (429, {"Retry-After": "1"}, cc.problem(429, "slow down"), 0),
                          (200, {"Content-Type": "application/json"}, cc.OK_ANSWER, 0)])
    c = segloss.Client(fake.url, retries=3, backoff=0.01)
    t0 = time.monotonic()
    answer = c.evaluate(logits, labels, run="r", step=1)
    took = time.monotonic() - t0
    keys = {h.get("Idempotency-Key") for h, _ in fake.requests}
    check("503 and 429 retried, then 200", answer.total == 1.0 and len(fake.requests) == 3)
    check("Retry-After honoured (2 x 1 s)", took >= 1.9, f"{took:.2f} s")
    check("one Idempotency-Key for every attempt", len(keys) == 1 and None not in keys, keys)
    lengths = {n for _, n in fake.requests}
    check("Content-Length always sent and right", all(int(h["Content-Length"]) == n
                                                      for h, n in fake.requests), lengths)
    fake.close()
    for status in (400, 404, 409, 413, 415, 500):
        fake = cc.FakeDaemon([(status, {}, cc.problem(status, "no"), 0)])
        c = segloss.Client(fake.url, retries=3, backoff=0.01)
        try:
            c.evaluate(logits, labels)
        except segloss.SeglossError as e:
            check(f"{status} not retried", len(fake.requests) == 1 and e.status == status and
                  e.request_id == "rid-1", len(fake.requests))
        fake.close()
    fake = cc.FakeDaemon([(408, {}, cc.problem(408, "slow"), 0),
                          (502, {}, b"bad gateway", 0),
                          (200, {}, cc.OK_ANSWER, 0)])
    c = segloss.Client(fake.url, retries=3, backoff=0.01)
    check("408 and 502 retried with backoff", c.evaluate(logits, labels).total == 1.0 and
          len(fake.requests) == 3 and c.retried == 2)
    fake.close()
    fake = cc.FakeDaemon([(503, {}, cc.problem(503, "busy"), 0)])
    c = segloss.Client(fake.url, retries=2, backoff=0.01)
    try:
        c.evaluate(logits, labels)
    except segloss.SeglossError as e:
        check("retries run out: the last problem raised", e.status == 503 and e.retries == 2 and
              len(fake.requests) == 3 and e.detail == "busy", vars(e))
    fake.close()


def test_queue_policies():
    rng = np.random.default_rng(3)
    logits, labels = batch(rng)
    slow = [(200, {}, cc.OK_ANSWER, 0.4)]
    fake = cc.FakeDaemon(slow)
    c = segloss.Client(fake.url, queue_size=1, senders=1, on_full="drop")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.monotonic()
        queued = [c.log(logits, labels, run="q", step=i) for i in range(6)]
        took = time.monotonic() - t0
    check("drop: log() never waits", took < 0.3, f"{took:.3f} s")
    check("drop: full queue drops with a warning and a counter",
          c.dropped >= 3 and queued.count(False) == c.dropped and
          sum("dropped" in str(w.message) for w in caught) == c.dropped, (c.dropped, queued))
    check("flush(timeout) is False while batches are pending", c.flush(0.05) is False)
    check("flush() then True, every kept batch sent", c.flush(30) and
          c.sent + c.dropped == 6 and c.failed == 0, (c.sent, c.dropped))
    c.close()
    fake.close()

    fake = cc.FakeDaemon(slow)
    with segloss.Client(fake.url, queue_size=1, senders=1, on_full="block") as c:
        t0 = time.monotonic()
        for i in range(4):
            c.log(logits, labels, run="q", step=i)
        took = time.monotonic() - t0
        check("block: log() waits for room", took >= 0.35, f"{took:.3f} s")
    check("block: the context manager flushed all, none dropped",
          c.sent == 4 and c.dropped == 0 and len(fake.requests) == 4, (c.sent, c.dropped))
    fake.close()

    # the flush at interpreter exit
    fake = cc.FakeDaemon(slow)
    code = ("import sys, numpy as np; sys.path.insert(0, %r); import segloss\n"
            "c = segloss.Client(%r, queue_size=8)\n"
            "for i in range(3): c.log(np.zeros((1, 2, 4, 4), np.float32), "
            "np.zeros((1, 4, 4), np.uint8), run='exit', step=i)\n" % (cc.CLIENT_DIR, fake.url))
    subprocess.run([sys.executable, "-c", code], timeout=60)
    check("interpreter exit flushes the queue", len(fake.requests) == 3, len(fake.requests))
    fake.close()


def start_on(port, data_dir, name):
    log = open(os.path.join(tmpdir, f"{name}.log"), "ab")
    proc = subprocess.Popen([DAEMON, "serve", "--port", str(port), "--bind", "127.0.0.1",
                             "--data-dir", data_dir], stdout=log, stderr=log,
                            preexec_fn=die_with_parent)
    return proc


def test_kill_restart(d):
    """200 batches logged while the daemon is kill -9'ed and restarted twice, through a proxy
    that loses the answer of every 4th connection after the daemon recorded the batch."""
    rng = np.random.default_rng(4)
    batches = [batch(rng, n=2, c=5, h=32, w=32) for _ in range(200)]
    proxy = cc.LossyProxy(d.port, every=4)
    client = segloss.Client(proxy.url, retries=40, backoff=0.05, max_backoff=0.5,
                            queue_size=16, senders=2)
    port, data = d.port, d.data_dir
    proc = d.proc
    kills = 0
    for i, (lg, lb) in enumerate(batches):
        client.log(lg, lb, run="chaos", step=1, confusion_matrix=True)
        if i in (60, 140):
            time.sleep(0.05)
            proc.kill()
            proc.wait()
            kills += 1
            time.sleep(0.3)
            proc = start_on(port, data, f"chaos{i}")
            state["cleanup"].append(lambda p=proc: (p.kill(), p.wait()))
    check("chaos: flush after 2 x kill -9 and restart", client.flush(180),
          f"pending; sent {client.sent}")
    check("chaos: every batch recorded, none given up",
          client.sent == 200 and client.failed == 0, (client.sent, client.failed,
                                                      client.errors[:2]))
    note(f"chaos: {client.retried} retries across {kills} kills and {proxy.lost} lost answers")
    check("chaos: answers of recorded batches were lost", proxy.lost >= 10, proxy.lost)
    proxy.close()
    check("chaos: the client did retry", client.retried > 0, client.retried)
    c2 = segloss.Client(f"http://127.0.0.1:{port}")
    summary = c2.run("chaos")
    check("chaos: the run holds 200 evaluations (none twice)",
          summary["splits"]["val"]["evaluations"] == 200, summary["splits"]["val"]["evaluations"])
    allg = np.concatenate([b[0] for b in batches])
    alll = np.concatenate([b[1] for b in batches])
    one = c2.evaluate(allg, alll, run="chaos-one", step=1, confusion_matrix=True)
    got = aggregate(c2, "chaos")
    want = aggregate(c2, "chaos-one")
    check("chaos: aggregate = one post of all 200 batches, bit for bit", got == want,
          [k for k in want if got.get(k) != want.get(k)])
    check("  ... and = the one post's own answer", cc.numbers(one) == want or
          cc.numbers(one)["loss"] == want["loss"])
    return proc





def test_shards(url):
    env = dict(os.environ, CLIENT_DIR=cc.CLIENT_DIR, SEGLOSS_URL=url, WORLD_SIZE="4")
    procs = [subprocess.Popen([sys.executable, "-c", cc.SHARD_SCRIPT],
                              env=dict(env, RANK=str(r))) for r in range(4)]
    codes = [p.wait(timeout=120) for p in procs]
    check("4 ranks posted their shards", codes == [0, 0, 0, 0], codes)
    logits, labels = cc.shard_set()
    c = segloss.Client(url)
    c.evaluate(logits, labels, run="dp-one", step=3)
    got, want = aggregate(c, "dp"), aggregate(c, "dp-one")
    check("4 shards = one post of the whole set, bit for bit", got == want,
          [k for k in want if got.get(k) != want.get(k)])
    check("  ... in 20 evaluations", c.run("dp")["splits"]["val"]["evaluations"] == 20)


def test_run_helpers(client):
    rng = np.random.default_rng(5)
    for step in range(1, 8):
        client.evaluate(*batch(rng), run="helpers", step=step)
    names = [r["run"] for r in client.runs()]
    check("runs() lists the runs", "helpers" in names and "chaos" in names, names[:5])
    latest = client.latest("helpers")
    check("latest() is the latest step's aggregate", latest["step"] == 7 and
          isinstance(latest.total, float))
    hist = client.history("helpers", "loss.total", page_size=2)
    check("history() pages transparently (7 points, 2 a page)",
          [p["step"] for p in hist] == list(range(1, 8)), hist)
    out = subprocess.run([sys.executable, "-m", "segloss", "--url", client.url, "history",
                          "helpers", "--key", "loss.total"], capture_output=True, text=True,
                         cwd=cc.CLIENT_DIR, timeout=60)
    lines = out.stdout.strip().splitlines()
    check("python3 -m segloss history", out.returncode == 0 and len(lines) == 7 and
          float(lines[-1].split("\t")[1]) == hist[-1]["value"], out.stdout + out.stderr)
    case = cc.Case(os.path.join(cc.GOLDEN_DIRS[0], "voc_palette_weighted"))
    cmd = [sys.executable, "-m", "segloss", "evaluate", "--url", client.url, "--logits",
           case.logits_path] + sum((["--mask", m] for m in case.mask_paths), []) + \
        [f"--param=class_weights={case.params['class_weights']}".replace(" ", ""),
         "--param", "confusion_matrix=true"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cc.CLIENT_DIR, timeout=60)
    import json
    errs = cc.golden_errors(json.loads(out.stdout), case.expected) if out.returncode == 0 \
        else [out.stderr]
    check("python3 -m segloss evaluate: the golden answer", not errs, errs[:3])
    out = subprocess.run([sys.executable, "-m", "segloss", "--url", client.url, "evaluate",
                          "--logits", case.mask_paths[0], "--mask", case.mask_paths[0]],
                         capture_output=True, text=True, cwd=cc.CLIENT_DIR, timeout=60)
    check("python3 -m segloss evaluate: an error is one line on stderr, exit 1",
          out.returncode == 1 and out.stderr.startswith("segloss: 415"), out.stderr)


def items_during_upload(url):
    import urllib.request
    text = urllib.request.urlopen(url + "/metrics", timeout=30).read().decode()
    for line in text.splitlines():
        if line.startswith('segloss_batch_items_total{evaluated="during_upload"}'):
            return int(float(line.split()[-1]))
    return None


def post_paused(url, body_buffers, content_type, length, pause):
    """Posts a body, stopping for pause seconds before its closing boundary (the last buffer)."""
    import http.client
    import json
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    conn.putrequest("POST", "/v1/evaluate")
    conn.putheader("Content-Type", content_type)
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    for buf in body_buffers[:-1]:
        conn.send(buf)
    time.sleep(pause)
    conn.send(body_buffers[-1])
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, json.loads(raw) if resp.status == 200 else raw


def test_overlap(url):
    """The client's order gets the upload's overlap; the logits-first order of the same parts
    does not; both answers are the same, bit for bit."""
    if torch is None:
        return
    n, pause = 6, 3.0
    rng = np.random.default_rng(11)
    logits = torch.from_numpy(rng.standard_normal((n, 6, 128, 96)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 7, (n, 128, 96)))  # int64; 6 is ignored
    params = {"main_loss": "focal", "gamma": 1.5, "class_weights": [1, 2, 1, 0.5, 1, 3],
              "run": "overlap", "step": 1}
    wire = cc.import_client()._wire
    answers = {}
    for order, names in (("params, masks, logits (the client's)", wire.PART_ORDER),
                         ("logits, masks, params", ("logits", "mask", "params"))):
        body = wire.Body(wire.encode_logits(logits), wire.encode_labels(labels), params, names)
        before = items_during_upload(url)
        status, answer = post_paused(url, body.buffers, body.content_type, body.length, pause)
        used = items_during_upload(url) - before
        check(f"{order}: 200", status == 200, answer)
        answers[order] = answer
        if order.endswith("(the client's)"):
            check(f"{order}: at least {n - 1} of {n} items evaluated during the upload",
                  n - 1 <= used <= n, used)
        else:  # the params part is complete only with the body
            check(f"{order}: no item evaluated during the upload", used == 0, used)
    a, b = (cc.numbers(x) for x in answers.values())
    check("both orders: the same answer, bit for bit", a == b,
          [k for k in a if a.get(k) != b.get(k)])


def main():
    install_watchdog(900)
    d = Daemon("client")
    if not check("daemon starts", d.wait_ready(), d.tail()):
        finish()
    if torch is None:
        check("torch is installed (python3-torch)", False, "import torch failed")
    client = segloss.Client(d.url, queue_size=8)
    all_cases = cc.cases()
    test_golden(client, all_cases)
    test_conversions(client, all_cases)
    test_local(client, all_cases)
    test_errors(d, client)
    test_retry_policy()
    test_queue_policies()
    proc = test_kill_restart(d)
    url = f"http://127.0.0.1:{d.port}"
    test_shards(url)
    test_run_helpers(segloss.Client(url))
    test_overlap(url)
    proc.kill()
    finish()


if __name__ == "__main__":
    main()
