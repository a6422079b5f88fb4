"""Client: evaluate synchronously, log without blocking the training loop, read runs back.

Every post that records (a `run` is given) carries an Idempotency-Key, one per logical post,
reused on each of its retries: the daemon records it once however often it arrives. Retries
back off exponentially with full jitter on connection errors, 408, 429, 502, 503 and 504
(honouring Retry-After), never on another 4xx or a 500.
"""
import atexit
import email.utils
import http.client
import json
import queue
import random
import threading
import time
import urllib.parse
import uuid
import warnings
import weakref

from . import _wire

RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
# Retry-After is obeyed up to this many seconds (a longer one is a reason to give up)
MAX_RETRY_AFTER_S = 120.0


class SeglossError(Exception):
    """Any error of the daemon or of reaching it. The problem+json fields (RFC 9457) are
    attributes: status (None when the daemon was never reached), type, title, detail,
    request_id; body is the raw answer, retries how many retries were made."""

    def __init__(self, status, detail, title=None, type=None, request_id=None, body=None,
                 retries=0):
        self.status = status
        self.detail = detail
        self.title = title
        self.type = type
        self.request_id = request_id
        self.body = body
        self.retries = retries
        super().__init__(f"{status} {title}: {detail}" if status else detail)

    @classmethod
    def from_response(cls, status, reason, body, headers, retries):
        doc = {}
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            pass
        if not isinstance(doc, dict):
            doc = {}
        detail = doc.get("detail") or doc.get("error") or body[:300].decode("utf-8", "replace")
        return cls(status, detail, title=doc.get("title") or reason,
                   type=doc.get("type"), request_id=doc.get("request_id") or
                   headers.get("x-request-id"), body=body, retries=retries)


class Answer(dict):
    """The JSON answer of an evaluation (answer["loss"]["total"]) with typed accessors."""

    @property
    def id(self):
        return self.get("id")

    @property
    def total(self):
        return self["loss"]["total"]

    @property
    def miou(self):
        return self["metrics"]["miou"]

    @property
    def mean_dice(self):
        return self["metrics"]["mean_dice"]

    @property
    def per_class(self):
        return self["per_class"]


def _retry_after(value):
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _params_body(params, run, step, split):
    out = {k: v for k, v in params.items() if v is not None or k == "alpha"}
    if run is not None:
        out["run"] = run
        out["step"] = int(step or 0)
    if split is not None:
        out["split"] = split
    return out


_live_clients = weakref.WeakSet()


@atexit.register
def _flush_at_exit():
    for client in list(_live_clients):
        try:
            client.close(timeout=client.exit_timeout)
        except Exception as e:  # pragma: no cover - exit must go on
            warnings.warn(f"segloss: flush at exit failed: {e}")


