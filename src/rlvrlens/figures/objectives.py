"""Figures of induced objectives: data in, Figure out."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from rlvrlens.figures.style import new_figure


def plot_curves(
    t: np.ndarray,
    curves: Mapping[str, np.ndarray],
    *,
    references: Mapping[str, np.ndarray] | None = None,
    title: str = "",
    ylabel: str = r"$h_M(t)$",
    xlabel: str = r"success probability $t$",
    logx: bool = False,
    ax=None,
) -> Figure:
    """Plot named curves over ``t`` (solid) and named reference curves (dashed, black/grey)."""
    if ax is None:
        fig, axes = new_figure()
        ax = axes[0, 0]
    else:
        fig = ax.figure
    for label, y in curves.items():
        ax.plot(t, y, label=label)
    for i, (label, y) in enumerate((references or {}).items()):
        ax.plot(t, y, linestyle="--", color=("black", "0.45", "0.65")[i % 3], linewidth=1.2, label=label)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="best")
    return fig


def plot_catalogue(t: np.ndarray, h_values: Mapping[str, Mapping[str, np.ndarray]],
                   limits: Mapping[str, tuple[str, np.ndarray]]) -> Figure:
    """One panel per scheme: ``h_values[scheme][label] = h_M(t)`` for several M, with the scheme's
    limit ``limits[scheme] = (label, values)`` dashed where it has one."""
    names = list(h_values)
    ncols = 4
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = new_figure(nrows, ncols, width=3.6, height=3.0)
    for ax, name in zip(axes.ravel(), names):
        refs = {limits[name][0]: limits[name][1]} if name in limits else None
        plot_curves(t, h_values[name], references=refs, title=name, ax=ax)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
