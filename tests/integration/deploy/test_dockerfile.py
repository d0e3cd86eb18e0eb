"""The Dockerfile, checked without a Docker engine: its instructions parse,
the build stage installs scripts/setup.sh's build packages and runs the
repository's build script, the runtime stage installs real Debian 12
packages that cover every library the binary links (and nothing for
building), the image is non-root with volumes, port and HEALTHCHECK as
documented, .dockerignore keeps build trees out but the sources in, and
the container's command line and environment, run here, serve and pass
the HEALTHCHECK command."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deployharness as dh  # noqa: E402

DOCKERFILE = os.path.join(dh.SRC, "Dockerfile")
DOCKERIGNORE = os.path.join(dh.SRC, ".dockerignore")
KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
         "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
         "MAINTAINER"}


def parse_dockerfile(path):
    """[(instruction, argument text)], continuation lines joined, comments
    and parser directives dropped; raises on anything Docker would reject."""
    out, cur = [], ""
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if cur and line.lstrip().startswith("#"):
                continue  # comments inside a continued instruction are dropped
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            m = re.match(r"\s*([A-Za-z]+)\s+(.*\S)\s*$", cur)
            if not m or m.group(1).upper() not in KNOWN:
                raise AssertionError("Dockerfile line %d: cannot parse %r" % (n, cur))
            out.append((m.group(1).upper(), re.sub(r"\s+", " ", m.group(2))))
            cur = ""
    if cur:
        raise AssertionError("Dockerfile ends inside a continued instruction")
    return out


def stages(instrs):
    """{stage name: [(instr, args)]} in order."""
    res, name = {}, None
    for ins, args in instrs:
        if ins == "FROM":
            m = re.match(r"(\S+)(?: AS (\S+))?$", args, re.I)
            if not m:
                raise AssertionError("bad FROM %r" % args)
            name = m.group(2) or str(len(res))
            res[name] = [("FROM", m.group(1))]
        else:
            if name is None and ins != "ARG":
                raise AssertionError("%s before FROM" % ins)
            if name is not None:
                res[name].append((ins, args))
    return res


def apt_installs(stage):
    pkgs = []
    for ins, args in stage:
        if ins != "RUN":
            continue
        for part in re.split(r"&&|;", args):
            w = shlex.split(part)
            if w[:2] == ["apt-get", "install"]:
                pkgs += [p for p in w[2:] if not p.startswith("-")]
    return pkgs


def exec_form(args):
    v = json.loads(args)
    assert isinstance(v, list) and all(isinstance(x, str) for x in v), args
    return v


def env_of(stage):
    env = {}
    for ins, args in stage:
        if ins == "ENV":
            for tok in shlex.split(args):
                k, _, v = tok.partition("=")
                env[k] = v
    return env


def setup_build_packages():
    """The packages under '# build' in scripts/setup.sh."""
    with open(os.path.join(dh.SRC, "scripts", "setup.sh")) as f:
        text = f.read()
    m = re.search(r"packages=\((.*?)\n\)", text, re.S)
    pkgs, group = [], None
    for line in m.group(1).splitlines():
        s = line.strip()
        if s.startswith("#"):
            group = s.lstrip("# ").split()[0]
            continue
        if group == "build":
            pkgs += s.split()
    return pkgs


def docker_ignored(patterns, path):
    """Docker's rule: the last matching pattern wins; a pattern matching a
    directory excludes everything below it."""
    def rx(p):
        out, i = "", 0
        while i < len(p):
            if p.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif p.startswith("**", i):
                out += ".*"
                i += 2
            elif p[i] == "*":
                out += "[^/]*"
                i += 1
            elif p[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(p[i])
                i += 1
        return re.compile(out + r"(?:/.*)?$")
    ignored = False
    for p in patterns:
        neg = p.startswith("!")
        p = p[1:] if neg else p
        if rx(p.strip("/")).match(path):
            ignored = not neg
    return ignored


def package_of(lib_path):
    real = os.path.realpath(lib_path)
    cands = {lib_path, real}
    for p in list(cands):
        cands.add(p[4:] if p.startswith("/usr/") else "/usr" + p)
    for c in sorted(cands):
        r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    raise AssertionError("no package owns %s" % lib_path)


class Dockerfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.instrs = parse_dockerfile(DOCKERFILE)
        cls.stages = stages(cls.instrs)
        cls.build = cls.stages.get("build")
        cls.runtime = cls.stages.get("runtime")

    def test_two_stages_on_bookworm_slim(self):
        self.assertEqual(list(self.stages), ["build", "runtime"])
        for s in self.stages.values():
            self.assertEqual(s[0][1], "debian:bookworm-slim")

    def test_build_stage_uses_the_repo_build(self):
        self.assertTrue(set(setup_build_packages()) <= set(apt_installs(self.build)),
                        set(setup_build_packages()) - set(apt_installs(self.build)))
        runs = " && ".join(a for i, a in self.build if i == "RUN")
        m = re.search(r"\./scripts/build\.sh (\S+)", runs)
        self.assertIsNotNone(m, "the build stage must run scripts/build.sh")
        builddir = m.group(1)
        self.assertTrue(os.path.isfile(os.path.join(dh.SRC, "scripts", "build.sh")),
                        "scripts/build.sh is missing (the Dockerfile, README and CI share it)")
        self.assertTrue(os.access(os.path.join(dh.SRC, "scripts", "build.sh"), os.X_OK))
        copies = [a for i, a in self.runtime if i == "COPY" and a.startswith("--from=build")]
        workdir = [a for i, a in self.build if i == "WORKDIR"][-1]
        self.assertIn("--from=build %s/%s/anndata-exportd /usr/local/bin/anndata-exportd"
                      % (workdir, builddir), copies)

    def test_runtime_packages_cover_the_binary(self):
        pkgs = apt_installs(self.runtime)
        self.assertTrue(pkgs)
        for p in pkgs:
            self.assertFalse(p.endswith("-dev"), p)
            self.assertNotIn(p, ("gcc", "meson", "ninja-build", "pkg-config", "curl", "wget"))
            r = subprocess.run(["apt-cache", "show", "--no-all-versions", p],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, "%s is not a Debian 12 package" % p)
        needed = subprocess.run(["readelf", "-d", dh.require_bin()], capture_output=True,
                                text=True, check=True).stdout
        sonames = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", needed)
        self.assertTrue(sonames)
        ldd = subprocess.run(["ldd", dh.require_bin()], capture_output=True, text=True,
                             check=True).stdout
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        missing = []
        for so in sonames:
            # Sanitizer runtimes come from an ASan test build, not the image's.
            if re.match(r"lib(asan|ubsan|lsan|tsan)\.so", so):
                continue
            pkg = package_of(paths[so])
            if pkg not in pkgs and pkg != "libc6":
                missing.append((so, pkg))
        self.assertEqual(missing, [], "runtime stage lacks packages for these libraries")

    def test_runtime_image_settings(self):
        rt = self.runtime
        get = lambda ins: [a for i, a in rt if i == ins]  # noqa: E731
        user = get("USER")[-1]
        self.assertNotIn(user.split(":")[0], ("root", "0"))
        env = env_of(rt)
        self.assertEqual(env["ANNDATA_EXPORTD_LISTEN"], "0.0.0.0:8080")
        self.assertIn("8080", get("EXPOSE")[-1].split())
        vols = exec_form(get("VOLUME")[-1])
        self.assertIn(env["ANNDATA_EXPORTD_SPOOL_DIR"], vols)
        self.assertIn(env["ANNDATA_EXPORTD_DATA_DIR"], vols)
        hc = get("HEALTHCHECK")[-1]
        self.assertEqual(exec_form(hc[hc.index("CMD") + 3:].strip()),
                         ["anndata-exportd", "healthcheck"])
        entry = exec_form(get("ENTRYPOINT")[-1])
        self.assertEqual(entry, ["anndata-exportd"])
        cmd = exec_form(get("CMD")[-1])
        self.assertEqual(cmd[0], "serve")
        # The config named on the command line is one the image contains.
        conf = cmd[cmd.index("--config") + 1]
        self.assertIn("config/anndata-exportd.conf %s" % conf, get("COPY"))
        self.assertEqual(get("STOPSIGNAL"), ["SIGTERM"])
        # Every variable is a setting the daemon knows.
        with open(os.path.join(dh.SRC, "config", "anndata-exportd.conf")) as f:
            keys = set(re.findall(r"(?m)^#?([a-z_]+) =", f.read()))
        for k in env:
            if k.startswith("ANNDATA_EXPORTD_"):
                self.assertIn(k[len("ANNDATA_EXPORTD_"):].lower(), keys, k)

    def test_copy_sources_exist_and_are_in_the_context(self):
        with open(DOCKERIGNORE) as f:
            pats = [s.strip() for s in f if s.strip() and not s.lstrip().startswith("#")]
        for ins, args in self.instrs:
            if ins in ("COPY", "ADD") and not args.startswith("--from"):
                *srcs, _dst = shlex.split(args)
                for s in srcs:
                    if s == ".":
                        continue
                    self.assertTrue(os.path.exists(os.path.join(dh.SRC, s)), s)
                    self.assertFalse(docker_ignored(pats, s), s)
        # Build trees, history and outputs stay out ...
        for p in ("build/anndata-exportd", "build-asan/build.ninja", "build-deploy/x",
                  ".git/HEAD", "bench/out/result.json", "x.h5ad",
                  "tests/integration/deploy/__pycache__/x.pyc"):
            self.assertTrue(docker_ignored(pats, p), p)
        # ... and everything meson needs to configure and build is in.
        tracked = subprocess.run(["git", "-C", dh.SRC, "ls-files"], capture_output=True,
                                 text=True)
        files = tracked.stdout.split() if tracked.returncode == 0 else []
        if not files:
            for d, _, fs in os.walk(dh.SRC):
                rel = os.path.relpath(d, dh.SRC)
                if rel.split(os.sep)[0].startswith((".git", "build")):
                    continue
                files += [os.path.normpath(os.path.join(rel, f)) for f in fs]
        needed = [f for f in files if f.startswith(("src/", "include/", "scripts/", "tests/",
                                                    "config/")) or f == "meson.build"
                  or f == "meson_options.txt"]
        self.assertTrue("meson.build" in needed, "meson.build is not tracked")
        self.assertTrue("scripts/build.sh" in needed, "scripts/build.sh is not tracked")
        self.assertEqual([f for f in needed if docker_ignored(pats, f)], [])

    def test_build_stage_from_a_clean_context(self):
        """The build stage's commands (all but apt-get) run in a copy of the
        build context as .dockerignore leaves it: what `docker build` would
        compile, minus the package installs the other tests check."""
        with open(DOCKERIGNORE) as f:
            pats = [s.strip() for s in f if s.strip() and not s.lstrip().startswith("#")]
        tmp = tempfile.mkdtemp(prefix="adx-deploy-ctx-")
        try:
            workdir = [a for i, a in self.build if i == "WORKDIR"][-1]
            ctx = os.path.join(tmp, workdir.lstrip("/"))
            for d, dirs, fs in os.walk(dh.SRC):
                rel = os.path.relpath(d, dh.SRC)
                rel = "" if rel == "." else rel
                dirs[:] = [x for x in dirs if not docker_ignored(pats, os.path.join(rel, x))]
                for f in fs:
                    r = os.path.join(rel, f)
                    if not docker_ignored(pats, r):
                        os.makedirs(os.path.join(ctx, rel), exist_ok=True)
                        shutil.copy2(os.path.join(dh.SRC, r), os.path.join(ctx, r))
            cmds = []
            for ins, args in self.build:
                if ins == "RUN":
                    cmds += [c.strip() for c in args.split("&&")
                             if not c.strip().startswith(("apt-get", "rm -rf /var/lib/apt"))]
            self.assertTrue(cmds)
            env = dict(os.environ)
            env.pop("CFLAGS", None)
            for c in cmds:
                r = subprocess.run(c, shell=True, cwd=ctx, env=env, capture_output=True,
                                   text=True, timeout=1200)
                self.assertEqual(r.returncode, 0, "%s\n%s\n%s" % (c, r.stdout[-3000:],
                                                                   r.stderr[-3000:]))
            copies = [a for i, a in self.runtime if i == "COPY" and a.startswith("--from=build")]
            built = shlex.split(copies[0])[1]
            self.assertTrue(os.access(os.path.join(tmp, built.lstrip("/")), os.X_OK), built)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_docs_docker_lines_match_the_image(self):
        with open(os.path.join(dh.SRC, "README.md")) as f:
            m = re.search(r"(?ms)^### Docker\n(.*?)(?=^##|\Z)", f.read())
        self.assertIsNotNone(m, "README.md has no '### Docker' section")
        text = m.group(1).replace("\\\n", " ")
        run = [shlex.split(ln.strip()) for ln in text.splitlines()
               if ln.strip().startswith("docker run ")]
        self.assertEqual(len(run), 1, run)
        argv = run[0]
        vols = exec_form([a for i, a in self.runtime if i == "VOLUME"][-1])
        with open(os.path.join(dh.SRC, "config", "anndata-exportd.conf")) as f:
            keys = set(re.findall(r"(?m)^#?([a-z_]+) =", f.read()))
        expose = [a for i, a in self.runtime if i == "EXPOSE"][-1].split()
        for i, a in enumerate(argv):
            if a == "-v":
                self.assertIn(argv[i + 1].split(":")[1], vols, argv[i + 1])
            elif a == "-e":
                k = argv[i + 1].split("=")[0]
                self.assertTrue(k.startswith("ANNDATA_EXPORTD_"), k)
                self.assertIn(k[len("ANNDATA_EXPORTD_"):].lower(), keys, k)
            elif a == "-p":
                self.assertIn(argv[i + 1].rsplit(":", 1)[1], expose)
            elif a == "--stop-timeout":
                # Above shutdown_grace, or docker kills running exports.
                with open(os.path.join(dh.SRC, "config", "anndata-exportd.conf")) as f:
                    grace = int(re.search(r"(?m)^#\s*shutdown_grace\s*=\s*(\d+)",
                                          f.read()).group(1))
                self.assertGreater(int(argv[i + 1]), grace)
        self.assertIn("--stop-timeout", argv)
        self.assertIn("docker build -t anndata-exportd .", text)

    def test_container_command_serves_and_passes_healthcheck(self):
        """ENTRYPOINT + CMD with the image's ENV, paths moved to a temp dir
        and the wildcard listen address to a free loopback port; then the
        HEALTHCHECK command with the same environment."""
        rt = self.runtime
        entry = exec_form([a for i, a in rt if i == "ENTRYPOINT"][-1])
        cmd = exec_form([a for i, a in rt if i == "CMD"][-1])
        hc = [a for i, a in rt if i == "HEALTHCHECK"][-1]
        hc_argv = exec_form(hc[hc.index("CMD") + 3:].strip())
        image_env = env_of(rt)
        tmp = tempfile.mkdtemp(prefix="adx-deploy-docker-")
        port = dh.free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANNDATA_EXPORTD_")}
        env.update(image_env)
        env["ANNDATA_EXPORTD_LISTEN"] = "127.0.0.1:%d" % port
        for k in ("ANNDATA_EXPORTD_SPOOL_DIR", "ANNDATA_EXPORTD_DATA_DIR"):
            env[k] = os.path.join(tmp, os.path.basename(image_env[k]))
            os.makedirs(env[k])
        argv = [dh.require_bin() if a == "anndata-exportd" else a for a in entry + cmd]
        argv = [os.path.join(dh.SRC, "config", "anndata-exportd.conf")
                if a.startswith("/etc/anndata-exportd/") else a for a in argv]
        log = open(os.path.join(tmp, "log"), "wb")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            dh.wait_http(port, "/healthz", proc=proc, what="container command")
            hc_run = [dh.require_bin() if a == "anndata-exportd" else a for a in hc_argv]
            r = subprocess.run(hc_run, env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # The spool is the volume, not a default elsewhere.
            st, _, body = dh.http_request(port, "POST", "/v1/exports",
                                          b'{"adata": {"X": [[1]]}}',
                                          {"Content-Type": "application/json"})
            self.assertEqual(st, 202, body)
            self.assertTrue(os.listdir(os.path.join(env["ANNDATA_EXPORTD_SPOOL_DIR"], "jobs")))
            proc.terminate()
            self.assertEqual(proc.wait(timeout=60), 0)
            r = subprocess.run(hc_run, env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
