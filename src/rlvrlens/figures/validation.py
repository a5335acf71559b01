"""Figures of ``rlvrlens validate``: measured against predicted. Data in (the experiments' records), Figure out."""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

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
    """Left: measured stationary p against the estimator-aware flow target. Right: the logit gap of
    each training variant against its own prediction (and, hollow, against the KL(pi||pi_ref) point)."""
    fig, axes = new_figure(1, 2, width=5.0, height=4.2)
    ax = axes[0, 0]
    by = defaultdict(list)
    for r in records:
        by[r["scheme"]].append(r)
    for scheme, rows in by.items():
        line, = ax.plot([r["predicted"] for r in rows], [r["measured"] for r in rows], "o",
                        label=f"{scheme} (finite-M flow target)")
        if "predicted_population" in rows[0]:
            ax.plot([r["predicted_population"] for r in rows], [r["measured"] for r in rows], "x",
                    color=line.get_color(), label=f"{scheme} (Mroueh population map)")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="measured = predicted")
    ax.set_xlabel(r"predicted stationary point $p^*$ (flow target)")
    ax.set_ylabel("measured stationary success")
    ax.set_title(r"fixed points vs $\beta$ (tabular policy, sampled groups)")
    ax.legend(fontsize=7)
    ax2 = axes[0, 1]
    variants = list(dict.fromkeys(r["variant"] for r in ablations))
    for k, v in enumerate(variants):
        rows = [r for r in ablations if r["variant"] == v]
        own = [r["logit_gap"] for r in rows if r["logit_gap"] is not None]
        ax2.plot([k] * len(own), own, "o", color="C0", label="against its estimator's prediction" if k == 0 else None)
        ax2.plot([k] * len(rows), [r["logit_gap_pi_ref"] for r in rows], "o", mfc="none", color="C3",
                 label="against the KL(pi||pi_ref) (map) point" if k == 0 else None)
    ax2.axhline(0, color="k", linewidth=1)
    ax2.set_xticks(range(len(variants)))
    ax2.set_xticklabels(variants, rotation=35, ha="right", fontsize=7)
    ax2.set_ylabel(r"logit $p_{\mathrm{measured}}$ - logit $p^*$")
    ax2.set_title("gap by inner steps, KL estimator, clipping (GRPO)")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_trajectories(records: Sequence[dict], cycle: dict | None = None) -> Figure:
    """Tabular trajectories: measured (solid) against the prediction (dashed), one panel per source,
    and the 2-cycle regime: a small-step run against the map's cycle and its fixed point."""
    sources = list(dict.fromkeys(r["source"] for r in records))
    fig, axes = new_figure(1, len(sources) + (cycle is not None), width=4.2)
    for ax, src in zip(axes.ravel(), sources):
        rows = [r for r in records if r["source"] == src]
        for r in rows:
            line, = ax.plot(r["measured"], linewidth=1.4, label=f"p_ref = {r['p_ref']:.2g}")
            ax.plot(r["predicted"], "--", color=line.get_color(), linewidth=1)
        ax.plot([], [], "k--", linewidth=1, label=rows[0]["model"])
        ax.set_title(f"{src}: logit RMS {rows[0]['logit_rms']:.2g}")
        ax.set_xlabel("training step")
        ax.set_ylabel("success probability p")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    if cycle is not None:
        ax = axes[0, -1]
        ax.semilogy(cycle["history"], label="small-step SGD run")
        ax.axhline(cycle["fixed_point"], color="k", linestyle="--", linewidth=1,
                   label=f"fixed point (map slope {cycle['map_slope']:.2f})")
        for k, v in enumerate(cycle["cycle"]):
            ax.axhline(v, color="C3", linestyle=":", linewidth=1, label="map's 2-cycle" if k == 0 else None)
        ax.axhline(cycle["cycle_mean"], color="C3", linewidth=0.8, label="cycle mean")
        ax.set_title(rf"Mroueh's map cycles, the flow does not ($\beta$={cycle['beta']:g}, p_ref={cycle['p_ref']:g})")
        ax.set_xlabel("training step")
        ax.set_ylabel("p (log scale)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


#: The coupling experiment's three models: record key, line style, legend name.
_MODELS = (("coupled", "--", "coupled K model"), ("diagonal", ":", "K diagonal"), ("uncoupled", "-.", "uncoupled flow"))


def plot_coupling(records: Sequence[dict]) -> Figure:
    """Per-prompt trajectories of a transformer: measured (solid) against the coupled kernel model
    (dashed), K diagonal (dotted) and the uncoupled flow (dash-dot); one panel per run (for one run
    of many prompts: :func:`plot_coupling_per_prompt`)."""
    runs = list(dict.fromkeys(r["run"] for r in records))
    fig, axes = new_figure(1, len(runs), width=4.4, height=3.8)
    for ax, run in zip(axes.ravel(), runs):
        rows = [r for r in records if r["run"] == run]
        for r in rows:
            line, = ax.plot(r["measured"], linewidth=1.6, label=f"prompt {r['prompt']} (p_ref {r['p_ref']:.2f})")
            for key, style, _ in _MODELS:
                ax.plot(r[key], style, color=line.get_color(), linewidth=1.1)
        for key, style, name in _MODELS:
            ax.plot([], [], style, color="k", linewidth=1, label=f"{name} (logit RMS {rows[0]['logit_rms_' + key]:.2f})")
        ax.set_title(f"{run}: {len(rows)} prompt{'s' if len(rows) > 1 else ''}, lr {rows[0]['lr']:.2g}")
        ax.set_xlabel("training step")
        ax.set_ylabel("success probability p")
        ax.legend(fontsize=6.5)
    fig.tight_layout()
    return fig


def plot_lm_fixed_points(records: Sequence[dict]) -> Figure:
    """Transformer fixed points: measured stationary p against the per-prompt flow target (left) and
    one run's per-prompt histories with their predictions (right)."""
    fig, axes = new_figure(1, 2, width=4.6, height=4.0)
    ax = axes[0, 0]
    groups = defaultdict(list)
    for r in records:
        groups[(r["scheme"], r["kl"], r["adam_beta2"])].append(r)
    for (scheme, kl, b2), rows in groups.items():
        ax.plot([r["predicted"] for r in rows], [r["measured"] for r in rows], "o",
                label=f"{scheme}, {kl} KL, Adam beta2 {b2:g}")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="measured = predicted")
    ax.set_xlabel("predicted p* (per prompt, flow target)")
    ax.set_ylabel("measured stationary p")
    ax.set_title("tiny transformer, exact sequence KL")
    ax.legend(fontsize=6.5)
    ax = axes[0, 1]
    key = next(iter(groups))
    for r in groups[key]:
        line, = ax.plot(r["history"], label=f"prompt {r['prompt']} (p_ref {r['p_ref']:.2f})")
        ax.axhline(r["predicted"], color=line.get_color(), linestyle="--", linewidth=1)
    ax.plot([], [], "k--", linewidth=1, label="prediction")
    ax.set_title(f"{key[0]}, beta {groups[key][0]['beta']:g}, {key[1]} KL")
    ax.set_xlabel("training step")
    ax.set_ylabel("success probability p")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_one_step(records: Sequence[dict]) -> Figure:
    """One SGD step of the tiny transformer from fixed parameters: measured mean change of each
    prompt's p (error bars: 2 standard errors) against the coupled and the diagonal prediction."""
    fig, axes = new_figure(width=4.8, height=4.0)
    ax = axes[0, 0]
    pred = [r["predicted"] for r in records]
    meas = [r["measured"] for r in records]
    err = [2 * r["measured_se"] for r in records]
    ax.errorbar(pred, meas, yerr=err, fmt="o", label="coupled prediction (K)")
    ax.errorbar([r["predicted_diagonal"] for r in records], meas, yerr=err, fmt="s", mfc="none",
                label="diagonal prediction (K_xx only)")
    lo, hi = min(pred + meas) * 1.2, max(pred + meas) * 1.2
    lo = min(lo, 0.0)
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=1, label="measured = predicted")
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_xlabel(r"predicted $\Delta p_x$")
    ax.set_ylabel(r"measured mean $\Delta p_x$ ($\pm$ 2 SE)")
    ax.set_title("one SGD step: prompts coupled through the network")
    ax.legend(fontsize=7)
    return fig


