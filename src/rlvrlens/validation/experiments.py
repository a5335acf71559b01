"""Theory against measurement on real policies: the experiments behind ``rlvrlens validate``.

1. :func:`expected_step`: the Monte-Carlo mean of ``(1/M) sum_i Z_i grad log pi(y_i|x)`` against
   ``h'_M(p) grad p`` (Davis & Recht 2025, Theorem 1), with the CLT error scale, and the statistic
   projected on ``grad p`` with its power (the smallest relative error in ``h'`` it detects).
2. :func:`relative_speed`: one small parameter step per scheme from the same parameters; the
   measured change of ``p`` relative to REINFORCE's against ``h'_A(p) / h'_REINFORCE(p)``.
3. :func:`fixed_points_vs_beta`: KL-regularised training (tabular policy, sampled groups) to
   convergence, against the estimator-aware prediction (:func:`rlvrlens.dynamics.flow_target`:
   exact/k2 KL -> forward, k3 -> reverse, k1 -> none; THEORY.md §4), with ablations over inner
   steps, KL estimator and clipping.
4. :func:`trajectories`: the exact KL-regularised step is the map, step for step; SGD training is
   the mean-field ODE (:func:`rlvrlens.dynamics.softmax_flow`), with no fitted constant; and
   :func:`two_cycle_training`: where Mroueh's map has a 2-cycle, small steps converge to its fixed point.

The transformer's coupled trajectories are in :mod:`rlvrlens.validation.coupling`, its fixed
points in :mod:`rlvrlens.validation.lm_fixed_points`. Every prediction comes from
:mod:`rlvrlens.objectives` and :mod:`rlvrlens.dynamics`; every measurement from :mod:`rlvrlens.training`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from scipy import special

from rlvrlens.dynamics import (
    ESTIMATOR_KL, attractor, flow_target, grpo_success_map, iterate, softmax_flow, success_map,
)
from rlvrlens.objectives import WeightScheme, design, dh, get_scheme
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.policy import CausalLMPolicy, TabularPolicy
from rlvrlens.training.sft import warm_start
from rlvrlens.training.showcase import SMOLLM2_TASK
from rlvrlens.training.success import exact_success
from rlvrlens.training.tabular import kl_regularised_step
from rlvrlens.training.tasks import Task, modular_arithmetic
from rlvrlens.training.trainer import Trainer


@dataclass(frozen=True)
class ValidationSize:
    """Sizes of the tiny-transformer experiments. ``tiny`` is for tests, ``demo`` for ``make demo``
    (minutes), ``cpu`` the full sweep, ``gpu`` for a lent accelerator (larger model, more prompts
    and groups); the pretrained model's are :class:`RealModelSize`. (The CLI's
    ``--preset``; not a scheme preset of :data:`rlvrlens.objectives.PRESETS`.)"""

    name: str
    n_layer: int = 2
    width: int = 64
    n_head: int = 2
    n_task_prompts: int = 8
    moduli: tuple[int, ...] = (3,)
    warm_start_steps: int = 15
    M: int = 4
    n_prompts: int = 3
    groups: tuple[int, ...] = (64, 256, 1024)
    betas: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)
    p_refs: tuple[float, ...] = (0.05, 0.3, 0.6)
    fp_schemes: tuple[str, ...] = ("grpo", "grpo_population", "dr_grpo", "raft")
    fp_steps: int = 300
    ablations: tuple[str, ...] = ("exact KL, mu=1", "exact KL, mu=4, clip 0.2", "exact KL, mu=4, no clip",
                                  "k1 KL", "k2 KL", "k3 KL", "k3 KL, mu=4, clip 0.2")
    traj_steps: int = 40
    cycle_steps: int = 3000
    coupling_M: int = 8
    coupling_repeats: int = 40
    coupling_steps: int = 100
    coupling_refresh: int = 5
    kl_step_beta: float = 1.0
    kl_move_steps: int = 50
    adam_steps: int = 50
    control_steps: int = 50
    lm_fp_schemes: tuple[str, ...] = ("grpo", "rloo")
    lm_fp_betas: tuple[float, ...] = (1.0, 2.0)
    lm_fp_steps: int = 300
    lm_fp_beta2: tuple[float, ...] = (0.999, 0.99, 0.9)
    lm_fp_beta2_beta: float = 0.25
    lm_fp_beta2_steps: int = 600
    lm_fp_reverse: bool = True
    sampled_fp_estimators: tuple[str, ...] = ("k2", "k3")
    sampled_fp_beta: float = 2.0
    sampled_fp_steps: int = 1000
    sampled_fp_lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"


@dataclass(frozen=True)
class RealModelSize:
    """Sizes of the pretrained-model validation (issue 14.5; :mod:`rlvrlens.validation.real_model`):
    ``pool`` prompts of ``task`` scored exactly, ``n_prompts`` of them spread over (0.02, 0.98) for the
    coupling experiments, ``identity_prompts`` of those for the identity; ``step_targets``: the
    predicted largest ``|Delta p|`` of one SGD step, which sets the learning rate of the one-step
    experiment (one run each: a ratio that moves towards 1 at the smaller step is the second-order
    term) and, the first, of the trajectory. ``fp_*``: the fixed-point sweep (Adam, the sampled KL on
    the sequence's log-ratio, ``fp_prompts`` prompts, every ``fp_beta`` and estimator; empty on the
    CPU: about 10 s a step there, and a run needs on the order of 1000 steps)."""

    name: str
    model: str = "smollm2-135m"
    task: str = SMOLLM2_TASK
    pool: int = 24
    n_prompts: int = 8
    M: int = 8
    identity_prompts: int = 2
    identity_groups: tuple[int, ...] = (64, 256)
    identity_schemes: tuple[str, ...] = ("reinforce", "rloo", "grpo")
    step_targets: tuple[float, ...] = (0.01, 0.0025)
    one_step_repeats: int = 12
    traj_steps: int = 20
    traj_refresh: int = 5
    fp_betas: tuple[float, ...] = ()
    fp_estimators: tuple[str, ...] = ("k2", "k3")
    fp_scheme: str = "grpo"
    fp_prompts: int = 4
    fp_steps: int = 1000
    fp_lr: float = 3e-6
    fp_eval_every: int = 20
    seed: int = 0
    device: str = "cpu"


#: The run sizes of ``rlvrlens validate --preset NAME``: the tiny transformer's (``tiny``, ``demo``,
#: ``cpu``, ``gpu``) and SmolLM2's (``smollm2-cpu``, ``smollm2-gpu``).
VALIDATION_SIZES: dict[str, ValidationSize | RealModelSize] = {
    "tiny": ValidationSize("tiny", groups=(16, 64), n_prompts=2, betas=(0.5, 1.0, 2.0, 4.0, 8.0),
                           p_refs=(0.1, 0.5), fp_schemes=("grpo", "raft"), fp_steps=80, traj_steps=12,
                           ablations=("exact KL, mu=1", "k1 KL", "k3 KL"), cycle_steps=600, coupling_M=4,
                           coupling_repeats=6, coupling_steps=6, coupling_refresh=2, kl_move_steps=5, adam_steps=4,
                           control_steps=4, lm_fp_schemes=("grpo",), lm_fp_betas=(2.0,), lm_fp_steps=20,
                           lm_fp_beta2=(0.999,), sampled_fp_estimators=("k2",), sampled_fp_steps=60),
    "cpu": ValidationSize("cpu"),
    # make demo's size: the cpu experiments with fewer groups, the estimator ablations only and one
    # transformer fixed-point run (the full cpu sweep is 6 runs of 300 steps, about 11 min of CPU)
    "demo": ValidationSize("demo", groups=(256, 1024), ablations=("exact KL, mu=1", "k1 KL", "k2 KL", "k3 KL"),
                           lm_fp_schemes=("grpo",), lm_fp_betas=(1.0,), lm_fp_beta2=(0.999, 0.9), lm_fp_reverse=False,
                           sampled_fp_estimators=("k2",)),
    "gpu": ValidationSize("gpu", n_layer=4, width=256, n_head=4, n_task_prompts=32, moduli=(3, 5, 7),
                          warm_start_steps=80, M=8, n_prompts=8, groups=(256, 1024, 4096, 16384),
                          betas=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0), p_refs=(0.01, 0.05, 0.2, 0.4, 0.6, 0.8),
                          fp_steps=1500, traj_steps=60, coupling_M=16, coupling_repeats=200, coupling_steps=300,
                          adam_steps=300, control_steps=200, lm_fp_schemes=("grpo", "rloo", "raft"),
                          lm_fp_betas=(0.5, 1.0, 2.0, 4.0), lm_fp_steps=5000, lm_fp_beta2_steps=5000,
                          sampled_fp_steps=5000, device="cuda"),
    "smollm2-cpu": RealModelSize("smollm2-cpu"),
    "smollm2-gpu": RealModelSize("smollm2-gpu", pool=64, n_prompts=32, identity_prompts=8,
                                 identity_groups=(256, 1024, 4096), identity_schemes=("reinforce", "rloo", "grpo", "raft"),
                                 one_step_repeats=200, traj_steps=200, traj_refresh=5, fp_betas=(0.5, 1.0, 2.0, 4.0),
                                 fp_prompts=8, device="cuda"),
}


def get_size(name: str, **overrides: Any) -> ValidationSize | RealModelSize:
    """A validation run size by name (:data:`VALIDATION_SIZES`) with optional field overrides."""
    if name not in VALIDATION_SIZES:
        raise ValueError(f"unknown validation preset {name!r}; valid: {', '.join(VALIDATION_SIZES)}")
    return replace(VALIDATION_SIZES[name], **overrides)


def validation_schemes(M: int) -> dict[str, WeightScheme]:
    """The schemes of experiments 1-2: the catalogue's main ones and one designed scheme (log-odds target)."""
    return {
        "reinforce": get_scheme("reinforce", M),
        "rloo": get_scheme("rloo", M),
        "grpo(eps=1e-6)": get_scheme("grpo", M, eps=1e-6),
        "grpo(eps=0.1)": get_scheme("grpo", M, eps=0.1),
        "raft": get_scheme("raft", M),
        "reinforce_rej": get_scheme("reinforce_rej", M),
        "design[logit]": design("log(t/(1-t))", M, split="centred").scheme,
    }


