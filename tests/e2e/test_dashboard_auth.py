#!/usr/bin/env python3
"""The dashboard with tokens (issue 7), in headless Chromium: seglossd with --token-file, one
run recorded with the rw token; dashboard_auth.mjs then loads the page without credentials
(401 with a Basic challenge, so a browser shows its login prompt) and with the browser's
credentials (any user name, a read-only token as the password): the page loads, every /v1/*
fetch it makes is let through, and the run is listed. Skips, saying so, without node, Chromium
or playwright-core (scripts/install-deps.sh and test_dashboard.sh install them).

Ends with 'N passed, N failed'."""
import json
import os
import shutil
import subprocess

import harness as h
from harness import check

RW = "rw-" + os.urandom(12).hex()
RO = "ro-" + os.urandom(12).hex()
NPM_PREFIX = os.environ.get("NPM_PREFIX", os.path.join(h.ROOT, "build", "npm"))


def main():
    h.install_watchdog(180)
    if not shutil.which("node") or not os.path.exists("/usr/bin/chromium") or \
            not os.path.exists(os.path.join(NPM_PREFIX, "node_modules", "playwright-core")):
        h.note("SKIP dashboard with tokens: node, /usr/bin/chromium or playwright-core missing")
        h.finish()
    tokfile = os.path.join(h.tmpdir, "tokens")
    with open(tokfile, "w") as f:
        f.write(f"rw {RW}\nro {RO}\n")
    os.chmod(tokfile, 0o600)
    d = h.Daemon("dashboard-auth", ["--token-file", tokfile, "--threads", "2"])
    if not check("daemon with --token-file starts", d.wait_ready(), d.tail()):
        h.finish()
    for step in range(3):
        status = h.post_small(d, {"run": "dash-auth", "step": step}, headers=h.bearer(RW))[0]
    check("a run recorded with the rw token", status == 200, str(status))
    env = dict(os.environ, NPM_PREFIX=NPM_PREFIX)
    r = subprocess.run(["node", os.path.join(h.HERE, "dashboard_auth.mjs"), "--url",
                        f"http://127.0.0.1:{d.port}", "--token", RO, "--run", "dash-auth"],
                       capture_output=True, timeout=120, env=env, cwd=h.ROOT)
    try:
        out = json.loads(r.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"error": (r.stdout + r.stderr).decode(errors="replace")[-500:]}
    check("the browser script ran", "error" not in out, out.get("error", ""))
    check("without credentials the page is 401 with a Basic challenge",
          out.get("anonymous_status") == 401 and
          out.get("anonymous_challenge", "").startswith("Basic"), str(out))
    check("with the browser's credentials (ro token) the page is 200",
          out.get("page_status") == 200, str(out))
    check("the dashboard's own /v1 fetches are let through (all 200/304)",
          out.get("api_statuses") and set(out["api_statuses"]) <= {200, 304}, str(out))
    check("the recorded run is listed on the page", out.get("run_listed") is True, str(out))
    rc = d.stop()
    check("exit 0", rc == 0, str(rc))
    check("no token in the log", RO not in d.log_text() and RW not in d.log_text(), "")
    h.finish()


if __name__ == "__main__":
    main()
