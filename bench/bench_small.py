#!/usr/bin/python3
"""Small jobs side by side: this build against a baseline build, in one run.

The small job is the real fixture conversation (shared/fixtures/
polis_real.json, 370 KB, 138 participants x 46 statements) exported to
h5ad gzip, the case of issue 11 point 9 (targets: at most 10 ms end to end
in the CLI; at least 250 exports/s at 32 concurrent clients with p99 under
300 ms from the daemon on 2 cores).

1. CLI: `anndata-exportd export polis_real.json -o out.h5ad`, --runs times
   per binary, interleaved (so a change of machine load hits both alike):
   median wall time (fork to exit) and CPU time (user + sys from wait4,
   microsecond resolution) and minor page faults (each ~20 µs on a VM
   where they are dear).
2. Daemon: bench_load.py's small scenario (POST /v1/exports?wait with the
   fixture from --clients keep-alive clients for --seconds) against a daemon
   of each binary, all started at once, after 2 s of the same load that are
   not counted; the runs alternate between the daemons, --repeat times
   each: medians of requests/s, p50, p99, the daemon's CPU per export, the
   cores the daemon and the load generator used and the machine's idle and
   iowait share. Every daemon's spool stays until the end (see main).

--baseline names another build of anndata-exportd, e.g. the round-1 tree
the issue's figures were measured on, built with bench/build_baseline.sh:
    bench/build_baseline.sh 01c03cc /tmp/adx-base
    /usr/bin/python3 bench/bench_small.py --bin build-rel/anndata-exportd \\
        --baseline /tmp/adx-base/build-rel/anndata-exportd
Without --baseline only this build is measured.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_load import FIXTURE, cpu_of, run_small, run_small_wrk, start_daemon  # noqa: E402


def cli_once(binary, out):
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "export", FIXTURE, "-o", out],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read()
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("%s failed: %s" % (binary, err.decode(errors="replace")[:2000]))
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_minflt


def daemon_runs(bins, top, clients, seconds, repeat, workers, client):
    """A daemon of each binary, each with its spool under top (kept until
    the whole benchmark ends, see main), all running at once: the runs
    alternate between them (A B A B ...), so a host that gets busier or
    quieter during the benchmark weighs on every binary alike."""
    with open(FIXTURE, "rb") as f:
        body = f.read()

    def load(port, secs):
        if client == "wrk":
            return run_small_wrk(port, clients, secs, FIXTURE)
        return run_small(port, clients, secs, lambda i: body)

    daemons, runs = {}, {name: [] for name, _ in bins}
    try:
        for i, (name, b) in enumerate(bins):
            tmp = os.path.join(top, str(i))
            os.mkdir(tmp)
            daemons[name] = start_daemon(b, tmp, workers)
        for name, _ in bins:
            load(daemons[name][1], 2)  # not counted: the workers' arenas fault in
        for _ in range(repeat):
            for name, _ in bins:
                proc, port = daemons[name]
                c0, s0, k0 = cpu_of(proc.pid), proc_stat(), children_cpu()
                r = load(port, seconds)
                c1, s1, k1 = cpu_of(proc.pid), proc_stat(), children_cpu()
                r["cpu_ms"] = (c1 - c0) * 1e3 / max(r["ok"], 1)
                # where the two cores went: the daemon, the load generator
                # (wrk, a finished child), and the machine's split (/proc/stat)
                r["daemon_cores"] = (c1 - c0) / seconds
                r["client_cores"] = (k1 - k0) / seconds if client == "wrk" else float("nan")
                d = [y - x for x, y in zip(s0, s1)]
                for k, i in (("idle_pct", 3), ("iowait_pct", 4)):
                    r[k] = 100.0 * d[i] / max(sum(d), 1)
                runs[name].append(r)
    finally:
        for proc, _ in daemons.values():
            proc.terminate()
        for proc, _ in daemons.values():
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            for name, rs in runs.items()}


def proc_stat():
    """The machine's CPU time so far: user nice system idle iowait irq
    softirq steal (the first line of /proc/stat)."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def loadavg():
    return " ".join("%.1f" % x for x in os.getloadavg())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("ADX_BIN", "build/anndata-exportd"))
    ap.add_argument("--baseline", help="another anndata-exportd build to compare with")
    ap.add_argument("--runs", type=int, default=21, help="CLI runs per binary")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="daemon runs per binary")
    ap.add_argument("--workers", type=int, default=4, help="the daemon's workers (its default)")
    ap.add_argument("--cli-only", action="store_true")
    ap.add_argument("--client", choices=["wrk", "python"],
                    default="wrk" if shutil.which("wrk") else "python",
                    help="load generator: wrk (default when installed) or Python threads"
                    " (which take ~5 ms of the two cores per request themselves)")
    a = ap.parse_args()
    bins = [("this build", a.bin)] + ([("baseline", a.baseline)] if a.baseline else [])

    print("1. CLI export of the fixture conversation to h5ad (gzip), medians of %d runs,"
          " load average %s" % (a.runs, loadavg()))
    with tempfile.TemporaryDirectory(prefix="adx-bench-small-") as tmp:
        res = {name: [] for name, _ in bins}
        for _ in range(a.runs):
            for name, b in bins:
                res[name].append(cli_once(b, os.path.join(tmp, "out.h5ad")))
    cli = {}
    for name, _ in bins:
        cli[name] = tuple(statistics.median(r[i] for r in res[name]) for i in range(3))
        print("   %-11s wall %6.1f ms   cpu %6.1f ms   page faults %4.0f"
              % (name, cli[name][0] * 1e3, cli[name][1] * 1e3, cli[name][2]))
    if a.baseline:
        n, o = cli["this build"], cli["baseline"]
        print("   ratio       wall %.1fx, cpu %.1fx faster than the baseline"
              % (o[0] / n[0], o[1] / n[1]))
    if a.cli_only:
        return

    print("\n2. daemon, %d clients (%s) POSTing the fixture with ?wait, %d workers, %.0f s x %d"
          " runs (medians), load average %s" % (a.clients, a.client, a.workers, a.seconds,
                                                a.repeat, loadavg()))
    # Every spool stays until the end. On ext4 without a journal (this VM's
    # disk) a new inode is never one deleted in the last minute or more
    # (fs/ext4/ialloc.c, recently_deleted), and finding a free one scans
    # past each of them: removing one daemon's ~10,000 spool files slowed
    # the next daemon's exports by a fifth (perf: a quarter of its CPU in
    # find_inode_bit). A daemon deletes what expires, as it expires: with
    # result_ttl = 5 s (expiring as fast as it exports) it kept 177-205/s
    # over a minute.
    os.sync()
    with tempfile.TemporaryDirectory(prefix="adx-bench-small-") as top:
        dm = daemon_runs(bins, top, a.clients, a.seconds, a.repeat, a.workers, a.client)
    for name, _ in bins:
        r = dm[name]
        print("   %-11s %6.1f exports/s  p50 %6.1f ms  p99 %6.1f ms  errors %d  daemon CPU"
              " %.2f ms/export" % (name, r["rps"], r["p50_ms"], r["p99_ms"], r["errors"],
                                   r["cpu_ms"]))
        print("   %-11s cores: daemon %.2f, %s %.2f; machine idle %.1f%%, iowait %.1f%%"
              % ("", r["daemon_cores"], a.client, r["client_cores"], r["idle_pct"],
                 r["iowait_pct"]))
    if a.baseline:
        n, o = dm["this build"], dm["baseline"]
        print("   ratio       %.1fx the throughput, p99 %.2fx, CPU per export %.2fx"
              % (n["rps"] / o["rps"], n["p99_ms"] / o["p99_ms"], n["cpu_ms"] / o["cpu_ms"]))
    print("   load average after: %s" % loadavg())


if __name__ == "__main__":
    main()