# ------------------------------------------------------------------------------------------------
# a warm-started tiny transformer and its exact-probability task
# ------------------------------------------------------------------------------------------------

@dataclass
class LMSetup:
    policy: CausalLMPolicy
    task: Task
    p: np.ndarray
    prompts: list[int] = field(default_factory=list)


def lm_setup(preset: ValidationSize) -> LMSetup:
    """Build and warm-start the preset's transformer on modular arithmetic (exact success available),
    and choose ``n_prompts`` prompts whose success probabilities spread over (0.05, 0.95)."""
    task = modular_arithmetic(preset.n_task_prompts, moduli=preset.moduli, seed=preset.seed + 1)
    policy = CausalLMPolicy.from_config(n_layer=preset.n_layer, width=preset.width, n_head=preset.n_head,
                                        seed=preset.seed)
    if preset.device != "cpu":
        policy.model.to(preset.device)
    warm_start(policy, task, fraction=1.0, steps=preset.warm_start_steps, lr=3e-3, seed=preset.seed)
    with torch.no_grad():
        p = exact_success(policy, task).double().cpu().numpy()
    return LMSetup(policy, task, p, spread_prompts(p, preset.n_prompts, what="the warm start"))


def spread_prompts(p: np.ndarray, n: int, *, low: float = 0.05, high: float = 0.95, what: str = "the model") -> list[int]:
    """Up to ``n`` prompts whose success probabilities ``p`` lie in ``(low, high)``, spread: those
    closest to evenly spaced quantiles of the interior ones."""
    inside = np.flatnonzero((p > low) & (p < high))
    if inside.size == 0:
        raise RuntimeError(f"{what} left no prompt with success probability in ({low:g}, {high:g})")
    order = inside[np.argsort(p[inside])]
    return [int(i) for i in order[np.unique(np.linspace(0, order.size - 1, n).round().astype(int))]]


