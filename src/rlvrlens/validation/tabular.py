"""Theory against training on a tabular policy: fixed points per KL estimator, trajectories, the flow.

A softmax over one right and three wrong answers per prompt (:func:`rlvrlens.validation.setups.tabular_setup`)
is the non-parametric policy of THEORY.md §2 and §4, so every prediction is exact up to sampling:

* :func:`fixed_points_vs_beta`: KL-regularised training with sampled groups to convergence, against
  the estimator-aware prediction (:func:`rlvrlens.dynamics.flow_target`; exact/k2: KL(pi||pi_ref),
  k3: KL(pi_ref||pi), k1: none), with ablations over inner steps, the KL estimator and clipping;
* :func:`trajectories`: the exact KL-regularised step is the map, step for step; SGD training is the
  mean-field ODE (:func:`rlvrlens.dynamics.softmax_flow`), with no fitted constant;
* :func:`two_cycle_training`: where Mroueh's map has a 2-cycle, small steps converge to its fixed point.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from scipy import special

from rlvrlens.core.kl import PI_REF, treatment_of
from rlvrlens.core.logit import clipped_logit, logit_rms
from rlvrlens.dynamics import attractor, flow_target, grpo_success_map, iterate, softmax_flow, success_map
from rlvrlens.objectives import WeightScheme, get_scheme
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.expected import expected_update_training
from rlvrlens.training.success import exact_success
from rlvrlens.training.tabular import kl_regularised_step
from rlvrlens.training.trainer import Trainer
from rlvrlens.validation.setups import tabular_setup
from rlvrlens.validation.sizes import ValidationSize
from rlvrlens.validation.verdicts import STATIONARY_TAIL


def _lg(p: float) -> float:
    return float(clipped_logit(p))


def _scheme_and_maps(name: str, M: int, beta: float):
    """The trained scheme and the map(s) predicting it, as ``p_ref -> SuccessMap`` builders.
    ``grpo_population``: population std with ``eps = 1e-5`` inside the root, trained at finite ``M``
    and predicted both by its finite-M map and by Mroueh's population map (M -> infinity)."""
    if name == "grpo_population":
        scheme = get_scheme("grpo", M, eps=1e-5, std="population", eps_inside_sqrt=True)
        return scheme, {"predicted": lambda pr: success_map(scheme, beta, pr),
                        "predicted_population": lambda pr: grpo_success_map(beta, pr, eps=1e-5)}
    scheme = get_scheme(name, M)
    return scheme, {"predicted": lambda pr: success_map(scheme, beta, pr)}


def _flow_p(build, p_ref: float, kl: str) -> float:
    """Where a small-step run from ``pi_ref`` stops (THEORY.md §4): 1 for ``kl = "none"`` while h' > 0."""
    return float(flow_target(build(p_ref), kl).p)


def _attractor_p(build, p_ref: float) -> tuple[float, str]:
    """Mean of the map's attractor from ``p_0 = p_ref`` (a fixed point, or a cycle's average) and its kind."""
    a = attractor(build(p_ref), p_ref)
    return float(np.mean(a.p)), a.kind


def train_history(trainer: Trainer, steps: int) -> np.ndarray:
    """Run ``trainer.train(steps)`` recording the exact per-prompt success at every step: ``(steps + 1, prompts)``."""
    first = trainer.step
    trainer.train(steps, success_at=range(first, first + steps + 1))
    return np.array([h["p"] for h in trainer.success_history if h["step"] >= first])


