"""What the plotting tools share (tools/plot_*.py): the command line `TOOL IN.csv OUT.png
[TITLE]`, the CSV's rows, and matplotlib without a display."""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402,F401  (the tools' pyplot)


def rows_or_exit(doc):
    """The rows of the CSV named on the command line; exits with the usage (2) or when the
    file has no rows (1)."""
    if len(sys.argv) < 3:
        print(doc)
        sys.exit(2)
    rows = list(csv.DictReader(open(sys.argv[1])))
    if not rows:
        print("%s: no rows" % sys.argv[1])
        sys.exit(1)
    return rows


def title(default):
    return sys.argv[3] if len(sys.argv) > 3 else default