def trainable_parameters(policy) -> list[torch.Tensor]:
    """The parameters of ``policy`` that training moves (those that require grad), in order."""
    return [q for q in policy.parameters() if q.requires_grad]


def _flat_grad(scalar: torch.Tensor, params: list[torch.Tensor]) -> np.ndarray:
    grads = torch.autograd.grad(scalar, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(q)).flatten()
                      for g, q in zip(grads, params)]).double().cpu().numpy()


@dataclass
class PromptSample:
    """Groups sampled for one prompt, with the score vectors of its distinct completions.

    ``J[u]`` is ``grad log pi(y_u|x)`` for distinct completion ``u``; ``which[g, i]`` says which one
    answer ``i`` of group ``g`` is. Any scheme's per-group update is then ``C_g @ J`` with
    ``C_g[u] = (1/M) sum_{i: which[g,i]=u} Z_{g,i}``: one backward pass per distinct completion
    serves every scheme and every number of groups.
    """

    prompt: int
    p: float
    grad_p: np.ndarray
    rewards: np.ndarray
    which: np.ndarray
    J: np.ndarray


def distinct_completions(rollout) -> tuple[np.ndarray, list[int]]:
    """``(which, first)``: the index of each row's distinct completion (token ids and whether it
    ended) and, per distinct completion, the first row holding it."""
    keys = [tuple(ids[m.bool()].tolist()) + (bool(f),) for ids, m, f in
            zip(rollout.completion_ids.cpu(), rollout.mask.cpu(), rollout.finished.cpu())]
    index: dict[tuple, int] = {}
    which = np.array([index.setdefault(k, len(index)) for k in keys])
    first = {u: row for row, u in reversed(list(enumerate(which)))}
    return which, [first[u] for u in range(len(index))]


