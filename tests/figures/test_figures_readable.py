"""Figures a reader understands (issue 11 item 8): no Python reprs in titles, labelled axes, a
legend wherever a panel has more than one line, and the explain figure naming its presets in every
legend and marking cycles visibly."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rlvrlens.dynamics import grpo_success_map, iterate
from rlvrlens.explain import explain
from rlvrlens.figures.dynamics import plot_iteration_grid, plot_trajectories
from rlvrlens.figures.explain import plot_explain
from rlvrlens.figures.training import plot_success

REPR = re.compile(r"\w+\(\w+=|WeightScheme\(|SuccessMap\(|array\(")


def _texts(fig):
    out = [fig._suptitle.get_text() if fig._suptitle else ""]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return out


def _check_readable(fig, *, figure_legend_ok=False):
    assert not [t for t in _texts(fig) if REPR.search(t)], _texts(fig)
    for ax in fig.axes:
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        labelled = [ln for ln in ax.lines if not ln.get_label().startswith("_")]
        if len(ax.lines) > 1 and not figure_legend_ok:
            assert ax.get_legend() is not None, ax.get_title()
            assert len(labelled) >= 1
        if ax.lines:
            assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()


def test_trajectories_title_is_plain():
    F = grpo_success_map(1.0, 0.2)
    tr = iterate(F, [0.1, 0.5], 5)
    fig = plot_trajectories({"p0=0.1": tr.p[:, 0], "p0=0.5": tr.p[:, 1]}, title=F.title)
    _check_readable(fig)
    assert "β = 1" in fig.axes[0].get_title()


def test_iteration_grid_has_one_legend_for_its_reference():
    fig = plot_iteration_grid(np.random.default_rng(0).random((5, 2, 2)), [["a", "b"], ["c", "d"]],
                              reference=np.full((2, 2), 0.3))
    assert fig.axes[0].get_legend() is not None
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["$p_n$", "$p_{ref}$"]


def test_success_figure_names_its_lines():
    records = [{"step": s, "p": [0.1 * s, 0.2, 0.3]} for s in range(4)]
    fig = plot_success(records, title="run")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["each prompt (3)", "mean over prompts"]


@pytest.fixture(scope="module")
def explain_figure():
    reports = [explain("trl-grpo", 64, beta=1.0, p_ref=[1e-3, 0.3]),
               explain("openrlhf-dr-grpo", 64, beta=1.0, p_ref=[1e-3, 0.3])]
    return reports, plot_explain(reports)


def test_explain_figure_names_presets_in_every_legend(explain_figure):
    reports, fig = explain_figure
    _check_readable(fig)
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        texts = [t.get_text() for t in legend.get_texts()]
        assert all(any(r.preset in t for r in reports) for t in texts), texts


def test_explain_figure_marks_cycles(explain_figure):
    reports, fig = explain_figure
    assert (reports[0].kl.curve_kind == 2).any()  # GRPO at M = 64, beta = 1 cycles below p_ref = 0.0089
    kl_ax = next(ax for ax in fig.axes if "driven" in ax.get_title())
    texts = [t.get_text() for t in kl_ax.get_legend().get_texts()]
    assert any("cycles" in t and "trl-grpo" in t for t in texts)
    assert kl_ax.patches, "the cycling range is shaded"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
