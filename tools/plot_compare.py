#!/usr/bin/python3
"""Plots the per-image CSV of `nnrun compare` (docs/precision.md): the distributions of the
classification tolerance Gamma (top-1 minus top-2 probability of plan A) and of delta (the
largest difference between the two plans' probabilities), and Gamma against 2 delta, the
bound of Lemma 3.3 of "Revisiting 16-bit Neural Network Training" (points above the line are
guaranteed to agree).

usage: tools/plot_compare.py COMPARE.csv OUT.png [TITLE]     (needs python3-matplotlib)
"""
import sys

from plot_csv import plt, rows_or_exit, title


def main():
    rows = rows_or_exit(__doc__)
    gamma = [float(r["gamma"]) for r in rows]
    delta = [float(r["delta"]) for r in rows]
    agree = [r["pred_a"] == r["pred_b"] for r in rows]
    n, guaranteed = len(rows), sum(1 for g, d in zip(gamma, delta) if g >= 2 * d)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    ax[0].hist(gamma, bins=50, color="tab:blue")
    ax[0].set_xlabel("Gamma = top-1 - top-2 probability (plan A)")
    ax[0].set_ylabel("images")
    lo = min(d for d in delta if d > 0) if any(d > 0 for d in delta) else 1e-9
    bins = [lo * (max(delta) / lo) ** (i / 50) for i in range(51)] if max(delta) > lo else 50
    ax[1].hist([d if d > 0 else lo for d in delta], bins=bins, color="tab:orange")
    ax[1].set_xscale("log")
    ax[1].set_xlabel("delta = max |pA - pB|")
    ax[2].scatter([2 * d for d, a in zip(delta, agree) if a], [g for g, a in zip(gamma, agree) if a], s=2,
                  color="tab:green", label="same prediction")
    ax[2].scatter([2 * d for d, a in zip(delta, agree) if not a], [g for g, a in zip(gamma, agree) if not a], s=8,
                  color="tab:red", label="different prediction")
    top = max(max(gamma), 2 * max(delta))
    xs = [0.0] + [1e-6 * (top / 1e-6) ** (i / 200) for i in range(201)]  # dense: the x axis is symlog
    ax[2].plot(xs, xs, "k--", lw=1, label="Gamma = 2 delta")
    ax[2].set_xscale("symlog", linthresh=1e-4)
    ax[2].set_xlabel("2 delta")
    ax[2].set_ylabel("Gamma")
    ax[2].legend(loc="lower right", fontsize=8)
    fig.suptitle("%s: %d images, %d (%.2f%%) with Gamma >= 2 delta, %d disagree" % (
        title(sys.argv[1]), n, guaranteed, 100.0 * guaranteed / n, sum(1 for a in agree if not a)))
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
