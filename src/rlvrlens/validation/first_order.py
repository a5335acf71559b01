"""Is the first-order coupled prediction exact? One SGD step at several sizes, with common random numbers.

The coupled model predicts one SGD step of the trainer (THEORY.md §4; :mod:`rlvrlens.forecast.coupled`):
``E[Delta p_x] = (lr/N) sum_y K_xy h'_M(p_y) + O(lr^2)``. :func:`step_sweep` measures, per repeat
``r`` and step size ``lr_k``, from the same parameters ``theta_0``:

* the change of exact ``p`` per unit learning rate, ``d_{r,k,x} = Delta p_x / lr_k`` (first order
  plus ``O(lr_k)``);
* the step projected on ``grad p_x``, ``g_{r,x} = <Delta theta, grad p_x> / lr_k`` (the first-order
  term alone: for SGD ``Delta theta = lr g``, so it does not depend on ``lr_k``).

The repeats use **common random numbers**: every step size samples the same groups in repeat ``r``
(one trainer per size, all seeded alike, restored to ``theta_0`` without resetting their random
streams), so the differences between sizes are the second-order term alone and the zero-step limit
is estimated per repeat by a straight-line fit in ``lr`` (then averaged, with its standard error over
repeats). The summary statistic is a common factor ``c = sum_x m_x q_x / sum_x q_x^2`` of the measured
``m`` against the predicted ``q``, computed per repeat: 1 when the first-order prediction is exact.

:func:`sampled_factor` estimates the same common factor in expectation with far less noise and no
step: ``c = sum_y E[u_y] . W / sum_y h'_M(p_y) grad p_y . W`` with ``u_y = (1/M) sum_i Z_i grad log
pi(y_i|x_y)`` the update of prompt ``y``'s group and ``W = sum_x q_x grad p_x`` (for SGD
``Delta theta = (lr/N) sum_y u_y``, so ``sum_x q_x E[Delta p_x] / lr = (1/N) sum_y E[u_y] . W + O(lr)``).
Each prompt's groups are sampled on their own, many of them, and projected on ``W`` by central
differences (:func:`rlvrlens.forecast.probes.directional_scores`). It also checks, completion by
completion, that the verifier rewards exactly the token sequences the exact ``p`` sums over: with the
sampler drawing from ``pi`` these two are all that Davis & Recht's identity needs, so a factor other
than 1 would have to show here.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from rlvrlens.forecast.coupled import predicted_change
from rlvrlens.forecast.probes import directional_scores, kernel, project, success_jacobian
from rlvrlens.objectives import WeightScheme, dh
from rlvrlens.training.enumeration import accepted_sequences
from rlvrlens.training.policy import trainable_parameters
from rlvrlens.training.success import exact_success
from rlvrlens.training.task import Task
from rlvrlens.training.trainer import Trainer
from rlvrlens.validation.identity import completion_keys, distinct_completions
from rlvrlens.validation.setups import theory_config


def _flat(policy) -> np.ndarray:
    return torch.cat([q.detach().flatten() for q in trainable_parameters(policy)]).double().cpu().numpy()


def common_factor(measured: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """``sum_x m_x q_x / sum_x q_x^2`` along the last axis: the factor by which the measured change
    is the predicted one (least squares through the origin).

    >>> common_factor(np.array([[2.0, 4.0], [1.0, 2.0]]), np.array([1.0, 2.0])).tolist()
    [2.0, 1.0]
    """
    return (measured * predicted).sum(-1) / float((predicted ** 2).sum())


def step_sweep(policy, task: Task, scheme: WeightScheme, *, targets: Sequence[float], repeats: int,
               seed: int = 0, label: str = "") -> list[dict[str, Any]]:
    """One SGD step of the trainer at each predicted largest ``|Delta p|`` in ``targets``, ``repeats``
    times from the same parameters with common random numbers (module docstring).

    Parameters
    ----------
    policy : Policy
        Left as it was (every step is undone).
    task : Task
        Enumerable (exact ``p``); every prompt is in every step.
    scheme : WeightScheme
    targets : sequence of float
        Predicted largest ``|Delta p|`` of a step; the learning rates follow from the kernel.
    repeats : int
    seed : int
    label : str
        Names the prompts' family in the records.

    Returns
    -------
    list of dict
        One ``first_order`` record per target (``lr``, per-prompt ``measured``/``measured_se`` of
        ``Delta p / lr``, ``predicted``, the common factor ``ratio`` and ``ratio_se``), one
        ``first_order_projected`` record (the step projected on ``grad p``), and one
        ``first_order_limit`` record (the zero-step extrapolation of the common factor).
    """
    p0, G = success_jacobian(policy, task)
    K = kernel(G)
    unit = predicted_change(K, scheme, p0, 1.0)  # predicted Delta p per unit learning rate
    lrs = [float(t / np.abs(unit).max()) for t in targets]
    trainers = [Trainer(theory_config(task, scheme, lr=lr, seed=seed), policy=policy, task=task, scheme=scheme)
                for lr in lrs]
    starts = [tr.snapshot() for tr in trainers]
    theta0 = _flat(policy)
    measured = np.zeros((repeats, len(lrs), len(p0)))
    projected = np.zeros((repeats, len(lrs), len(p0)))
    for r in range(repeats):
        for k, (tr, lr) in enumerate(zip(trainers, lrs)):
            tr.train(1)
            with torch.no_grad():
                measured[r, k] = (exact_success(policy, task).double().cpu().numpy() - p0) / lr
                projected[r, k] = project(G, _flat(policy) - theta0) / lr
            tr.restore(starts[k], rng=False)  # theta_0 again; the random stream goes on in lockstep
    factors = common_factor(measured, unit)                      # (repeats, sizes)
    proj = common_factor(projected.mean(1), unit)                # (repeats,)
    steps = np.asarray(lrs)
    design = np.stack([np.ones_like(steps), steps], axis=1)
    intercepts = np.linalg.lstsq(design, factors.T, rcond=None)[0][0]  # per repeat: the factor at lr -> 0
    n = np.sqrt(repeats)
    records = [{"experiment": "first_order", "family": label, "target": float(t), "lr": lr, "repeats": repeats,
                "prompts": len(p0), "p": p0.tolist(), "predicted": unit.tolist(),
                "measured": measured[:, k].mean(0).tolist(), "measured_se": (measured[:, k].std(0, ddof=1) / n).tolist(),
                "ratio": float(factors[:, k].mean()), "ratio_se": float(factors[:, k].std(ddof=1) / n)}
               for k, (t, lr) in enumerate(zip(targets, lrs))]
    records.append({"experiment": "first_order_projected", "family": label, "repeats": repeats, "prompts": len(p0),
                    "ratio": float(proj.mean()), "ratio_se": float(proj.std(ddof=1) / n),
                    "spread_between_sizes": float(np.abs(projected - projected[:, :1]).max())})
    records.append({"experiment": "first_order_limit", "family": label, "repeats": repeats, "prompts": len(p0),
                    "targets": [float(t) for t in targets], "lrs": lrs,
                    "ratio": float(intercepts.mean()), "ratio_se": float(intercepts.std(ddof=1) / n),
                    "z": float((intercepts.mean() - 1) / (intercepts.std(ddof=1) / n))})
    return records


#: Groups sampled per generation call (and scored together): SmolLM2's KV cache for 384 groups of 8 at
#: once took the committed run to a 22.7 GB peak.
SAMPLE_GROUPS = 64


def _sampled_scores(policy, task: Task, y: int, M: int, groups: int, generator: torch.Generator,
                    directions: Sequence[Sequence[torch.Tensor]], eps: float):
    """``groups`` groups of ``M`` sampled for prompt ``y``, :data:`SAMPLE_GROUPS` at a time: rewards
    ``(groups, M)``, each answer's directional scores ``(groups * M, len(directions))`` (computed once
    per distinct completion), the answers on which the verifier and the enumerated accepted set
    disagree, the number of distinct completions, and the first call's distinct completions with
    their scores along the first direction (for the check against autograd)."""
    accepted = set(accepted_sequences(policy.tokenizer, task.accepted(y), task.max_new_tokens))
    cache: dict[tuple, np.ndarray] = {}
    rewards, scores, mismatches, checked = [], [], 0, None
    for start in range(0, groups, SAMPLE_GROUPS):
        n = min(SAMPLE_GROUPS, groups - start)
        rollout = policy.sample([task.prompts[y]] * n, M, generator=generator, max_new_tokens=task.max_new_tokens)
        r = task.rewards(rollout.prompts, rollout.texts)
        keys = completion_keys(rollout)
        mismatches += int(sum((k[:-1] in accepted) != bool(v) for k, v in zip(keys, r)))  # k[:-1]: the token ids
        new = [row for row in distinct_completions(rollout)[1] if keys[row] not in cache]
        if new:
            part = rollout.select(new)
            values = np.stack([directional_scores(policy, part, d, eps=eps) for d in directions], axis=1)
            cache.update(zip((keys[row] for row in new), values))
            checked = checked or (part, values[:, 0])
        rewards.append(r.reshape(n, M))
        scores.append(np.stack([cache[k] for k in keys]))
    return np.concatenate(rewards), np.concatenate(scores), mismatches, len(cache), checked


def _direction(vector: np.ndarray, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """A flat vector as one tensor per parameter, scaled to unit norm."""
    unit = torch.as_tensor(vector / np.linalg.norm(vector), dtype=torch.float32)
    return [b.view_as(q).to(q.device) for b, q in zip(torch.split(unit, [q.numel() for q in params]), params)]


def sampled_factor(policy, task: Task, scheme: WeightScheme, *, groups: int, generator: torch.Generator,
                   eps: float = 1e-3, check: int = 2, label: str = "") -> list[dict[str, Any]]:
    """The common factor of the coupled first-order prediction, from ``groups`` sampled groups per
    prompt and no step (module docstring): per prompt ``y``, ``s_{y,g} = <u_{y,g}, W> / |W|``
    with predicted mean ``h'_M(p_y) <grad p_y, W> / |W|``, and the same on ``grad p_y`` itself.

    Parameters
    ----------
    policy : CausalLMPolicy
        Left as it was.
    task : Task
        Enumerable (exact ``p``) and with the tokenizer's accepted sequences (a causal LM's task).
    scheme : WeightScheme
        Its ``M`` is the group size.
    groups : int
        Groups sampled per prompt (``>= 2``).
    generator : torch.Generator
    eps : float
        Central-difference step of the directional scores.
    check : int
        Distinct completions per prompt whose central difference is checked against autograd
        (``fd_rel_error``: the largest difference relative to the larger of the exact value and the
        RMS score).
    label : str
        Names the prompts' family in the records.

    Returns
    -------
    list of dict
        One ``first_order_sampled_prompt`` record per prompt (``ratio``/``ratio_se`` on its own
        ``grad p``, the contribution to the common factor, ``mismatches``: completions the verifier
        and the enumerated accepted set disagree on) and one ``first_order_sampled`` record: the
        common factor ``ratio`` with ``ratio_se`` (prompts independent), ``z`` and the totals. ``z``
        is NaN where every sampled group had equal rewards (no spread, no test).

    Raises
    ------
    ValueError
        If ``groups < 2``, or the prediction is zero on every prompt.

    Examples
    --------
    >>> from rlvrlens.training.policy import CausalLMPolicy
    >>> from rlvrlens.training.tasks import modular_arithmetic
    >>> from rlvrlens.objectives import get_scheme
    >>> pol = CausalLMPolicy.from_config(n_layer=1, width=16, n_head=2, seed=0)
    >>> recs = sampled_factor(pol, modular_arithmetic(3), get_scheme("grpo", 4), groups=8,
    ...                       generator=torch.Generator().manual_seed(0))
    >>> recs[-1]["experiment"], recs[-1]["mismatches"]
    ('first_order_sampled', 0)
    """
    if groups < 2:
        raise ValueError(f"groups must be an integer >= 2 (a standard error needs two groups), got {groups!r}")
    params = trainable_parameters(policy)
    p0, G = success_jacobian(policy, task)
    unit = predicted_change(kernel(G), scheme, p0, 1.0)
    W = unit.astype(G.dtype) @ G
    w_dir = _direction(W, params)
    on_w = project(G, W) / np.linalg.norm(W)  # <grad p_y, W> / |W|
    records, num, var, den, total, mismatched, fd_err = [], 0.0, 0.0, 0.0, 0, 0, 0.0
    for y in range(len(task)):
        own = G[y].astype(np.float64)
        rewards, scores, mismatches, n_distinct, checked = _sampled_scores(
            policy, task, y, scheme.M, groups, generator, [w_dir, _direction(own, params)], eps)
        Z = scheme.weights(rewards)
        s_w, s_own = ((Z[..., None] * scores.reshape(groups, scheme.M, 2)).mean(1)).T  # per group <u_g, .>
        slope = float(dh(scheme, p0[y]))
        sub, d_w = checked
        for k in range(min(check, len(sub))):  # the central difference against autograd, along W
            grads = torch.autograd.grad(policy.token_logprobs(sub.select([k]))[0].sum(), params, allow_unused=True)
            exact = float(sum((g.double() * v.double()).sum() for g, v in zip(grads, w_dir) if g is not None))
            scale = max(abs(exact), float(np.sqrt(np.mean(d_w ** 2))), 1e-12)  # near-zero scores: the typical size
            fd_err = max(fd_err, abs(float(d_w[k]) - exact) / scale)
        own_target = slope * float(np.linalg.norm(own))
        own_se = float(s_own.std(ddof=1) / np.sqrt(groups))
        records.append({"experiment": "first_order_sampled_prompt", "family": label, "prompt": y, "p": float(p0[y]),
                        "groups": groups, "M": scheme.M, "distinct": n_distinct, "accuracy": float(rewards.mean()),
                        "mismatches": mismatches, "ratio": float(s_own.mean() / own_target) if own_target else float("nan"),
                        "ratio_se": own_se / abs(own_target) if own_target else float("nan"),
                        "z": float((s_own.mean() - own_target) / own_se) if own_se > 0 else float("nan"),
                        "on_w": float(s_w.mean()), "on_w_se": float(s_w.std(ddof=1) / np.sqrt(groups)),
                        "on_w_predicted": slope * float(on_w[y])})
        num += float(s_w.mean())
        var += float(s_w.var(ddof=1) / groups)
        den += slope * float(on_w[y])
        total += rewards.size
        mismatched += mismatches
    if den == 0:
        raise ValueError("the predicted first-order change is zero on every prompt (h'_M(p) <grad p, W> = 0); "
                         "no factor to measure")
    se = float(np.sqrt(var) / abs(den))
    records.append({"experiment": "first_order_sampled", "family": label, "prompts": len(task), "groups": groups,
                    "M": scheme.M, "scheme": scheme.name, "p": p0.tolist(), "ratio": num / den, "ratio_se": se,
                    "z": (num / den - 1) / se if se > 0 else float("nan"), "completions": total, "mismatches": mismatched,
                    "fd_eps": eps, "fd_rel_error": fd_err})
    return records
