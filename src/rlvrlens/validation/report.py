"""The validation's files: raw measurements as they come, figures from them, and ``report.md``.

Writes only: :class:`Recorder` appends every record to ``measurements.jsonl`` (flushed per
experiment) and times the experiments; :func:`tiny_figures` and :func:`real_model_figures` draw
the records (:mod:`rlvrlens.figures.validation`) with their captions; :func:`write` saves the
figures (PNG and PDF) and ``report.md`` (prediction, measurement, gap and verdict per row).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import torch

from rlvrlens.core.records import append_lines
from rlvrlens.figures.style import save
from rlvrlens.figures.validation import (
    plot_coupling, plot_coupling_per_prompt, plot_expected_step, plot_fixed_points, plot_lm_fixed_points,
    plot_first_order, plot_first_order_sampled, plot_forecast_runs, plot_one_step, plot_projected_identity, plot_relative_speed, plot_sampled_fixed_points, plot_trajectories,
)
from rlvrlens.validation.sizes import RealModelSize, ValidationSize

#: ``name -> (figure, caption)``.
Figures = dict[str, tuple[Any, str]]


class Recorder:
    """``measurements.jsonl`` under ``out`` (started empty, appended and flushed per experiment) and
    the experiments' timings."""

    def __init__(self, out: Path, log: Callable[[str], None]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.raw = out / "measurements.jsonl"
        self.raw.write_text("")
        self.timings: dict[str, float] = {}
        self.log = log

    def keep(self, records: list[dict]) -> list[dict]:
        """Append ``records`` to ``measurements.jsonl``; return them."""
        append_lines(self.raw, records, fsync=False)
        return records

    def timed(self, name: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, its time kept under ``name`` and logged."""
        t0 = time.perf_counter()
        result = fn()
        self.timings[name] = time.perf_counter() - t0
        self.log(f"[validate] {name} done ({self.timings[name]:.0f} s)")
        return result


def tiny_figures(size: ValidationSize, exp1, exp2, fp, ablation, exp4, cycle, one, traj, lmfp, sampled, first_order,
                 forecasts) -> Figures:
    """The tiny-transformer size's figures, with captions."""
    figures = {
        "expected_step": (plot_expected_step(exp1), "Monte-Carlo mean update against h'_M(p) grad p on a tiny "
                          "transformer; dashed: the CLT error scale."),
        "relative_speed": (plot_relative_speed(exp2), "One small step per scheme from the same parameters; change "
                           "of p relative to REINFORCE against h'_A/h'_REINFORCE."),
        "fixed_points": (plot_fixed_points(fp, ablation), "Stationary success under a KL penalty (tabular policy, "
                         "sampled groups) against the estimator-aware flow target; right: gap by variant."),
        "trajectories": (plot_trajectories(exp4, cycle), "Tabular trajectories: the exact step is the map, SGD is "
                         "the mean-field ODE (no fitted constant); right: where Mroueh's map has a 2-cycle, "
                         "small steps settle at its fixed point."),
        "coupling_one_step": (plot_one_step(one), "One SGD step of the tiny transformer from fixed "
                              "parameters (Monte-Carlo mean over repeats): measured against the coupled and the "
                              f"diagonal kernel prediction, at the warm start with beta = 0 and, after "
                              f"{size.kl_move_steps} steps away from it, with k2 of the sequence at beta = "
                              f"{size.kl_step_beta:g} (the predictions then include the KL term)."),
        "coupling": (plot_coupling(traj), "Predicted against measured per-prompt trajectories on the tiny "
                     "transformer: coupled kernel model (a nowcast: K refreshed on the run's network), K diagonal, "
                     "and each prompt's uncoupled flow."),
        "lm_fixed_points": (plot_lm_fixed_points(lmfp), "Fixed points on the tiny transformer with the exact "
                            "sequence KL (two-token completion space), against each prompt's flow target."),
    }
    if sampled:
        figures["sampled_fixed_points"] = (plot_sampled_fixed_points(sampled, title="tiny transformer"),
                                           "The sampled trainer (Adam, GRPO, M = 8) with the KL estimated on the "
                                           "sequence's log-ratio: each prompt's exact p against its flow target.")
    figures.update(_first_order_and_forecasts(first_order, forecasts, "tiny transformer"))
    return figures


def _first_order_and_forecasts(first_order, forecasts, name: str) -> Figures:
    figures = {}
    if first_order:
        figures["first_order"] = (plot_first_order(first_order, title=name),
                                  f"{name}: one SGD step at three sizes from the same parameters, the same sampled groups "
                                  "at every size (common random numbers): measured over predicted change of p, the "
                                  "zero-step extrapolation (squares) and the step projected on grad p (triangles).")
    for k, run in enumerate(dict.fromkeys(r["run"] for r in forecasts)):
        rows = [r for r in forecasts if r["run"] == run]
        figures[f"forecast_{k}"] = (plot_forecast_runs(rows, title=name),
                                    f"{name}, {run}: the forecast made before the run (coupled model from a probe of "
                                    "step 0, band: probe error and sampling noise) against the measured per-prompt "
                                    "success, with the nowcast (kernel refreshed on the run), each prompt alone and "
                                    "p staying where it starts.")
    return figures


def real_model_figures(size: RealModelSize, ident, one, traj, fixed, scheme: str, n_chosen: int, first_order,
                       forecasts, sampled=()) -> Figures:
    """The pretrained-model size's figures, with captions."""
    name = size.model
    figures = {}
    if ident:
        figures["identity"] = (plot_projected_identity(ident, title=name),
                               f"{name}: the sampled update projected on grad p, measured over predicted (h'_M(p) "
                               f"|grad p|), at G = {max(size.identity_groups)} groups of M = {size.M}; bars: 3 "
                               "standard errors.")
    if one:
        figures["coupling_one_step"] = (plot_one_step(one), f"{name}: one SGD step of the trainer ({scheme}, "
                                        f"{n_chosen} prompts, {size.one_step_repeats} repeats from the same "
                                        "parameters) against the coupled and the diagonal kernel prediction.")
    if traj:
        figures["coupling"] = (plot_coupling_per_prompt(traj, title=name), f"{name}: predicted against measured "
                               f"per-prompt trajectories ({size.traj_steps} SGD steps, K refreshed every "
                               f"{size.traj_refresh}: a nowcast): coupled kernel model, K diagonal, each prompt's "
                               "uncoupled flow.")
    if fixed:
        figures["fixed_points"] = (plot_sampled_fixed_points(fixed, title=name), f"{name}: the sampled trainer (Adam "
                                   f"lr {size.fp_lr:g}, {size.fp_scheme}, M = {size.M}) with the KL estimated on the "
                                   "sequence's log-ratio: each prompt's exact p against its flow target.")
    if sampled:
        figures["first_order_sampled"] = (plot_first_order_sampled(sampled, title=name),
                                          f"{name}: each held-out prompt's sampled update ({size.fo_groups} groups of "
                                          f"M = {size.M}, no step) projected on its own grad p, measured over predicted, "
                                          "against p; lines: each family's common factor of the coupled prediction; "
                                          "bars: 2 standard errors.")
    figures.update(_first_order_and_forecasts(first_order, forecasts, name))
    return figures


def write(out: Path, title: str, header: list[str], rows: list[dict[str, Any]], figures: Figures,
          timings: dict[str, float], device: str) -> Path:
    """Save ``figures`` under ``out`` and write ``out/report.md``; return its path."""
    for name, (fig, _) in figures.items():
        save(fig, out / name)
    lines = [f"# Theory against measurement ({title})", "",
             f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} CPU threads visible, "
             f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {device}.", "", *header, "",
             "A 'gap' is a measured departure from the theory, reported, not hidden.", "",
             "Timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()), "",
             "| experiment | case | prediction | measurement | gap | verdict |", "|---|---|---|---|---|---|"]
    lines += [f"| {v['experiment']} | {v['case']} | {v['prediction']} | {v['measurement']} | {v['gap']} | {v['verdict']} |"
              for v in rows]
    lines.append("")
    for name, (_, caption) in figures.items():
        lines += [f"![{name}]({name}.png)", "", f"*{caption}*", ""]
    path = Path(out) / "report.md"
    path.write_text("\n".join(lines))
    return path
