"""Fixed points on a transformer, with the sequence-level KL exact (issue 14.4).

The task's answers are single characters followed by EOS (modular arithmetic mod 3), and
completions are bounded to two tokens, so the completion space is enumerable:
``{EOS} ∪ {(y1, y2): y1 != EOS}`` (a second token other than EOS is a truncated completion, as
the sampler's ``max_new_tokens = 2`` makes it) with ``pi(y1, y2) = pi(y1) pi(y2 | y1)``. One
forward pass over the ``V`` one-token continuations of each prompt gives every probability, so
``p_x`` and both KLs are exact and differentiable:

    KL(pi||pi_ref) = KL_1 + sum_{y1 != EOS} pi(y1) KL(pi(.|y1) || pi_ref(.|y1)),

and the same with the roles swapped for KL(pi_ref||pi).

:func:`sampled_fixed_points` is the sampled trainer itself (any transformer, any task with exact
p): Adam, sampled groups, the KL estimated on the sequence's log-ratio.

Training in :func:`train_to_stationarity` is the expected (mean-field) update of the sampled trainer with these penalties:
``loss = -(1/N) sum_x [h'_M(p_x) p_x - beta KL_x]`` with ``h'_M(p_x)`` held fixed (its gradient is
``h'_M(p) grad p``, the expected sampled step; Davis & Recht 2025), so the stationary points are
exactly those of THEORY.md §4 for the forward (exact/k2) or reverse (k3) penalty, and nothing is
sampled: the gap to the prediction is the network's (coupling, capacity, horizon), not noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import special

from rlvrlens.dynamics import ESTIMATOR_KL, flow_target, success_map
from rlvrlens.objectives import WeightScheme, dh
from rlvrlens.training.policy import CausalLMPolicy
from rlvrlens.training.tasks import Task

#: |logit measured - logit predicted| under which a prompt counts as at its prediction (horizon).
HORIZON_TOL = 0.15


class EnumeratedTask:
    """Prompts of ``task`` whose accepted answers are single tokens, with the two-token completion space."""

    def __init__(self, policy: CausalLMPolicy, task: Task) -> None:
        tok = policy.tokenizer
        self.eos, self.pad = tok.eos_token_id, tok.pad_token_id
        self.V = len(tok)
        self.prompt_ids = [tok(pr, add_special_tokens=False)["input_ids"] for pr in task.prompts]
        answers = []
        for i in range(len(task)):
            ids = [tok(a, add_special_tokens=False)["input_ids"] for a in task.accepted(i)]
            if any(len(a) != 1 for a in ids):
                raise ValueError(f"prompt {task.prompts[i]!r}: every accepted answer must be one token")
            answers.append(sorted({a[0] for a in ids}))
        self.answers = answers

    def log_probs(self, policy: CausalLMPolicy) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per prompt, ``log pi(y1)`` of shape ``(V,)`` and ``log pi(y2 | y1)`` of shape ``(V, V)``
        (pad excluded: -inf, as the policy scores it)."""
        first, second = [], []
        for ids in self.prompt_ids:  # the prompt once, then its V one-token continuations on its cache
            out = policy.model(input_ids=torch.tensor([ids], device=policy.device), use_cache=True)
            cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
            cache.batch_select_indices(torch.zeros(self.V, dtype=torch.long, device=policy.device))
            nxt = policy.model(input_ids=torch.arange(self.V, device=policy.device)[:, None],
                               position_ids=torch.full((self.V, 1), len(ids), device=policy.device),
                               use_cache=True, **{policy._cache_kw: cache})
            logits = torch.cat([out.logits[0, -1:], nxt.logits[:, -1]]).float()
            logits[..., self.pad] = float("-inf")
            lp = torch.log_softmax(logits, dim=-1)
            first.append(lp[0])
            second.append(lp[1:])
        return first, second

    def success(self, first, second) -> torch.Tensor:
        """``p_x = sum_{a in C(x)} pi(a) pi(EOS | a)``."""
        return torch.stack([sum(torch.exp(f[a] + s[a, self.eos]) for a in ans)
                            for f, s, ans in zip(first, second, self.answers)])

    def kl(self, first, second, ref_first, ref_second, kind: str = "forward") -> torch.Tensor:
        """Exact sequence KL per prompt: ``forward`` ``KL(pi||pi_ref)`` or ``reverse`` ``KL(pi_ref||pi)``."""
        valid = torch.ones(self.V, dtype=torch.bool)
        valid[self.pad] = False  # never emitted (log-probability -inf): left out, not multiplied by 0
        go_on = valid.clone()
        go_on[self.eos] = False
        out = []
        for f, s, rf, rs in zip(first, second, ref_first, ref_second):
            a1, a2, b1, b2 = (f, s, rf, rs) if kind == "forward" else (rf, rs, f, s)
            k1 = (torch.exp(a1[valid]) * (a1[valid] - b1[valid])).sum()
            c2, d2 = a2[go_on][:, valid], b2[go_on][:, valid]
            k2 = (torch.exp(c2) * (c2 - d2)).sum(-1)
            out.append(k1 + (torch.exp(a1[go_on]) * k2).sum())
        return torch.stack(out)


