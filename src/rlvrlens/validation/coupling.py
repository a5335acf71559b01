"""Prompts coupled through shared parameters: the first-order kernel model against the trainer.

The predictions come from :mod:`rlvrlens.forecast` (``K = G P G^T``, ``Delta p = (lr/N) K h'(p)``,
THEORY.md §4); the measurements from the trainer itself (:class:`rlvrlens.training.Trainer`,
sampled groups, configured by :func:`rlvrlens.validation.setups.theory_config`: Dr. GRPO's
per-sequence sum over 1, so that ``E[update] = h'_M(p) grad p`` exactly, plain SGD).

* :func:`one_step`: from the same state (:meth:`~rlvrlens.training.Trainer.snapshot`), the
  Monte-Carlo mean of the measured ``Delta p_x`` over repeated single steps against the coupled
  and the diagonal prediction (with the KL term when ``beta > 0``);
* :func:`coupled_trajectories`: a run of ``steps`` steps against (i) the coupled model, ``p``
  integrated with ``K`` refreshed every ``refresh`` steps on the run's network (a **nowcast**: it
  reads the run it predicts), (ii) the same with ``K`` diagonal, (iii) each prompt's uncoupled flow
  with its metric frozen where the models start;
* :func:`coupling_scheme`: the scheme whose coupled prediction most reverses a prompt's diagonal one.
"""

from __future__ import annotations

import numpy as np
import torch

from rlvrlens.core.logit import logit_rms
from rlvrlens.forecast.coupled import P_CLIP, coupled_step, predicted_change, uncoupled_flow
from rlvrlens.forecast.probes import kernel, kl_projection, success_jacobian
from rlvrlens.objectives import WeightScheme, get_scheme
from rlvrlens.training.success import exact_success
from rlvrlens.training.task import Task
from rlvrlens.training.trainer import Trainer
from rlvrlens.validation.setups import theory_config

#: Schemes among which :func:`coupling_scheme` picks the one with the strongest predicted sign flip.
COUPLING_SCHEMES = ("grpo", "rloo", "reinforce", "raft")


def coupling_scheme(policy, task: Task, M: int) -> tuple[WeightScheme, np.ndarray, np.ndarray]:
    """``(scheme, K, p)``: of :data:`COUPLING_SCHEMES`, the one whose coupled one-step prediction most
    reverses a prompt's diagonal one (GRPO if none does), with the SGD kernel and exact ``p``."""
    p, G = success_jacobian(policy, task)
    K = kernel(G)
    best, flip = get_scheme("grpo", M), 0.0
    for name in COUPLING_SCHEMES:
        scheme = get_scheme(name, M)
        full = predicted_change(K, scheme, p, 1.0)
        diag = predicted_change(np.diag(np.diag(K)), scheme, p, 1.0)
        score = float(np.max(-full * np.sign(diag) / np.abs(full).max()))
        if score > flip:
            best, flip = scheme, score
    return best, K, p


def one_step(policy, task: Task, scheme: WeightScheme, *, lr: float, repeats: int, seed: int = 0,
             beta: float = 0.0, ref=None) -> list[dict]:
    """Repeat one SGD step of the trainer ``repeats`` times from the same state; per prompt the mean
    measured ``Delta p`` (exact p before and after) with its standard error, against the coupled and
    the diagonal prediction. With ``beta > 0`` the trainer adds k2 on the sequence towards ``ref`` and
    both predictions the KL term (:func:`rlvrlens.forecast.probes.kl_projection`; the diagonal one
    only each prompt's own). ``policy`` is left as it was."""
    p0, G = success_jacobian(policy, task)
    K = kernel(G)
    pred = predicted_change(K, scheme, p0, lr)
    pred_diag = predicted_change(np.diag(np.diag(K)), scheme, p0, lr)
    if beta > 0:
        if ref is None:
            raise ValueError("beta > 0 needs ref, the reference policy of the penalty")
        C = kl_projection(policy, ref, task, G)
        pred = predicted_change(K, scheme, p0, lr, kl=C, beta=beta)
        pred_diag = predicted_change(np.diag(np.diag(K)), scheme, p0, lr, kl=np.diag(np.diag(C)), beta=beta)
    trainer = Trainer(theory_config(task, scheme, lr=lr, seed=seed, beta=beta), policy=policy, task=task,
                      scheme=scheme, ref=ref if beta > 0 else None)
    start = trainer.snapshot()
    deltas = []
    for _ in range(repeats):
        trainer.train(1)
        with torch.no_grad():
            deltas.append(exact_success(policy, task).double().cpu().numpy() - p0)
        trainer.restore(start, rng=False)  # the same parameters, new samples
    deltas = np.array(deltas)
    mean, se = deltas.mean(0), deltas.std(0, ddof=1) / np.sqrt(repeats)
    norms = np.sqrt(np.diag(K))
    cos = K / np.outer(norms, norms)
    return [{"experiment": "coupling_one_step", "prompt": int(x), "p": float(p0[x]), "lr": lr, "repeats": repeats,
             "beta": beta,
             "measured": float(mean[x]), "measured_se": float(se[x]), "predicted": float(pred[x]),
             "predicted_diagonal": float(pred_diag[x]), "ratio": float(mean[x] / pred[x]),
             "z": float((mean[x] - pred[x]) / se[x]), "z_diagonal": float((mean[x] - pred_diag[x]) / se[x]),
             "cosines": [float(c) for c in cos[x]]} for x in range(len(p0))]


