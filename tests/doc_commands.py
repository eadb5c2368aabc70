#!/usr/bin/env python3
"""Every command shown in the README and docs/ still runs (ctest `doc_commands`).

tests/docs.py checks the output of blocks marked `<!-- check: CMD -->`; this test runs the
commands of every other shell block, so a renamed flag, a moved file or a removed model in a
plain ```sh block fails CI instead of the reader. It is a sibling of docs.py, not a mode of it:
it needs CIFAR-10 (and skips without it) and takes about a minute, where docs.py needs no data
and takes seconds.

Which blocks. Every fenced block of README.md and docs/*.md whose info string is `sh`, `bash`,
`shell` or `console`, and every other fenced block with lines starting with `$ `. In a block
with `$ ` lines only those are commands (the rest is output the reader sees); in a shell block
without them every line is one, except blank lines and `#` comments. A line ending in `\`
continues on the next (a `> ` prompt there is dropped). Indented code blocks are never run, so
an indented one that starts like a command (`build/`, `scripts/`, `tests/`, `tools/`, `bench/`,
`cd `) fails the test: fence it as ```sh. A block marked `<!-- check: CMD -->` is tests/docs.py's:
it is not run again, but each of its `$ ` lines must occur in CMD, so the command shown is the
command checked.

How they run. Each doc file gets one scratch folder that mirrors the repository root (symlinks,
as tests/docs.py makes, so `data/` is CIFAR-10; `build/` holds links to the programs of the
build under test, and nothing else, so that no command reconfigures or rebuilds it), and
its blocks run in document order there, each command by `sh -c` on its own, with
NNC_DEVICE=cpu; a block may use what an earlier block of the same file made (`nnc compile`
before `nnrun train` of its plan, a checkpoint before `--resume`). The mirror is symlinks: a
command that writes into a folder of the repository writes into the checkout, so such blocks
are skipped (below). Small limits keep the whole test to about a minute on two cores:
`nnrun train` gets `--epochs 1 --train-limit 256 --test-limit 256`, `eval` and `compare`
`--test-limit 256`, `bench` `--steps 2`, each replacing the same flag (or `--set epochs=`)
where the command has it, unless the command's value is smaller (`eval --test-limit 8` stays
8); nothing else is changed. A command fails the test when it exits
non-zero, runs past 120 s, or prints an error (`error:`, a Python traceback, a sanitizer
report, `No such file or directory`, `command not found`).

Markers, on the line right above the fence (a block with a check marker is tests/docs.py's and
needs none), options separated by `;` (a `;` inside a reason's parentheses stays in it); an
unknown option fails the test and keeps its block from running:

    <!-- run: skip (REASON) -->             the block is not run; the reason is required,
                                            e.g. (needs a GPU) for `--device cuda`, (apt and a
                                            build: CI's set-up) for scripts/setup.sh
    <!-- run: skip PREFIX (REASON) -->      its commands that start with PREFIX are not run
    <!-- run: expect-fail -->               the block's last command must fail: exit non-zero
                                            and print the first `error:` line the block shows
                                            (figures in it may differ under the limits)
    <!-- run: file NAME -->                 the block (say a YAML recipe) is the file NAME that
                                            other blocks of the doc use: written to the scratch
                                            folder before the doc's commands run
    <!-- run: setup (CMD) -->               CMD runs first, unseen by the reader: a stand-in for
                                            a file the reader brings (their own weights)

The summary says how many commands ran in how many blocks, and lists every skip with its
reason. Without CIFAR-10 the test skips (77), except under CI=true, where it fails.

    tests/doc_commands.py BUILD_DIR [-v] [FILE.md ...]     (default: README.md and docs/*.md)
"""
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHELL_LANGS = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
CHECK = re.compile(r"^\s*<!-- check(?:\(\w+\))?: (.*) -->\s*$")
RUN = re.compile(r"^\s*<!-- run: (.*?) -->\s*$")
SKIP = re.compile(r"^skip(?:\s+(.*?))?\s*\((.+)\)$")
ERROR = re.compile(r"\b[Ee]rror:|\bERROR:|Traceback \(most recent call last\)|"
                   r"(Address|Leak|Memory|Thread|UndefinedBehavior)Sanitizer|runtime error:|"
                   r"No such file or directory|command not found")
INDENTED_COMMAND = re.compile(r"^ {4}(build/|scripts/|tests/|tools/|bench/|cd )")
TIMEOUT = 120