def train_to_stationarity(policy: CausalLMPolicy, task: Task, scheme: WeightScheme, beta: float, *,
                          kl: str = "forward", steps: int, optimizer: str = "adam", lr: float = 3e-3,
                          adam_beta2: float = 0.999) -> dict[str, Any]:
    """Mean-field training (module docstring) of a trainable copy of ``policy``; the per-prompt
    success history, the per-prompt predictions (:func:`rlvrlens.dynamics.flow_target`) and, at the
    end, each prompt's own and the summed stationarity residual along ``grad p_x``."""
    if kl not in ("forward", "reverse"):
        raise ValueError(f"kl must be 'forward' or 'reverse', got {kl!r}")
    pol = policy.clone(trainable=True)
    ref = policy.clone()
    enum = EnumeratedTask(pol, task)
    with torch.no_grad():
        ref_first, ref_second = enum.log_probs(ref)
    params = [q for q in pol.parameters() if q.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, betas=(0.9, adam_beta2))
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    history = []
    for _ in range(steps + 1):
        first, second = enum.log_probs(pol)
        p = enum.success(first, second)
        history.append(p.detach().double().cpu().numpy())
        if len(history) > steps:
            break
        weight = torch.as_tensor(dh(scheme, history[-1]), dtype=p.dtype, device=p.device)
        penalty = enum.kl(first, second, ref_first, ref_second, kl)
        loss = -(weight * p).mean() + beta * penalty.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    history = np.array(history)
    p_ref = history[0]
    predicted = np.array([flow_target(success_map(scheme, beta, pr), kl).p for pr in p_ref])
    own, total = _residuals(pol, enum, scheme, beta, kl, ref_first, ref_second, params)
    return {"p_ref": p_ref, "history": history, "predicted": predicted, "own_residual": own,
            "coupled_residual": total}


def _residuals(pol, enum, scheme, beta, kl, ref_first, ref_second, params):
    """``<grad p_x, f_x> / |grad p_x|^2`` (own) and ``<grad p_x, sum_y f_y> / |grad p_x|^2`` (coupled), with
    ``f_x = h'(p_x) grad p_x - beta grad KL_x`` the prompt's expected update direction."""
    first, second = enum.log_probs(pol)
    p = enum.success(first, second)
    pen = enum.kl(first, second, ref_first, ref_second, kl)
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
    gap = np.abs(special.logit(np.clip(history, 1e-12, 1 - 1e-12)) - special.logit(predicted)).max(1)
    outside = np.flatnonzero(gap > tol)
    if outside.size == 0:
        return 0
    return None if outside[-1] == len(gap) - 1 else int(outside[-1] + 1)


