"""Figure functions: data in, a Figure with the expected panels and lines out."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from rlvrlens.figures.objectives import plot_catalogue, plot_curves, plot_panels, plot_step_sizes
from rlvrlens.figures.style import save

T = np.linspace(0.01, 1.0, 50)


def test_plot_curves_lines_labels_and_log_e_axis() -> None:
    fig = plot_curves(T, {"M = 2": T, "M = 16": T**2}, references={"ln t + 1": np.log(T) + 1},
                      logx=True, logx_base=np.e, xlim=(np.exp(-4), 1), ylabel="y", title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["M = 2", "M = 16", "ln t + 1"]
    assert ax.lines[2].get_linestyle() == "--"
    assert ax.get_xscale() == "log"
    fig.canvas.draw()
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert "$e^{-2}$" in labels and "$e^{0}$" in labels


def test_plot_panels_one_axis_per_panel() -> None:
    fig = plot_panels(T, [{"curves": {"a": T, "b": T}, "references": {"r": T}}, {"curves": {"c": T}}])
    assert [len(ax.lines) for ax in fig.axes] == [3, 1]


def test_plot_catalogue_panels_and_shared_legend() -> None:
    curves = {f"s{i}": {"M = 2": T, "M = 4": T} for i in range(6)}
    fig = plot_catalogue(T, curves, {"s0": ("lim", T)}, ylabels={"s1": "custom"})
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 6 and len(fig.axes) == 8
    assert [len(ax.lines) for ax in visible] == [3, 2, 2, 2, 2, 2]
    assert visible[1].get_ylabel() == "custom"
    assert len(fig.legends) == 1  # the spare slot holds one legend


def test_plot_step_sizes_scales() -> None:
    t = np.array([0.001, 0.5, 0.999])
    fig = plot_step_sizes(t, {"a": np.ones(3), "b": np.ones(3), "c": 1 / t})
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("logit", "log")
    assert len({line.get_linestyle() for line in ax.lines}) == 3  # coinciding curves stay visible


@pytest.mark.parametrize("formats", [("png",), ("png", "pdf")])
def test_save_writes_each_format(tmp_path, formats) -> None:
    files = save(plot_curves(T, {"a": T}), tmp_path / "sub" / "fig", formats=formats)
    assert [f.suffix[1:] for f in files] == list(formats)
    assert all(f.stat().st_size > 0 for f in files)
