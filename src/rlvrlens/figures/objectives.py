"""Figures of induced objectives: data in, Figure out."""

from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from rlvrlens.figures.style import new_figure

#: Colours and dash patterns of the reference (dashed) curves, in order.
_REFERENCE_STYLES = (("black", "--"), ("0.45", "-."), ("0.6", ":"))


def plot_curves(
    t: np.ndarray,
    curves: Mapping[str, np.ndarray],
    *,
    references: Mapping[str, np.ndarray] | None = None,
    title: str = "",
    ylabel: str = r"$h_M(t)$",
    xlabel: str = r"success probability $t$",
    logx: bool = False,
    logx_base: float = 10.0,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    legend_title: str | None = None,
    legend_loc: str = "best",
    ax=None,
) -> Figure:
    """Plot named curves over ``t`` (solid) and named reference curves (dashed, black/grey).

    ``logx_base = e`` labels a logarithmic axis in powers of e (``e^{-6}, ..., e^0``).

    Examples
    --------
    >>> t = np.linspace(0, 1, 5)
    >>> fig = plot_curves(t, {"M=2": t**2}, references={"t": t})
    >>> len(fig.axes[0].lines)
    2
    """
    if ax is None:
        fig, axes = new_figure()
        ax = axes[0, 0]
    else:
        fig = ax.figure
    for label, y in curves.items():
        ax.plot(t, y, label=label)
    for i, (label, y) in enumerate((references or {}).items()):
        color, dash = _REFERENCE_STYLES[i % len(_REFERENCE_STYLES)]
        ax.plot(t, y, linestyle=dash, color=color, linewidth=1.3, label=label)
    if logx:
        ax.set_xscale("log", base=logx_base)
        if logx_base == np.e:
            ax.xaxis.set_major_locator(LogLocator(base=np.e))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"$e^{{{np.log(x):.0f}}}$"))
            ax.xaxis.set_minor_locator(LogLocator(base=np.e, subs=()))
    if xlim is not None:
        ax.set_xlim(*xlim)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc=legend_loc, title=legend_title)
    return fig


def plot_panels(t: np.ndarray, panels: Sequence[Mapping], *, width: float = 5.0, height: float = 3.8,
                ncols: int | None = None, shared_legend: bool = False, suptitle: str = "",
                **common) -> Figure:
    """Panels in a grid (one row unless ``ncols``), one :func:`plot_curves` call each.

    ``panels[i]`` holds the keyword arguments of panel ``i`` (``curves``, and optionally
    ``references``, ``title``, ...); ``common`` applies to every panel. ``shared_legend`` replaces
    the panels' legends by one below the grid (the first panel's entries).

    Examples
    --------
    >>> t = np.linspace(0, 1, 5)
    >>> fig = plot_panels(t, [{"curves": {"a": t}}, {"curves": {"b": t, "c": t}}])
    >>> [len(ax.lines) for ax in fig.axes]
    [1, 2]
    """
    ncols = len(panels) if ncols is None else min(ncols, len(panels))
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = new_figure(nrows, ncols, width=width, height=height)
    for ax, panel in zip(axes.ravel(), panels):
        plot_curves(t, ax=ax, **{**common, **panel})
        if shared_legend:
            ax.get_legend().remove()
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    if shared_legend:
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=len(labels))
    return fig


