"""Figures of success-probability dynamics: data in, Figure out (no science computed here)."""

from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from rlvrlens.figures.style import new_figure

#: Colours of the fixed-point map's categories, in order of their integer codes.
CATEGORY_COLOURS = ("#4c9be8", "#f2a541", "#d1495b", "#9e9e9e", "#7bc96f", "#6a4c93")


def plot_iteration_grid(p: np.ndarray, titles: Sequence[Sequence[str]], *,
                        row_labels: Sequence[str] = (), col_labels: Sequence[str] = (),
                        reference: np.ndarray | None = None, reference_label: str = r"$p_{ref}$",
                        ylabel: str = r"$p_n$", suptitle: str = "") -> Figure:
    """A grid of trajectories ``p[n, i, j]`` (``n`` = step), one panel per ``(i, j)``.

    Parameters
    ----------
    p : ndarray, shape (n_steps + 1, rows, cols)
    titles : rows x cols strings
        Each panel's title (e.g. its parameters and final value).
    row_labels, col_labels : strings, optional
        Written on the left of each row and above each column.
    reference : ndarray, shape (rows, cols), optional
        A horizontal dotted line per panel (e.g. ``p_ref``), named ``reference_label`` in a legend.

    Examples
    --------
    >>> p = np.zeros((4, 2, 3))
    >>> fig = plot_iteration_grid(p, [["a"] * 3] * 2)
    >>> len(fig.axes)
    6
    """
    p = np.asarray(p, dtype=float)
    if p.ndim != 3:
        raise ValueError(f"p must have shape (n_steps + 1, rows, cols), got {p.shape}")
    _, rows, cols = p.shape
    fig, axes = new_figure(rows, cols, width=2.9, height=2.1, sharex=True, sharey=True)
    n = np.arange(p.shape[0])
    for i in range(rows):
        for j in range(cols):
            ax = axes[i, j]
            ax.plot(n, p[:, i, j], marker=".", markersize=3, linewidth=0.9, label=ylabel)
            if reference is not None:
                ax.axhline(reference[i, j], color="0.4", linestyle=":", linewidth=1.0, label=reference_label)
            ax.set_title(titles[i][j], fontsize=8)
            ax.set_ylim(-0.03, 1.03)
            if i == rows - 1:
                ax.set_xlabel(r"step $n$")
            if j == 0:
                ax.set_ylabel(f"{row_labels[i]}\n{ylabel}" if row_labels else ylabel)
    for j, label in enumerate(col_labels):
        axes[0, j].annotate(label, xy=(0.5, 1.32), xycoords="axes fraction", ha="center",
                            fontsize=10, fontweight="bold")
    if suptitle:
        fig.suptitle(suptitle, y=1.0)
    if reference is not None:  # one legend for the grid: every panel draws the same two lines
        axes[0, 0].legend(loc="best", fontsize=7)
    fig.tight_layout()
    return fig


