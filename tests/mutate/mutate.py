#!/usr/bin/python3
"""Mutation testing: does the suite fail when central code is broken on purpose?

Each mutation of tests/mutate/mutations.txt (a text that occurs exactly once in one file,
replaced) is applied to a scratch copy of the repository, the copy rebuilt incrementally, and
the fast tests named for it run (ctest -R). A mutation is caught when those tests fail; missed
when they pass; a mutation that no longer applies (its text is gone) or does not build is an
error of the list, and fails the run like a miss. Before any mutation, the tests of all the
selected mutations must pass on the unmutated copy (else a failure would prove nothing). The
scratch copy follows the repository by content (without the build folders and the data, which
it links to), is configured afresh each run, and is restored after each mutation.

usage: mutate.py [--sample N] [--doc FILE] [--keep] [ID...]
       mutate.py --check [BUILD]
  --check      no build: every mutation's text occurs exactly once in its file, and (given the
               build folder) its test expression selects at least one test; the ctest
               `mutations_apply`, so that a refactor that moves mutated code fails at once
  --sample N   N mutations spread evenly over the list (CI's fast sample)
  --doc FILE   write the results table into FILE between the markers
               <!-- mutate:begin --> and <!-- mutate:end --> (docs/testing.md)
  ID...        only these mutations
Exit status: 0 when every mutation run was caught.
"""
import fcntl
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRATCH = os.environ.get("NNC_MUTATE_DIR", "/tmp/nnc-mutate")


def load():
    muts = []
    for block in open(os.path.join(ROOT, "tests/mutate/mutations.txt")).read().split("\n\n"):
        d = {}
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            key, _, value = line.partition(": ")
            d[key] = value
        if "id" in d:
            muts.append(d)
    return muts


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


SKIP = ("build", ".git", "data", ".device")


def skipped(rel):
    top = rel.split(os.sep)[0]
    return top.startswith("build") or top in SKIP or rel.startswith(os.path.join("tests", "fuzz", "corpus-"))


def sync_tree(root, dst):
    keep = set()
    for d, dirs, files in os.walk(root):
        rel_d = os.path.relpath(d, root)
        dirs[:] = [x for x in dirs if not skipped(os.path.normpath(os.path.join(rel_d, x)))]
        for f in files:
            rel = os.path.normpath(os.path.join(rel_d, f))
            if skipped(rel) or os.path.islink(os.path.join(d, f)):
                continue
            keep.add(rel)
            a, b = os.path.join(d, f), os.path.join(dst, rel)
            with open(a, "rb") as fa:
                data = fa.read()
            if os.path.exists(b):
                with open(b, "rb") as fb:
                    if fb.read() == data:
                        continue
            os.makedirs(os.path.dirname(b), exist_ok=True)
            with open(b, "wb") as fb:
                fb.write(data)
            os.chmod(b, os.stat(a).st_mode & 0o777)
    for d, dirs, files in os.walk(dst):
        for f in files:
            rel = os.path.normpath(os.path.relpath(os.path.join(d, f), dst))
            if rel not in keep and not skipped(rel):
                os.remove(os.path.join(d, f))


