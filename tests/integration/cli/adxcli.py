"""Helpers shared by the CLI integration tests: run the real binary on a
request and collect its outputs. The binary and the shared folder come from
ADX_BIN / ADX_SHARED (tests/meson.build's test_env)."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
import warnings

BIN = os.environ.get("ADX_BIN", "")
SHARED = os.environ.get("ADX_SHARED", "")

# anndata 0.8 on this numpy/pandas warns on every read; the tests assert
# values, not warnings.
warnings.simplefilter("ignore")


def problem_doc(stderr):
    """The problem document on the CLI's stderr and the log-only cause line
    that may follow it ("anndata-exportd: cause: ..."; None when absent)."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    doc, end = json.JSONDecoder().raw_decode(text)
    rest = text[end:].strip()
    cause = None
    if rest:
        prefix = "anndata-exportd: cause: "
        assert rest.startswith(prefix) and "\n" not in rest, "unexpected stderr: %r" % rest
        cause = rest[len(prefix):]
    return doc, cause


class Result:
    def __init__(self, proc, out_dir, out_path):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.out_dir = out_dir
        self.path = out_path

    def json(self):
        return json.loads(self.stdout)

    def problem(self):
        return problem_doc(self.stderr)[0]

    def cause(self):
        return problem_doc(self.stderr)[1]

    def leftovers(self):
        """Files in the output directory other than the request itself."""
        return sorted(f for f in os.listdir(self.out_dir) if f != "request.json")


class CliCase(unittest.TestCase):
    """Each test gets a fresh directory; the request is written there and the
    output goes next to it unless a test says otherwise."""

    def setUp(self):
        if not BIN or not os.path.exists(BIN):
            self.fail("ADX_BIN is not set to the built binary")
        self.dir = tempfile.mkdtemp(prefix="adx-cli-")
        # A cleanup, not tearDown: it also runs when a subclass's setUp fails.
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_cli(self, args, stdin=None, cwd=None, timeout=300):
        return subprocess.run([BIN] + args, input=stdin, capture_output=True,
                              cwd=cwd or self.dir, timeout=timeout)

    def export(self, request, out="out.h5ad", raw_text=None, extra=()):
        """Write `request` (a dict, or raw_text verbatim) and export it."""
        req = os.path.join(self.dir, "request.json")
        with open(req, "w" if raw_text is None or isinstance(raw_text, str) else "wb") as f:
            if raw_text is not None:
                f.write(raw_text)
            else:
                json.dump(request, f, allow_nan=False)
        args = ["export", req] + (["-o", out] if out is not None else []) + list(extra)
        proc = self.run_cli(args)
        path = os.path.join(self.dir, out) if out not in (None, "-") else None
        return Result(proc, self.dir, path)

    def assert_ok(self, res):
        self.assertEqual(res.rc, 0, "export failed: %s" % res.stderr.decode(errors="replace"))
        return res.json()

    def assert_problem(self, res, pointer, status=400, rc=2):
        """A client error: exit code, problem+json on stderr, the pointer of
        the first error item, and no file left behind."""
        err = res.stderr.decode(errors="replace")
        self.assertEqual(res.rc, rc, "exit %d, stderr: %s" % (res.rc, err))
        try:
            p = res.problem()
        except ValueError:
            self.fail("stderr is not problem+json: %r" % err[:500])
        for k in ("type", "title", "status", "detail", "errors"):
            self.assertIn(k, p)
        self.assertEqual(p["status"], status, err)
        self.assertTrue(p["errors"], err)
        self.assertEqual(p["errors"][0]["pointer"], pointer, err)
        self.assertEqual(res.leftovers(), [], "files left in the output directory")
        self.assertEqual(res.stdout, b"")
        return p


def report_index(job):
    """{(path, action): count} of a job's report."""
    return {(e["path"], e["action"]): e["count"] for e in job["report"]}
