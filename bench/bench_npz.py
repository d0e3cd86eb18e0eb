"""npz_write vs numpy.savez_compressed on a 4000 x 1000 float64 X with 40%
NaN (fmt_driver big). Prints wall time, size and peak RSS; asserts nothing
about speed (machines differ), only that both files hold the same array.

usage: bench_npz.py FMT_DRIVER [LEVEL ...]"""
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def main():
    driver = sys.argv[1]
    levels = [int(x) for x in sys.argv[2:]] or [4, 6, 0]
    with tempfile.TemporaryDirectory() as d:
        ref = None
        for level in levels:
            out = os.path.join(d, f"adx{level}.npz")
            t = time.perf_counter()
            p = subprocess.run(["/usr/bin/time", "-f", "%M", driver, "big", out, str(level)],
                               capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t
            inner = [l for l in p.stderr.splitlines() if l.startswith("npz_write seconds")]
            rss_kb = int(p.stderr.strip().splitlines()[-1])
            print(f"anndata-exportd level {level}: {inner[0].split()[-1]} s in npz_write "
                  f"({wall:.3f} s process), {os.path.getsize(out)} bytes, peak RSS {rss_kb} KB")
            x = np.load(out, allow_pickle=False)["X"]
            if ref is None:
                ref = x
            assert np.array_equal(x, ref, equal_nan=True)
        np_out = os.path.join(d, "numpy.npz")
        t = time.perf_counter()
        np.savez_compressed(np_out, X=ref)
        wall = time.perf_counter() - t
        print(f"numpy.savez_compressed (zlib level 6): {wall:.3f} s, "
              f"{os.path.getsize(np_out)} bytes "
              f"(python peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} KB)")


if __name__ == "__main__":
    main()
