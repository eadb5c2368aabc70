#!/usr/bin/env python3
"""Command output shown in the README and docs/ is the command's real output.

A Markdown comment `<!-- check: CMD -->` marks the fenced block after it (`check(cuda): CMD`: only
where the build has the CUDA backend), or, when no fence
follows, the lines up to `<!-- end check -->` (a table the docs show as a table): CMD runs under
`sh -c` (stdout and stderr together, exit status ignored) from a scratch folder that mirrors the
repository root, with `build` pointing at the build under test, and its output must equal the
block's lines. In the block, lines starting with `$ ` (the prompt a reader types) are not
output, a line `...` stands for any number of output lines, and `...` within a line for any
part of it. So a figure quoted from a
command cannot drift: the test fails, and `--update` rewrites the blocks from the commands for
review with `git diff` (a block with `...` is never rewritten: it is fixed by hand).

    tests/docs.py BUILD_DIR [--update] [FILE.md ...]     (default: README.md and docs/*.md)
"""
import functools
import glob
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARK = re.compile(r"^(\s*)<!-- check(?:\((\w+)\))?: (.*) -->\s*$")


def blocks(path, lines):
    """Yields (command, requirement, indentation, first line of the block's body, end line) for
    each marked block; the comment's indentation (a block inside a list item) is the block's."""
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        fenced = j < len(lines) and lines[j].lstrip().startswith("```")
        end = (lambda l: l.lstrip().startswith("```")) if fenced else (lambda l: l.strip() == "<!-- end check -->")
        start = j + 1 if fenced else j
        k = start
        while k < len(lines) and not end(lines[k]):
            k += 1
        if k == len(lines):
            raise SystemExit(f"{path}:{i + 1}: error: the checked block is not closed")
        yield m.group(3), m.group(2), m.group(1), start, k
        i = k + 1


def matches(expected, actual):
    """expected may hold `...` lines, each matching any run of lines (possibly empty)."""
    @functools.lru_cache(maxsize=None)
    def at(i, j):
        if i == len(expected):
            return j == len(actual)
        if expected[i].strip() == "...":
            return any(at(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and same_line(expected[i], actual[j]) and at(i + 1, j + 1)
    return at(0, 0)


def same_line(expected, actual):
    if "..." not in expected:
        return expected == actual
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def run(cmd, build):
    with tempfile.TemporaryDirectory(prefix="nnc-docs-") as scratch:
        for name in os.listdir(ROOT):
            if name not in ("build", ".git"):
                os.symlink(os.path.join(ROOT, name), os.path.join(scratch, name))
        os.symlink(build, os.path.join(scratch, "build"))
        p = subprocess.run(["sh", "-c", cmd], cwd=scratch, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
    return p.stdout.rstrip("\n").split("\n") if p.stdout.strip() else []


def main():
    args = sys.argv[1:]
    if not args:
        raise SystemExit(__doc__)
    build = os.path.abspath(args.pop(0))
    update = "--update" in args
    files = [a for a in args if a != "--update"] or (
        [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))))
    failed = checked = skipped = 0
    # `check(cuda): CMD` blocks need a build with the CUDA backend (the sanitizer build has none)
    version = subprocess.run([os.path.join(build, "nnc"), "version"], stdout=subprocess.PIPE, text=True).stdout
    features = {"cuda"} if "cuda (built" in version else set()
    for path in files:
        with open(path) as f:
            lines = f.read().split("\n")
        out = list(lines)
        shift = 0
        for cmd, need, indent, start, end in blocks(os.path.relpath(path, ROOT), lines):
            if need and need not in features:
                skipped += 1
                continue
            checked += 1
            body = [l[len(indent):] if l.startswith(indent) else l for l in lines[start:end]]
            prompts = [l for l in body if l.startswith("$ ")]
            expected = [l for l in body if not l.startswith("$ ")]
            actual = run(cmd, build)
            if matches(expected, actual):
                continue
            rel = os.path.relpath(path, ROOT)
            if update and not any("..." in l for l in expected):
                out[start + shift:end + shift] = [(indent + l).rstrip() for l in prompts + actual]
                shift += len(prompts) + len(actual) - len(body)
                print(f"{rel}:{start}: rewrote the output of `{cmd}`")
                continue
            failed += 1
            print(f"{rel}:{start}: the block differs from the output of `{cmd}`")
            for l in expected:
                if l.strip() != "..." and not any(same_line(l, a) for a in actual):
                    print(f"  shown:  {l}")
            if not any("..." in l for l in expected):
                for l in actual:
                    if l not in expected:
                        print(f"  actual: {l}")
        if update and out != lines:
            with open(path, "w") as f:
                f.write("\n".join(out))
    print(f"docs: {checked} blocks checked, {failed} differ" + (f", {skipped} skipped (this build lacks what they need)" if skipped else ""))
    if checked == 0:
        raise SystemExit("docs: no marked block found")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