def lm_fixed_points(policy: CausalLMPolicy, task: Task, schemes: dict[str, WeightScheme], betas, *, steps: int,
                    beta2s=(0.999,), beta2_beta: float = 0.25, beta2_steps: int = 600,
                    reverse: bool = True) -> list[dict[str, Any]]:
    """The sweep of issue 14.4: every (scheme, beta) with Adam (first ``beta2``) for ``steps``; the
    reverse (k3) penalty for the first scheme at the largest beta; and, when several ``beta2s`` are
    given, the first scheme near p = 1 (``beta2_beta``, small) with each of them for ``beta2_steps``
    (Adam's second-moment memory sets how fast the last logits are closed there)."""
    runs = [("sweep", name, beta, "forward", beta2s[0], steps) for name in schemes for beta in betas]
    first = next(iter(schemes))
    if reverse:
        runs.append(("reverse", first, max(betas), "reverse", beta2s[0], steps))
    if len(beta2s) > 1:
        runs += [("beta2", first, beta2_beta, "forward", b2, beta2_steps) for b2 in beta2s]
    records = []
    for part, name, beta, kl, b2, n_steps in runs:
        res = train_to_stationarity(policy, task, schemes[name], beta, kl=kl, steps=n_steps, adam_beta2=b2)
        tail = max(1, n_steps // 10)
        measured = res["history"][-tail:].mean(0)
        marks = sorted({max(1, n_steps // 10), max(1, n_steps // 3), n_steps})
        for x in range(len(measured)):
            gaps = {int(t): float(special.logit(np.clip(res["history"][t, x], 1e-12, 1 - 1e-12))
                                  - special.logit(res["predicted"][x])) for t in marks}
            records.append({
                "experiment": "lm_fixed_points", "part": part, "scheme": name, "beta": beta, "kl": kl, "adam_beta2": b2,
                "prompt": x, "p_ref": float(res["p_ref"][x]), "predicted": float(res["predicted"][x]),
                "measured": float(measured[x]),
                "logit_gap": float(special.logit(measured[x]) - special.logit(res["predicted"][x])),
                "gap_at_step": gaps, "horizon": horizon(res["history"], res["predicted"]), "steps": n_steps,
                "own_residual": float(res["own_residual"][x]), "coupled_residual": float(res["coupled_residual"][x]),
                "history": res["history"][:, x].tolist()})
    return records


#: Fraction of a sampled fixed-point run's evaluations (the last ones) averaged as its stationary p.
STATIONARY_TAIL = 0.4


def sampled_fixed_points(policy, task: Task, scheme: WeightScheme, beta: float, *, estimator: str = "k2",
                         steps: int, lr: float, eval_every: int, seed: int = 0,
                         adam_beta2: float = 0.999) -> list[dict[str, Any]]:
    """Train a copy of ``policy`` with the sampled trainer
    (:func:`rlvrlens.validation.coupling.sampled_trainer` with AdamW, ``M = scheme.M``) and the KL
    penalty ``beta`` estimated by ``estimator`` on the sequence's log-ratio; exact p every
    ``eval_every`` steps. Per prompt: the stationary p (mean of the last :data:`STATIONARY_TAIL` of
    the evaluations, with their standard deviation) against the flow target of its own success map
    (:data:`rlvrlens.dynamics.ESTIMATOR_KL`: k2 forward, k3 reverse; the coupling through shared
    parameters can move the joint stationary point, which the gap then shows), and the horizon."""
    from rlvrlens.validation.coupling import sampled_trainer  # coupling uses this module's EnumeratedTask

    trainer = sampled_trainer(policy.clone(trainable=True), task, scheme, lr=lr, optimizer="adam", seed=seed,
                              adam_beta2=adam_beta2, beta=beta, kl_estimator=estimator)
    trainer.train(steps, success_at=range(0, steps + 1, eval_every))
    evals = [h["step"] for h in trainer.success_history]
    history = np.array([h["p"] for h in trainer.success_history])
    p_ref = history[0]
    kl = ESTIMATOR_KL[estimator]
    predicted = np.array([flow_target(success_map(scheme, beta, float(pr)), kl=kl).p for pr in p_ref])
    tail = history[-max(1, int(round(STATIONARY_TAIL * len(history)))):]
    measured, spread = tail.mean(0), tail.std(0)
    reached = horizon(history, predicted)
    gap = special.logit(np.clip(measured, 1e-12, 1 - 1e-12)) - special.logit(predicted)
    return [{"experiment": "sampled_fixed_points", "scheme": scheme.name, "beta": beta, "estimator": estimator,
             "kl": kl, "prompt": int(x), "p_ref": float(p_ref[x]), "predicted": float(predicted[x]),
             "measured": float(measured[x]), "measured_sd": float(spread[x]), "logit_gap": float(gap[x]),
             "steps": steps, "lr": lr, "adam_beta2": adam_beta2, "eval_steps": evals,
             "horizon": None if reached is None else evals[reached], "history": history[:, x].tolist()}
            for x in range(len(p_ref))]