def _train_tabular(scheme: WeightScheme, beta: float, p_refs: Sequence[float], steps: int, seed: int, *,
                   copies: int = 4, **cfg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Train a tabular policy with sampled groups and the KL penalty (AdamW unless ``cfg`` says
    ``optim="sgd"``, the system the mean-field ODE describes); return (p_ref per prompt, success
    history of shape (steps + 1, prompts))."""
    policy, task, p_ref = tabular_setup(p_refs, copies=copies)
    options = dict(num_generations=scheme.M, prompts_per_step=len(task), steps=steps, beta=beta,
                   kl_estimator="exact", learning_rate=0.05, max_grad_norm=0.0, loss_aggregation="bnpo",
                   eval_steps=10**6, save_steps=10**6, seed=seed)
    options.update(cfg)
    trainer = Trainer(TrainConfig(**options), None, policy=policy, task=task, scheme=scheme)
    return p_ref, train_history(trainer, steps)


#: Variants of the training loop for the fixed-point gap (experiment 3), as TrainConfig overrides.
ABLATIONS: dict[str, dict[str, Any]] = {
    "exact KL, mu=1": {},
    "exact KL, mu=4, clip 0.2": {"num_iterations": 4},
    "exact KL, mu=4, no clip": {"num_iterations": 4, "epsilon_low": 1.0, "epsilon_high": 1e6},
    "k1 KL": {"kl_estimator": "k1"},
    "k2 KL": {"kl_estimator": "k2"},
    "k3 KL": {"kl_estimator": "k3"},
    "k3 KL, mu=4, clip 0.2": {"kl_estimator": "k3", "num_iterations": 4},
}


def fixed_points_vs_beta(size: ValidationSize) -> list[dict[str, Any]]:
    """Measured stationary success (mean of the last 40% of steps) against the estimator-aware flow
    target (and, for reference, the map's attractor), for every (scheme, beta, p_ref); then, for GRPO
    at the middle beta, the gap's dependence on inner steps, the KL estimator and clipping."""
    records = []
    tail = max(1, int(STATIONARY_TAIL * size.fp_steps))
    for name in size.fp_schemes:
        for beta in size.betas:
            scheme, maps = _scheme_and_maps(name, size.M, beta)
            p_ref, hist = _train_tabular(scheme, beta, size.p_refs, size.fp_steps, size.seed)
            measured = hist[-tail:].mean(0)
            for pr in size.p_refs:
                rows = p_ref == pr
                rec = {"experiment": "fixed_points", "scheme": name, "M": size.M, "beta": beta, "p_ref": pr,
                       "kl": PI_REF, "measured": float(measured[rows].mean()),
                       "measured_sd": float(measured[rows].std())}
                for key, build in maps.items():
                    rec[key] = _flow_p(build, pr, PI_REF)
                    rec[key.replace("predicted", "map_attractor")], kind = _attractor_p(build, pr)
                    rec.setdefault("attractor", kind)
                rec["logit_gap"] = _lg(rec["measured"]) - _lg(rec["predicted"])
                records.append(rec)
    beta = size.betas[len(size.betas) // 2]
    scheme, maps = _scheme_and_maps("grpo", size.M, beta)
    for label in size.ablations:
        cfg = ABLATIONS[label]
        kl = treatment_of(cfg.get("kl_estimator", "exact"))
        p_ref, hist = _train_tabular(scheme, beta, size.p_refs, size.fp_steps, size.seed, **cfg)
        measured = hist[-tail:].mean(0)
        for pr in size.p_refs:
            m = float(measured[p_ref == pr].mean())
            pred = _flow_p(maps["predicted"], pr, kl)
            pi_ref = _flow_p(maps["predicted"], pr, PI_REF)
            rec = {"experiment": "fixed_point_ablation", "scheme": "grpo", "beta": beta, "p_ref": pr,
                   "variant": label, "kl": kl, "measured": m, "predicted": pred, "predicted_pi_ref": pi_ref,
                   "logit_gap_pi_ref": _lg(m) - _lg(pi_ref)}
            # kl = "none": the prediction is p -> 1; the gap is stated against the KL(pi||pi_ref) point instead
            rec["logit_gap"] = None if kl == "none" else _lg(m) - _lg(pred)
            rec["rising"] = bool(np.polyfit(np.arange(tail), clipped_logit(hist[-tail:, p_ref == pr].mean(1)), 1)[0] > 0)
            records.append(rec)
    return records


def trajectories(size: ValidationSize) -> list[dict[str, Any]]:
    """Tabular per-prompt trajectories against their theories, with no fitted constant.

    * ``tabular-exact``: the exact KL-regularised step per outer step is one map iteration
      ``p_n = F(p_{n-1})``, ``p_0 = p_ref``;
    * ``tabular-sgd``: sampled groups (GRPO, M), exact KL, plain SGD with learning rate ``lr`` on
      the mean over the ``N`` prompts: the mean-field ODE :func:`rlvrlens.dynamics.softmax_flow`
      with rate ``lr / N`` (exact for the softmax logits), averaged over 4 copies of each prompt.
    """
    M, beta = size.M, 1.0
    scheme = get_scheme("grpo", M)
    records = []
    policy, task, p_ref = tabular_setup(size.p_refs, copies=1)
    ref = policy.clone()
    n = size.traj_steps
    theory = iterate(success_map(scheme, beta, p_ref), p_ref, n).p  # (n + 1, prompts)
    measured = [p_ref.copy()]
    for _ in range(n):
        kl_regularised_step(policy, ref, task, scheme, beta)
        with torch.no_grad():
            measured.append(exact_success(policy, task).double().numpy())
    records += _trajectory_records("tabular-exact", np.array(measured), theory, p_ref, "map iteration")
    lr, copies, steps = 0.5, 4, 4 * n
    p_ref2, hist = _train_tabular(scheme, beta, size.p_refs, steps, size.seed, optim="sgd", copies=copies,
                                  learning_rate=lr)
    per = np.array([hist[:, p_ref2 == pr].mean(1) for pr in size.p_refs]).T
    pol, _, _ = tabular_setup(size.p_refs, copies=1)
    logits = pol.logits.detach().double().numpy()
    right = np.zeros_like(logits, dtype=bool)
    right[:, 0] = True
    ode = softmax_flow(logits, right, scheme, beta, steps, kl=PI_REF, rate=lr / (copies * len(size.p_refs)))
    records += _trajectory_records("tabular-sgd", per, ode, np.array(size.p_refs), "mean-field ODE")
    return records


def two_cycle_training(size: ValidationSize, *, beta: float = 2.0, p_ref: float = 3e-3, eps: float = 1e-5,
                       lr: float = 2.0) -> dict[str, Any]:
    """Mroueh's population GRPO (``M -> infinity``: weight ``Omega(p)`` on ``grad p``) with the exact
    ``KL(pi||pi_ref)``, trained by small SGD steps of the expected update
    (:func:`rlvrlens.training.expected.expected_update_training`) on a tabular policy (one right,
    three wrong answers), in a regime where Mroueh's map has an attracting 2-cycle from ``p_ref``:
    the run settles at the map's fixed point (the flow target, map slope < -1 there), not on the
    cycle or its mean."""
    F = grpo_success_map(beta, p_ref, eps=eps)
    cycle = attractor(F, p_ref)
    target = flow_target(F)
    policy, task, _ = tabular_setup([p_ref], copies=1)
    policy.requires_grad_(True)
    ref = policy.clone()

    def terms(pol):
        return exact_success(pol, task), pol.sequence_kl(ref, task.prompts)

    history = expected_update_training(policy, terms, lambda p: F.gap(special.logit(p)),
                                       TrainConfig(optim="sgd", learning_rate=lr, beta=beta), size.cycle_steps)[:, 0]
    return {"experiment": "two_cycle", "beta": beta, "p_ref": p_ref, "eps": eps, "lr": lr,
            "steps": size.cycle_steps, "map_attractor": cycle.kind, "cycle": [float(v) for v in cycle.p],
            "cycle_mean": float(np.mean(cycle.p)), "fixed_point": target.p,
            "map_slope": float(F.logit_slope(target.logit)), "measured": float(history[-1]),
            "logit_gap": _lg(history[-1]) - target.logit, "history": history.tolist()}


def _trajectory_records(source: str, measured: np.ndarray, theory: np.ndarray, p_ref: np.ndarray,
                        model: str) -> list[dict]:
    rms = logit_rms(measured, theory)
    return [{"experiment": "trajectory", "source": source, "model": model, "prompt": j, "p_ref": float(p_ref[j]),
             "logit_rms": rms, "measured": measured[:, j].tolist(), "predicted": theory[:, j].tolist()}
            for j in range(measured.shape[1])]


def small_beta_horizon(size: ValidationSize, *, beta: float = 0.2, lr: float = 2.0, steps: int = 3000,
                       copies: int = 4) -> list[dict[str, Any]]:
    """Why training misses the stationary point at a small ``beta``: the flow itself is slow there.

    At ``beta = 0.2`` the KL(pi||pi_ref) stationary points of GRPO (M = 4) lie at logit 4.5 to 8
    (``p`` within 1e-2 to 4e-4 of 1), where the logit moves at a speed proportional to ``p (1-p)``:
    the mean-field ODE (:func:`rlvrlens.dynamics.softmax_flow`, exact for SGD on the softmax) needs
    thousands of steps to get there. Plain SGD with sampled groups and the exact KL is compared with
    the ODE at the same steps (the theory of the trajectory) and with the stationary point (the
    theory of the limit); one record per ``p_ref``.
    """
    scheme, maps = _scheme_and_maps("grpo", size.M, beta)
    p_refs = size.p_refs
    p_ref, hist = _train_tabular(scheme, beta, p_refs, steps, size.seed, optim="sgd", learning_rate=lr, copies=copies)
    pol, _, _ = tabular_setup(p_refs, copies=1)
    logits = pol.logits.detach().double().numpy()
    right = np.zeros_like(logits, dtype=bool)
    right[:, 0] = True
    ode = softmax_flow(logits, right, scheme, beta, steps, kl=PI_REF, rate=lr / (copies * len(p_refs)))
    marks = sorted({steps // 10, steps // 3, steps})
    records = []
    for k, pr in enumerate(p_refs):
        measured = hist[:, p_ref == pr].mean(1)
        target = _flow_p(maps["predicted"], pr, PI_REF)
        records.append({"experiment": "small_beta_horizon", "scheme": "grpo", "M": size.M, "beta": beta, "p_ref": pr,
                        "lr": lr, "steps": steps, "marks": marks, "stationary": target,
                        "measured": [float(measured[t]) for t in marks], "ode": [float(ode[t, k]) for t in marks],
                        "logit_gap_ode": _lg(measured[-1]) - _lg(ode[-1, k]),
                        "logit_gap_stationary": _lg(measured[-1]) - _lg(target)})
    return records
