"""Forecast a run before it starts: probe the starting model once, integrate the coupled model.

:func:`probe` measures the starting policy and nothing else: each prompt's exact success ``p_x`` and
gradient ``grad p_x``, and ``batches`` stochastic gradients of the run's own loss
(:meth:`rlvrlens.training.Trainer.stochastic_gradient`, no update), whose second moment is the
preconditioner Adam will use. :func:`forecast` integrates the coupled first-order model from step 0
for the run's :class:`~rlvrlens.training.TrainConfig`, with a band from the probe's own sampling
error and the run's sampling noise, next to the baselines (``K`` diagonal: each prompt alone; naive:
``p`` stays). Nothing is read from the run it predicts.

**The model** (THEORY.md §4; logits ``x_x = logit p_x``, ``s_x = p_x (1 - p_x)``). The expected
descent gradient of the run's loss is ``-(kappa/N) sum_y e_y(x_y) grad x_y`` with the drift

    e_y(x) = p q (h'_M(p) - beta D'_y(p))      (:func:`rlvrlens.dynamics.velocity`)

where ``D'`` is the KL term's derivative along the success direction on the two-class manifold
(``x - x_ref`` for ``KL(pi||pi_ref)``, ``(p - p_ref)/(p q)`` for ``KL(pi_ref||pi)``, 0 for k1) and
``kappa`` the loss's factor on the theory's estimator (``1/C`` for ``seq-sum-constant``, the inverse
mean completion length for ``dapo``/``bnpo``, the mean inverse length for ``seq-mean-token-mean``,
measured by the probe). One optimiser step ``t`` (learning rate ``lr_t`` of the schedule) moves

    SGD:    Delta x_x = lr_t (kappa/N) sum_y L_xy e_y - lr_t wd <grad x_x, theta_0>
    Adam:   Delta x_x = lr_t c(t) (1/N) sum_y L^P_xy m_hat_y(t) - lr_t wd <grad x_x, theta_0>   (AdamW)

with ``L_xy = <grad x_x, P grad x_y>`` (``P`` = 1 for SGD, ``1/(sqrt(E[g^2]) + eps)`` for Adam),
``m_hat_y(t)`` the bias-corrected ``beta1``-average of ``kappa e_y`` over steps 1..t (momentum as a
lag of the drift) and ``c(t)`` Adam's small-signal gain (:func:`rlvrlens.forecast.adam.adam_gain`).
The logit gradients ``grad x`` (so ``L``) are frozen at step 0 and ``p q`` follows the model: the
kernel ``K = s s^T L`` is propagated by the model itself.

**Propagated** (:func:`propagate`): ``grad x`` frozen over a whole run misses where ``x(theta)`` bends
(prompts that compete for the same parameters saturate together). Every few steps a copy of the
starting model is stepped by the model's own expected update (one backward pass; Adam's move bounded
per coordinate by its largest step, ``lr``) and ``p`` is re-measured exactly there: still a forecast,
as nothing of the run is read, at the price of an exact-p pass and a backward pass per segment.

The run's noise moves ``x`` too: its random walk (Adam moves every coordinate by about ``lr`` a
step, whatever the signal) meets the curvature of ``logit p`` at second order, a drift
``lr_t^2 diffusion_x / 2`` per step (:class:`Probe`); it is what makes a weak prompt fall while its
mean gradient says rise.

Exact: the schedule (warm-up, linear decay), the bias corrections, ``beta1``'s lag, decoupled
(``adamw``) or L2 (``adam``, ``sgd``) weight decay, the loss's scale, the scheme's ``h'_M`` and the
KL treatment's stationary points (:mod:`rlvrlens.core.kl`). Approximate: first order in each step;
``grad x`` frozen; Adam's ``v`` frozen at the probe's ``E[g^2]`` and its small-signal gain (the
sign-like first steps: ``c(1) = 0.80``); the KL gradient along the success direction only;
gradient-norm clipping (a factor from the probe for SGD, ignored for Adam, which is scale-invariant
but for ``eps``). Not modelled (refused or noted): temperature or top-p other than 1,
``num_iterations > 1`` (the clipped inner epochs), per-token KL estimators for multi-token answers
(modelled as the sequence treatment).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import torch
from scipy import special

from rlvrlens.core.checks import check_int
from rlvrlens.core.kl import PI_REF, treatment_of
from rlvrlens.dynamics import kl_reward_map, success_map, velocity
from rlvrlens.explain import estimator_point
from rlvrlens.forecast.adam import adam_gain
from rlvrlens.forecast.probes import CountSketch, kernel
from rlvrlens.objectives import WeightScheme, get_scheme
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.optim import lr_factor
from rlvrlens.training.policy import trainable_parameters
from rlvrlens.training.success import exact_success
from rlvrlens.training.task import Task
from rlvrlens.training.trainer import Trainer

#: Rows of ``grad p`` kept exactly up to this many bytes (``N n`` float32); beyond, a :class:`CountSketch`.
EXACT_KERNEL_BYTES = 1 << 30
#: Sketch size when the kernel is sketched (relative error ~ sqrt(2/k) on the diagonal: 0.6%).
SKETCH_DIM = 1 << 16
#: Adam's preconditioner ``1/sqrt(E[g^2])`` is estimated from the probe's batches; from few it is biased
#: high (``E[1/sqrt(v_J)] > 1/sqrt(E v)``, most where a coordinate's gradient comes from a few prompts:
#: the embedding rows of a prompt no batch sampled). Measured on the tiny transformer (8 prompts, 2 per
#: step, AdamW, 150 steps): the forecast's logit RMS 0.43 from 4 batches, 0.24 from 8, 0.18 from 16,
#: 0.17 from 64 (``benchmarks/`` has no wall-clock claim on it; ``tests/forecast`` checks 16 against 4).
DEFAULT_BATCHES = 16
#: Memory for the probe's stochastic gradients kept whole (rows of ``n`` float32; at least two): the noise
#: and the diffusion are averaged over the kept ones, the others enter the mean and second moment only.
#: SmolLM2-135M keeps 8 (538 MB a row); a model of up to ~70M parameters keeps all of 16.
KEPT_BYTES = 9 << 29
#: Memory for the jackknife of the preconditioner (the band's probe error): the batches are split into
#: ``G`` groups (batch ``j`` in group ``j mod G``), ``G`` as large as ``G`` rows fit here (the groups'
#: second moments, then their preconditioners' roots in place), a divisor of ``batches`` where one fits
#: (at least two, at most ``batches``: leave-one-out); SmolLM2-135M gets 4 groups, a coarser band.
JACKKNIFE_BYTES = 5 << 29
#: A note is added when a prompt misses every probe batch with more than this probability.
MISSED_PROMPT_NOTE = 0.05
#: Steps between re-measurements of ``p`` along the predicted path (:func:`propagate`). Measured on the
#: cpu size's transformer (8 prompts, AdamW lr 1e-4, 300 steps; the run's logit RMS): the frozen forecast
#: 0.69; propagated every 5 / 10 / 20 steps 0.22 / 0.24 / 0.43 (without the per-coordinate bound on
#: Adam's move every 20 steps diverged, 3.6); re-measuring the kernel as well changed nothing (0.214-0.219
#: at 5 steps for kernels every 5 to 50 steps).
PROPAGATE_EVERY = 5
#: The band is the forecast +- this many standard deviations (in logit).
BAND_Z = 2.0
#: ``progress(part, done, total)``: told after each unit of a probe's work.
Progress = Callable[[str, int, int], None]


def _silent(part: str, done: int, total: int) -> None:
    """No progress report."""


@dataclass(frozen=True, eq=False)
class Probe:
    """What :func:`probe` measured of the starting model (module docstring).

    Attributes
    ----------
    p : ndarray (N,)
        Exact success of each prompt (also ``p_ref`` of a run that starts at ``pi_ref``).
    L : ndarray (N, N)
        ``<grad x_x, P grad x_y>``, the logit kernel under the run's preconditioner.
    L_jackknife : ndarray (G, N, N) or None
        The same with the preconditioner estimated without group ``k`` of the batches (Adam; ``G`` groups,
        :data:`JACKKNIFE_BYTES`): the probe's own error.
    noise : ndarray (N,)
        Standard deviation over the probe's kept batches of ``<grad x_x, P g_j>``: one step's sampling noise.
    decay : ndarray (N,)
        ``<grad x_x, theta_0>`` (decoupled weight decay) or ``<grad x_x, P theta_0>`` (L2 decay).
    diffusion : ndarray (N,)
        ``E[d^T H_x d]`` over the probe's noise directions ``d = P (g_j - mean g)``: the curvature of
        ``x_x = logit p_x`` along the run's noise, measured by central second differences at the scale
        ``lr sqrt(steps)`` the run's random walk reaches. A step's noise moves ``x`` on average by
        ``lr^2 diffusion / 2`` (second order, but the noise is large where the mean is small).
    kappa : float
        The loss's factor on the theory's estimator.
    clip : float
        SGD: the mean factor ``min(1, max_grad_norm / |g|)`` of gradient clipping (1 otherwise).
    signal_fraction : float
        ``sum mu^2 / sum E[g^2]`` over the parameters (numerator and denominator unbiased): small means Adam's small-signal gain applies.
    batches, sketch : int or None
    seconds : dict
        Time of each part of the probe.
    notes : tuple of str
        What the forecast approximates or leaves out for this configuration.
    precond : torch.Tensor (n,) or None
        Adam's preconditioner ``1/(sqrt(E[g^2]) + eps)`` from all batches (None for SGD): what a
        propagated forecast (:func:`forecast`'s ``propagate``) steps the parameters with.
    """

    p: np.ndarray
    L: np.ndarray
    L_jackknife: np.ndarray | None
    noise: np.ndarray
    decay: np.ndarray
    diffusion: np.ndarray
    kappa: float
    clip: float
    signal_fraction: float
    batches: int
    sketch: int | None
    seconds: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    precond: torch.Tensor | None = field(default=None, repr=False)


def _check_modelled(config: TrainConfig) -> list[str]:
    if config.temperature != 1.0 or config.top_p != 1.0:
        raise ValueError(f"the forecast models sampling at temperature 1 without top-p (the theory's p); got "
                         f"temperature={config.temperature:g}, top_p={config.top_p:g}: not modelled")
    notes = []
    if config.num_iterations > 1:
        notes.append(f"num_iterations = {config.num_iterations}: only the first (on-policy) epoch of each batch is "
                     "modelled; the clipped inner epochs are not")
    if config.beta > 0 and config.kl_estimator in ("k2", "k3") and config.kl_level == "token":
        notes.append(f"{config.kl_estimator} on each token's log-ratio: modelled as the sequence treatment "
                     f"({treatment_of(config.kl_estimator)}), exact for one-token answers only")
    if config.optim != "sgd" and config.max_grad_norm > 0:
        notes.append(f"max_grad_norm = {config.max_grad_norm:g}: ignored (Adam is invariant to the gradient's scale "
                     "but for eps)")
    if config.loss_aggregation == "seq-mean-token-mean":
        notes.append("loss_aggregation seq-mean-token-mean weighs each answer by 1/length: modelled by the mean "
                     "inverse length (exact when lengths do not depend on the reward)")
    return notes


def logit_kernel(policy, task: Task, precond: np.ndarray | None = None, *, sketch: int | None = None,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``p`` and the kernel ``L = Gx P Gx^T`` of the logits' gradients ``grad x = grad p / (p q)``,
    one prompt's gradient at a time (a model of any size: the rows are sketched by a
    :class:`~rlvrlens.forecast.probes.CountSketch` when ``N n`` float32 exceed :data:`EXACT_KERNEL_BYTES`).

    Parameters
    ----------
    policy : Policy
    task : Task
        Enumerable (exact ``p``).
    precond : ndarray, shape (n,), optional
        The diagonal preconditioner ``P`` (:meth:`rlvrlens.training.Trainer.preconditioner`); identity when None.
    sketch : int, optional
        Sketch size; default as :func:`probe`.
    seed : int

    Returns
    -------
    p : ndarray, shape (N,)
    L : ndarray, shape (N, N)
    """
    params = trainable_parameters(policy)
    n = sum(q.numel() for q in params)
    if sketch is None and len(task) * n * 4 > EXACT_KERNEL_BYTES:
        sketch = SKETCH_DIM
    sk = CountSketch(sketch, seed=seed) if sketch else None
    root = None if precond is None else torch.from_numpy(np.sqrt(np.asarray(precond, dtype=np.float64))).float()
    p, rows = [], []
    for x in range(len(task)):
        px = exact_success(policy, task, [x])[0]
        grad = torch.cat([(gq if gq is not None else torch.zeros_like(q)).flatten().float().cpu() for gq, q in
                          zip(torch.autograd.grad(px, params, allow_unused=True), params)])
        px = float(px.detach())
        p.append(px)
        gx = grad / (px * (1 - px))
        del grad
        if root is not None:
            gx = gx * root
        rows.append(sk(gx) if sk else gx.double().numpy())
    return np.array(p), kernel(np.stack(rows))


def probe(policy, task: Task, config: TrainConfig, *, scheme: WeightScheme | None = None,
          batches: int = DEFAULT_BATCHES,
          sketch: int | None = None, seed: int = 0, progress: Progress | None = None) -> Probe:
    """Measure the starting model for :func:`forecast` (module docstring); the policy is not updated.

    Parameters
    ----------
    policy : Policy
        The model as the run starts (``pi_ref`` too, unless the run is given another reference).
    task : Task
        An enumerable task (exact ``p``), the run's prompts.
    config : TrainConfig
        The run's configuration (the probe samples with it: its ``num_generations``,
        ``prompts_per_step``, aggregation, KL and optimiser).
    scheme : WeightScheme, optional
        Default: the config's.
    batches : int, default :data:`DEFAULT_BATCHES`
        Stochastic gradients drawn (each one step's batch of ``prompts_per_step`` groups). Adam's
        preconditioner is their second moment, biased high from few (:data:`DEFAULT_BATCHES`); the
        first few (:data:`KEPT_BYTES`) also give the noise and the diffusion.
    sketch : int, optional
        Sketch size for ``grad p`` (:class:`~rlvrlens.forecast.probes.CountSketch`); default: exact when
        the ``N`` rows fit in :data:`EXACT_KERNEL_BYTES`, else :data:`SKETCH_DIM`.
    seed : int
    progress : callable, optional
        ``progress(part, done, total)`` after each unit of work: ``"gradients"`` (one batch's
        gradient), ``"grad p"`` (one prompt), ``"diffusion"`` (one noise direction).

    Returns
    -------
    Probe
    """
    tick = progress or _silent
    notes = _check_modelled(config)
    if batches < 2:
        raise ValueError(f"batches must be >= 2 (the noise and the jackknife need two), got {batches}")
    missed = (1 - config.prompts_per_step / len(task)) ** batches if config.prompts_per_step < len(task) else 0.0
    if config.optim != "sgd" and missed > MISSED_PROMPT_NOTE:
        notes.append(f"a prompt is in none of the probe's {batches} batches of {config.prompts_per_step} with "
                     f"probability {missed:.0%}: Adam's preconditioner is then overestimated on the parameters "
                     "only its gradient reaches (raise batches)")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    probe_config = replace(config, seed=seed, steps=max(config.steps, 1), warm_start_steps=0)
    n = sum(q.numel() for q in trainable_parameters(policy))
    adam = config.optim != "sgd"
    kept = min(batches, max(2, KEPT_BYTES // (4 * n)))
    # SGD has no preconditioner to jackknife: one group, the sum of squares alone (the signal fraction)
    groups = _jackknife_groups(batches, max(2, JACKKNIFE_BYTES // (4 * n))) if adam else 1
    if batches % groups:
        notes.append(f"the jackknife's {groups} groups of the {batches} batches are unequal: the band's probe "
                     "error is approximate (a batch count divisible by a group count that fits is exact)")
    with Trainer(probe_config, policy=policy, task=task, scheme=scheme) as trainer:
        stats, g, total, group_sq, sq_norms = [], None, None, None, 0.0
        for j in range(batches):  # streamed: only the first ``kept`` gradients are stored
            gradient, stat = trainer.stochastic_gradient()
            if g is None:
                g = torch.empty((kept, gradient.numel()), dtype=torch.float32)
                total, group_sq = torch.zeros_like(gradient), torch.zeros((groups, gradient.numel()))
            if j < kept:
                g[j] = gradient
            total += gradient
            group_sq[j % groups] += gradient * gradient
            sq_norms += stat["grad_norm"] ** 2  # the float64 norm of this gradient
            stats.append(stat)
            del gradient
            tick("gradients", j + 1, batches)
    seconds["gradients"] = time.perf_counter() - t0
    mean = total / batches
    del total
    total_sq = group_sq.sum(0)
    mean_sq = float(mean.double().norm()) ** 2
    spread = (sq_norms - batches * mean_sq) / (batches - 1)  # sum over parameters of the gradients' variance
    signal = max(0.0, mean_sq - spread / batches) / (float(total_sq.double().sum()) / batches)
    eps = config.adam_epsilon

    def precond(v: torch.Tensor) -> torch.Tensor:
        """``1/(sqrt(v) + eps)``: Adam's preconditioner for the second moment ``v``."""
        return 1.0 / (v.clamp(min=0).sqrt() + eps)

    P = precond(total_sq / batches) if adam else None
    if adam:  # sqrt of P from all but group k, in group k's row: the jackknife, computed once
        for k in range(groups):  # total_sq - group_sq[k] is exactly 0 where only group k's batches reach
            rest = (total_sq - group_sq[k]) / (batches - len(range(k, batches, groups)))
            group_sq[k] = precond(rest).sqrt()
            del rest
    roots = [P.sqrt(), *group_sq] if adam else []
    del total_sq, group_sq
    params = trainable_parameters(policy)
    if sketch is None and len(task) * n * 4 > EXACT_KERNEL_BYTES:
        sketch = SKETCH_DIM
    sk = CountSketch(sketch, seed=seed) if sketch else None
    theta0 = torch.cat([q.detach().flatten().float().cpu() for q in params])
    decay_vec = theta0 * P if (adam and config.optim == "adam") else theta0  # L2 decay goes through P
    t1 = time.perf_counter()
    rows, jrows, p, noise, decay = [], [[] for _ in range(groups if adam else 0)], [], [], []
    for x in range(len(task)):
        px = exact_success(policy, task, [x])[0]
        grad = torch.cat([(gq if gq is not None else torch.zeros_like(q)).flatten().float().cpu() for gq, q in
                          zip(torch.autograd.grad(px, params, allow_unused=True), params)])
        px = float(px.detach())
        gx = grad / (px * (1 - px))  # grad x = grad p / (p q)
        del grad
        p.append(px)
        pgx = gx * P if adam else gx
        noise.append(float(np.std((g @ pgx).double().numpy(), ddof=1)))  # <grad x, P g_j> over the kept batches j
        decay.append(float(torch.dot(gx, decay_vec)))
        del pgx
        scaled = [gx * r for r in roots] if adam else [gx]
        sketched = sk.stack(scaled) if sk else [v.numpy() for v in scaled]
        del scaled
        rows.append(sketched[0])
        for j in range(len(jrows)):
            jrows[j].append(sketched[1 + j])
        tick("grad p", x + 1, len(task))
    seconds["grad p"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    diffusion = _diffusion(policy, task, params, g, mean, batches, P,
                           config.learning_rate * np.sqrt(max(config.steps, 1)), tick)
    seconds["diffusion"] = time.perf_counter() - t2
    L = kernel(np.stack(rows))
    L_jack = np.stack([kernel(np.stack(r)) for r in jrows]) if adam else None
    mean_length = float(np.mean([s["mean_length"] for s in stats]))
    inverse_length = float(np.mean([s["inverse_length"] for s in stats]))
    if config.loss_aggregation == "seq-sum-constant":
        kappa = 1.0 / (config.aggregation_constant or config.max_new_tokens or task.max_new_tokens)
    elif config.loss_aggregation == "seq-mean-token-mean":
        kappa = inverse_length
    else:  # bnpo, dapo: the token mean over the batch
        kappa = 1.0 / mean_length
    clip = 1.0
    if not adam and config.max_grad_norm > 0:
        clip = float(np.mean([min(1.0, config.max_grad_norm / max(s["grad_norm"], 1e-300)) for s in stats]))
    seconds["total"] = time.perf_counter() - t0
    return Probe(np.array(p), L, L_jack, np.array(noise), np.array(decay), diffusion, kappa, clip, signal, batches,
                 sketch, seconds, tuple(notes), precond=P)


def _jackknife_groups(batches: int, room: int) -> int:
    """The most groups that fit in ``room`` rows (at most ``batches``: leave-one-out), preferring a
    divisor of ``batches`` (equal groups: the delete-a-group jackknife is exact).

    >>> _jackknife_groups(16, 5), _jackknife_groups(16, 64), _jackknife_groups(7, 4)
    (4, 16, 4)
    """
    room = min(batches, room)
    return max((d for d in range(2, room + 1) if batches % d == 0), default=room)


@torch.no_grad()
def _diffusion(policy, task: Task, params: list[torch.Tensor], g: torch.Tensor, mean: torch.Tensor, batches: int,
               P: torch.Tensor | None, scale: float, tick: Progress) -> np.ndarray:
    """``mean_j d_j^T H_x d_j`` for ``d_j = P (g_j - mean)`` over the kept gradients ``g_j`` of the
    ``batches`` drawn (unbiased: ``E[(g_j - mean)(g_j - mean)^T] = (1 - 1/batches) Cov g``), each by a central second
    difference of ``logit p`` at step ``scale`` per unit of ``d``; parameters are restored exactly."""
    theta = [q.detach().clone() for q in params]
    sizes = [q.numel() for q in params]
    x0 = special.logit(np.clip(exact_success(policy, task).double().cpu().numpy(), 1e-12, 1 - 1e-12))
    out = []
    try:
        for gj in g:
            d = (gj - mean) * P if P is not None else gj - mean
            second = -2 * x0
            for sign in (1.0, -1.0):
                for q, t, block in zip(params, theta, torch.split(d, sizes)):
                    q.copy_(t + sign * scale * block.view_as(q).to(device=q.device, dtype=q.dtype))
                second = second + special.logit(np.clip(exact_success(policy, task).double().cpu().numpy(),
                                                        1e-12, 1 - 1e-12))
            out.append(second / scale**2)
            tick("diffusion", len(out), len(g))
    finally:
        for q, t in zip(params, theta):
            q.copy_(t)
    return np.mean(out, axis=0) * batches / (batches - 1)


def _own_point(scheme: WeightScheme, config: TrainConfig, p_ref: float) -> float:
    """Where a prompt alone stops under the run's KL treatment (NaN where the treatment has no point)."""
    if config.beta == 0:
        point = estimator_point(scheme, 1.0, p_ref, "k1")
    else:
        point = estimator_point(scheme, config.beta, p_ref, "reward" if config.kl_in_reward else config.kl_estimator)
    return np.nan if point is None else point.p


def _treatment(config: TrainConfig) -> str:
    if config.beta == 0:
        return "none"
    if config.kl_in_reward:
        return "reward"
    return treatment_of(config.kl_estimator)


def integrate(pr: Probe, config: TrainConfig, scheme: WeightScheme, steps: int, *, L: np.ndarray | None = None,
              p_ref: np.ndarray | None = None, start: int = 0) -> np.ndarray:
    """The model's ``p`` at steps ``0..steps`` (module docstring) from the probe's ``p`` with kernel ``L``
    (default the probe's); ``p_ref`` the reference of the KL term (default the probe's ``p``). ``start``
    restarts the model at optimiser step ``start`` of the run (the schedule, Adam's gain and bias
    corrections continue from there; the momentum is taken at its steady state, the current drift).

    Returns
    -------
    ndarray, shape (steps + 1, N)
    """
    return _segment(pr, config, scheme, steps, L=L, p_ref=p_ref, start=start)[0]


def _segment(pr: Probe, config: TrainConfig, scheme: WeightScheme, steps: int, *, L: np.ndarray | None = None,
             p_ref: np.ndarray | None = None, start: int = 0, m: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`integrate`, also returning what a parameter step along the path needs: ``push`` (per
    prompt, the sum over the segment's steps of the coefficient of ``P grad x_y`` in the expected
    update), the momentum at its end, and the diffusion's accumulated logit drift. ``m`` continues a
    momentum from an earlier segment (default: the steady state of the current drift)."""
    L = pr.L if L is None else L
    p_ref = pr.p if p_ref is None else np.asarray(p_ref, dtype=float)
    kind = _treatment(config)
    if kind == "reward":
        success, kind = kl_reward_map(scheme, config.beta, p_ref), PI_REF
    else:
        success = success_map(scheme, config.beta if config.beta > 0 else 1.0, p_ref)
    N = len(pr.p)
    x = special.logit(np.clip(pr.p, 1e-12, 1 - 1e-12))
    adam = config.optim != "sgd"
    b1 = config.adam_beta1
    gains = adam_gain(np.arange(start + 1, start + steps + 1), b1, config.adam_beta2) if adam and steps else np.ones(steps)
    m = pr.kappa * velocity(success, x, kind) * (1 - b1**start) if m is None else m
    push, drifted = np.zeros(N), np.zeros(N)
    out = [special.expit(x)]
    for t in range(start, start + steps):
        lr = config.learning_rate * lr_factor(config, t)
        drift = pr.kappa * velocity(success, x, kind)
        if adam:
            m = b1 * m + (1 - b1) * drift
            coef = lr * gains[t - start] * (m / (1 - b1 ** (t + 1))) / N
        else:
            coef = lr * pr.clip * drift / N
        push += coef
        decay = lr * config.weight_decay * pr.decay * (gains[t - start] if config.optim == "adam" else 1.0)
        noise = 0.5 * lr**2 * (1.0 if adam else pr.clip**2) * pr.diffusion  # the random walk's second-order drift
        drifted += noise
        x = x + L @ coef - decay + noise
        out.append(special.expit(x))
    return np.array(out), push, m, drifted


def propagate(policy, task: Task, pr: Probe, config: TrainConfig, scheme: WeightScheme, steps: int, every: int,
              kernel_every: int | None = None, progress: Progress | None = None) -> np.ndarray:
    """The forecast with its kernel propagated along the predicted path: every ``every`` steps a copy
    of the starting model is stepped by the model's own expected update over the segment and ``p``
    and ``L`` are re-measured there; nothing of the run is read.

    Over a segment the logit gradients are frozen, so the expected parameter update summed over its
    steps is ``P grad_theta sum_y a_y x_y(theta)`` with ``a_y`` the summed coefficients of
    :func:`integrate` (``lr_t c(t) m_hat_y(t) / N`` for Adam, ``lr_t clip kappa e_y / N`` for SGD), and
    weight decay shrinks ``theta`` as the optimiser does (decoupled for ``adamw``, through ``P`` for
    ``adam``'s L2, plain for SGD's). Adam's move is bounded per coordinate by the segment's summed
    learning rate (``|m_hat / sqrt(v_hat)| <= 1``): where the probe's ``v`` is small the kernel would
    move a coordinate further than Adam can. One backward pass moves the copy; :func:`logit_kernel`
    re-measures ``p`` and ``L`` under the probe's preconditioner ``P`` (Adam's ``v`` stays the probe's).
    The momentum carries over between segments, and the diffusion's drift (the run's random walk,
    which a step along the mean does not make) is kept as a logit offset on top of the re-measured ``p``.
    Approximate beyond :func:`integrate`: ``P``, the noise, the diffusion and ``<grad x, theta>``
    (weight decay's push) stay those of step 0.

    Parameters
    ----------
    policy : Policy
        The starting model (not changed: a copy is stepped).
    task : Task
    pr : Probe
        The probe of ``policy`` (:func:`probe`), with its preconditioner for Adam.
    config : TrainConfig
    scheme : WeightScheme
    steps : int
    every : int
        Steps between re-measurements of ``p`` (``>= 1``; :data:`PROPAGATE_EVERY` is the measured choice).
    kernel_every : int, optional
        Steps between re-measurements of the kernel ``L`` too (a multiple of ``every``; ``N`` backward
        passes each); default never: ``L`` stays the probe's.
    progress : callable, optional
        ``progress("propagate", done, total)`` after each re-measurement.

    Returns
    -------
    ndarray, shape (steps + 1, N)
    """
    every = check_int("every", every)
    kernel_every = None if kernel_every is None else check_int("kernel_every", kernel_every)
    if kernel_every is not None and kernel_every % every:
        raise ValueError(f"kernel_every must be a multiple of every ({every}), got {kernel_every}")
    tick = progress or _silent
    adam = config.optim != "sgd"
    if adam and pr.precond is None:
        raise ValueError("the probe has no preconditioner (taken for SGD?): probe with the run's configuration")
    model = policy.clone(trainable=True)
    params = trainable_parameters(model)
    P = pr.precond if adam else None
    current, m, offset, path = pr, None, np.zeros(len(pr.p)), [pr.p]
    starts = list(range(0, steps, every))
    for k, t0 in enumerate(starts):
        n_steps = min(every, steps - t0)
        seg, push, m, drifted = _segment(current, config, scheme, n_steps, p_ref=pr.p, start=t0, m=m)
        path.extend(seg[1:])
        offset = offset + drifted
        if k + 1 == len(starts):
            break
        p_now = exact_success(model, task).clamp(1e-12, 1 - 1e-12)
        target = (torch.as_tensor(push, dtype=p_now.dtype, device=p_now.device)
                  * (torch.log(p_now) - torch.log1p(-p_now))).sum()
        grads = torch.autograd.grad(target, params, allow_unused=True)
        lrs = np.array([config.learning_rate * lr_factor(config, t) for t in range(t0, t0 + n_steps)])
        with torch.no_grad():
            flat = torch.cat([(g if g is not None else torch.zeros_like(q)).flatten().float().cpu()
                              for g, q in zip(grads, params)])
            theta = torch.cat([q.detach().flatten().float().cpu() for q in params])
            step = flat * P if adam else flat
            if adam:  # Adam moves a coordinate by at most about lr a step (|m_hat / sqrt(v_hat)| <= 1)
                bound = float(lrs.sum())
                step.clamp_(-bound, bound)
            if config.weight_decay:
                if config.optim == "adamw":
                    step -= theta * (1 - float(np.prod(1 - lrs * config.weight_decay)))
                elif adam:
                    gains = adam_gain(np.arange(t0 + 1, t0 + n_steps + 1), config.adam_beta1, config.adam_beta2)
                    step -= float((lrs * gains).sum()) * config.weight_decay * P * theta
                else:
                    step -= float(lrs.sum()) * config.weight_decay * theta
            for q, block in zip(params, torch.split(theta + step, [q.numel() for q in params])):
                q.copy_(block.view_as(q).to(device=q.device, dtype=q.dtype))
        del flat, theta, step, grads
        if kernel_every is not None and (t0 + n_steps) % kernel_every == 0:
            p_new, L_new = logit_kernel(model, task, None if P is None else P.numpy(), sketch=pr.sketch)
        else:
            with torch.no_grad():
                p_new, L_new = exact_success(model, task).double().cpu().numpy(), current.L
        x = special.logit(np.clip(p_new, 1e-12, 1 - 1e-12)) + offset
        current = replace(pr, p=special.expit(x), L=L_new, L_jackknife=None)
        tick("propagate", k + 1, len(starts) - 1)
    return np.array(path)


@dataclass(frozen=True, eq=False)
class Forecast:
    """Per-prompt predicted success of a run, before it starts (:func:`forecast`).

    Attributes
    ----------
    steps : ndarray (T+1,)
    p : ndarray (T+1, N)
        The coupled model's forecast.
    low, high : ndarray (T+1, N)
        The band: ``+- BAND_Z`` standard deviations in logit from the probe's error (delete-a-group
        jackknife over ``G`` groups of its batches, :data:`JACKKNIFE_BYTES`) and the run's own sampling noise, accumulated.
    diagonal : ndarray (T+1, N)
        Each prompt alone (``L`` diagonal), the same optimiser model.
    naive : ndarray (T+1, N)
        ``p`` stays where it starts.
    stationary : ndarray (N,)
        Where each prompt's own flow stops under the run's KL treatment (:func:`rlvrlens.explain.estimator_point`).
    probe : Probe
    notes : tuple of str
    propagated : ndarray (T+1, N) or None
        The forecast with ``p`` re-measured along the predicted parameter path (:func:`propagate`), when asked for.
    propagate_seconds : float
        The time :func:`propagate` took (0 when not asked for).
    """

    steps: np.ndarray
    p: np.ndarray
    low: np.ndarray
    high: np.ndarray
    diagonal: np.ndarray
    naive: np.ndarray
    stationary: np.ndarray
    probe: Probe
    notes: tuple[str, ...]
    propagated: np.ndarray | None = None
    propagate_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (lists; non-finite numbers as ``None``)."""
        from rlvrlens.core.records import json_ready

        return json_ready({"steps": self.steps, "p": self.p, "low": self.low, "high": self.high,
                           "diagonal": self.diagonal, "naive": self.naive, "stationary": self.stationary,
                           "propagated": self.propagated,
                           "p_start": self.probe.p, "probe": {"batches": self.probe.batches, "sketch": self.probe.sketch,
                                                              "kappa": self.probe.kappa, "clip": self.probe.clip,
                                                              "signal_fraction": self.probe.signal_fraction,
                                                              "seconds": self.probe.seconds},
                           "notes": list(self.notes)})


def forecast(policy, task: Task, config: TrainConfig, steps: int | None = None, *, scheme: WeightScheme | None = None,
             pr: Probe | None = None, propagate_every: int | None = None, kernel_every: int | None = None,
             **probe_options: Any) -> Forecast:
    """Forecast the run ``config`` of ``policy`` on ``task`` for ``steps`` steps (default ``config.steps``).

    Parameters
    ----------
    policy : Policy
        The starting model (not updated).
    task : Task
        Enumerable (exact ``p``).
    config : TrainConfig
        The run's configuration: scheme, ``num_generations``, ``beta`` and the KL estimator, the
        optimiser, its schedule and weight decay, the loss aggregation.
    steps : int, optional
    scheme : WeightScheme, optional
        Default: the config's (``get_scheme(config.scheme, M, **config.scheme_params)``).
    pr : Probe, optional
        A probe already taken (:func:`probe`); else one is taken with ``probe_options``.
    propagate_every : int, optional
        Also :func:`propagate` the forecast, re-measuring ``p`` along the predicted parameter path every
        this many steps (:data:`PROPAGATE_EVERY` is the measured choice); ``Forecast.propagated``.
    kernel_every : int, optional
        With ``propagate_every``: re-measure the kernel too, every this many steps (default never).

    Returns
    -------
    Forecast

    Examples
    --------
    >>> from rlvrlens.training.policy import TabularPolicy
    >>> from rlvrlens.training.task import Task
    >>> pol = TabularPolicy(["x", "y"], ["a", "b"], torch.tensor([[0.0, 0.0], [1.0, 0.0]])).clone(trainable=True)
    >>> f = forecast(pol, Task("t", ("x", "y"), ("a", "a")), TrainConfig(optim="sgd", learning_rate=0.5,
    ...              num_generations=4, prompts_per_step=2, loss_aggregation="seq-sum-constant",
    ...              aggregation_constant=1.0, max_grad_norm=0.0), steps=10, batches=2)
    >>> bool(np.all(f.p[-1] > f.p[0])), f.p.shape
    (True, (11, 2))
    """
    steps = config.steps if steps is None else steps
    scheme = scheme or get_scheme(config.scheme, config.num_generations, **config.scheme_params)
    pr = pr if pr is not None else probe(policy, task, config, scheme=scheme, **probe_options)
    p = integrate(pr, config, scheme, steps)
    logit = special.logit(np.clip(p, 1e-12, 1 - 1e-12))
    var = np.zeros_like(p)
    if pr.L_jackknife is not None:
        runs = np.stack([special.logit(np.clip(integrate(pr, config, scheme, steps, L=Lj), 1e-12, 1 - 1e-12))
                         for Lj in pr.L_jackknife])
        J = len(runs)
        var += (J - 1) / J * ((runs - runs.mean(0)) ** 2).sum(0)
    lrs = np.array([config.learning_rate * lr_factor(config, t) for t in range(steps)])
    gain = (adam_gain(np.arange(1, steps + 1), config.adam_beta1, config.adam_beta2)
            if config.optim != "sgd" and steps else np.full(steps, pr.clip))
    var[1:] += np.cumsum((lrs * gain)[:, None] ** 2 * (pr.noise ** 2)[None, :], axis=0)  # the run's own noise
    half = BAND_Z * np.sqrt(var)
    diagonal = integrate(pr, config, scheme, steps, L=np.diag(np.diag(pr.L)))
    stationary = np.array([_own_point(scheme, config, float(q)) for q in pr.p])
    t0 = time.perf_counter()
    moved = (propagate(policy, task, pr, config, scheme, steps, propagate_every, kernel_every,
                       progress=probe_options.get("progress")) if propagate_every else None)
    moved_seconds = time.perf_counter() - t0 if propagate_every else 0.0
    return Forecast(np.arange(steps + 1), p, special.expit(logit - half), special.expit(logit + half), diagonal,
                    np.repeat(pr.p[None], steps + 1, axis=0), stationary, pr, pr.notes, moved, moved_seconds)
