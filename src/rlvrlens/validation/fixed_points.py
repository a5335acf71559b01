"""Fixed points on a transformer: the expected update with the exact sequence KL, and the sampled trainer.

* :func:`train_to_stationarity` trains a copy of the policy by the expected (mean-field) update of
  the sampled trainer (:func:`rlvrlens.training.expected.expected_update_training`) with the exact
  sequence divergence of the two-token completion space (:class:`rlvrlens.training.tasks.EnumeratedTask`):
  ``KL(pi||pi_ref)`` (the exact KL and k2) or ``KL(pi_ref||pi)`` (k3). Nothing is sampled, so the
  gap to each prompt's flow target is the network's (coupling, capacity, horizon), not noise;
  :func:`lm_fixed_points` is the sweep over schemes, ``beta`` and Adam's ``beta2``.
* :func:`sampled_fixed_points` is the sampled trainer itself (any transformer, any task with exact
  p): Adam, sampled groups, the KL estimated on the sequence's log-ratio.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlvrlens.core.kl import PI_REF, REF_PI, check_treatment, treatment_of
from rlvrlens.core.logit import clipped_logit
from rlvrlens.dynamics import flow_target, success_map
from rlvrlens.forecast.stationary import fisher_coupling, joint_stationary_points
from rlvrlens.objectives import WeightScheme, dh
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.expected import expected_update_training
from rlvrlens.training.policy import CausalLMPolicy, trainable_parameters
from rlvrlens.training.task import Task
from rlvrlens.training.tasks import EnumeratedTask
from rlvrlens.training.trainer import Trainer
from rlvrlens.validation.setups import theory_config
from rlvrlens.validation.verdicts import HORIZON_TOL, STATIONARY_TAIL


def train_to_stationarity(policy: CausalLMPolicy, task: Task, scheme: WeightScheme, beta: float, *,
                          kl: str = PI_REF, steps: int, optim: str = "adam", lr: float = 3e-3,
                          adam_beta2: float = 0.999) -> dict[str, Any]:
    """The expected update (module docstring) of a trainable copy of ``policy`` for ``steps`` steps;
    the per-prompt success history, the per-prompt predictions (:func:`rlvrlens.dynamics.flow_target`
    with treatment ``kl``) and, at the end, each prompt's own and the summed stationarity residual
    along ``grad p_x``."""
    check_treatment(kl, (PI_REF, REF_PI))
    pol = policy.clone(trainable=True)
    ref = policy.clone()
    enum = EnumeratedTask(pol, task)
    with torch.no_grad():
        ref_first, ref_second = enum.log_probs(ref)

    def terms(model):
        first, second = enum.log_probs(model)
        return enum.success(first, second), enum.kl(first, second, ref_first, ref_second, kl)

    config = TrainConfig(optim=optim, learning_rate=lr, adam_beta2=adam_beta2, beta=beta)
    history = expected_update_training(pol, terms, lambda p: dh(scheme, p), config, steps)
    p_ref = history[0]
    predicted = np.array([flow_target(success_map(scheme, beta, pr), kl).p for pr in p_ref])
    own, total = _residuals(pol, terms, scheme, beta)
    return {"p_ref": p_ref, "history": history, "predicted": predicted, "own_residual": own,
            "coupled_residual": total}


def _residuals(pol, terms, scheme: WeightScheme, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """``<grad p_x, f_x> / |grad p_x|^2`` (own) and ``<grad p_x, sum_y f_y> / |grad p_x|^2`` (coupled), with
    ``f_x = h'(p_x) grad p_x - beta grad D_x`` the prompt's expected update direction."""
    params = trainable_parameters(pol)
    p, pen = terms(pol)
    w = dh(scheme, p.detach().double().cpu().numpy())
    N = len(p)

    def flat(scalar, keep):
        grads = torch.autograd.grad(scalar, params, retain_graph=keep, allow_unused=True)
        return torch.cat([(g if g is not None else torch.zeros_like(q)).flatten() for g, q in zip(grads, params)])

    gp = [flat(p[x], True) for x in range(N)]
    f = [float(w[x]) * gp[x] - beta * flat(pen[x], x + 1 < N) for x in range(N)]
    total = sum(f)
    own = np.array([float(gp[x] @ f[x] / (gp[x] @ gp[x])) for x in range(N)])
    coupled = np.array([float(gp[x] @ total / (gp[x] @ gp[x])) for x in range(N)])
    return own, coupled


def horizon(history: np.ndarray, predicted: np.ndarray, tol: float = HORIZON_TOL) -> int | None:
    """First step after which every prompt stays within ``tol`` in logit of its prediction (None: never)."""
    gap = np.abs(clipped_logit(history) - clipped_logit(predicted)).max(1)
    outside = np.flatnonzero(gap > tol)
    if outside.size == 0:
        return 0
    return None if outside[-1] == len(gap) - 1 else int(outside[-1] + 1)


def lm_fixed_points(policy: CausalLMPolicy, task: Task, schemes: dict[str, WeightScheme], betas, *, steps: int,
                    beta2s=(0.999,), beta2_beta: float = 0.25, beta2_steps: int = 600,
                    ref_pi: bool = True) -> list[dict[str, Any]]:
    """The sweep of issue 14.4: every (scheme, beta) with Adam (first ``beta2``) for ``steps``; the
    ``KL(pi_ref||pi)`` (k3) penalty for the first scheme at the largest beta (``ref_pi``); and, when
    several ``beta2s`` are given, the first scheme near p = 1 (``beta2_beta``, small) with each of them for ``beta2_steps``
    (Adam's second-moment memory sets how fast the last logits are closed there)."""
    runs = [("sweep", name, beta, PI_REF, beta2s[0], steps) for name in schemes for beta in betas]
    first = next(iter(schemes))
    if ref_pi:
        runs.append((REF_PI, first, max(betas), REF_PI, beta2s[0], steps))
    if len(beta2s) > 1:
        runs += [("beta2", first, beta2_beta, PI_REF, b2, beta2_steps) for b2 in beta2s]
    records = []
    for part, name, beta, kl, b2, n_steps in runs:
        res = train_to_stationarity(policy, task, schemes[name], beta, kl=kl, steps=n_steps, adam_beta2=b2)
        tail = max(1, n_steps // 10)
        measured = res["history"][-tail:].mean(0)
        marks = sorted({max(1, n_steps // 10), max(1, n_steps // 3), n_steps})
        for x in range(len(measured)):
            gaps = {int(t): float(clipped_logit(res["history"][t, x]) - clipped_logit(res["predicted"][x]))
                    for t in marks}
            records.append({
                "experiment": "lm_fixed_points", "part": part, "scheme": name, "beta": beta, "kl": kl, "adam_beta2": b2,
                "prompt": x, "p_ref": float(res["p_ref"][x]), "predicted": float(res["predicted"][x]),
                "measured": float(measured[x]),
                "logit_gap": float(clipped_logit(measured[x]) - clipped_logit(res["predicted"][x])),
                "gap_at_step": gaps, "horizon": horizon(res["history"], res["predicted"]), "steps": n_steps,
                "own_residual": float(res["own_residual"][x]), "coupled_residual": float(res["coupled_residual"][x]),
                "history": res["history"][:, x].tolist()})
    return records


def sampled_fixed_points(policy, task: Task, scheme: WeightScheme, beta: float, *, estimator: str = "k2",
                         steps: int, lr: float, eval_every: int, seed: int = 0,
                         adam_beta2: float = 0.999) -> list[dict[str, Any]]:
    """Train a copy of ``policy`` with the sampled trainer (Adam, ``M = scheme.M``,
    :func:`rlvrlens.validation.setups.theory_config`) and the KL penalty ``beta`` estimated by
    ``estimator`` on the sequence's log-ratio; exact p every ``eval_every`` steps. Per prompt: the
    stationary p (mean of the last :data:`~rlvrlens.validation.verdicts.STATIONARY_TAIL` of the
    evaluations, with their standard deviation) against the flow target of its own success map
    (k2: ``KL(pi||pi_ref)``, k3: ``KL(pi_ref||pi)``; the coupling through shared parameters can move
    the joint stationary point, which the gap then shows), and the horizon."""
    trainer = Trainer(theory_config(task, scheme, lr=lr, optim="adam", seed=seed, adam_beta2=adam_beta2, beta=beta,
                                    kl_estimator=estimator), policy=policy.clone(trainable=True), task=task,
                      scheme=scheme, ref=policy)
    trainer.train(steps, success_at=range(0, steps + 1, eval_every))
    evals = [h["step"] for h in trainer.success_history]
    history = np.array([h["p"] for h in trainer.success_history])
    p_ref = history[0]
    kl = treatment_of(estimator)
    predicted = np.array([flow_target(success_map(scheme, beta, float(pr)), kl=kl).p for pr in p_ref])
    tail = history[-max(1, int(round(STATIONARY_TAIL * len(history)))):]
    measured, spread = tail.mean(0), tail.std(0)
    reached = horizon(history, predicted)
    gap = clipped_logit(measured) - clipped_logit(predicted)
    return [{"experiment": "sampled_fixed_points", "scheme": scheme.name, "beta": beta, "estimator": estimator,
             "kl": kl, "prompt": int(x), "p_ref": float(p_ref[x]), "predicted": float(predicted[x]),
             "measured": float(measured[x]), "measured_sd": float(spread[x]), "logit_gap": float(gap[x]),
             "steps": steps, "lr": lr, "adam_beta2": adam_beta2, "eval_steps": evals,
             "horizon": None if reached is None else evals[reached], "history": history[:, x].tolist()}
            for x in range(len(p_ref))]


def joint_stationary(policy: CausalLMPolicy, task: Task, scheme: WeightScheme, betas, *, steps: int,
                     lr: float = 3e-3) -> list[dict[str, Any]]:
    """The joint stationary point of prompts that share a transformer's parameters, measured by the
    expected update with the exact sequence KL (:func:`train_to_stationarity`, both treatments, every
    ``beta``) against each prompt's own flow target and the linear-response (Fisher) prediction of
    :func:`rlvrlens.forecast.stationary.joint_stationary_points` with the coupling ``A`` measured at
    ``pi_ref`` (:func:`rlvrlens.forecast.stationary.fisher_coupling`). One record per run and prompt."""
    p_ref, A, rank = fisher_coupling(policy.clone(trainable=True), task)
    records = []
    for kl in (PI_REF, REF_PI):
        for beta in betas:
            res = train_to_stationarity(policy, task, scheme, beta, kl=kl, steps=steps, lr=lr)
            joint = joint_stationary_points(scheme, beta, p_ref, A, kl)
            tail = res["history"][-max(1, steps // 10):]
            measured = tail.mean(0)
            for x in range(len(task)):
                records.append({"experiment": "joint_stationary", "scheme": scheme.name, "beta": beta, "kl": kl,
                                "prompt": x, "p_ref": float(p_ref[x]), "steps": steps, "measured": float(measured[x]),
                                "own": float(res["predicted"][x]), "joint": float(joint[x]),
                                "coupling_diagonal": float(A[x, x]),
                                "coupling_off_diagonal": float(np.abs(np.delete(A[x], x)).max(initial=0.0)),
                                "rank": rank, "drift": float(np.abs(clipped_logit(tail[-1]) - clipped_logit(tail[0]))[x]),
                                "logit_gap_own": float(clipped_logit(measured[x]) - clipped_logit(res["predicted"][x])),
                                "logit_gap_joint": float(clipped_logit(measured[x]) - clipped_logit(joint[x]))})
    return records