def sample_prompt(setup: LMSetup, i: int, M: int, n_groups: int, generator: torch.Generator) -> PromptSample:
    policy, task = setup.policy, setup.task
    params = trainable_parameters(policy)
    p = exact_success(policy, task, [i])[0]
    grad_p = _flat_grad(p, params)
    rollout = policy.sample([task.prompts[i]] * n_groups, M, generator=generator,
                            max_new_tokens=task.max_new_tokens)
    rewards = task.rewards(rollout.prompts, rollout.texts).reshape(n_groups, M)
    which, first = distinct_completions(rollout)
    J = np.stack([_flat_grad(policy.token_logprobs(rollout.select([row]))[0].sum(), params) for row in first])
    return PromptSample(i, float(p.detach()), grad_p, rewards, which.reshape(n_groups, M), J)


def group_coefficients(rewards: np.ndarray, which: np.ndarray, n_distinct: int, scheme: WeightScheme) -> np.ndarray:
    """``C[g, u] = (1/M) sum_{i: which[g,i]=u} Z_{g,i}``: group ``g``'s update is ``C[g] @ scores``."""
    G, M = rewards.shape
    C = np.zeros((G, n_distinct))
    np.add.at(C, (np.repeat(np.arange(G), M), which.ravel()), scheme.weights(rewards).ravel() / M)
    return C


def _coefficients(sample: PromptSample, scheme: WeightScheme) -> np.ndarray:
    return group_coefficients(sample.rewards, sample.which, sample.J.shape[0], scheme)


#: z threshold of the projected identity statistic (two-sided, P ~ 3e-3 under the identity).
IDENTITY_Z = 3.0


def projected_test(proj: np.ndarray, target: float) -> dict[str, float]:
    """The identity statistic: per-group projections ``proj`` (``s_g = <update_g, u>``) against their
    predicted mean ``target = h'_M(p) <grad p, u>``. ``z = (mean - target) / SE``; the test rejects a
    relative error ``delta`` in ``h'`` when ``|delta| target > IDENTITY_Z SE``, so
    ``detectable_rel_error = IDENTITY_Z SE / |target|`` is the smallest one it detects."""
    se = float(proj.std(ddof=1) / np.sqrt(proj.size))
    return {"z_projected": float((proj.mean() - target) / se), "detectable_rel_error": float(IDENTITY_Z * se / abs(target)),
            "ratio": float(proj.mean() / target), "ratio_se": float(se / abs(target))}