def plot_catalogue(t: np.ndarray, h_values: Mapping[str, Mapping[str, np.ndarray]],
                   limits: Mapping[str, tuple[str, np.ndarray]], *,
                   ylabels: Mapping[str, str] | None = None, ncols: int = 4,
                   xlim: tuple[float, float] | None = None) -> Figure:
    """One panel per scheme: ``h_values[scheme][label] = h_M(t)`` for several M, with the scheme's
    limit ``limits[scheme] = (label, values)`` dashed where it has one; ``ylabels[scheme]`` names
    what is plotted if it is not ``h_M(t)``.

    Examples
    --------
    >>> t = np.linspace(0, 1, 5)
    >>> fig = plot_catalogue(t, {"a": {"M=2": t}, "b": {"M=2": t, "M=4": t}}, {"a": ("t", t)})
    >>> [len(ax.lines) for ax in fig.axes if ax.get_visible()]
    [2, 2]
    """
    names = list(h_values)
    ncols = min(ncols, len(names))
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = new_figure(nrows, ncols, width=3.6, height=3.0)
    spare = axes.ravel()[len(names):]
    for ax, name in zip(axes.ravel(), names):
        refs = {limits[name][0]: limits[name][1]} if name in limits else None
        plot_curves(t, h_values[name], references=refs, title=textwrap.fill(name, 34), ax=ax, xlim=xlim,
                    ylabel=(ylabels or {}).get(name, r"$h_M(t)$"))
        if len(spare):  # one shared legend in the empty slot instead of one per panel
            ax.get_legend().remove()
    for ax in spare:
        ax.set_visible(False)
    if len(spare):
        first = axes.ravel()[0]
        handles, labels = first.get_legend_handles_labels()
        box = spare[-1].get_position()
        fig.legend(handles, labels, loc="center", bbox_to_anchor=(box.x0 + box.width / 2, box.y0 + box.height / 2),
                   fontsize=9, frameon=True)
    fig.tight_layout()
    return fig


#: Ticks of a logit-scaled success-probability axis.
_LOGIT_TICKS = (1e-3, 1e-2, 0.1, 0.5, 0.9, 0.99, 0.999)


def plot_step_sizes(t: np.ndarray, curves: Mapping[str, np.ndarray], *, title: str = "",
                    ylabel: str = r"$h'_M(t)$", ylim: tuple[float, float] | None = None) -> Figure:
    """Step sizes ``h'_M(t)`` of several schemes: logit-scaled ``t``, log-scaled values, legend on the
    right, and cycling dash patterns so that coinciding curves stay visible.

    Examples
    --------
    >>> t = np.array([0.01, 0.5, 0.99])
    >>> fig = plot_step_sizes(t, {"a": np.ones(3), "b": 1 / t})
    >>> len(fig.axes[0].lines)
    2
    """
    fig, axes = new_figure(width=8.5, height=4.2)
    ax = axes[0, 0]
    dashes = ("-", "--", ":", "-.")
    for i, (label, y) in enumerate(curves.items()):
        ax.plot(t, y, label=label, linestyle=dashes[i % len(dashes)])
    ax.set_xscale("logit")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator(_LOGIT_TICKS))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(t.min(), t.max())
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(r"success probability $t$ (logit scale)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def plot_design_front(fronts: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                      points: Mapping[str, tuple[float, float]] | None = None,
                      bounds: Mapping[str, Sequence[float]] | None = None, title: str = "") -> Figure:
    """The error-versus-cost front of designed weights for one target.

    ``fronts[label] = (second_moments, errors)``: one line per method, each point a design with a
    different weight bound (log-log axes: ``max E[Z^2]`` on the interval against the sup error).
    ``points[label] = (second_moment, error)`` marks single schemes (the quasi-interpolant, a
    catalogue closed form); ``bounds[label]`` annotates a front's points with their ``max_weight``.

    Examples
    --------
    >>> fig = plot_design_front({"minimax": ([1.0, 10.0], [0.1, 0.01])}, points={"closed form": (5.0, 0.05)})
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['minimax', 'closed form']
    """
    fig, axes = new_figure(width=6.4, height=4.4)
    ax = axes[0, 0]
    for label, (moments, errors) in fronts.items():
        (line,) = ax.plot(moments, errors, marker="o", label=label)
        for w, x, y in zip((bounds or {}).get(label, ()), moments, errors):
            ax.annotate(f"{w:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                        color=line.get_color())
    for i, (label, (moment, error)) in enumerate((points or {}).items()):
        ax.plot([moment], [error], linestyle="none", marker="sDv^"[i % 4], markersize=8, color="0.25",
                label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"cost: $\max_t\, E[Z^2]$ on the interval")
    ax.set_ylabel(r"sup error $\min_k \sup_t |h_M - h - k|$")
    if title:
        ax.set_title(title)
    ax.legend(loc="best", fontsize=8, title="numbers: max_weight" if bounds else None)
    fig.tight_layout()
    return fig
