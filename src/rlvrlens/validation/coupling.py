"""Prompts coupled through shared parameters: the empirical kernel and what it predicts (issue 14.3).

With ``G`` the matrix whose rows are ``grad p_x`` (exact success by teacher forcing, autograd) and
``P`` the optimiser's preconditioner (identity for SGD; Adam's current ``1/(sqrt(v_hat) + eps)``),
the kernel is ``K = G P G^T`` and one step of expected update ``Delta theta = (lr/N) P sum_y
h'_M(p_y) grad p_y`` (THEORY.md §4) changes the prompts by, to first order,

    Delta p_x = (lr / N) sum_y K_xy h'_M(p_y).

Measured here on the trainer itself (:class:`rlvrlens.training.trainer.Trainer`, sampled groups,
Dr. GRPO's per-sequence sum over the constant 1, so that ``E[update] = h'_M(p) grad p`` exactly;
SGD is plain ``torch.optim.SGD`` swapped in for the trainer's AdamW, ``beta = 0``):

* :func:`one_step`: from the same parameters, the Monte-Carlo mean of the measured ``Delta p_x``
  over repeated single steps against the coupled prediction and against the diagonal one.
* :func:`coupled_trajectories`: a run of ``steps`` steps against (i) the coupled model, ``p``
  integrated with ``K`` refreshed every ``refresh`` steps on the run's network, (ii) the same with
  ``K`` diagonal, (iii) the uncoupled one-dimensional flow of each prompt with its metric
  ``K_xx / (p (1-p))^2`` frozen at step 0 (:func:`rlvrlens.dynamics.flow`).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy import special

from rlvrlens.dynamics import flow, success_map
from rlvrlens.objectives import WeightScheme, dh
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.success import exact_success
from rlvrlens.training.tasks import Task
from rlvrlens.training.trainer import Trainer
from rlvrlens.validation.experiments import trainable_parameters

#: Clip of p before taking logits of trajectories.
_P_CLIP = 1e-9


def _split(vec: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [v.view_as(q) for v, q in zip(torch.split(vec, [q.numel() for q in params]), params)]


def success_jacobian(policy, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """``(p, G)``: exact success of every prompt of ``task`` (float64) and the rows
    ``G[x] = grad_theta p_x`` in the parameters' precision (float32 for a transformer: 8 prompts of
    a 135M-parameter model are 4.3 GB; :func:`kernel` accumulates in float64)."""
    params = trainable_parameters(policy)
    dtype = functools.reduce(torch.promote_types, [q.dtype for q in params])
    sizes = [q.numel() for q in params]
    rows = torch.zeros((len(task), sum(sizes)), dtype=dtype)  # filled in place: no 0.5 GB concatenations
    p_all = []
    for x in range(len(task)):  # one prompt's graph at a time: a large model's graphs do not pile up
        p = exact_success(policy, task, [x])[0]
        grads = torch.autograd.grad(p, params, allow_unused=True)
        for g, block in zip(grads, torch.split(rows[x], sizes)):
            if g is not None:
                block.copy_(g.flatten())
        p_all.append(float(p.detach()))
    rows = rows.numpy()
    return np.array(p_all), rows


def adam_preconditioner(optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> np.ndarray | None:
    """Adam's current diagonal ``1/(sqrt(v_hat) + eps)`` (flattened like the parameters), or ``None``
    before its first step."""
    out = []
    for group in optimizer.param_groups:
        b2, eps = group["betas"][1], group["eps"]
        for q in group["params"]:
            state = optimizer.state.get(q, {})
            if "exp_avg_sq" not in state:
                return None
            step = float(state["step"])
            v_hat = state["exp_avg_sq"].double() / (1 - b2**step)
            out.append((1.0 / (v_hat.sqrt() + eps)).flatten().cpu().numpy())
    order = {id(q): k for k, q in enumerate(q for g in optimizer.param_groups for q in g["params"])}
    flat = [out[order[id(q)]] for q in params]
    return np.concatenate(flat)


def kernel(G: np.ndarray, precond: np.ndarray | None = None, *, chunk: int = 1 << 22) -> np.ndarray:
    """``K = G P G^T`` with ``P = diag(precond)`` (identity when ``None``), accumulated in float64
    over column blocks of ``chunk`` parameters."""
    K = np.zeros((G.shape[0], G.shape[0]))
    for start in range(0, G.shape[1], chunk):
        block = G[:, start:start + chunk].astype(np.float64)
        K += (block if precond is None else block * precond[start:start + chunk]) @ block.T
    return K


def predicted_change(K: np.ndarray, scheme: WeightScheme, p: np.ndarray, lr: float) -> np.ndarray:
    """First-order expected ``Delta p_x = (lr/N) sum_y K_xy h'_M(p_y)``."""
    return lr / len(p) * K @ dh(scheme, p)


