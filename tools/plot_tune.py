#!/usr/bin/python3
"""Plots the per-layer report of `nnc tune-precision --report` (docs/precision.md, "Tuning a
policy"): each layer's sensitivity against its cost. Left: the largest output difference delta
when the layer alone runs in fp16 (the rest f32); right: delta when the layer alone runs in f32
(the rest fp16), the lower the more of pure fp16's error the layer accounts for. The x axis is
the layer's share of the work (the mean of its shares of MACs and of activation elements);
layers the search kept in f32 are drawn in red, the 12 most telling of them named.

usage: tools/plot_tune.py REPORT.csv OUT.png [TITLE]     (needs python3-matplotlib)
"""
import sys

from plot_csv import plt, rows_or_exit, title


def main():
    rows = rows_or_exit(__doc__)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    panels = [("alone_fp16_delta", "delta with this layer alone in fp16"),
              ("alone_f32_delta", "delta with this layer alone in f32")]
    for ax, (col, label) in zip(axes, panels):
        for kept in (False, True):
            sel = [r for r in rows if (r["precision"] == "f32") == kept]
            x = [100 * float(r["work_share"]) for r in sel]
            floor = min([float(r[col]) for r in rows if float(r[col]) > 0] or [1e-9]) / 2
            y = [max(float(r[col]), floor) for r in sel]
            ax.scatter(x, y, s=22, c="tab:red" if kept else "tab:blue",
                       label="kept in f32" if kept else "fp16")
            if kept:  # named: the 12 farthest from the others' side of the panel
                far = sorted(zip(x, y, sel), key=lambda t: -t[1] if col == "alone_fp16_delta" else t[1])
                for xi, yi, r in far[:12]:
                    ax.annotate(r["layer"], (xi, yi), fontsize=7, xytext=(3, 3),
                                textcoords="offset points")
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_yscale("log")
        ax.set_xlabel("share of the work (%)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title("nnc tune-precision: sensitivity against cost"))
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
