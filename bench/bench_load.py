#!/usr/bin/python3
"""Load benchmark of `anndata-exportd serve`.

1. Small synchronous exports (POST /v1/exports?wait=…) from N concurrent
   keep-alive clients: requests/s, p50/p99 latency, errors. The body is the
   real fixture conversation (shared/fixtures/polis_real.json, 370 KB; the
   small-job case of issue 11), or with --tiny a 2 x 3 request.
2. Two large jobs at the same time versus one after the other.

Each scenario runs REPEAT times and the medians are printed. The daemon is
started here on a free 127.0.0.1 port with a temp spool (or point --url at a
running one for scenario 1 only).

usage: /usr/bin/python3 bench/bench_load.py [--bin build/anndata-exportd]
       [--clients 32] [--seconds 10] [--repeat 3] [--workers 4] [--tiny]
       [--small-only]
Run it with Debian's python3 (numpy is needed for the large request).
"""
import argparse
import base64
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# shared/ sits beside the clone (as the tests expect); ADX_SHARED overrides.
FIXTURE = os.path.join(
    os.environ.get("ADX_SHARED", os.path.join(HERE, "..", "..", "shared")),
    "fixtures", "polis_real.json")


def cpu_of(pid):
    """User + system CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_daemon(binary, tmp, workers, queue_max=1024):
    port = free_port()
    conf = os.path.join(tmp, "bench.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:%d\nspool_dir = %s/spool\nworkers = %d\n"
                "queue_max = %d\nmax_connections = 1024\nresult_ttl = 600\n"
                "log_file = %s/daemon.log\n" % (port, tmp, workers, queue_max, tmp))
    p = subprocess.Popen([binary, "serve", "--config", conf])
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return p, port
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("daemon did not start")


def tiny_body(i):
    return json.dumps({"adata": {"X": [[i, 1.5, 2], [3, 4, 5]],
                                 "obs": {"index": ["a", "b"], "columns": {"k": [i, 1]}},
                                 "uns": {"n": i}}}).encode()


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(q / 100.0 * (len(xs) - 1)))))
    return xs[k]


def run_small(port, clients, seconds, body_of):
    lat, errors = [], [0]
    lock = threading.Lock()
    stop = time.time() + seconds

    def client(ci):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        i = 0
        mine = []
        while time.time() < stop:
            body = body_of(ci * 100000 + i)
            i += 1
            t0 = time.perf_counter()
            try:
                c.request("POST", "/v1/exports?wait=60", body=body,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                ok = r.status == 200 and data[:4] == b"\x89HDF"
            except (OSError, http.client.HTTPException):
                ok = False
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            dt = time.perf_counter() - t0
            if ok:
                mine.append(dt)
            else:
                with lock:
                    errors[0] += 1
        c.close()
        with lock:
            lat.extend(mine)

    t0 = time.time()
    ts = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.time() - t0
    return {"rps": len(lat) / wall, "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
            "ok": len(lat), "errors": errors[0]}


WRK_LUA = r"""
local f = assert(io.open(os.getenv("ADX_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or body:sub(1, 4) ~= "\137HDF" then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format("ADX %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    b + e.connect + e.read + e.write + e.timeout))
end
"""


def run_small_wrk(port, clients, seconds, body_path, threads=2):
    """run_small's load from wrk (Debian's package), whose event loop in C
    takes a fraction of the CPU that Python's client threads take on the
    same two cores. Latencies are wrk's (coordinated omission included, as
    in run_small: each connection sends its next request after the answer)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA)
    try:
        out = subprocess.run(
            ["wrk", "-t%d" % threads, "-c%d" % clients, "-d%.0fs" % seconds, "--timeout", "120s",
             "-s", f.name, "http://127.0.0.1:%d/v1/exports?wait=60" % port],
            env=dict(os.environ, ADX_BODY=body_path), capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("ADX ")]
    if not line:
        raise SystemExit("wrk printed no summary: " + out.stdout + out.stderr)
    n, dur_us, p50, p99, bad = (int(v) for v in line[0].split()[1:])
    return {"rps": (n - bad) / (dur_us / 1e6), "p50_ms": p50 / 1e3, "p99_ms": p99 / 1e3,
            "ok": n - bad, "errors": bad}


def large_body(path, rows, cols):
    if not os.path.exists(path):
        import numpy as np
        x = np.random.default_rng(1).random((rows, cols))
        with open(path, "w") as f:
            json.dump({"adata": {"X": {"encoding-type": "array", "dtype": "float64",
                                       "shape": [rows, cols],
                                       "base64": base64.b64encode(x.tobytes()).decode()}}}, f)
    with open(path, "rb") as f:
        return f.read()


def run_large(port, body, n, concurrent):
    def one():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        c.request("POST", "/v1/exports?wait=600", body=body,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        c.close()
        if r.status != 200:
            raise SystemExit("large job failed: %d" % r.status)

    t0 = time.time()
    if concurrent:
        ts = [threading.Thread(target=one) for _ in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    else:
        for _ in range(n):
            one()
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("ADX_BIN", "build/anndata-exportd"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4, help="the daemon's workers (its default)")
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--cols", type=int, default=2500)
    ap.add_argument("--tiny", action="store_true",
                    help="a 2 x 3 request instead of the fixture conversation")
    ap.add_argument("--small-only", action="store_true", help="skip the two large jobs")
    a = ap.parse_args()
    if a.tiny:
        body_of, what = tiny_body, "2 x 3 request"
    else:
        with open(FIXTURE, "rb") as f:
            fixture = f.read()
        body_of = lambda i: fixture  # noqa: E731
        what = "fixture conversation, %d KB" % (len(fixture) // 1000)
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_daemon(a.bin, tmp, a.workers)
        try:
            runs = []
            for _ in range(a.repeat):
                c0, t0 = cpu_of(proc.pid), os.times()
                r = run_small(port, a.clients, a.seconds, body_of)
                t1 = os.times()
                r["daemon_cpu_ms"] = (cpu_of(proc.pid) - c0) * 1e3 / max(r["ok"], 1)
                r["client_cpu_ms"] = ((t1.user - t0.user) + (t1.system - t0.system)) * 1e3 / max(
                    r["ok"], 1)
                runs.append(r)
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print("small sync exports (%s), %d clients, %d workers, %.0f s x %d runs (medians),"
                  " load average %s:" % (what, a.clients, a.workers, a.seconds, a.repeat,
                                         " ".join(open("/proc/loadavg").read().split()[:3])))
            print("  %.1f requests/s  p50 %.1f ms  p99 %.1f ms  ok %d  errors %d"
                  "  CPU per export: daemon %.2f ms, these clients %.2f ms"
                  % (med["rps"], med["p50_ms"], med["p99_ms"], med["ok"], med["errors"],
                     med["daemon_cpu_ms"], med["client_cpu_ms"]))
            if a.small_only:
                return
            body = large_body(os.path.join(tmp, "large.json"), a.rows, a.cols)
            seq = statistics.median(run_large(port, body, 2, False) for _ in range(a.repeat))
            par = statistics.median(run_large(port, body, 2, True) for _ in range(a.repeat))
            print("two large jobs (%dx%d float64, %.0f MB body), medians of %d:"
                  % (a.rows, a.cols, len(body) / 1e6, a.repeat))
            print("  sequential %.2f s  concurrent %.2f s  speed-up %.2fx"
                  % (seq, par, seq / par if par else float("nan")))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            if rc != 0:
                print("daemon exited with %d" % rc, file=sys.stderr)


if __name__ == "__main__":
    main()