def coupled_trajectories(policy, task: Task, scheme: WeightScheme, *, lr: float, steps: int, refresh: int,
                         optim: str = "sgd", seed: int = 0, label: str = "sgd",
                         adam_beta2: float = 0.999) -> list[dict]:
    """Train ``policy`` ``steps`` steps (sampled groups, exact p recorded every step) and integrate the
    three models alongside; one record per prompt with the three logit RMS values over the run.

    The coupled model is a nowcast: ``K`` is re-measured on the run's own network every ``refresh``
    steps (with Adam, ``K = G P G^T`` with the optimiser's current preconditioner, which exists only
    after the first, sign-like step: the models then start from the measured ``p`` after step 1)."""
    trainer = Trainer(theory_config(task, scheme, lr=lr, optim=optim, seed=seed, adam_beta2=adam_beta2),
                      policy=policy, task=task, scheme=scheme)
    p0, G0 = success_jacobian(policy, task)
    K0 = kernel(G0)
    state = {"K": K0, "coupled": [p0.copy()], "diagonal": [p0.copy()], "start": (p0.copy(), K0)}
    start = 0 if optim == "sgd" else 1

    def refresh_kernel(trainer_) -> None:
        _, G = success_jacobian(trainer_.policy, task)
        state["K"] = kernel(G, trainer_.preconditioner())

    def advance(trainer_, metrics) -> None:
        if trainer_.step == start:  # Adam: restart the models at the measured point
            p_now = np.array(trainer_.evaluate()["p"])
            state["coupled"] = [p0.copy(), p_now]
            state["diagonal"] = [p0.copy(), p_now]
            refresh_kernel(trainer_)
            state["start"] = (p_now, state["K"])
            return
        K = state["K"]
        for name, kern in (("coupled", K), ("diagonal", np.diag(np.diag(K)))):
            state[name].append(coupled_step(state[name][-1], kern, scheme, lr))
        if trainer_.step % refresh == 0:
            refresh_kernel(trainer_)

    trainer.train(steps, callbacks=[advance], success_at=range(steps + 1))
    measured = np.array([h["p"] for h in trainer.success_history])
    p_s, K_s = state["start"]
    alone = np.concatenate([p0[None]] * start + [uncoupled_flow(scheme, p_s, K_s, lr, steps - start)])
    models = {"coupled": np.array(state["coupled"]), "diagonal": np.array(state["diagonal"]), "uncoupled": alone}
    rms = {k: logit_rms(measured, v, P_CLIP) for k, v in models.items()}
    N = len(p0)
    return [{"experiment": "coupling_trajectory", "run": label, "optimizer": optim, "prompt": int(x),
             "p_ref": float(p0[x]), "lr": lr, "steps": steps, "refresh": refresh, "prompts": N,
             "measured": measured[:, x].tolist(), **{k: v[:, x].tolist() for k, v in models.items()},
             **{f"logit_rms_{k}": v for k, v in rms.items()}} for x in range(N)]
