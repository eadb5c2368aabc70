#!/usr/bin/python3
"""Adds one fuzzing run's figures, read from its libFuzzer log, as a row of the table between
<!-- fuzz:begin --> and <!-- fuzz:end --> in DOC (docs/testing.md), making the table if absent.
scripts/fuzz.sh calls it when NNC_FUZZ_DOC is set.

usage: fuzz_record.py DOC LOG TARGET SECONDS WORKERS SEEDS FILES FOUND
"""
import re
import sys
import time

doc, log, target, seconds, workers, seeds, files, found = sys.argv[1:9]
text = open(log, errors="replace").read()
runs = re.findall(r"stat::number_of_executed_units: *(\d+)", text)
cov = re.findall(r"cov: (\d+)", text)
rss = re.findall(r"stat::peak_rss_mb: *(\d+)", text)
runs = int(runs[-1]) if runs else 0
row = "| %s | %s | %s | %s | %d | %.0f | %s -> %s | %s | %s | %s |" % (
    time.strftime("%Y-%m-%d", time.gmtime()), target, seconds, workers, runs, runs / max(1, int(seconds)), seeds,
    files, cov[-1] if cov else "?", rss[-1] if rss else "?", found)
page = open(doc).read()
begin, end = "<!-- fuzz:begin -->", "<!-- fuzz:end -->"
i, j = page.index(begin) + len(begin), page.index(end)
lines = [l for l in page[i:j].splitlines() if l.strip()]
if not lines:
    lines = ["| date | target | seconds | workers | runs | runs/s | corpus (seeds -> end) | coverage (edges) "
             "| peak RSS MB | found |", "|---|---|---|---|---|---|---|---|---|---|"]
page = page[:i] + "\n" + "\n".join(lines + [row]) + "\n" + page[j:]
open(doc, "w").write(page)
print("fuzz_record: " + row)