# the limits per nnrun subcommand; a smaller value the command gives is kept
LIMITS = {
    "train": {"--epochs": 1, "--train-limit": 256, "--test-limit": 256},
    "eval": {"--test-limit": 256},
    "compare": {"--test-limit": 256},
    "bench": {"--steps": 2},
}
SET_KEYS = {"epochs": "--epochs"}   # `--set epochs=N` is `--epochs N`


class Block:
    def __init__(self, path, line, lang, body, indent):
        self.path, self.line, self.lang, self.body, self.indent = path, line, lang, body, indent
        self.check = None      # the CMD of a check marker
        self.skip = None       # reason the whole block is skipped
        self.skip_prefixes = []  # (prefix, reason)
        self.expect_fail = False
        self.file = None
        self.setup = []        # hidden commands run before the block's

    def where(self, offset=0):
        return f"{self.path}:{self.line + offset}"


def options(text):
    """A run marker's options: split at `;` outside parentheses (a reason may hold one)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == ";" and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [o for o in out + [cur.strip()] if o]


def parse(path, rel):
    """The fenced blocks of one Markdown file with their markers, and the errors found."""
    with open(path) as f:
        lines = f.read().split("\n")
    found, errors, used = [], [], set()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if INDENTED_COMMAND.match(lines[i]) and i > 0 and not lines[i - 1].strip():
                errors.append(f"{rel}:{i + 1}: a command in an indented block is never run: "
                              f"fence it as ```sh (where it cannot run, a skip marker above the fence says why)\n  {lines[i].strip()}")
            i += 1
            continue
        indent, fence = m.group(1), m.group(2)
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        if j == len(lines):
            errors.append(f"{rel}:{i + 1}: the fenced block is not closed")
            break
        body = [l[len(indent):] if l.startswith(indent) else l.lstrip() for l in lines[i + 1:j]]
        b = Block(rel, i + 2, m.group(3).lower(), body, indent)
        k = i - 1
        while k >= 0 and lines[k].strip().startswith("<!--"):
            c, r = CHECK.match(lines[k]), RUN.match(lines[k])
            if c:
                b.check = c.group(1)
            elif r:
                used.add(k)
                for opt in options(r.group(1)):
                    s = SKIP.match(opt)
                    if s and s.group(1):
                        b.skip_prefixes.append((s.group(1), s.group(2)))
                    elif s:
                        b.skip = s.group(2)
                    elif opt == "expect-fail":
                        b.expect_fail = True
                    elif opt.startswith("file ") and opt[5:].strip():
                        b.file = opt[5:].strip()
                    elif re.fullmatch(r"setup\s*\((.+)\)", opt):
                        b.setup.append(re.fullmatch(r"setup\s*\((.+)\)", opt).group(1))
                    else:
                        need = " (a skip must give its reason)" if opt.split(" ")[0] == "skip" else ""
                        errors.append(f"{rel}:{k + 1}: unknown run option '{opt}'{need}; the options: "
                                      "skip (REASON), skip PREFIX (REASON), expect-fail, file NAME, setup (CMD)")
                        b.skip = "its marker is wrong (reported above)"   # never run it
            k -= 1
        found.append(b)
        i = j + 1
    for k, l in enumerate(lines):
        if RUN.match(l) and k not in used:
            errors.append(f"{rel}:{k + 1}: a run marker must stand right above a fenced block")
    return found, errors


def commands(block):
    """(line offset in the block, command) for each command of a shell block, and whether the
    block shows `$ ` prompts."""
    prompted = any(l.startswith("$ ") or l == "$" for l in block.body)
    out, cur, start = [], None, 0
    for n, l in enumerate(block.body):
        if cur is not None:
            cur.append(l[2:] if prompted and l.startswith("> ") else l)
        elif prompted:
            if not l.startswith("$ "):
                continue
            cur, start = [l[2:]], n
        else:
            if not l.strip() or l.lstrip().startswith("#"):
                continue
            cur, start = [l], n
        if not cur[-1].rstrip().endswith("\\"):
            out.append((start, "\n".join(cur)))
            cur = None
    if cur is not None:
        out.append((start, "\n".join(cur)))
    return out, prompted


def is_shell(block):
    return block.lang in SHELL_LANGS or any(l.startswith("$ ") for l in block.body)


def tokens(cmd):
    """Words, operators and comments of a shell command: (kind, start, end)."""
    out, i, n = [], 0, len(cmd)
    while i < n:
        c = cmd[i]
        if c == "\\" and i + 1 < n and cmd[i + 1] == "\n":
            i += 2
        elif c in " \t":
            i += 1
        elif c == "\n":
            out.append(("op", i, i + 1))
            i += 1
        elif c == "#":
            out.append(("comment", i, n))
            break
        elif c in "|&;<>()":
            j = i
            while j < n and cmd[j] in "|&;<>":
                j += 1
            j = max(j, i + 1)
            if j < n and cmd[j - 1] in "<>" and cmd[j].isdigit():   # 2>&1
                j += 1
            if (c in "<>" and out and out[-1][0] == "word" and out[-1][2] == i
                    and cmd[out[-1][1]:i].isdigit()):
                out[-1] = ("op", out[-1][1], j)     # 2> is one redirection
            else:
                out.append(("op", i, j))
            i = j
        else:
            j, quote = i, None
            while j < n:
                ch = cmd[j]
                if quote:
                    if ch == quote:
                        quote = None
                    elif ch == "\\" and quote == '"':
                        j += 1
                elif ch in "'\"":
                    quote = ch
                elif ch == "\\":
                    j += 1
                elif ch in " \t\n|&;<>()":
                    break
                j += 1
            out.append(("word", i, j))
            i = j
    return out


def limited(cmd):
    """cmd with the small limits put into each nnrun train/eval/compare/bench in it."""
    toks = tokens(cmd)
    edits = []
    i = 0
    while i < len(toks):
        kind, s, e = toks[i]
        word = cmd[s:e]
        if (kind == "word" and os.path.basename(word) == "nnrun" and i + 1 < len(toks)
                and toks[i + 1][0] == "word" and cmd[toks[i + 1][1]:toks[i + 1][2]] in LIMITS):
            limits = dict(LIMITS[cmd[toks[i + 1][1]:toks[i + 1][2]]])
            j = i + 2
            while j < len(toks) and toks[j][0] == "word":
                j += 1
            args = [cmd[s2:e2] for _, s2, e2 in toks[i + 2:j]]
            kept, k = [], 0
            while k < len(args):
                a, nxt = args[k], args[k + 1] if k + 1 < len(args) else ""
                flag, value, used = None, None, 1
                if a in limits:
                    flag, value, used = a, nxt, 2
                elif a.split("=")[0] in limits:
                    flag, value = a.split("=", 1)
                elif a == "--set" and SET_KEYS.get(nxt.split("=")[0]) in limits:
                    flag, value, used = SET_KEYS[nxt.split("=")[0]], nxt.split("=", 1)[-1], 2
                if flag is None:
                    kept.append(a)
                elif value.isdigit():
                    limits[flag] = min(limits[flag], int(value))
                k += used
            extra = [str(x) for flag, v in limits.items() for x in (flag, v)]
            start = toks[i + 2][1] if j > i + 2 else toks[i + 1][2]
            end = toks[j - 1][2] if j > i + 2 else toks[i + 1][2]
            new = " ".join(kept + extra)
            edits.append((start, end, (" " if j == i + 2 else "") + new))
            i = j
        else:
            i += 1
    for s, e, text in reversed(edits):
        cmd = cmd[:s] + text + cmd[e:]
    return cmd


def mirror(scratch, build):
    """The repository root as symlinks; `build` is a folder of links to the build's programs
    only, so that no command can reconfigure or rebuild the build under test."""
    for name in os.listdir(ROOT):
        if name not in ("build", ".git"):
            os.symlink(os.path.join(ROOT, name), os.path.join(scratch, name))
    os.mkdir(os.path.join(scratch, "build"))
    for name in os.listdir(build):
        path = os.path.join(build, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            os.symlink(path, os.path.join(scratch, "build", name))


def run_one(cmd, scratch, env):
    """(exit status or None after the time limit, output); a command past the limit is
    killed with everything it started."""
    p = subprocess.Popen(["sh", "-c", cmd], cwd=scratch, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, errors="replace",
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=TIMEOUT)
        return p.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return None, out


def shown_error_pattern(block):
    """The first `error:` line an expect-fail block shows, as a pattern: `...` matches
    anything, and figures any figures (the limits change counts)."""
    for l in block.body:
        if not l.startswith("$ ") and re.search(r"\berror:", l):
            parts = re.split(r"(\.\.\.|\d+(?:\.\d+)?)", l.strip())
            pattern = "".join(".*" if p == "..." else r"\d+(?:\.\d+)?" if re.fullmatch(r"\d+(?:\.\d+)?", p)
                              else re.escape(p) for p in parts)
            return l.strip(), re.compile(pattern)
    return None, None


def tail(text, n=15):
    lines = text.rstrip("\n").split("\n")
    return "\n".join("    | " + l for l in lines[-n:])


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        raise SystemExit(__doc__)
    build = os.path.abspath(args.pop(0))
    verbose = "-v" in args
    files = [os.path.abspath(a) for a in args if a != "-v"] or (
        [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))))
    if not os.path.isfile(os.path.join(ROOT, "data", "cifar-10-batches-bin", "test_batch.bin")):
        if os.environ.get("CI") == "true":
            print("FAIL: no CIFAR-10 in data/, and CI=true: scripts/setup.sh should have fetched it")
            return 1
        print("skipped: no CIFAR-10 in data/ (scripts/setup.sh fetches it)")
        return 77
    env = dict(os.environ, NNC_DEVICE="cpu")
    failures, skips = [], []
    first_failure = {}   # doc file -> where its first command failed
    ran = blocks_run = checked = 0
    t0 = time.time()
    for path in files:
        rel = os.path.relpath(path, ROOT)
        found, errors = parse(path, rel)
        failures += errors
        shell = [b for b in found if is_shell(b) and not b.file]
        files_made = [b for b in found if b.file]
        if not shell and not files_made:
            continue
        with tempfile.TemporaryDirectory(prefix="nnc-doc-commands-") as scratch:
            mirror(scratch, build)
            for b in files_made:
                with open(os.path.join(scratch, b.file), "w") as f:
                    f.write("\n".join(b.body) + "\n")
            for b in shell:
                cmds, prompted = commands(b)
                if b.check is not None:
                    checked += 1
                    for off, c in cmds:
                        if c.strip() not in b.check:
                            failures.append(f"{b.where(off)}: the command shown is not the one "
                                            f"tests/docs.py checks\n  shown:   {c}\n  checked: {b.check}")
                    continue
                if b.skip:
                    skips.append(f"{b.where()}: {b.skip}")
                    continue
                if not cmds:
                    failures.append(f"{b.where()}: a shell block without a command")
                    continue
                blocks_run += 1
                for c in b.setup:
                    rc, out = run_one(limited(c), scratch, env)
                    if rc != 0:
                        failures.append(f"{b.where(-1)}: the block's setup failed (exit {rc})\n"
                                        f"  setup:   {c}\n{tail(out)}")
                for n, (off, c) in enumerate(cmds):
                    reason = next((r for p, r in b.skip_prefixes if c.startswith(p)), None)
                    if reason:
                        skips.append(f"{b.where(off)}: `{c.split()[0]}`: {reason}")
                        continue
                    last = n == len(cmds) - 1
                    run = limited(c)
                    started = time.time()
                    rc, out = run_one(run, scratch, env)
                    ran += 1
                    before = len(failures)
                    if verbose:
                        print(f"{b.where(off)}: {time.time() - started:5.1f} s  rc {rc}  {run}")
                    what = f"  command: {c}" + (f"\n  ran as:  {run}" if run != c else "")
                    if rc is None:
                        failures.append(f"{b.where(off)}: ran past {TIMEOUT} s\n{what}\n{tail(out)}")
                    elif b.expect_fail and last:
                        shown, pattern = shown_error_pattern(b)
                        if rc == 0:
                            failures.append(f"{b.where(off)}: the doc shows this command failing, "
                                            f"but it exited 0\n{what}\n{tail(out)}")
                        elif pattern and not any(pattern.fullmatch(l.strip()) for l in out.split("\n")):
                            failures.append(f"{b.where(off)}: it failed (exit {rc}), but not with the "
                                            f"error the doc shows\n  shown:   {shown}\n{what}\n{tail(out)}")
                    elif rc != 0:
                        failures.append(f"{b.where(off)}: exit status {rc}\n{what}\n{tail(out)}")
                    elif ERROR.search(out):
                        line = next(l for l in out.split("\n") if ERROR.search(l))
                        failures.append(f"{b.where(off)}: printed an error (exit 0)\n  error:   "
                                        f"{line.strip()}\n{what}\n{tail(out)}")
                    if len(failures) > before:
                        if rel in first_failure:
                            failures[-1] += (f"\n  (may follow from the failure at {first_failure[rel]}, "
                                             "whose files later blocks use)")
                        else:
                            first_failure[rel] = b.where(off)
    for f in failures:
        print("FAIL " + f)
    print(f"doc_commands: ran {ran} commands in {blocks_run} blocks in {time.time() - t0:.0f} s; "
          f"{checked} blocks with checked output left to tests/docs.py; {len(skips)} skipped; "
          f"{len(failures)} failed")
    for s in skips:
        print(f"  skipped {s}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