def sampled_trainer(policy, task: Task, scheme: WeightScheme, *, lr: float, optimizer: str = "sgd",
                    seed: int = 0, adam_beta2: float = 0.999, beta: float = 0.0, kl_estimator: str = "k2",
                    ref=None) -> Trainer:
    """The trainer configured as the system the theory predicts: every prompt each step, Dr. GRPO's
    per-sequence sum over the constant 1, no clipping of the gradient; ``optimizer`` ``"sgd"``
    replaces the trainer's AdamW (no weight decay) by ``torch.optim.SGD`` (no momentum). With
    ``beta > 0`` the penalty is ``kl_estimator`` on the sequence's log-ratio (k2: expected gradient
    ``grad KL(pi||pi_ref)`` exactly, k3: ``grad KL(pi_ref||pi)``) towards ``ref`` (default: the
    policy as it is now)."""
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    cfg = TrainConfig(num_generations=scheme.M, prompts_per_step=len(task), beta=beta, learning_rate=lr,
                      kl_estimator=kl_estimator, kl_level="sequence" if beta > 0 else "token",
                      loss_aggregation="seq-sum-constant", aggregation_constant=1.0, max_grad_norm=0.0,
                      eval_steps=10**6, save_steps=10**6, seed=seed, max_new_tokens=task.max_new_tokens,
                      adam_beta2=adam_beta2, warm_start_steps=0)
    trainer = Trainer(cfg, None, policy=policy, task=task, scheme=scheme)
    if beta > 0 and ref is not None:
        trainer.ref = ref
    if optimizer == "sgd":
        trainer.optimizer = torch.optim.SGD(policy.parameters(), lr=lr)
    return trainer


def step_size_for(K: np.ndarray, scheme: WeightScheme, p: np.ndarray, target: float,
                  kl: np.ndarray | None = None) -> float:
    """The SGD learning rate whose predicted largest ``|Delta p|`` of one step is ``target``; with
    ``kl`` (``beta sum_y C[x, y]``, :func:`kl_projection`) the largest of the reward term and the KL
    term separately (near their balance the sum is small and the terms' second-order parts are not)."""
    scale = np.abs(predicted_change(K, scheme, p, 1.0))
    if kl is not None:
        scale = np.maximum(scale, np.abs(kl) / len(p))
    return target / float(scale.max())


def kl_projection(policy, ref, task: Task, G: np.ndarray) -> np.ndarray:
    """``C[x, y] = <grad p_x, grad KL(pi_y || pi_ref,y)>`` with the exact sequence KL of the two-token
    completion space (:class:`rlvrlens.validation.lm_fixed_points.EnumeratedTask`): the KL term's
    share of the one-step change, ``-(lr/N) beta sum_y C[x, y]`` (THEORY.md §4). The sampler must
    see the same space: ``task.max_new_tokens`` must be 2."""
    from rlvrlens.validation.lm_fixed_points import EnumeratedTask

    if task.max_new_tokens != 2:
        raise ValueError(f"task.max_new_tokens must be 2 for the exact KL of the two-token completion space, got "
                         f"{task.max_new_tokens} (the sampled k2 would be the gradient of a longer space's KL)")

    params = trainable_parameters(policy)
    enum = EnumeratedTask(policy, task)
    with torch.no_grad():
        rf, rs = enum.log_probs(ref)
    first, second = enum.log_probs(policy)
    kl = enum.kl(first, second, rf, rs, "forward")
    cols = []
    for y in range(len(task)):
        grads = torch.autograd.grad(kl[y], params, retain_graph=y + 1 < len(task), allow_unused=True)
        cols.append(np.concatenate([(g if g is not None else torch.zeros_like(q)).detach().double().cpu().numpy().ravel()
                                    for g, q in zip(grads, params)]))
    return G.astype(np.float64) @ np.stack(cols).T