class Client:
    """A connection to one segloss daemon.

    url: e.g. http://127.0.0.1:8080; token: a bearer token; timeout: seconds per attempt;
    retries: retries per post after the first attempt; backoff: first retry delay (doubles up
    to max_backoff, full jitter). log() settings: queue_size batches wait at most, senders
    background threads post them, on_full is "block" (log waits for room) or "drop" (the batch
    is dropped with a warning and counted in .dropped). exit_timeout: how long the flush at
    interpreter exit waits.
    """

    def __init__(self, url="http://127.0.0.1:8080", token=None, timeout=120.0, retries=8,
                 backoff=0.1, max_backoff=5.0, queue_size=4, senders=2, on_full="block",
                 exit_timeout=60.0):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"url must be http://host[:port] or https://..., not {url!r}")
        if on_full not in ("block", "drop"):
            raise ValueError("on_full must be 'block' or 'drop'")
        self.url = url.rstrip("/")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.on_full = on_full
        self.exit_timeout = exit_timeout
        self.queue_size = queue_size
        self.sender_count = senders
        # log() bookkeeping
        self.dropped = 0        # batches dropped because the queue was full (on_full="drop")
        self.sent = 0           # batches logged and recorded
        self.failed = 0         # batches given up on; their errors in .errors (last 100)
        self.retried = 0        # retries made, all posts together
        self.errors = []
        self.last_answer = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0       # queued or being sent
        self._queue = None
        self._threads = []
        self._closed = False
        _live_clients.add(self)

    # --- HTTP -------------------------------------------------------------------------------

    def _connection(self, fresh=False):
        conn = getattr(self._local, "conn", None)
        if conn is not None and not fresh:
            return conn
        if conn is not None:
            conn.close()
        cls = http.client.HTTPSConnection if self._scheme == "https" else \
            http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        self._local.conn = conn
        return conn

    def _drop_connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _once(self, method, path, buffers, headers):
        conn = self._connection()
        try:
            conn.putrequest(method, self._prefix + path, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            for b in buffers:
                conn.send(b)
            resp = conn.getresponse()
            body = resp.read()
        except BaseException:
            self._drop_connection()
            raise
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if hdrs.get("connection", "").lower() == "close":
            self._drop_connection()
        return resp.status, resp.reason, hdrs, body

    def request(self, method, path, buffers=(), headers=None, length=None):
        """One request with the retry policy; (status, headers, body) of a 2xx or 304, else
        SeglossError."""
        h = {}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if method in ("POST", "PUT", "DELETE") or buffers:
            h["Content-Length"] = str(length if length is not None
                                      else sum(len(b) for b in buffers))
        h.update(headers or {})
        attempt = 0
        while True:
            wait = None
            try:
                status, reason, hdrs, body = self._once(method, path, buffers, h)
                if status < 300 or status == 304:
                    return status, hdrs, body
                if status not in RETRY_STATUSES or attempt >= self.retries:
                    raise SeglossError.from_response(status, reason, body, hdrs, attempt)
                wait = _retry_after(hdrs.get("retry-after"))
                if wait is not None and wait > MAX_RETRY_AFTER_S:
                    raise SeglossError.from_response(status, reason, body, hdrs, attempt)
            except (OSError, http.client.HTTPException) as e:
                if attempt >= self.retries:
                    raise SeglossError(None, f"cannot reach {self.url}: {e!r}",
                                       title="Connection error", retries=attempt) from e
            if wait is None:
                wait = random.uniform(0, min(self.max_backoff, self.backoff * (2 ** attempt)))
            attempt += 1
            with self._lock:
                self.retried += 1
            time.sleep(wait)

    def get_json(self, path, **query):
        q = {k: v for k, v in query.items() if v is not None}
        if q:
            path += "?" + urllib.parse.urlencode(q)
        return json.loads(self.request("GET", path)[2])

    # --- evaluate ---------------------------------------------------------------------------

    def _post(self, logits, labels, params, dtype, key):
        body = _wire.Body(_wire.encode_logits(logits, dtype), _wire.encode_labels(labels),
                          params)
        headers = {"Content-Type": body.content_type}
        if key:
            headers["Idempotency-Key"] = key
        _, _, raw = self.request("POST", "/v1/evaluate", body.buffers, headers, body.length)
        return Answer(json.loads(raw))

    def evaluate(self, logits, labels, run=None, step=None, split=None, dtype=None,
                 idempotency_key=None, **params):
        """Evaluates one batch and returns its Answer.

        logits: (N, C, H, W) or (C, H, W), a numpy array, a torch tensor (any device, any float
        dtype) or a .npy/.safetensors path; labels: (N, H, W) or (H, W) integers (array or
        tensor), or PNG/.npy paths. dtype: None sends the logits' own dtype, "float16" or
        "bfloat16" converts them. run/step/split record the result; params are the daemon's
        loss parameters (class_weights=[...], main_loss="focal", dice_loss=True, ...). A
        recorded post carries an Idempotency-Key (a new one unless given).
        """
        if run is not None and idempotency_key is None:
            idempotency_key = uuid.uuid4().hex
        return self._post(logits, labels, _params_body(params, run, step, split), dtype,
                          idempotency_key if run is not None else None)

    # --- log --------------------------------------------------------------------------------

    def _start_senders(self):
        if self._queue is None:
            self._queue = queue.Queue(maxsize=max(1, self.queue_size))
            for i in range(max(1, self.sender_count)):
                t = threading.Thread(target=self._sender, name=f"segloss-sender-{i}",
                                     daemon=True)
                t.start()
                self._threads.append(t)

    def log(self, logits, labels, run, step=0, split=None, dtype=None, **params):
        """Queues one batch for recording under run/step/split and returns at once.

        The arrays are referenced, not copied, until a sender thread has encoded them: do not
        modify them in place afterwards. When the queue is full, on_full="block" waits for
        room and "drop" drops the batch (a warning; .dropped counts them). Returns True when
        queued. Errors are counted in .failed and kept in .errors; flush() waits for all.
        """
        if self._closed:
            raise RuntimeError("log() on a closed segloss Client")
        if run is None:
            raise ValueError("log() needs a run")
        job = (logits, labels, _params_body(params, run, step, split), dtype,
               uuid.uuid4().hex)
        with self._lock:
            self._start_senders()
            self._pending += 1
        try:
            if self.on_full == "block":
                self._queue.put(job)
            else:
                self._queue.put_nowait(job)
            return True
        except queue.Full:
            with self._lock:
                self.dropped += 1
                self._pending -= 1
                self._idle.notify_all()
                dropped = self.dropped
            warnings.warn(f"segloss: the log queue is full ({self.queue_size} batches); "
                          f"batch of run {run!r} step {step} dropped ({dropped} so far)",
                          RuntimeWarning, stacklevel=2)
            return False

    def _sender(self):
        while True:
            job = self._queue.get()
            if job is None:
                return
            logits, labels, params, dtype, key = job
            job = None
            try:
                answer = self._post(logits, labels, params, dtype, key)
                with self._lock:
                    self.sent += 1
                    self.last_answer = answer
            except Exception as e:  # a sender must not die; the error is kept
                with self._lock:
                    self.failed += 1
                    self.errors.append(e)
                    del self.errors[:-100]
                warnings.warn(f"segloss: a logged batch was not recorded: {e}", RuntimeWarning)
            finally:
                del logits, labels
                with self._lock:
                    self._pending -= 1
                    self._idle.notify_all()

    def flush(self, timeout=None):
        """Waits until every logged batch is recorded or given up on. True when all are done,
        False when timeout (seconds) passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout=None):
        """Flushes (up to timeout) and stops the senders. True when everything was sent."""
        if self._closed:
            return True
        done = self.flush(timeout)
        self._closed = True
        if self._queue is not None and done:
            for _ in self._threads:
                self._queue.put(None)
        self._drop_connection()
        _live_clients.discard(self)
        return done

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- runs -------------------------------------------------------------------------------

    def runs(self):
        """Every run (name, steps, evaluations, splits ...), however many pages."""
        out, token = [], None
        while True:
            page = self.get_json("/v1/runs", page_token=token, max_results=1000)
            out.extend(page.get("runs", []))
            token = page.get("next_page_token")
            if not token:
                return out

    def run(self, name, confusion_matrix=False):
        """A run's summary: its bookkeeping and, per split, the aggregate of the latest step
        (with its confusion matrix on request)."""
        return self.get_json("/v1/runs/" + urllib.parse.quote(name, safe=""),
                             confusion_matrix="true" if confusion_matrix else None)

    def latest(self, name, split="val", confusion_matrix=False):
        """The aggregate of a run's latest step of a split, as an Answer (loss, metrics, ...)."""
        summary = self.run(name, confusion_matrix)
        splits = summary.get("splits") or {}
        if split not in splits:
            raise SeglossError(404, f"run {name!r} has no split {split!r}", title="Not Found")
        return Answer(splits[split])

    def iter_history(self, name, key, split="val", since_step=None, page_size=1000):
        """Yields a metric's points ({"step", "value", "timestamp", "key"}) in step order,
        fetching the pages as it goes."""
        token = None
        path = "/v1/runs/" + urllib.parse.quote(name, safe="") + "/history"
        while True:
            page = self.get_json(path, key=key, split=split, since_step=since_step,
                                 max_results=page_size, page_token=token)
            yield from page.get("metrics", [])
            token = page.get("next_page_token")
            if not token:
                return

    def history(self, name, key, split="val", since_step=None, page_size=1000):
        """A metric's whole history as a list (iter_history, collected)."""
        return list(self.iter_history(name, key, split, since_step, page_size))

    def delete_run(self, name):
        self.request("DELETE", "/v1/runs/" + urllib.parse.quote(name, safe=""))
