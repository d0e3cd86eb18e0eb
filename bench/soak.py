#!/usr/bin/python3
"""Soak the real daemon: N keep-alive connections of mixed traffic for a while.

    /usr/bin/python3 bench/soak.py --bin build/anndata-exportd [--seconds 600] [--connections 64]

Starts `anndata-exportd serve` on a free 127.0.0.1 port with a temp spool,
drives --connections threads (http.client, one persistent connection each)
for --seconds with a mix of: small sync exports (POST /v1/exports?wait=30,
h5ad and npz, a generated request or the Polis fixture), async exports
(POST, poll, GET .../file, DELETE), GET /v1/exports listings, /healthz and
bad requests (malformed JSON, bad include, unknown format: a 4xx is
expected). Sync results are deleted too (Content-Location), so the spool
stays small. Every few seconds it samples the daemon's VmRSS.

Prints RSS over time, p50/p99 latency per kind, status counts, the
unexpected responses (5xx, connection errors, 4xx for a good request, 2xx
for a bad one) and a verdict: RSS flat (median of the last quarter within
20% of the second quarter's) and no unexpected response. It stops the
daemon and removes its temp dir. A benchmark, not a test (stdlib only).
"""
import argparse
import collections
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# shared/ sits beside the clone (as the tests expect); ADX_SHARED overrides.
FIXTURE = os.path.join(
    os.environ.get("ADX_SHARED", os.path.join(HERE, "..", "..", "shared")),
    "fixtures",
    "polis_real.json",
)

REQ_TIMEOUT = 90  # seconds, per HTTP request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def small_request(i, fmt):
    n = 20 + i % 30
    return json.dumps({
        "adata": {"X": [[(r * 7 + c + i) % 5 - 2 for c in range(12)] for r in range(n)],
                  "obs": {"index": ["p%d" % r for r in range(n)],
                          "columns": {"group": ["g%d" % (r % 3) for r in range(n)],
                                      "score": [r * 0.5 for r in range(n)]}},
                  "var": {"index": ["c%d" % c for c in range(12)]},
                  "uns": {"note": "soak %d" % i}},
        "format": fmt}).encode()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat = collections.defaultdict(list)
        self.status = collections.Counter()  # (kind, status) -> n
        self.unexpected = []  # (t, kind, what)
        self.unexpected_kinds = collections.Counter()
        self.total = 0

    def record(self, kind, status, dt):
        with self.lock:
            self.lat[kind].append(dt)
            self.status[(kind, status)] += 1
            self.total += 1

    def bad(self, t, kind, what):
        with self.lock:
            self.unexpected_kinds[(kind, what[:80])] += 1
            if len(self.unexpected) < 50:
                self.unexpected.append((t, kind, what[:300]))


class Client:
    """One persistent connection; reopened after an error or a close."""

    def __init__(self, port, stats, t0):
        self.port = port
        self.stats = stats
        self.t0 = t0
        self.c = None

    def request(self, kind, method, path, body=None, headers=None, ok=(200,)):
        """Returns (status, headers, body) or None on a connection error.
        A status outside `ok` (or a connection error) is unexpected."""
        t = time.time()
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port,
                                                    timeout=REQ_TIMEOUT)
            try:
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                if r.will_close:
                    self.close()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as e:
                # the server may close an idle keep-alive connection between
                # two requests: retry once on a fresh one (only if idempotent
                # or nothing was answered yet, which is the case here)
                self.close()
                if attempt == 0 and method in ("GET", "DELETE"):
                    continue
                self.stats.record(kind, "conn-error", time.time() - t)
                self.stats.bad(time.time() - self.t0, kind,
                               "%s %s: %s: %s" % (method, path, type(e).__name__, e))
                return None
            except (OSError, http.client.HTTPException) as e:
                self.close()
                self.stats.record(kind, "conn-error", time.time() - t)
                self.stats.bad(time.time() - self.t0, kind,
                               "%s %s: %s: %s" % (method, path, type(e).__name__, e))
                return None
        dt = time.time() - t
        self.stats.record(kind, r.status, dt)
        if r.status not in ok:
            self.stats.bad(time.time() - self.t0, kind, "%s %s -> %d %s" % (
                method, path.split("?")[0], r.status, data[:200].decode("utf-8", "replace")))
        return r.status, hdrs, data

    def close(self):
        if self.c is not None:
            try:
                self.c.close()
            except OSError:
                pass
            self.c = None


JSON = {"Content-Type": "application/json"}


def poll_job(cl, jid, kind, deadline):
    """Poll until a final state (bounded by deadline). Returns the state or None."""
    while time.time() < deadline:
        res = cl.request(kind, "GET", "/v1/exports/" + jid)
        if res is None or res[0] != 200:
            return None
        st = json.loads(res[2]).get("state")
        if st in ("succeeded", "failed", "canceled", "expired"):
            return st
        time.sleep(0.1)
    return None