def one_step(policy, task: Task, scheme: WeightScheme, *, lr: float, repeats: int, seed: int = 0,
             beta: float = 0.0, ref=None) -> list[dict]:
    """Repeat one SGD step of the trainer ``repeats`` times from the same parameters; per prompt the
    mean measured ``Delta p`` (exact p before and after) with its standard error, against the
    coupled and the diagonal prediction. With ``beta > 0`` the trainer adds k2 on the sequence
    towards ``ref`` and both predictions the KL term (:func:`kl_projection`; the diagonal one only
    each prompt's own)."""
    params = trainable_parameters(policy)
    theta = torch.nn.utils.parameters_to_vector(params).detach().clone()
    p0, G = success_jacobian(policy, task)
    K = kernel(G)
    pred = predicted_change(K, scheme, p0, lr)
    pred_diag = predicted_change(np.diag(np.diag(K)), scheme, p0, lr)
    if beta > 0:
        if ref is None:
            raise ValueError("beta > 0 needs ref, the reference policy of the penalty")
        C = kl_projection(policy, ref, task, G)
        pred = pred - lr / len(p0) * beta * C.sum(1)
        pred_diag = pred_diag - lr / len(p0) * beta * np.diag(C)
    trainer = sampled_trainer(policy, task, scheme, lr=lr, seed=seed, beta=beta, ref=ref)
    deltas = []
    for _ in range(repeats):
        trainer.rl_step()
        with torch.no_grad():
            deltas.append(exact_success(policy, task).double().cpu().numpy() - p0)
            for q, v in zip(params, _split(theta, params)):  # copy: the parameters must not alias theta
                q.copy_(v)
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
                         optimizer: str = "sgd", seed: int = 0, label: str = "sgd",
                         adam_beta2: float = 0.999) -> list[dict]:
    """Train ``steps`` steps (sampled groups, exact p recorded every step) and integrate the three
    models alongside; one record per prompt with the three logit RMS values over the run."""
    params = trainable_parameters(policy)
    trainer = sampled_trainer(policy, task, scheme, lr=lr, optimizer=optimizer, seed=seed, adam_beta2=adam_beta2)
    p0, G0 = success_jacobian(policy, task)
    N = len(p0)
    K0 = kernel(G0)
    state = {"K": K0, "coupled": [p0.copy()], "diagonal": [p0.copy()], "start": (p0.copy(), K0)}
    # Adam: P exists only after the optimiser's first step (a sign-like step); the models then start
    # from the measured p after step 1, with K refreshed on the run's network and Adam's current P.
    start = 1 if optimizer == "adam" else 0

    def refresh_kernel(trainer_) -> None:
        _, G = success_jacobian(trainer_.policy, task)
        P = adam_preconditioner(trainer_.optimizer, params) if optimizer == "adam" else None
        state["K"] = kernel(G, P)

    def advance(trainer_, metrics) -> None:
        if trainer_.step == start:  # Adam: restart the models at the measured point
            p_now = trainer_.evaluate()["p"]
            state["coupled"] = [p0.copy(), np.array(p_now)]
            state["diagonal"] = [p0.copy(), np.array(p_now)]
            refresh_kernel(trainer_)
            state["start"] = (np.array(p_now), state["K"])
            return
        K = state["K"]
        for name, kern in (("coupled", K), ("diagonal", np.diag(np.diag(K)))):
            p = state[name][-1]
            state[name].append(np.clip(p + predicted_change(kern, scheme, p, lr), _P_CLIP, 1 - _P_CLIP))
        if trainer_.step % refresh == 0:
            refresh_kernel(trainer_)

    trainer.train(steps, callbacks=[advance], success_at=range(steps + 1))
    measured = np.array([h["p"] for h in trainer.success_history])
    # (iii) the uncoupled flow: each prompt alone, metric K_xx / (p q)^2 frozen where the models start;
    # beta = 0: dx/dt = (lr/N) m_x p q h'(p), the "none" flow of the scheme's gap (beta unused)
    p_s, K_s = state["start"]
    metric = np.diag(K_s) / (p_s * (1 - p_s)) ** 2
    alone = np.stack([flow(success_map(scheme, 1.0, p_s[x]), steps - start, kl="none",
                           rate=lr * metric[x] / N).p for x in range(N)], axis=1)
    alone = np.concatenate([p0[None]] * start + [alone])
    models = {"coupled": np.array(state["coupled"]), "diagonal": np.array(state["diagonal"]), "uncoupled": alone}
    lm = special.logit(np.clip(measured, _P_CLIP, 1 - _P_CLIP))
    rms = {k: float(np.sqrt(np.mean((lm - special.logit(np.clip(v, _P_CLIP, 1 - _P_CLIP))) ** 2)))
           for k, v in models.items()}
    return [{"experiment": "coupling_trajectory", "run": label, "optimizer": optimizer, "prompt": int(x),
             "p_ref": float(p0[x]), "lr": lr, "steps": steps, "refresh": refresh, "prompts": N,
             "measured": measured[:, x].tolist(), **{k: v[:, x].tolist() for k, v in models.items()},
             **{f"logit_rms_{k}": v for k, v in rms.items()}} for x in range(N)]