# ------------------------------------------------------------------------------------------------
# experiment 1: the expected step is h'_M(p) grad p
# ------------------------------------------------------------------------------------------------


def expected_step(samples: Sequence[PromptSample], schemes: dict[str, WeightScheme],
                  groups: Sequence[int]) -> list[dict[str, Any]]:
    """One record per (prompt, scheme, number of groups ``G``): the Monte-Carlo mean update against
    ``h'_M(p) grad p``: relative error, cosine, and the CLT scale of the relative error
    ``sqrt(tr Cov(update) / G) / |target|`` (an error within ~3 of it is what sampling explains).

    The test with power is the statistic projected on ``u = grad p / |grad p|`` (as in
    ``tests/training/test_theory.py``): per group ``s_g = <update_g, u>``, ``z = (mean s -
    h'_M(p) |grad p|) / SE(s)``; it rejects a relative error ``delta`` in ``h'`` when
    ``|delta| h'|grad p| > IDENTITY_Z SE``, so ``detectable_rel_error = IDENTITY_Z SE / (h' |grad p|)``
    is the smallest error in ``h'`` this number of groups would detect."""
    records = []
    for sample in samples:
        gram = sample.J @ sample.J.T
        for name, scheme in schemes.items():
            C = _coefficients(sample, scheme)
            target = float(dh(scheme, sample.p)) * sample.grad_p
            tnorm = np.linalg.norm(target)
            for G in groups:
                Cg = C[:G]
                mean = Cg.mean(0) @ sample.J
                cov = np.atleast_2d(np.cov(Cg, rowvar=False))
                clt = float(np.sqrt(max(np.sum(cov * gram), 0.0) / G) / tnorm)
                proj = Cg @ (sample.J @ (target / tnorm))  # s_g
                records.append({
                    "experiment": "expected_step", "prompt": sample.prompt, "p": sample.p, "scheme": name,
                    "groups": int(G), "dh": float(dh(scheme, sample.p)),
                    "rel_error": float(np.linalg.norm(mean - target) / tnorm),
                    "cosine": float(mean @ target / (np.linalg.norm(mean) * tnorm)),
                    "clt_rel_error": clt,
                    **projected_test(proj, tnorm),
                })
    return records


# ------------------------------------------------------------------------------------------------
# experiment 2: relative speed at equal p
# ------------------------------------------------------------------------------------------------

def relative_speed(setup: LMSetup, samples: Sequence[PromptSample], schemes: dict[str, WeightScheme],
                   *, delta: float = 2e-3, baseline: str = "reinforce") -> list[dict[str, Any]]:
    """From the same parameters, step ``theta + eta * update_A`` (each scheme's Monte-Carlo update
    from the same sampled groups, ``eta = delta / |grad p|^2``) and measure ``p`` exactly after it.
    The change relative to the baseline's is predicted to be ``h'_A(p) / h'_baseline(p)`` to first order."""
    params = trainable_parameters(setup.policy)
    theta = torch.nn.utils.parameters_to_vector(params).detach().clone()
    records = []
    for sample in samples:
        eta = delta / float(sample.grad_p @ sample.grad_p)
        dp = {}
        for name, scheme in schemes.items():
            update = _coefficients(sample, scheme).mean(0) @ sample.J
            with torch.no_grad():
                torch.nn.utils.vector_to_parameters(theta + eta * torch.as_tensor(update, dtype=theta.dtype,
                                                                                  device=theta.device), params)
                dp[name] = float(exact_success(setup.policy, setup.task, [sample.prompt])[0]) - sample.p
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(theta, params)
        base_dh = float(dh(schemes[baseline], sample.p))
        for name, scheme in schemes.items():
            records.append({
                "experiment": "relative_speed", "prompt": sample.prompt, "p": sample.p, "scheme": name,
                "baseline": baseline, "delta_p": dp[name], "delta_p_baseline": dp[baseline],
                "measured_ratio": dp[name] / dp[baseline],
                "predicted_ratio": float(dh(scheme, sample.p)) / base_dh,
            })
    return records