def plot_fixed_point_map(betas: np.ndarray, p_refs: np.ndarray, category: np.ndarray,
                         labels: Sequence[str], p_star: np.ndarray | None = None, *,
                         p_star_label: str = r"$-\log_{10}(1 - p^*)$", log_colour: bool = False,
                         title: str = "",
                         markers: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Figure:
    """Where the iteration goes over a ``(beta, p_ref)`` grid: a categorical map, and optionally a
    second panel with a continuous value (e.g. the reached fixed point).

    Parameters
    ----------
    betas, p_refs : 1-D arrays
        The grid axes (drawn on log scales; ``p_refs`` on a logit scale).
    category : int array, shape (len(betas), len(p_refs))
        Codes ``0 .. len(labels) - 1``.
    labels : strings
        The name of each code, for the legend.
    p_star : float array, same shape, optional
        Drawn as a colour map in a second panel (NaN cells left blank), on a log colour scale if
        ``log_colour``.
    markers : mapping, optional
        ``{label: (betas, p_refs)}`` points to overlay on both panels (e.g. the paper's grid).

    Examples
    --------
    >>> cat = np.array([[0, 1], [2, 0]])
    >>> fig = plot_fixed_point_map(np.array([0.1, 1.0]), np.array([0.2, 0.5]), cat, ["a", "b", "c"],
    ...                            p_star=np.ones((2, 2)))
    >>> len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"])
    2
    """
    category = np.asarray(category)
    k = len(labels)
    panels = 1 if p_star is None else 2
    fig, axes = new_figure(1, panels, width=5.6, height=4.4)
    cmap = ListedColormap(CATEGORY_COLOURS[:k])
    norm = BoundaryNorm(np.arange(-0.5, k), k)
    ax = axes[0, 0]
    ax.pcolormesh(p_refs, betas, category, cmap=cmap, norm=norm, shading="nearest")
    handles = [ax.scatter([], [], marker="s", s=60, color=CATEGORY_COLOURS[c], label=labels[c])
               for c in range(k)]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, fontsize=8)
    ax.set_title(title or "what the iteration from $p_0 = p_{ref}$ does")
    if p_star is not None:
        ax2 = axes[0, 1]
        values = np.ma.masked_invalid(p_star)
        mesh = ax2.pcolormesh(p_refs, betas, values, cmap="viridis", shading="nearest",
                              norm=LogNorm(vmin=values.min(), vmax=values.max()) if log_colour else None)
        fig.colorbar(mesh, ax=ax2, label=p_star_label)
        ax2.set_title("the attracting fixed point reached")
    ticks = [v for v in (1e-4, 1e-3, 1e-2, 0.1, 0.5, 0.9, 0.99, 0.999) if p_refs.min() <= v <= p_refs.max()]
    for a in axes[0]:
        a.set_xscale("logit")
        a.xaxis.set_major_locator(FixedLocator(ticks))
        a.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        a.xaxis.set_minor_locator(NullLocator())
        a.set_yscale("log")
        a.set_xlabel(r"reference success probability $p_{ref}$")
        a.set_ylabel(r"KL coefficient $\beta$")
        a.grid(False)
        for name, (mb, mp) in (markers or {}).items():
            a.scatter(mp, mb, marker="x", color="black", s=18, linewidths=1, label=name)
    fig.tight_layout()
    return fig


def plot_fixed_point_curves(betas: np.ndarray, curves: Mapping[str, Mapping[str, np.ndarray]], *,
                            ylabel: str = r"fixed point reached $p^*$", asinh: bool = False, ncols: int = 4,
                            suptitle: str = "") -> Figure:
    """One panel per scheme: ``curves[scheme][label]`` is the fixed point reached (or its logit, on
    an ``asinh`` scale: linear near 0, logarithmic for large values of either sign) as a function of
    ``betas`` (NaN where the iteration cycles or is unresolved: a gap in the line).

    Examples
    --------
    >>> b = np.array([0.1, 1.0, 10.0])
    >>> fig = plot_fixed_point_curves(b, {"s": {"p_ref = 0.1": np.array([0.9, np.nan, 0.2])}})
    >>> len(fig.axes[0].lines)
    1
    """
    names = list(curves)
    ncols = min(ncols, len(names))
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = new_figure(nrows, ncols, width=3.6, height=3.0)
    for ax, name in zip(axes.ravel(), names):
        for label, y in curves[name].items():
            ax.plot(betas, y, label=label)
        ax.set_xscale("log")
        ax.set_title(textwrap.fill(name, 34), fontsize=9)
        ax.set_xlabel(r"KL coefficient $\beta$")
        ax.set_ylabel(ylabel)
        ax.set_xlim(betas.min(), betas.max())
        if asinh:
            ax.set_yscale("asinh", linear_width=1.0)
            ax.yaxis.set_major_locator(FixedLocator([-100, -10, -3, -1, 0, 1, 3, 10, 100, 1000, 10000]))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_locator(NullLocator())
        else:
            ax.set_ylim(-0.03, 1.03)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    for ax in axes.ravel()[:len(names)]:
        if len(ax.lines) > 1:
            ax.legend(fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, y=1.01)
    fig.tight_layout()
    return fig


def plot_trajectories(curves: dict, *, title: str = "", ax=None):
    """Trajectories ``p_n`` against ``n`` (data in, Figure out)."""
    if ax is None:
        fig, axes = new_figure()
        ax = axes[0, 0]
    else:
        fig = ax.figure
    for label, p in curves.items():
        ax.plot(np.arange(len(p)), p, marker=".", markersize=3, label=label)
    ax.set_xlabel("iteration $n$")
    ax.set_ylabel("$p_n$")
    ax.set_ylim(-0.02, 1.02)
    if title:
        ax.set_title(title)
    if len(curves) > 1:
        ax.legend(loc="best")
    return fig