def setup():
    src, build = os.path.join(SCRATCH, "src"), os.path.join(SCRATCH, "build")
    os.makedirs(SCRATCH, exist_ok=True)
    # One run at a time in a scratch folder: a second run's copy and build would undo the first
    # one's mutation under its tests (and the first's mutation would fail the second's baseline).
    global LOCK
    LOCK = open(os.path.join(SCRATCH, "lock"), "w")
    try:
        fcntl.flock(LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.exit("mutate: another mutation run is using %s; wait for it, or give this one its own "
                 "folder with NNC_MUTATE_DIR" % SCRATCH)
    # The scratch copy follows the repository by content: a file whose bytes changed (or that is
    # new) is written anew, so its time is now and the build recompiles what depends on it; the
    # others keep their times, so the build stays incremental. (Copying with the repository's own
    # times, as tar does, skipped rebuilds: a file edited before the scratch build last ran but
    # after the copy it was built from looked older than its object.)
    sync_tree(ROOT, src)
    if os.path.isdir(os.path.join(ROOT, "data")) and not os.path.exists(os.path.join(src, "data")):
        os.symlink(os.path.join(ROOT, "data"), os.path.join(src, "data"))
    # configured every run (a few seconds), so the tests it registers are the repository's now
    r = run(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"])
    if r.returncode != 0:
        sys.exit("mutate: configuring the scratch build failed:\n" + r.stdout[-3000:])
    return src, build


def build_all(build):
    return run(["cmake", "--build", build, "-j%d" % (os.cpu_count() or 2)])


def check(build):
    bad = 0
    for m in load():
        path = os.path.join(ROOT, m["file"])
        n = open(path).read().count(m["old"]) if os.path.exists(path) else -1
        if n != 1:
            bad += 1
            print("mutation %s: its text occurs %s in %s" % (m["id"], "no file" if n < 0 else "%d times" % n, m["file"]))
        if build:
            r = run(["ctest", "--test-dir", build, "-N", "-R", m["tests"]])
            if "Total Tests: 0" in r.stdout:
                bad += 1
                print("mutation %s: no test matches %s" % (m["id"], m["tests"]))
    print("mutations: %d checked, %d broken" % (len(load()), bad))
    return 1 if bad else 0


def main():
    args = sys.argv[1:]
    if args and args[0] == "--check":
        sys.exit(check(args[1] if len(args) > 1 else None))
    sample, doc, only = 0, None, []
    while args:
        a = args.pop(0)
        if a == "--sample":
            sample = int(args.pop(0))
        elif a == "--doc":
            doc = args.pop(0)
        else:
            only.append(a)
    muts = load()
    if only:
        muts = [m for m in muts if m["id"] in only]
    if sample and sample < len(muts):
        step = len(muts) / sample
        muts = [muts[int(i * step)] for i in range(sample)]
    src, build = setup()
    r = build_all(build)
    if r.returncode != 0:
        sys.exit("mutate: the unmutated scratch copy does not build:\n" + r.stdout[-3000:])
    # A failure counts as a catch only if the same tests pass on the unmutated copy.
    everything = "|".join("(%s)" % m["tests"] for m in muts)
    r = run(["ctest", "--test-dir", build, "-R", everything, "--timeout", "600"], cwd=src)
    if r.returncode != 0:
        sys.exit("mutate: the tests fail without any mutation:\n" + r.stdout[-3000:])
    rows, bad = [], 0
    for m in muts:
        path = os.path.join(src, m["file"])
        original = open(path).read()
        t0 = time.time()
        if original.count(m["old"]) != 1:
            verdict, detail = "ERROR", "the text to mutate occurs %d times" % original.count(m["old"])
        else:
            open(path, "w").write(original.replace(m["old"], m["new"]))
            r = build_all(build)
            if r.returncode != 0:
                verdict, detail = "ERROR", "does not build"
            else:
                r = run(["ctest", "--test-dir", build, "-R", m["tests"], "--timeout", "600"], cwd=src)
                ran = re.findall(r"Test +#\d+: (\S+) \.+.*?(Passed|\*\*\*Failed|Failed|Not Run|\*\*\*Skipped|Skipped|Timeout)",
                                 r.stdout)
                failed = [n for n, s in ran if "Failed" in s or "Timeout" in s]
                if not ran:
                    verdict, detail = "ERROR", "no test matches " + m["tests"]
                elif failed:
                    verdict, detail = "caught", ", ".join(failed)
                else:
                    verdict, detail = "MISSED", "passed: " + ", ".join(n for n, _ in ran)
            open(path, "w").write(original)
            os.utime(path)
        bad += verdict != "caught"
        rows.append((m["id"], m["file"], m["what"], verdict, detail, time.time() - t0))
        print("%-24s %-7s %s (%.0f s)" % (m["id"], verdict, detail, time.time() - t0), flush=True)
    build_all(build)  # leave the scratch build matching the unmutated copy
    table = ["| mutation | file | what it breaks | result | tests that failed |", "|---|---|---|---|---|"]
    table += ["| %s | `%s` | %s | %s | %s |" % (i, f, w, v, d) for i, f, w, v, d, _ in rows]
    print("\n".join(table))
    print("mutate: %d mutations, %d caught, %d missed or in error" % (len(rows), len(rows) - bad, bad))
    if doc:
        text = open(doc).read()
        begin, end = "<!-- mutate:begin -->", "<!-- mutate:end -->"
        if begin not in text or end not in text:
            sys.exit("mutate: %s lacks the markers %s ... %s" % (doc, begin, end))
        # rows of mutations not run now (a run of some IDs) stay as the table had them
        old = {}
        for line in text[text.index(begin):text.index(end)].splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if line.startswith("| ") and len(cells) == 5 and cells[0] not in ("mutation", "---"):
                old[cells[0]] = line
        new = {r[0]: table[2 + i] for i, r in enumerate(rows)}
        order = [m["id"] for m in load()]
        lines = [new.get(i, old.get(i)) for i in order if i in new or i in old]
        caught = sum(1 for l in lines if "| caught |" in l)
        stamp = "Written by `tests/mutate.sh --doc %s` (last run %s): %d mutations, %d caught." % (
            os.path.relpath(doc, ROOT), time.strftime("%Y-%m-%d"), len(lines), caught)
        text = (text[:text.index(begin) + len(begin)] + "\n" + stamp + "\n\n" + "\n".join(table[:2] + lines) + "\n" +
                text[text.index(end):])
        open(doc, "w").write(text)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