# ------------------------------------------------------------------------------------------------
# experiments 3 and 4: fixed points and trajectories (tabular policy)
# ------------------------------------------------------------------------------------------------

def tabular_setup(p_refs: Sequence[float], n_wrong: int = 3, copies: int = 4) -> tuple[TabularPolicy, Task, np.ndarray]:
    """``copies`` prompts per reference success probability; one right answer ``a`` and ``n_wrong``
    wrong ones sharing ``1 - p_ref``."""
    p_ref = np.repeat(np.asarray(p_refs, dtype=float), copies)
    prompts = [f"q{k}" for k in range(p_ref.size)]
    answers = ["a"] + [f"w{j}" for j in range(n_wrong)]
    logits = np.zeros((p_ref.size, len(answers)))
    logits[:, 0] = np.log(p_ref / (1 - p_ref) * n_wrong)
    task = Task("tabular", tuple(prompts), ("a",) * len(prompts))
    return TabularPolicy(prompts, answers, torch.tensor(logits, dtype=torch.float64)), task, p_ref


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
                   optimizer: str = "adamw", copies: int = 4, **cfg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Train a tabular policy with sampled groups and the KL penalty; return (p_ref per prompt,
    success history of shape (steps + 1, prompts)). ``optimizer="sgd"`` swaps the trainer's AdamW
    for ``torch.optim.SGD`` (the system the mean-field ODE describes)."""
    policy, task, p_ref = tabular_setup(p_refs, copies=copies)
    options = dict(num_generations=scheme.M, prompts_per_step=len(task), steps=steps, beta=beta,
                   kl_estimator="exact", learning_rate=0.05, max_grad_norm=0.0, loss_aggregation="bnpo",
                   eval_steps=10**6, save_steps=10**6, seed=seed)
    options.update(cfg)
    trainer = Trainer(TrainConfig(**options), None, policy=policy, task=task, scheme=scheme)
    if optimizer == "sgd":
        trainer.optimizer = torch.optim.SGD(policy.parameters(), lr=options["learning_rate"])
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


def _logit(p: float) -> float:
    return float(special.logit(np.clip(p, 1e-12, 1 - 1e-12)))


def fixed_points_vs_beta(size: ValidationSize) -> list[dict[str, Any]]:
    """Measured stationary success (mean of the last 40% of steps) against the estimator-aware flow
    target (and, for reference, the map's attractor), for every (scheme, beta, p_ref); then, for GRPO
    at the middle beta, the gap's dependence on inner steps, the KL estimator and clipping."""
    records = []
    tail = max(1, int(0.4 * size.fp_steps))
    for name in size.fp_schemes:
        for beta in size.betas:
            scheme, maps = _scheme_and_maps(name, size.M, beta)
            p_ref, hist = _train_tabular(scheme, beta, size.p_refs, size.fp_steps, size.seed)
            measured = hist[-tail:].mean(0)
            for pr in size.p_refs:
                rows = p_ref == pr
                rec = {"experiment": "fixed_points", "scheme": name, "M": size.M, "beta": beta, "p_ref": pr,
                       "kl": "forward", "measured": float(measured[rows].mean()),
                       "measured_sd": float(measured[rows].std())}
                for key, build in maps.items():
                    rec[key] = _flow_p(build, pr, "forward")
                    rec[key.replace("predicted", "map_attractor")], kind = _attractor_p(build, pr)
                    rec.setdefault("attractor", kind)
                rec["logit_gap"] = _logit(rec["measured"]) - _logit(rec["predicted"])
                records.append(rec)
    beta = size.betas[len(size.betas) // 2]
    scheme, maps = _scheme_and_maps("grpo", size.M, beta)
    for label in size.ablations:
        cfg = ABLATIONS[label]
        kl = ESTIMATOR_KL[cfg.get("kl_estimator", "exact")]
        p_ref, hist = _train_tabular(scheme, beta, size.p_refs, size.fp_steps, size.seed, **cfg)
        measured = hist[-tail:].mean(0)
        for pr in size.p_refs:
            m = float(measured[p_ref == pr].mean())
            pred = _flow_p(maps["predicted"], pr, kl)
            forward = _flow_p(maps["predicted"], pr, "forward")
            rec = {"experiment": "fixed_point_ablation", "scheme": "grpo", "beta": beta, "p_ref": pr,
                   "variant": label, "kl": kl, "measured": m, "predicted": pred, "predicted_forward": forward,
                   "logit_gap_forward": _logit(m) - _logit(forward)}
            # kl = "none": the prediction is p -> 1; the gap is stated against the forward point instead
            rec["logit_gap"] = None if kl == "none" else _logit(m) - _logit(pred)
            rec["rising"] = bool(np.polyfit(np.arange(tail), special.logit(np.clip(
                hist[-tail:, p_ref == pr].mean(1), 1e-12, 1 - 1e-12)), 1)[0] > 0)
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
    p_ref2, hist = _train_tabular(scheme, beta, size.p_refs, steps, size.seed, optimizer="sgd", copies=copies,
                                  learning_rate=lr)
    per = np.array([hist[:, p_ref2 == pr].mean(1) for pr in size.p_refs]).T
    pol, _, _ = tabular_setup(size.p_refs, copies=1)
    logits = pol.logits.detach().double().numpy()
    right = np.zeros_like(logits, dtype=bool)
    right[:, 0] = True
    ode = softmax_flow(logits, right, scheme, beta, steps, kl="forward", rate=lr / (copies * len(size.p_refs)))
    records += _trajectory_records("tabular-sgd", per, ode, np.array(size.p_refs), "mean-field ODE")
    return records


def two_cycle_training(size: ValidationSize, *, beta: float = 2.0, p_ref: float = 3e-3, eps: float = 1e-5,
                       lr: float = 2.0) -> dict[str, Any]:
    """Mroueh's population GRPO (``M -> infinity``: weight ``Omega(p)`` on ``grad p``) with the exact KL,
    trained by small SGD steps on a tabular policy (one right, three wrong answers), in a regime where
    Mroueh's map has an attracting 2-cycle from ``p_ref``: the run settles at the map's fixed point
    (the flow target, map slope < -1 there), not on the cycle or its mean."""
    F = grpo_success_map(beta, p_ref, eps=eps)
    cycle = attractor(F, p_ref)
    target = flow_target(F)
    policy, task, _ = tabular_setup([p_ref], copies=1)
    policy.requires_grad_(True)
    ref = policy.clone()
    opt = torch.optim.SGD(policy.parameters(), lr=lr)
    history = []
    for _ in range(size.cycle_steps):
        p = exact_success(policy, task)
        history.append(float(p.detach()[0]))
        weight = torch.as_tensor(F.gap(special.logit(p.detach().double().numpy())), dtype=p.dtype)
        loss = -(weight * p).mean() + beta * policy.sequence_kl(ref, task.prompts).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        history.append(float(exact_success(policy, task)[0]))
    return {"experiment": "two_cycle", "beta": beta, "p_ref": p_ref, "eps": eps, "lr": lr,
            "steps": size.cycle_steps, "map_attractor": cycle.kind, "cycle": [float(v) for v in cycle.p], "cycle_mean": float(np.mean(cycle.p)),
            "fixed_point": target.p, "map_slope": float(F.logit_slope(target.logit)), "measured": history[-1],
            "logit_gap": _logit(history[-1]) - target.logit, "history": history}


def _trajectory_records(source: str, measured: np.ndarray, theory: np.ndarray, p_ref: np.ndarray,
                        model: str) -> list[dict]:
    rms = float(np.sqrt(np.mean((special.logit(np.clip(measured, 1e-12, 1 - 1e-12))
                                 - special.logit(np.clip(theory, 1e-12, 1 - 1e-12))) ** 2)))
    return [{"experiment": "trajectory", "source": source, "model": model, "prompt": j, "p_ref": float(p_ref[j]),
             "logit_rms": rms, "measured": measured[:, j].tolist(), "predicted": theory[:, j].tolist()}
            for j in range(measured.shape[1])]