def plot_coupling_per_prompt(records: Sequence[dict], *, title: str = "", columns: int = 4) -> Figure:
    """One run's per-prompt trajectories, one panel per prompt: measured (solid) against the coupled
    kernel model (dashed), K diagonal (dotted) and the uncoupled flow (dash-dot)."""
    rows = list(records)
    n_rows = -(-len(rows) // columns)
    fig, axes = new_figure(n_rows, min(columns, len(rows)), width=2.6, height=2.3)
    for ax, r in zip(axes.ravel(), rows):
        ax.plot(r["measured"], "k-", linewidth=1.6, label="measured")
        for k, (key, style, name) in enumerate(_MODELS):
            ax.plot(r[key], style, color=f"C{k}", linewidth=1.2, label=name)
        ax.set_title(f"prompt {r['prompt']} (p_ref {r['p_ref']:.2f})", fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.set_ylabel("p", fontsize=7)
    for ax in axes.ravel()[len(rows):]:
        ax.set_visible(False)
    first = rows[0]
    axes.ravel()[0].legend(fontsize=6)
    fig.suptitle(f"{title}{': ' if title else ''}{first['run']}, lr {first['lr']:.2g}, K every {first['refresh']} "
                 f"steps; logit RMS coupled {first['logit_rms_coupled']:.2f}, diagonal "
                 f"{first['logit_rms_diagonal']:.2f}, uncoupled {first['logit_rms_uncoupled']:.2f}", fontsize=8)
    fig.tight_layout()
    return fig


def plot_projected_identity(records: Sequence[dict], *, title: str = "") -> Figure:
    """The identity projected on grad p at the largest number of groups: measured over predicted
    mean (error bars: 3 standard errors, the test's threshold) per scheme and prompt; 1 is the identity."""
    G = max(r["groups"] for r in records)
    rows = [r for r in records if r["groups"] == G]
    schemes = list(dict.fromkeys(r["scheme"] for r in rows))
    prompts = list(dict.fromkeys(r["prompt"] for r in rows))
    fig, axes = new_figure(width=4.8, height=3.8)
    ax = axes[0, 0]
    width = 0.7 / max(len(prompts), 1)
    for k, prompt in enumerate(prompts):
        mine = {r["scheme"]: r for r in rows if r["prompt"] == prompt}
        x = [j - 0.35 + width * (k + 0.5) for j, s in enumerate(schemes) if s in mine]
        ys = [mine[s] for s in schemes if s in mine]
        ax.errorbar(x, [r["ratio"] for r in ys], yerr=[3 * r["ratio_se"] for r in ys], fmt="o",
                    label=f"prompt {prompt} (p {ys[0]['p']:.2f})")
    ax.axhline(1.0, color="k", linestyle="--", linewidth=1, label="identity")
    ax.set_xticks(range(len(schemes)), schemes)
    ax.set_ylabel(r"measured / predicted $\langle$update, u$\rangle$ ($\pm$ 3 SE)")
    ax.set_title(f"{title}{': ' if title else ''}identity projected on grad p, G = {G}", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def plot_sampled_fixed_points(records: Sequence[dict], *, title: str = "") -> Figure:
    """Sampled-trainer fixed points: each prompt's exact p at the evaluations against its flow
    target (dashed), one panel per (beta, estimator)."""
    runs = list(dict.fromkeys((r["beta"], r["estimator"]) for r in records))
    fig, axes = new_figure(1, len(runs), width=4.2, height=3.6)
    for ax, (beta, est) in zip(axes.ravel(), runs):
        for r in (r for r in records if (r["beta"], r["estimator"]) == (beta, est)):
            line, = ax.plot(r["eval_steps"], r["history"], linewidth=1.2,
                            label=f"prompt {r['prompt']} (p_ref {r['p_ref']:.2f}): gap {r['logit_gap']:+.2f}")
            ax.axhline(r["predicted"], color=line.get_color(), linestyle="--", linewidth=1)
        ax.plot([], [], "k--", linewidth=1, label="flow target (own map)")
        ax.set_title(f"{title}{', ' if title else ''}beta {beta:g}, {est} KL of the sequence", fontsize=8)
        ax.set_xlabel("training step")
        ax.set_ylabel("success probability p")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def plot_forecast_runs(records: Sequence[dict], *, title: str = "", columns: int = 4) -> Figure:
    """One run's per-prompt trajectories, one panel per prompt: measured (black) against the forecast
    from step 0 (solid, with its band), the same propagated along its own path where recorded
    (dash-dot), the nowcast (dashed: refreshed on the run), each prompt alone (dotted) and the naive
    p = p_0 (grey)."""
    rows = list(records)
    n_rows = -(-len(rows) // columns)
    fig, axes = new_figure(n_rows, min(columns, len(rows)), width=2.6, height=2.2)
    for ax, r in zip(axes.ravel(), rows):
        steps = r["steps"]
        ax.fill_between(steps, r["low"], r["high"], color="C0", alpha=0.2, linewidth=0)
        ax.plot(steps, r["forecast"], "-", color="C0", linewidth=1.4, label="forecast (step 0)")
        if "propagated" in r:
            ax.plot(steps, r["propagated"], "-.", color="C3", linewidth=1.3, label="forecast, propagated")
        ax.plot(steps, r["nowcast"], "--", color="C1", linewidth=1.1, label="nowcast (reads the run)")
        ax.plot(steps, r["diagonal"], ":", color="C2", linewidth=1.1, label="each prompt alone")
        ax.plot(steps, r["naive"], "-", color="0.6", linewidth=0.8, label="p stays")
        ax.plot(steps, r["measured"], "k-", linewidth=1.6, label="measured")
        ax.set_title(f"prompt {r['prompt']} (p_0 {r['p_start']:.2f})", fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.set_ylabel("p", fontsize=7)
    for ax in axes.ravel()[len(rows):]:
        ax.set_visible(False)
    first = rows[0]
    axes.ravel()[0].legend(fontsize=6)
    propagated = (f"propagated {first['logit_rms_propagated']:.2f}, " if "logit_rms_propagated" in first else "")
    fig.suptitle(f"{title}{': ' if title else ''}{first['run']} ({first['optim']} lr {first['learning_rate']:.2g}, "
                 f"beta {first['beta']:g}); logit RMS forecast {first['logit_rms_forecast']:.2f}, {propagated}nowcast "
                 f"{first['logit_rms_nowcast']:.2f}, alone {first['logit_rms_diagonal']:.2f}, p stays "
                 f"{first['logit_rms_naive']:.2f}; forecast within {first['target']:g} up to step {first['horizon']}",
                 fontsize=8)
    fig.tight_layout()
    return fig


def plot_first_order_sampled(records: Sequence[dict], *, title: str = "") -> Figure:
    """Each prompt's sampled update projected on its own grad p, measured over predicted (+- 2 SE),
    against its p, per family, with the family's common factor (line) and its 2-SE band."""
    fig, axes = new_figure(width=4.8, height=3.8)
    ax = axes[0, 0]
    families = list(dict.fromkeys(r["family"] for r in records))
    for k, fam in enumerate(families):
        own = [r for r in records if r["family"] == fam and r["experiment"] == "first_order_sampled_prompt"]
        pooled = next(r for r in records if r["family"] == fam and r["experiment"] == "first_order_sampled")
        ax.errorbar([r["p"] for r in own], [r["ratio"] for r in own], yerr=[2 * r["ratio_se"] for r in own], fmt="o",
                    color=f"C{k}", label=f"{fam}: common factor {pooled['ratio']:.3f} ± {pooled['ratio_se']:.3f}")
        ax.axhspan(pooled["ratio"] - 2 * pooled["ratio_se"], pooled["ratio"] + 2 * pooled["ratio_se"], color=f"C{k}",
                   alpha=0.15)
    ax.axhline(1.0, color="k", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # the minor labels of a short log axis overlap
    ax.set_xlabel("exact p of the prompt")
    ax.set_ylabel("measured / predicted (+- 2 SE)")
    ax.set_title(f"{title}{': ' if title else ''}first order from sampled groups, no step", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def plot_first_order(records: Sequence[dict], *, title: str = "") -> Figure:
    """Measured over predicted change of p (the common factor over prompts, +- 2 SE) against the
    step's predicted size, per family of prompts, with the zero-step extrapolation and the step
    projected on grad p (the first-order term alone) at the left edge."""
    fig, axes = new_figure(width=4.8, height=3.8)
    ax = axes[0, 0]
    families = list(dict.fromkeys(r["family"] for r in records))
    for k, fam in enumerate(families):
        steps = [r for r in records if r["family"] == fam and r["experiment"] == "first_order"]
        limit = next(r for r in records if r["family"] == fam and r["experiment"] == "first_order_limit")
        proj = next(r for r in records if r["family"] == fam and r["experiment"] == "first_order_projected")
        x = [r["target"] for r in steps]
        ax.errorbar(x, [r["ratio"] for r in steps], yerr=[2 * r["ratio_se"] for r in steps], fmt="o-", color=f"C{k}",
                    label=f"{fam} ({steps[0]['prompts']} prompts, {steps[0]['repeats']} repeats)")
        ax.errorbar([0.0], [limit["ratio"]], yerr=[2 * limit["ratio_se"]], fmt="s", color=f"C{k}", mfc="none")
        ax.errorbar([-0.0004 * (k + 1)], [proj["ratio"]], yerr=[2 * proj["ratio_se"]], fmt="^", color=f"C{k}", mfc="none")
    ax.axhline(1.0, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("predicted largest |Delta p| of the step (0: extrapolated; triangles: projected on grad p)")
    ax.set_ylabel("measured / predicted (common factor, +- 2 SE)")
    ax.set_title(f"{title}{': ' if title else ''}first order, one SGD step, common random numbers", fontsize=9)
    ax.legend(fontsize=7)
    return fig
