"""The ``rlvrlens forecast`` figure: a :class:`~rlvrlens.explain.forecasts.ForecastRecord` in, Figure out.

One panel per fate (rise, stall, fall; :mod:`rlvrlens.explain.forecasts`) with every prompt of that
fate as a thin line, the group's median bold, the group's median band (the median of the prompts'
lower and upper ends) shaded and each prompt's own stationary point as a tick past the last step; a fourth panel has the batch's mean with the mean of the bands. Readable at 64 prompts and
more: no per-prompt colours or legend entries.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rlvrlens.explain.forecasts import FATES, ForecastRecord
from rlvrlens.figures.style import new_figure

#: Colour of each fate, and of the prompts with no learning signal (drawn dotted, grey).
FATE_COLOURS = {"rise": "C2", "stall": "C0", "fall": "C3"}
NO_SIGNAL_COLOUR = "0.55"


def plot_forecast(record: ForecastRecord, title: str = "") -> Figure:
    """Prompts grouped by fate, and the batch mean (the module docstring)."""
    fig, axes = new_figure(1, 4, width=3.4, height=3.5, sharey=True)
    steps = record.steps
    end = float(steps[-1])
    tick_x = end * 1.04
    fate = np.array(record.fate)
    silent = record.no_signal
    for ax, name in zip(axes[0, :3], FATES):
        idx = np.flatnonzero(fate == name)
        colour = FATE_COLOURS[name]
        extra = ""
        if name == "stall" and idx.size:
            extra = f", {int(silent[idx].sum())} no signal"
        if name == "fall" and idx.size:
            extra = f", {int(record.because_of_others[idx].sum())} because of others"
        ax.set_title(f"{name} ({idx.size} prompt{'s' if idx.size != 1 else ''}{extra})")
        if not idx.size:
            ax.text(0.5, 0.5, "none", transform=ax.transAxes, ha="center", va="center", color="0.5")
        for i in idx:
            ax.plot(steps, record.p[:, i], color=NO_SIGNAL_COLOUR if silent[i] else colour, linewidth=0.7,
                    alpha=0.8, linestyle=":" if silent[i] else "-")
        if idx.size:
            ax.fill_between(steps, np.median(record.low[:, idx], axis=1), np.median(record.high[:, idx], axis=1),
                            color=colour, alpha=0.18, linewidth=0, label="median band")
            ax.plot(steps, np.median(record.p[:, idx], axis=1), color="k", linewidth=2.0,
                    label=f"median of the {idx.size}")
            star = record.stationary[idx]
            ok = np.isfinite(star)
            ax.plot(np.full(int(ok.sum()), tick_x), star[ok], marker="<", markersize=5, linestyle="none",
                    color=colour, alpha=0.7, label="own stationary point p*")
            ax.plot([], [], color=colour, linewidth=0.7, label="each prompt")
            if silent[idx].any():
                ax.plot([], [], color=NO_SIGNAL_COLOUR, linewidth=0.7, linestyle=":", label="no learning signal")
            ax.legend(loc="best", fontsize=7)
        ax.set_xlim(0, end * 1.08)
        ax.set_xlabel("training step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].set_ylabel("success probability p")
    axes[0, 0].set_ylim(-0.02, 1.02)
    ax = axes[0, 3]
    ax.fill_between(steps, record.low.mean(axis=1), record.high.mean(axis=1), color="C1", alpha=0.25, linewidth=0,
                    label="mean of the bands")
    ax.plot(steps, record.p.mean(axis=1), color="C1", linewidth=2.0, label="forecast")
    ax.plot(steps, record.diagonal.mean(axis=1), color="C1", linewidth=1.0, linestyle="--",
            label="each prompt alone (K diagonal)")
    heads = record.stationary[np.isfinite(record.stationary)]
    if heads.size:
        ax.plot([tick_x], [heads.mean()], marker="<", color="C1", linestyle="none", label="mean of the p*")
    ax.set_title(f"batch mean over the {len(record.prompt_ids)} prompts")
    ax.set_xlim(0, end * 1.08)
    ax.set_xlabel("training step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best", fontsize=7)
    fig.suptitle(title or f"forecast: {record.scheme.get('name', '')} M={record.M}, {record.kl}", fontsize=10)
    fig.tight_layout()
    return fig
