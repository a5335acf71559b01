"""``rlvrlens validate``: run the experiments of a size in order, then hand the records to the report.

:func:`run_validation` (a :class:`~rlvrlens.validation.sizes.ValidationSize`: a tiny transformer and
a tabular policy) and :func:`run_real_model_validation` (a
:class:`~rlvrlens.validation.sizes.RealModelSize`: SmolLM2-135M-Instruct) call the experiment
modules (:mod:`~rlvrlens.validation.identity`, :mod:`~rlvrlens.validation.tabular`,
:mod:`~rlvrlens.validation.coupling`, :mod:`~rlvrlens.validation.fixed_points`), keep every record
as it comes (:class:`~rlvrlens.validation.report.Recorder`), turn the records into verdict rows
(:mod:`~rlvrlens.validation.verdicts`) and write the report (:mod:`~rlvrlens.validation.report`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from rlvrlens.forecast.coupled import step_size_for
from rlvrlens.forecast.probes import kernel, kl_projection, success_jacobian
from rlvrlens.objectives import get_scheme
from rlvrlens.training.success import exact_success
from rlvrlens.training.task import Task
from rlvrlens.training.tasks import get_task
from rlvrlens.training.trainer import Trainer, resolve_device
from rlvrlens.validation import coupling, report, verdicts
from rlvrlens.training.config import TrainConfig
from rlvrlens.validation.first_order import sampled_factor, step_sweep
from rlvrlens.validation.fixed_points import joint_stationary, lm_fixed_points, sampled_fixed_points
from rlvrlens.validation.forecasting import forecast_run
from rlvrlens.validation.identity import expected_step, projected_identity, relative_speed, sample_prompt
from rlvrlens.validation.setups import (
    lm_setup, real_model_setup, spread_prompts, theory_config, validation_schemes,
)
from rlvrlens.validation.sizes import REAL_MODEL_PARTS, RealModelSize, ValidationSize
from rlvrlens.validation.tabular import fixed_points_vs_beta, small_beta_horizon, trajectories, two_cycle_training


def run_validation(size: ValidationSize | RealModelSize, out: str | Path, *,
                   log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run every experiment of ``size`` and write everything under ``out``.

    Parameters
    ----------
    size : ValidationSize or RealModelSize
        :func:`rlvrlens.validation.sizes.get_size`; a :class:`RealModelSize` runs
        :func:`run_real_model_validation`.
    out : path
        Output folder: ``measurements.jsonl``, the figures (PNG and PDF) and ``report.md``.
    log : callable
        Called with one line per finished experiment (its time).

    Returns
    -------
    list of dict
        The verdict rows (:mod:`rlvrlens.validation.verdicts`).
    """
    if isinstance(size, RealModelSize):
        return run_real_model_validation(size, out, log=log)
    resolve_device(size.device)  # an unknown or absent device is refused before any work
    out = Path(out)
    rec = report.Recorder(out, log)
    keep, timed = rec.keep, rec.timed

    torch.manual_seed(size.seed)
    setup = timed("0. warm start", lambda: lm_setup(size))
    gen = torch.Generator(device=size.device).manual_seed(size.seed)
    schemes = validation_schemes(size.M)

    def identity():
        samples = [sample_prompt(setup, i, size.M, max(size.groups), gen) for i in setup.prompts]
        return samples, keep(expected_step(samples, schemes, size.groups))

    samples, exp1 = timed("1. expected step", identity)
    exp2 = timed("2. relative speed", lambda: keep(relative_speed(setup, samples, schemes)))
    exp3 = timed("3. fixed points (tabular)", lambda: keep(fixed_points_vs_beta(size)))
    exp4 = timed("4. trajectories (tabular)", lambda: keep(trajectories(size)))
    cycle = timed("4b. 2-cycle regime", lambda: keep([two_cycle_training(size)])[0])
    slow = timed("3c. small beta: the horizon", lambda: keep(small_beta_horizon(size, steps=size.small_beta_steps)))

    task = setup.task.subset(setup.prompts, name="validation")
    base = setup.policy.clone(trainable=True)
    scheme, K, p0 = coupling.coupling_scheme(base, task, size.coupling_M)
    lr = step_size_for(K, scheme, p0, 0.004)
    one = timed("5a. coupling: one step", lambda: keep(coupling.one_step(
        base, task, scheme, lr=lr, repeats=size.coupling_repeats, seed=size.seed)))

    def kl_step():  # away from pi_ref first (at pi_ref the KL's gradient is zero), then one step with the KL
        moved = base.clone(trainable=True)
        Trainer(theory_config(task, scheme, lr=3 * lr, seed=size.seed + 5), policy=moved, task=task,
                scheme=scheme).train(size.kl_move_steps)
        short = dataclasses.replace(task, max_new_tokens=2)  # the completion space whose KL is exact
        p_m, G_m = success_jacobian(moved, short)
        C = kl_projection(moved, setup.policy, short, G_m)
        # small: near the balance of the reward and KL terms each one's second-order part is not small
        # next to their sum (a step whose larger term moves p by 0.002 gave measured/predicted 0.4-1.9)
        lr_kl = step_size_for(kernel(G_m), scheme, p_m, 5e-4, kl=size.kl_step_beta * C.sum(1))
        return keep(coupling.one_step(moved, short, scheme, lr=lr_kl, repeats=size.coupling_repeats,
                                      seed=size.seed + 1, beta=size.kl_step_beta, ref=setup.policy))

    one_kl = timed("5a'. coupling: one step with the KL", kl_step)

    def runs():
        recs = coupling.coupled_trajectories(setup.policy.clone(trainable=True), task, scheme, lr=lr,
                                             steps=size.coupling_steps, refresh=size.coupling_refresh,
                                             seed=size.seed, label="SGD")
        single = task.subset([int(np.argmax(p0))], name="control")  # the prompt most likely to move
        pol = setup.policy.clone(trainable=True)
        p1, G1 = success_jacobian(pol, single)
        lr1 = step_size_for(kernel(G1), scheme, p1, 0.004)
        recs += coupling.coupled_trajectories(pol, single, scheme, lr=lr1, steps=size.control_steps,
                                              refresh=size.coupling_refresh, seed=size.seed, label="one prompt (SGD)")
        recs += coupling.coupled_trajectories(setup.policy.clone(trainable=True), task, scheme, lr=3e-4,
                                              steps=size.adam_steps, refresh=1, optim="adam", seed=size.seed,
                                              label="Adam")
        return keep(recs)

    traj = timed("5b. coupling: trajectories", runs)
    fp_schemes = {name: get_scheme(name, size.M) for name in size.lm_fp_schemes}
    lmfp = timed("6. fixed points (transformer)", lambda: keep(lm_fixed_points(
        setup.policy, task, fp_schemes, size.lm_fp_betas, steps=size.lm_fp_steps, beta2s=size.lm_fp_beta2,
        beta2_beta=size.lm_fp_beta2_beta, beta2_steps=size.lm_fp_beta2_steps, ref_pi=size.lm_fp_ref_pi)))
    sampled = timed("6b. fixed points (transformer, sampled KL)", lambda: keep([
        r for est in size.sampled_fp_estimators for r in sampled_fixed_points(
            setup.policy, task, get_scheme("grpo", size.coupling_M), size.sampled_fp_beta, estimator=est,
            steps=size.sampled_fp_steps, lr=size.sampled_fp_lr, eval_every=max(1, size.sampled_fp_steps // 50),
            seed=size.seed)]))

    joint = timed("6c. joint stationary points (transformer)", lambda: keep(joint_stationary(
        setup.policy, task, get_scheme("grpo", size.coupling_M), size.joint_betas, steps=size.joint_steps)
        if size.joint_betas else []))
    every = timed("7. first order (all prompts, common random numbers)", lambda: keep(step_sweep(
        setup.policy.clone(trainable=True), setup.task, scheme, targets=size.fo_targets, repeats=size.fo_repeats,
        seed=size.seed, label="mod, every prompt")))
    fc = timed("8. forecast from step 0", lambda: keep([
        r for label, lr_fc, beta in size.fc_runs for r in forecast_run(
            setup.policy.clone(trainable=True), setup.task, _forecast_config(size.coupling_M, len(setup.task),
                                                                           size.fc_steps, lr_fc, beta, size.seed),
            get_scheme("grpo", size.coupling_M), label=label, batches=size.fc_batches, refresh=size.fc_refresh,
            record_every=size.fc_record, propagate_every=size.fc_propagate or None)]))

    fp = [r for r in exp3 if r["experiment"] == "fixed_points"]
    ablation = [r for r in exp3 if r["experiment"] == "fixed_point_ablation"]
    rows = (verdicts.expected_step_rows(exp1) + verdicts.speed_rows(exp2) + verdicts.fixed_point_rows(fp)
            + verdicts.ablation_rows(ablation) + verdicts.small_beta_rows(slow) + verdicts.tabular_trajectory_rows(exp4) + verdicts.two_cycle_rows(cycle)
            + verdicts.one_step_rows(one) + verdicts.trajectory_rows(traj) + verdicts.lm_fixed_point_rows(lmfp)
            + verdicts.one_step_rows(one_kl, "5a'. coupling, one step with the KL")
            + verdicts.sampled_fixed_point_rows(sampled) + verdicts.joint_stationary_rows(joint)
            + verdicts.first_order_rows(every, "7. first order")
            + verdicts.forecast_rows(fc, "8. forecast from step 0"))
    figures = report.tiny_figures(size, exp1, exp2, fp, ablation, exp4, cycle, one + one_kl, traj, lmfp, sampled,
                                  every, fc)
    header = [f"Model: GPT-2 style, {size.n_layer} layers, width {size.width}; M = {size.M} (coupling: M = "
              f"{size.coupling_M}).", "", f"Verdicts: {verdicts.thresholds_text()}."]
    report.write(out, f"{size.name} preset", header, rows, figures, rec.timings, size.device)
    return rows


def run_real_model_validation(size: RealModelSize, out: str | Path, *,
                              log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """The theory on a pretrained model (:mod:`rlvrlens.validation.identity`, :mod:`.coupling`,
    :mod:`.fixed_points`): the projected identity, one SGD step over ``n_prompts`` prompts against
    the coupled kernel prediction, the fixed-point sweep when the size has betas, and a short SGD
    trajectory against the coupled model, K diagonal and the uncoupled flow. Writes
    ``measurements.jsonl``, ``identity.png``, ``coupling_one_step.png``, ``coupling.png`` (and
    ``fixed_points.png``) and ``report.md`` under ``out``; returns the verdict rows."""
    resolve_device(size.device)
    out = Path(out)
    rec = report.Recorder(out, log)
    torch.manual_seed(size.seed)
    setup = rec.timed("0. load and score the pool", lambda: real_model_setup(size))
    policy, pool, p_pool, chosen = setup.policy, setup.task, setup.p, setup.prompts
    gen = torch.Generator(device=size.device).manual_seed(size.seed)
    parts = set(size.parts)
    ident = one = fixed = every = fc = traj = []
    if "identity" in parts:
        # interior quantiles of the chosen prompts (the extremes have the least power: h' |grad p| is small there)
        inner = np.linspace(0, len(chosen) - 1, size.identity_prompts + 2)[1:-1]
        picks = [chosen[k] for k in np.unique(inner.round().astype(int))]
        schemes = {name: get_scheme(name, size.M) for name in size.identity_schemes}
        ident = rec.timed("1. identity (projected)", lambda: rec.keep(projected_identity(
            policy, pool, picks, schemes, size.M, size.identity_groups, gen)))
    task = pool.subset(chosen, name="validation")
    scheme, lrs = get_scheme("dr_grpo", size.M), []
    if parts & {"one-step", "trajectory"}:
        scheme, K, p0 = coupling.coupling_scheme(policy, task, size.M)
        lrs = [step_size_for(K, scheme, p0, target) for target in size.step_targets]
    if "one-step" in parts:
        one = rec.timed("2. coupling: one step", lambda: rec.keep([
            r for k, lr_k in enumerate(lrs) for r in coupling.one_step(
                policy, task, scheme, lr=lr_k, repeats=size.one_step_repeats, seed=size.seed + k)]))
    if "fixed-points" in parts and size.fp_betas:
        fp_task = pool.subset(spread_prompts(p_pool, size.fp_prompts, low=0.02, high=0.98), name="fixed points")
        fixed = rec.timed("3. fixed points (sampled KL)", lambda: rec.keep([
            r for beta in size.fp_betas for est in size.fp_estimators for r in sampled_fixed_points(
                policy, fp_task, get_scheme(size.fp_scheme, size.M), beta, estimator=est, steps=size.fp_steps,
                lr=size.fp_lr, eval_every=size.fp_eval_every, seed=size.seed)]))

    def held_out(measure: Callable[[Task, str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        recs = []  # families of prompts not used while developing the model
        for label, spec in size.fo_tasks:
            fam = get_task(spec, n=size.pool, seed=size.fo_seed)
            with torch.no_grad():
                p_fam = exact_success(policy, fam).double().cpu().numpy()
            chosen_fam = spread_prompts(p_fam, size.fo_prompts, low=0.02, high=0.98, what=f"{size.model} on {label}")
            recs += measure(fam.subset(chosen_fam, name=label), label)
            log(f"[validate]    first order on {label} done")
        return rec.keep(recs)

    fo_scheme = get_scheme(size.fp_scheme, size.M)
    sampled = []
    if "first-order" in parts:
        every = rec.timed("5. first order on held-out prompts", lambda: held_out(lambda t, label: step_sweep(
            policy, t, fo_scheme, targets=size.fo_targets, repeats=size.fo_repeats, seed=size.seed, label=label)))
    if "first-order-sampled" in parts:
        sampled = rec.timed("5b. first order on held-out prompts, sampled groups", lambda: held_out(
            lambda t, label: sampled_factor(policy, t, fo_scheme, groups=size.fo_groups, generator=gen, label=label)))
    if "forecast" in parts:
        fc_task = pool.subset(spread_prompts(p_pool, size.fc_prompts, low=0.02, high=0.98), name="forecast")
        fc = rec.timed("6. forecast from step 0", lambda: rec.keep([
            r for label, lr_fc, beta in size.fc_runs for r in forecast_run(
                policy.clone(trainable=True), fc_task,
                _forecast_config(size.M, size.fc_prompts_per_step, size.fc_steps, lr_fc, beta, size.seed),
                get_scheme(size.fp_scheme, size.M), label=label, batches=size.fc_batches, refresh=size.fc_refresh,
                record_every=size.fc_record, propagate_every=size.fc_propagate or None)]))
    if "trajectory" in parts:  # last: the trajectory trains the model itself (the other runs train copies)
        traj = rec.timed("4. coupling: trajectory", lambda: rec.keep(coupling.coupled_trajectories(
            policy, task, scheme, lr=lrs[0], steps=size.traj_steps, refresh=size.traj_refresh, seed=size.seed,
            label="SGD")))
    rows = (verdicts.identity_rows(ident) + verdicts.one_step_rows(one, "2. coupling, one step")
            + verdicts.sampled_fixed_point_rows(fixed, "3. fixed points")
            + verdicts.trajectory_rows(traj, "4. coupling, trajectory")
            + verdicts.first_order_rows(every, "5. first order (held out)")
            + verdicts.first_order_sampled_rows(sampled, "5b. first order (held out, sampled)")
            + verdicts.forecast_rows(fc, "6. forecast"))
    figures = report.real_model_figures(size, ident, one, traj, fixed, scheme.name, len(chosen), every, fc, sampled)
    left_out = [p for p in REAL_MODEL_PARTS if p not in parts]
    header = [f"Model: {size.model} (all {sum(q.numel() for q in policy.parameters()):,} parameters trained), task "
              f"`{size.task}`, {size.pool} prompts scored exactly (p from {p_pool.min():.3f} to {p_pool.max():.3f}), "
              f"{len(chosen)} chosen; M = {size.M}."
              + (f" Coupling scheme {scheme.name}, SGD learning rates {', '.join(f'{x:.3g}' for x in lrs)} (predicted "
                 f"largest |Delta p| of a step {', '.join(f'{t:g}' for t in size.step_targets)}; the trajectory uses "
                 "the first), Dr. GRPO's per-sequence sum over 1, beta = 0." if lrs else ""),
              "", f"Experiments run: {', '.join(p for p in REAL_MODEL_PARTS if p in parts)}"
              + (f"; left out (--only): {', '.join(left_out)}." if left_out else "."),
              "", f"Verdicts: {verdicts.thresholds_text()}."]
    if "fixed-points" in parts:
        header += ["", "Fixed points (sampled KL, a beta sweep): " + (
            f"betas {', '.join(f'{b:g}' for b in size.fp_betas)}, estimators {', '.join(size.fp_estimators)}, "
            f"{size.fp_steps} steps." if size.fp_betas else
            "not run at this size (on a 2-core CPU a step of 4 prompts x 8 completions takes about 10 s and a "
            "run needs on the order of 1000 steps; the smollm2-gpu size runs the sweep).")]
    report.write(out, f"{size.name} preset", header, rows, figures, rec.timings, size.device)
    return rows


def _forecast_config(M: int, prompts_per_step: int, steps: int, lr: float, beta: float, seed: int) -> TrainConfig:
    """The forecast runs' configuration: TRL's defaults where they apply (AdamW, the learning rate
    decaying linearly to 0, ``dapo`` aggregation, gradient clipping at 1) and, with ``beta``, k2 on the
    sequence's log-ratio (the estimator whose treatment is exact for answers of any length)."""
    return TrainConfig(num_generations=M, prompts_per_step=prompts_per_step, steps=steps, learning_rate=lr,
                       optim="adamw", lr_scheduler_type="linear", loss_aggregation="dapo", max_grad_norm=1.0,
                       beta=beta, kl_estimator="k2", kl_level="sequence" if beta > 0 else "token", seed=seed,
                       warm_start_steps=0, eval_steps=10**6, save_steps=10**6)