def worker(idx, port, stats, t0, stop_at, fixture):
    rnd = random.Random(idx)
    cl = Client(port, stats, t0)
    i = idx * 100000
    while time.time() < stop_at:
        i += 1
        r = rnd.random()
        if r < 0.30:  # small sync export
            fmt = "npz" if rnd.random() < 0.5 else "h5ad"
            if rnd.random() < 0.1:
                kind, body = "sync_polis", fixture  # h5ad, the fixture's own options
                path = "/v1/exports?wait=30"
            else:
                kind, body = "sync_" + fmt, small_request(i, fmt)
                path = "/v1/exports?wait=30"
            res = cl.request(kind, "POST", path, body, JSON, ok=(200, 202))
            if res and res[0] in (200, 202):
                loc = res[1].get("content-location") or res[1].get("location")
                if res[0] == 202:
                    jid = json.loads(res[2])["id"]
                    poll_job(cl, jid, "poll", time.time() + 60)
                    loc = "/v1/exports/" + jid
                if loc:
                    cl.request("delete", "DELETE", loc, ok=(204,))
                else:
                    stats.bad(time.time() - t0, kind, "no Content-Location on a 200")
        elif r < 0.55:  # async: POST, poll, download, DELETE
            fmt = "npz" if rnd.random() < 0.5 else "h5ad"
            res = cl.request("async_post", "POST", "/v1/exports", small_request(i, fmt),
                             JSON, ok=(202,))
            if res and res[0] == 202:
                jid = json.loads(res[2])["id"]
                if rnd.random() < 0.1:  # cancel right away sometimes
                    cl.request("delete", "DELETE", "/v1/exports/" + jid, ok=(204,))
                    continue
                st = poll_job(cl, jid, "poll", time.time() + 60)
                if st == "succeeded":
                    res = cl.request("download", "GET", "/v1/exports/%s/file" % jid)
                    if res and res[0] == 200 and len(res[2]) == 0:
                        stats.bad(time.time() - t0, "download", "empty file " + jid)
                elif st is not None:
                    stats.bad(time.time() - t0, "poll", "job %s ended %s" % (jid, st))
                else:
                    stats.bad(time.time() - t0, "poll", "job %s not final in 60 s" % jid)
                cl.request("delete", "DELETE", "/v1/exports/" + jid, ok=(204,))
        elif r < 0.65:
            cl.request("list", "GET", "/v1/exports?limit=%d" % rnd.choice((5, 20, 100)))
        elif r < 0.80:
            cl.request("healthz", "GET", "/healthz")
        else:  # bad requests: a 4xx is the right answer
            b = rnd.random()
            if b < 0.34:
                kind, body = "bad_json", b'{"adata": {"X": [[1, 2], [3,'
            elif b < 0.67:
                kind, body = "bad_include", json.dumps(
                    {"adata": {"X": [[1, 2]]}, "include": 42}).encode()
            else:
                kind, body = "bad_format", json.dumps(
                    {"adata": {"X": [[1, 2]]}, "format": "xlsx"}).encode()
            cl.request(kind, "POST", "/v1/exports?wait=5", body, JSON,
                       ok=tuple(range(400, 500)))
    cl.close()


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def median(xs):
    return pct(xs, 50)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="build/anndata-exportd")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--interval", type=float, default=5, help="RSS sampling interval (s)")
    ap.add_argument("--workers", type=int, default=2, help="the daemon's workers")
    args = ap.parse_args()

    with open(FIXTURE, "rb") as f:
        fixture = f.read()
    tmp = tempfile.mkdtemp(prefix="adx-soak-")
    port = free_port()
    conf = os.path.join(tmp, "soak.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:%d\n" % port)
        f.write("spool_dir = %s\n" % os.path.join(tmp, "spool"))
        f.write("data_dir = %s\n" % os.path.join(tmp, "data"))
        f.write("workers = %d\n" % args.workers)
        # room for every client at once: one connection each (plus the
        # harness's own probes), at most one queued job each
        f.write("max_connections_per_ip = %d\n" % (args.connections + 16))
        f.write("queue_max = %d\n" % (args.connections * 2))
        f.write("log_format = json\n")
        f.write("wait_max = 60\n")
    os.makedirs(os.path.join(tmp, "data"), exist_ok=True)
    log = open(os.path.join(tmp, "daemon.log"), "wb")
    proc = subprocess.Popen([args.bin, "serve", "--config", conf], stdout=log,
                            stderr=subprocess.STDOUT)
    stats = Stats()
    samples = []  # (t, rss MiB, requests so far)
    rc = None
    try:
        deadline = time.time() + 30
        up = False
        while time.time() < deadline and proc.poll() is None:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/healthz")
                up = c.getresponse().status == 200
                c.close()
                if up:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        if not up:
            log.flush()
            with open(os.path.join(tmp, "daemon.log"), "rb") as f:
                sys.stderr.write(f.read().decode("utf-8", "replace")[-4000:])
            sys.exit("daemon did not come up")

        t0 = time.time()
        stop_at = t0 + args.seconds
        threads = [threading.Thread(target=worker, daemon=True,
                                    args=(k, port, stats, t0, stop_at, fixture))
                   for k in range(args.connections)]
        for th in threads:
            th.start()
        samples.append((0.0, rss_kib(proc.pid) / 1024.0, 0))
        crashed = False
        while time.time() < stop_at:
            time.sleep(min(args.interval, max(0.0, stop_at - time.time())))
            if proc.poll() is not None:
                crashed = True
                stats.bad(time.time() - t0, "daemon", "daemon exited with %s" % proc.returncode)
                break
            samples.append((time.time() - t0, rss_kib(proc.pid) / 1024.0, stats.total))
        # threads stop at stop_at; a request in flight is bounded by REQ_TIMEOUT
        # and a poll loop by 60 s
        join_deadline = time.time() + REQ_TIMEOUT + 70
        for th in threads:
            th.join(max(0.1, join_deadline - time.time()))
        stragglers = sum(th.is_alive() for th in threads)
        if not crashed and proc.poll() is None:
            samples.append((time.time() - t0, rss_kib(proc.pid) / 1024.0, stats.total))
        elapsed = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                rc = "killed after 60 s"
        else:
            rc = proc.returncode
        log.close()
        with open(os.path.join(tmp, "daemon.log"), "rb") as f:
            logtext = f.read().decode("utf-8", "replace")
        spool_mb = 0
        for dp, _, fns in os.walk(os.path.join(tmp, "spool")):
            for fn in fns:
                try:
                    spool_mb += os.path.getsize(os.path.join(dp, fn))
                except OSError:
                    pass
        shutil.rmtree(tmp, ignore_errors=True)

    # report
    print("soak: %d connections, %.0f s (ran %.0f s), daemon workers=%d, pid %d"
          % (args.connections, args.seconds, elapsed, args.workers, proc.pid))
    print("\nRSS over time")
    print("%8s %9s %10s" % ("t s", "RSS MiB", "requests"))
    step = max(1, len(samples) // 24)
    shown = samples[::step]
    if shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    for t, m, n in shown:
        print("%8.0f %9.1f %10d" % (t, m, n))
    print("\nlatency per kind (s)")
    print("%-12s %8s %8s %8s %8s" % ("kind", "n", "p50", "p99", "max"))
    for kind in sorted(stats.lat):
        xs = stats.lat[kind]
        print("%-12s %8d %8.3f %8.3f %8.3f" % (kind, len(xs), pct(xs, 50), pct(xs, 99), max(xs)))
    print("\nstatus counts")
    by_kind = collections.defaultdict(dict)
    for (kind, st), n in stats.status.items():
        by_kind[kind][st] = n
    for kind in sorted(by_kind):
        print("  %-12s %s" % (kind, ", ".join("%s: %d" % (k, v) for k, v in
                                              sorted(by_kind[kind].items(), key=str))))
    total_unexp = sum(stats.unexpected_kinds.values())
    print("\nunexpected: %d" % total_unexp)
    for (kind, what), n in stats.unexpected_kinds.most_common(20):
        print("  %5d x %-10s %s" % (n, kind, what))
    if stragglers:
        print("threads still running after the join deadline: %d" % stragglers)
    levels = collections.Counter()
    first_lines = []
    for line in logtext.splitlines():
        for lv in ("error", "warn", "warning"):
            if '"level":"%s"' % lv in line:
                levels[lv] += 1
                if sum(levels.values()) <= 5:
                    first_lines.append(line[:300])
    print("daemon exit: %s; spool at the end: %.1f MB; daemon log lines at level error: %d, "
          "warn: %d" % (rc, spool_mb / 1e6, levels["error"], levels["warn"] + levels["warning"]))
    for line in first_lines:
        print("  " + line)
    print("requests: %d (%.1f/s)" % (stats.total, stats.total / max(elapsed, 1e-9)))

    # verdict: second quarter vs last quarter of the run (by time)
    dur = min(args.seconds, max(t for t, _, _ in samples)) or 1
    q2 = [m for t, m, _ in samples if dur * 0.25 <= t < dur * 0.5]
    q4 = [m for t, m, _ in samples if dur * 0.75 <= t <= dur + 1]
    m2, m4 = median(q2), median(q4)
    flat = bool(q2 and q4) and abs(m4 - m2) <= 0.2 * m2
    ok = flat and total_unexp == 0 and not stragglers and rc == 0
    print("\nverdict: %s — RSS %s (2nd-quarter median %.1f MiB, last-quarter %.1f MiB, %+.1f%%), "
          "unexpected errors %d, daemon exit %s"
          % ("PASS" if ok else "FAIL", "flat" if flat else "NOT flat", m2, m4,
             (m4 - m2) / m2 * 100 if m2 else float("nan"), total_unexp, rc))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
