"""Figures of ``rlvrlens validate``: measured against predicted. Data in (the experiments' records), Figure out."""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from rlvrlens.figures.style import new_figure


def plot_expected_step(records: Sequence[dict]) -> Figure:
    """Relative error of the Monte-Carlo mean update against h'_M(p) grad p versus the number of
    groups (solid, one line per scheme, median over prompts) with the CLT scale (dashed)."""
    fig, axes = new_figure(1, 2, width=5.0)
    by = defaultdict(lambda: defaultdict(list))
    for r in records:
        by[r["scheme"]][r["groups"]].append(r)
    for k, (scheme, rows) in enumerate(by.items()):
        G = np.array(sorted(rows))
        err = [np.median([r["rel_error"] for r in rows[g]]) for g in G]
        clt = [np.median([r["clt_rel_error"] for r in rows[g]]) for g in G]
        cos = [np.median([r["cosine"] for r in rows[g]]) for g in G]
        line, = axes[0, 0].loglog(G, err, "o-", label=scheme)
        axes[0, 0].loglog(G, clt, "--", color=line.get_color(), linewidth=1)
        axes[0, 1].semilogx(G, cos, "o-", color=line.get_color(), label=scheme)
    axes[0, 0].set_xlabel("groups G")
    axes[0, 0].set_ylabel(r"$|\hat g - h'_M(p)\nabla p| \,/\, |h'_M(p)\nabla p|$")
    axes[0, 0].set_title("expected step: relative error (dashed: CLT scale)")
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].set_xlabel("groups G")
    axes[0, 1].set_ylabel("cosine")
    axes[0, 1].set_title(r"cosine of $\hat g$ with $h'_M(p)\nabla p$")
    fig.tight_layout()
    return fig


def plot_relative_speed(records: Sequence[dict]) -> Figure:
    """Measured change of p relative to the baseline's against h'_A(p)/h'_baseline(p)."""
    fig, axes = new_figure(width=4.8, height=4.2)
    ax = axes[0, 0]
    by = defaultdict(list)
    for r in records:
        by[r["scheme"]].append(r)
    hi = 0.0
    for scheme, rows in by.items():
        x = [r["predicted_ratio"] for r in rows]
        y = [r["measured_ratio"] for r in rows]
        hi = max(hi, max(x), max(y))
        ax.plot(x, y, "o", label=scheme)
    ax.plot([0, hi * 1.05], [0, hi * 1.05], "k--", linewidth=1, label="measured = predicted")
    base = records[0]["baseline"] if records else "baseline"
    ax.set_xlabel(rf"predicted $h'_A(p)/h'_{{\mathrm{{{base}}}}}(p)$")
    ax.set_ylabel(rf"measured $\Delta p_A / \Delta p_{{\mathrm{{{base}}}}}$")
    ax.set_title("relative speed at equal p (one small step)")
    ax.legend(fontsize=7)
    return fig


def plot_fixed_points(records: Sequence[dict], ablations: Sequence[dict]) -> Figure:
    """Left: measured stationary p against the predicted attractor (log-odds axes would hide nothing;
    plain probabilities). Right: the logit gap of each training variant."""
    fig, axes = new_figure(1, 2, width=5.0, height=4.2)
    ax = axes[0, 0]
    by = defaultdict(list)
    for r in records:
        by[r["scheme"]].append(r)
    for scheme, rows in by.items():
        line, = ax.plot([r["predicted"] for r in rows], [r["measured"] for r in rows], "o", label=f"{scheme} (finite-M map)")
        if "predicted_population" in rows[0]:
            ax.plot([r["predicted_population"] for r in rows], [r["measured"] for r in rows], "x",
                    color=line.get_color(), label=f"{scheme} (Mroueh population map)")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    ax.set_xlabel(r"predicted attracting fixed point $p^*$")
    ax.set_ylabel("measured stationary success")
    ax.set_title(r"fixed points vs $\beta$ (tabular policy, sampled groups)")
    ax.legend(fontsize=7)
    ax2 = axes[0, 1]
    variants = list(dict.fromkeys(r["variant"] for r in ablations))
    for k, v in enumerate(variants):
        gaps = [r["logit_gap"] for r in ablations if r["variant"] == v]
        ax2.plot([k] * len(gaps), gaps, "o")
    ax2.axhline(0, color="k", linewidth=1)
    ax2.set_xticks(range(len(variants)))
    ax2.set_xticklabels(variants, rotation=35, ha="right", fontsize=7)
    ax2.set_ylabel(r"logit $p_{\mathrm{measured}}$ - logit $p^*$")
    ax2.set_title("gap by inner steps, KL estimator, clipping (GRPO)")
    fig.tight_layout()
    return fig


def plot_trajectories(records: Sequence[dict]) -> Figure:
    """Measured per-prompt success trajectories (solid) on the map's iteration (dashed), one panel per source."""
    sources = list(dict.fromkeys(r["source"] for r in records))
    fig, axes = new_figure(1, len(sources), width=4.2)
    for ax, src in zip(axes.ravel(), sources):
        rows = [r for r in records if r["source"] == src]
        for r in rows:
            line, = ax.plot(r["measured"], linewidth=1.4)
            ax.plot(r["predicted"], "--", color=line.get_color(), linewidth=1)
        k = rows[0]["steps_per_iteration"]
        ax.set_title(f"{src}: {k:.3g} steps per map iteration")
        ax.set_xlabel("outer training step")
        ax.set_ylabel("success probability p")
        ax.set_ylim(0, 1)
    fig.tight_layout()
    return fig
