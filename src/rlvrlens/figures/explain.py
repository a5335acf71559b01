"""The ``rlvrlens explain`` figure: data (one or two :class:`~rlvrlens.explain.ExplainReport`) in,
Figure out. Panels: the objective against its limit, the weight by difficulty, the zero-variance
fraction, and (with a KL coefficient) where each prompt is driven."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from rlvrlens.dynamics import Outcome
from rlvrlens.explain import ExplainReport
from rlvrlens.figures.style import new_figure
from rlvrlens.objectives import PRESETS


def _label(r: ExplainReport) -> str:
    """Preset, M and the parameters that differ from the preset's defaults (``p_batch`` aside)."""
    defaults = PRESETS[r.preset].parameters() if r.preset in PRESETS else {}
    extra = ", ".join(f"{k}={v}" for k, v in r.scheme.params.items()
                      if k != "p_batch" and (k not in defaults or defaults[k] != v))
    return f"{r.preset} M={r.M}" + (f" ({extra})" if extra else "")


def plot_explain(reports: Sequence[ExplainReport]) -> Figure:
    """Overlay the reports (same colour per report across panels)."""
    reports = list(reports)
    if not reports:
        raise ValueError("reports must contain at least one ExplainReport")
    with_kl = [r for r in reports if r.kl is not None]
    fig, axes = new_figure(1, 4 if with_kl else 3, width=4.0, height=3.4)
    ax_h, ax_w, ax_z = axes[0, 0], axes[0, 1], axes[0, 2]
    colours = [f"C{i}" for i in range(len(reports))]
    for r, col in zip(reports, colours):
        ax_h.plot(r.t, r.h_normalised, color=col, label=_label(r))
        if r.limit_normalised is not None:
            with np.errstate(invalid="ignore"):
                ax_h.plot(r.t, r.limit_normalised, color=col, linestyle="--", linewidth=1.1,
                          label=f"{_label(r)}: limit {r.limit_label}")
        ax_w.plot(r.t, r.weight, color=col, label=_label(r))
        ax_z.plot(r.t, r.frac_zero_std_curve, color=col, label=f"{_label(r)}: mean {r.frac_zero_std:.3f}")
    norm = reports[0].normalisation
    ax_h.set_title(r"objective $h_M$ vs $M\to\infty$ limit" + (" (÷ value at 1)" if norm == "ratio"
                                                                else " (0 at 1/2)"))
    ax_h.set_xlabel(r"success probability $t$")
    ax_h.set_ylabel(r"$h_M(t)/h_M(1)$" if norm == "ratio" else r"$h_M(t) - h_M(1/2)$")
    ax_h.legend(loc="lower right")
    ax_w.axhline(1.0, color="0.5", linewidth=0.8, linestyle=":")
    ax_w.set_title("relative step by difficulty  $h'_M(p)/h_M(1)$")
    ax_w.set_xlabel("prompt success probability $p$")
    ax_w.set_ylabel(r"$h'_M(p)\,/\,h_M(1)$")
    ax_w.set_yscale("log" if max(float(np.max(r.weight)) for r in reports) > 20 else "linear")
    ax_w.legend(loc="best")
    spread = reports[0].p_spread
    twin = ax_z.twinx()
    counts, _, _ = twin.hist(spread, bins=min(40, max(5, spread.size // 5)), range=(0, 1), color="0.88")
    twin.set_ylim(0, 2.2 * max(float(np.max(counts)), 1.0))
    twin.set_yticks([])
    ax_z.set_zorder(twin.get_zorder() + 1)
    ax_z.patch.set_visible(False)
    ax_z.set_title("zero-variance groups  $p^M+(1-p)^M$")
    ax_z.set_xlabel("prompt success probability $p$ (grey: spread)")
    ax_z.set_ylim(0, 1.02)
    ax_z.set_ylabel("P(all right or all wrong)")
    ax_z.legend(loc="upper center")
    if with_kl:
        _plot_kl(axes[0, 3], [(r, col) for r, col in zip(reports, colours) if r.kl is not None])
    fig.tight_layout()
    return fig


def _plot_kl(ax, items) -> None:
    """``p*`` against ``p_ref``; reference probabilities whose iteration cycles marked below."""
    for r, col in items:
        kl = r.kl
        ok = kl.curve_kind == Outcome.FIXED_POINT
        ax.plot(kl.curve_p_ref, np.where(ok, kl.curve_p_star, np.nan), color=col,
                label=f"{_label(r)}, β={kl.beta:g}")
        cyc = (kl.curve_kind == Outcome.TWO_CYCLE) | (kl.curve_kind == Outcome.LONGER_CYCLE)
        if cyc.any():
            lo, hi = float(kl.curve_p_ref[cyc].min()), float(kl.curve_p_ref[cyc].max())
            ax.axvspan(lo, hi, color=col, alpha=0.15, linewidth=0)
            ax.plot(kl.curve_p_ref[cyc], np.full(cyc.sum(), -0.03), "|", color=col, markersize=9,
                    label=f"{_label(r)}: cycles, no fixed point ($p_{{ref}}$ ≤ {hi:.3g})")
        und = kl.curve_kind == Outcome.UNRESOLVED
        if und.any():
            ax.plot(kl.curve_p_ref[und], np.full(und.sum(), -0.06), "x", color=col, markersize=4,
                    label=f"{_label(r)}: unresolved")
    ax.plot([0, 1], [0, 1], color="0.5", linestyle=":", linewidth=0.8)
    ax.set_ylim(-0.1, 1.03)
    ax.set_title(r"where $p$ is driven: $p^*$ from $p_0 = p_{\rm ref}$")
    ax.set_xlabel(r"reference success probability $p_{\rm ref}$")
    ax.set_ylabel(r"fixed point reached $p^*$")
    ax.legend(loc="lower right", fontsize=7)


def plot_run(rep) -> Figure:
    """One small panel per prompt (shared axes, readable at 64 prompts) from a
    :class:`rlvrlens.explain.RunReport`: the measured ``p`` with its intervals (dots and bars), the
    forecast made before the run with its band (line and shade, when there is one), and the
    stationary point ``p*`` with the interval carried from ``p_ref`` (dashed line and grey shade)."""
    n = len(rep.prompt_ids)
    ncols = min(8, max(1, int(np.ceil(np.sqrt(n)))))
    nrows = int(np.ceil(n / ncols))
    width = min(2.6, max(1.7, 6.5 / ncols))  # a few prompts get wider panels, so that the legend fits
    fig, axes = new_figure(nrows, ncols, width=width, height=1.45, sharex=True, sharey=True, layout="constrained")
    fc, steps = rep.forecast, rep.steps
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_visible(False)
            continue
        ok = np.isfinite(rep.history[:, k])
        if rep.predicted_low[k] < rep.predicted_high[k]:
            ax.axhspan(rep.predicted_low[k], rep.predicted_high[k], color="0.85", linewidth=0)
        if np.isfinite(rep.predicted[k]):
            ax.axhline(rep.predicted[k], color="0.3", linestyle="--", linewidth=0.9)
        j = rep.forecast_index[k]
        if fc is not None and j >= 0:
            ax.fill_between(fc.steps, fc.low[:, j], fc.high[:, j], color="C1", alpha=0.25, linewidth=0)
            ax.plot(fc.steps, fc.p[:, j], color="C1", linewidth=1.1)
        err = [rep.history[ok, k] - rep.history_low[ok, k], rep.history_high[ok, k] - rep.history[ok, k]]
        ax.errorbar(steps[ok], rep.history[ok, k], yerr=err if np.any(np.concatenate(err) > 0) else None,
                    color="C0", marker="o", markersize=2.2, linewidth=0.8, elinewidth=0.6, capsize=0)
        ax.set_title(str(rep.prompt_ids[k])[:18], fontsize=7, pad=2)
        ax.tick_params(labelsize=6)
        ax.set_ylim(-0.03, 1.03)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    for ax in axes[-1, :]:
        ax.set_xlabel("step", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("p", fontsize=7)
    handles = [Line2D([], [], color="C0", marker="o", markersize=3, label="measured p (interval)"),
               Line2D([], [], color="0.3", linestyle="--", label="stationary point p* (grey: from p_ref's interval)")]
    if fc is not None:
        handles.insert(1, Line2D([], [], color="C1", label="forecast made before the run (band shaded)"))
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles) if ncols >= 4 else 1, fontsize=7,
               frameon=False, title=f"{rep.scheme.name} M={rep.scheme.M}, β = {rep.beta:g}, KL {rep.kl_estimator}: "
                                    f"{n} prompts", title_fontsize=9)
    return fig
