"""Figures of training runs: data in (``success.jsonl`` records), Figure out."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from rlvrlens.figures.style import new_figure


def plot_success(records: list[dict], title: str = "") -> Figure:
    """Mean and per-prompt success probability against the step, from ``success.jsonl`` records."""
    steps = np.array([r["step"] for r in records])
    P = np.array([r["p"] for r in records])
    fig, axes = new_figure(width=5.5)
    ax = axes[0, 0]
    lines = ax.plot(steps, P, color="0.6", linewidth=0.6, alpha=0.7)
    if lines:
        lines[0].set_label(f"each prompt ({P.shape[1]})" if P.ndim == 2 else "each prompt")
    ax.plot(steps, P.mean(axis=1), color="C0", linewidth=2.2, label="mean over prompts")
    ax.set(xlabel="RL step", ylabel="success probability p(C|x)", ylim=(0, 1), title=title)
    ax.legend(loc="lower right")
    return fig
