"""Dynamics figures: data in, a Figure with the expected panels, lines and scales out."""

from __future__ import annotations

import numpy as np
import pytest

from rlvrlens.figures.dynamics import plot_fixed_point_curves, plot_fixed_point_map, plot_iteration_grid


def test_iteration_grid_panels_titles_and_reference_lines() -> None:
    p = np.random.default_rng(0).random((51, 6, 4))
    titles = [[f"{i},{j}" for j in range(4)] for i in range(6)]
    fig = plot_iteration_grid(p, titles, row_labels=[f"b{i}" for i in range(6)],
                              col_labels=[f"r{j}" for j in range(4)], reference=np.full((6, 4), 0.2))
    assert len(fig.axes) == 24
    assert [ax.get_title() for ax in fig.axes[:4]] == ["0,0", "0,1", "0,2", "0,3"]
    assert all(len(ax.lines) == 2 for ax in fig.axes)  # the trajectory and p_ref
    np.testing.assert_allclose(fig.axes[5].lines[0].get_ydata(), p[:, 1, 1])
    assert fig.axes[4].get_ylabel().startswith("b1")


def test_iteration_grid_refuses_a_flat_array() -> None:
    with pytest.raises(ValueError, match="shape"):
        plot_iteration_grid(np.zeros((5, 3)), [["a"]])


def test_fixed_point_map_panels_scales_and_legend() -> None:
    betas, prefs = np.geomspace(0.01, 10, 5), np.array([1e-3, 0.1, 0.5, 0.9])
    cat = np.arange(20).reshape(5, 4) % 4
    p_star = np.where(cat == 2, np.nan, 1.0 + cat)
    fig = plot_fixed_point_map(betas, prefs, cat, ["a", "b", "c", "d"], p_star=p_star, log_colour=True,
                               markers={"grid": (np.array([1.0]), np.array([0.5]))})
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2 and len(fig.axes) == 3  # two maps and a colour bar
    for ax in panels:
        assert (ax.get_xscale(), ax.get_yscale()) == ("logit", "log")
    assert [t.get_text() for t in panels[0].get_legend().get_texts()] == ["a", "b", "c", "d"]


def test_fixed_point_curves_one_panel_per_scheme() -> None:
    betas = np.geomspace(0.01, 10, 7)
    curves = {name: {"p_ref = 0.1": np.linspace(-3, 100, 7), "p_ref = 0.5": np.full(7, np.nan)}
              for name in ("a", "b", "c", "d", "e")}
    fig = plot_fixed_point_curves(betas, curves, asinh=True)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5
    assert all(len(ax.lines) == 2 and ax.get_yscale() == "asinh" for ax in visible)
