"""Theory against measurement on real policies: the experiments behind ``rlvrlens validate``.

1. :func:`expected_step`: the Monte-Carlo mean of ``(1/M) sum_i Z_i grad log pi(y_i|x)`` against
   ``h'_M(p) grad p`` (Davis & Recht 2025, Theorem 1), with the CLT error scale, as the number of
   groups grows.
2. :func:`relative_speed`: one small parameter step per scheme from the same parameters; the
   measured change of ``p`` relative to REINFORCE's against ``h'_A(p) / h'_REINFORCE(p)``.
3. :func:`fixed_points_vs_beta`: KL-regularised training (tabular policy, sampled groups, gradient
   steps) to convergence, against the attracting fixed point of the scheme's success map
   (THEORY.md §2), with ablations over inner steps, KL estimator and clipping.
4. :func:`trajectories`: measured per-prompt success trajectories against the map's iteration;
   iteration ``n`` is outer step ``n`` for the exact inner optimisation (tabular), and ``n k`` for
   the sampled trainer with a calibration ``k`` fitted by least squares (stated in the output).

Every prediction comes from :mod:`rlvrlens.objectives` and :mod:`rlvrlens.dynamics`; every
measurement from :mod:`rlvrlens.training`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from scipy import special

from rlvrlens.dynamics import attractor, grpo_success_map, iterate, success_map
from rlvrlens.objectives import WeightScheme, design, dh, get_scheme
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.policy import CausalLMPolicy, TabularPolicy
from rlvrlens.training.sft import warm_start
from rlvrlens.training.success import exact_success
from rlvrlens.training.tabular import kl_regularised_step
from rlvrlens.training.tasks import Task, modular_arithmetic
from rlvrlens.training.trainer import Trainer


@dataclass(frozen=True)
class ValidationPreset:
    """Sizes of the four experiments. ``tiny`` is for tests, ``cpu`` for ``make demo`` (minutes),
    ``gpu`` for a lent accelerator (larger model, more prompts and groups)."""

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
                                  "k1 KL", "k3 KL", "k3 KL, mu=4, clip 0.2")
    traj_steps: int = 40
    traj_lm_steps: int = 30
    seed: int = 0
    device: str = "cpu"


PRESETS: dict[str, ValidationPreset] = {
    "tiny": ValidationPreset("tiny", groups=(16, 64), n_prompts=2, betas=(0.5, 1.0, 2.0, 4.0, 8.0),
                             p_refs=(0.1, 0.5), fp_schemes=("grpo", "raft"), fp_steps=80, traj_steps=12,
                             traj_lm_steps=4, ablations=("exact KL, mu=1", "k1 KL")),
    "cpu": ValidationPreset("cpu"),
    "gpu": ValidationPreset("gpu", n_layer=4, width=256, n_head=4, n_task_prompts=32, moduli=(3, 5, 7),
                            warm_start_steps=80, M=8, n_prompts=8, groups=(256, 1024, 4096, 16384),
                            betas=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0), p_refs=(0.01, 0.05, 0.2, 0.4, 0.6, 0.8),
                            fp_steps=1500, traj_steps=60, traj_lm_steps=200, device="cuda"),
}


def get_preset(name: str, **overrides: Any) -> ValidationPreset:
    """A preset by name (``tiny``, ``cpu``, ``gpu``) with optional field overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown validation preset {name!r}; valid: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


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


def lm_setup(preset: ValidationPreset) -> LMSetup:
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
    inside = np.flatnonzero((p > 0.05) & (p < 0.95))
    if inside.size == 0:
        raise RuntimeError("the warm start left no prompt with success probability in (0.05, 0.95)")
    # spread: the prompts closest to evenly spaced quantiles of the interior ones
    order = inside[np.argsort(p[inside])]
    picks = order[np.unique(np.linspace(0, order.size - 1, preset.n_prompts).round().astype(int))]
    return LMSetup(policy, task, p, [int(i) for i in picks])


def _params(policy) -> list[torch.Tensor]:
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


def sample_prompt(setup: LMSetup, i: int, M: int, n_groups: int, generator: torch.Generator) -> PromptSample:
    policy, task = setup.policy, setup.task
    params = _params(policy)
    p = exact_success(policy, task, [i])[0]
    grad_p = _flat_grad(p, params)
    rollout = policy.sample([task.prompts[i]] * n_groups, M, generator=generator,
                            max_new_tokens=task.max_new_tokens)
    rewards = task.rewards(rollout.prompts, rollout.texts).reshape(n_groups, M)
    keys = [tuple(ids[m.bool()].tolist()) + (bool(f),) for ids, m, f in
            zip(rollout.completion_ids.cpu(), rollout.mask.cpu(), rollout.finished.cpu())]
    index: dict[tuple, int] = {}
    which = np.array([index.setdefault(k, len(index)) for k in keys]).reshape(n_groups, M)
    first = {u: row for row, u in reversed(list(enumerate(which.ravel())))}
    J = np.stack([_flat_grad(policy.token_logprobs(rollout.select([first[u]]))[0].sum(), params)
                  for u in range(len(index))])
    return PromptSample(i, float(p.detach()), grad_p, rewards, which, J)


def _coefficients(sample: PromptSample, scheme: WeightScheme) -> np.ndarray:
    G, M = sample.rewards.shape
    C = np.zeros((G, sample.J.shape[0]))
    np.add.at(C, (np.repeat(np.arange(G), M), sample.which.ravel()), scheme.weights(sample.rewards).ravel() / M)
    return C


# ------------------------------------------------------------------------------------------------
# experiment 1: the expected step is h'_M(p) grad p
# ------------------------------------------------------------------------------------------------

def expected_step(samples: Sequence[PromptSample], schemes: dict[str, WeightScheme],
                  groups: Sequence[int]) -> list[dict[str, Any]]:
    """One record per (prompt, scheme, number of groups ``G``): the Monte-Carlo mean update against
    ``h'_M(p) grad p``: relative error, cosine, and the CLT scale of the relative error
    ``sqrt(tr Cov(update) / G) / |target|`` (an error within ~3 of it is what sampling explains)."""
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
                records.append({
                    "experiment": "expected_step", "prompt": sample.prompt, "p": sample.p, "scheme": name,
                    "groups": int(G), "dh": float(dh(scheme, sample.p)),
                    "rel_error": float(np.linalg.norm(mean - target) / tnorm),
                    "cosine": float(mean @ target / (np.linalg.norm(mean) * tnorm)),
                    "clt_rel_error": clt,
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
    params = _params(setup.policy)
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


def _attractor_p(build, p_ref: float) -> tuple[float, str]:
    """Mean of the attractor reached from ``p_0 = p_ref`` (a fixed point, or a cycle's average) and its kind."""
    a = attractor(build(p_ref), p_ref)
    return float(np.mean(a.p)), a.kind


def _train_tabular(scheme: WeightScheme, beta: float, p_refs: Sequence[float], steps: int, seed: int,
                   **cfg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Train a tabular policy with sampled groups and the KL penalty; return (p_ref per prompt,
    success history of shape (steps + 1, prompts))."""
    policy, task, p_ref = tabular_setup(p_refs)
    options = dict(num_generations=scheme.M, prompts_per_step=len(task), steps=steps, beta=beta,
                   kl_estimator="exact", learning_rate=0.05, max_grad_norm=0.0, loss_aggregation="token-mean",
                   eval_steps=10**6, save_steps=10**6, seed=seed)
    options.update(cfg)
    trainer = Trainer(TrainConfig(**options), None, policy=policy, task=task, scheme=scheme)
    history = [p_ref.copy()]
    for _ in range(steps):
        trainer.rl_step()
        with torch.no_grad():
            history.append(exact_success(policy, task).double().numpy())
    return p_ref, np.array(history)


#: Variants of the training loop for the fixed-point gap (experiment 3), as TrainConfig overrides.
ABLATIONS: dict[str, dict[str, Any]] = {
    "exact KL, mu=1": {},
    "exact KL, mu=4, clip 0.2": {"num_iterations": 4},
    "exact KL, mu=4, no clip": {"num_iterations": 4, "epsilon_low": 1.0, "epsilon_high": 1e6},
    "k1 KL": {"kl_estimator": "k1"},
    "k3 KL": {"kl_estimator": "k3"},
    "k3 KL, mu=4, clip 0.2": {"kl_estimator": "k3", "num_iterations": 4},
}


def fixed_points_vs_beta(preset: ValidationPreset) -> list[dict[str, Any]]:
    """Measured stationary success (mean of the last 40% of steps) against the predicted attractor,
    for every (scheme, beta, p_ref); then, for GRPO at the middle beta, the gap's dependence on inner
    steps, the KL estimator and clipping."""
    records = []
    tail = max(1, int(0.4 * preset.fp_steps))
    for name in preset.fp_schemes:
        for beta in preset.betas:
            scheme, maps = _scheme_and_maps(name, preset.M, beta)
            p_ref, hist = _train_tabular(scheme, beta, preset.p_refs, preset.fp_steps, preset.seed)
            measured = hist[-tail:].mean(0)
            for pr in preset.p_refs:
                rows = p_ref == pr
                rec = {"experiment": "fixed_points", "scheme": name, "M": preset.M, "beta": beta, "p_ref": pr,
                       "measured": float(measured[rows].mean()), "measured_sd": float(measured[rows].std())}
                for key, build in maps.items():
                    rec[key], kind = _attractor_p(build, pr)
                    rec.setdefault("attractor", kind)
                rec["logit_gap"] = float(special.logit(rec["measured"]) - special.logit(rec["predicted"]))
                records.append(rec)
    beta = preset.betas[len(preset.betas) // 2]
    scheme, maps = _scheme_and_maps("grpo", preset.M, beta)
    for label in preset.ablations:
        p_ref, hist = _train_tabular(scheme, beta, preset.p_refs, preset.fp_steps, preset.seed, **ABLATIONS[label])
        measured = hist[-tail:].mean(0)
        for pr in preset.p_refs:
            m = float(measured[p_ref == pr].mean())
            pred = _attractor_p(maps["predicted"], pr)[0]
            records.append({"experiment": "fixed_point_ablation", "scheme": "grpo", "beta": beta, "p_ref": pr,
                            "variant": label, "measured": m, "predicted": pred,
                            "logit_gap": float(special.logit(m) - special.logit(pred))})
    return records


def trajectories(preset: ValidationPreset, setup: LMSetup | None = None) -> list[dict[str, Any]]:
    """Per-prompt trajectories against the map's iteration ``p_n = F(p_{n-1})``, ``p_0 = p_ref``.

    * ``tabular-exact``: the exact KL-regularised step per outer step (iteration n = step n);
    * ``tabular-sgd``: sampled groups and gradient steps; iteration ``n`` = step ``n k``;
    * ``transformer``: the tiny LM with the k3 KL penalty; iteration ``n`` = step ``n k``.
    ``k`` (outer steps per map iteration) is fitted by least squares in logit space over
    ``k in [0.25, 100]`` and reported with its residual: the stated calibration.
    """
    M, beta = preset.M, 1.0
    scheme = get_scheme("grpo", M)
    records = []
    policy, task, p_ref = tabular_setup(preset.p_refs, copies=1)
    ref = policy.clone()
    n = preset.traj_steps
    theory = iterate(success_map(scheme, beta, p_ref), p_ref, n).p  # (n + 1, prompts)
    measured = [p_ref.copy()]
    for _ in range(n):
        kl_regularised_step(policy, ref, task, scheme, beta)
        with torch.no_grad():
            measured.append(exact_success(policy, task).double().numpy())
    records += _trajectory_records("tabular-exact", np.array(measured), theory, 1.0, p_ref)
    p_ref2, hist = _train_tabular(scheme, beta, preset.p_refs, 4 * n, preset.seed, learning_rate=0.05)
    per = np.array([hist[:, p_ref2 == pr].mean(1) for pr in preset.p_refs]).T
    records += _calibrated("tabular-sgd", per, scheme, beta, np.array(preset.p_refs))
    if setup is not None:
        records += _transformer_trajectory(preset, setup, scheme)
    return records


def _transformer_trajectory(preset: ValidationPreset, setup: LMSetup, scheme: WeightScheme) -> list[dict]:
    beta = 0.5
    policy = setup.policy.clone()
    policy.model.requires_grad_(True)  # clone() returns a frozen copy (a reference policy)
    task = setup.task.subset(setup.prompts, name="validation")
    with torch.no_grad():
        p_ref = exact_success(policy, task).double().cpu().numpy()
    cfg = TrainConfig(num_generations=scheme.M, prompts_per_step=len(task), steps=preset.traj_lm_steps,
                      beta=beta, kl_estimator="k3", learning_rate=2e-3, eval_steps=10**6, save_steps=10**6,
                      seed=preset.seed, max_new_tokens=task.max_new_tokens)
    trainer = Trainer(cfg, None, policy=policy, task=task, scheme=scheme)
    hist = [p_ref]
    for _ in range(preset.traj_lm_steps):
        trainer.rl_step()
        with torch.no_grad():
            hist.append(exact_success(policy, task).double().cpu().numpy())
    return _calibrated("transformer", np.array(hist), scheme, beta, p_ref)


def _calibrated(source: str, hist: np.ndarray, scheme: WeightScheme, beta: float, p_ref: np.ndarray) -> list[dict]:
    steps = hist.shape[0] - 1
    n_max = steps  # at most one map iteration per step
    theory = iterate(success_map(scheme, beta, p_ref), p_ref, n_max).p
    grid_k = np.geomspace(0.25, 100, 200)
    x = np.arange(steps + 1)
    lm = special.logit(np.clip(hist, 1e-12, 1 - 1e-12))

    def predicted(k: float) -> np.ndarray:
        n = np.minimum(x / k, n_max)
        return np.stack([np.interp(n, np.arange(n_max + 1), theory[:, j]) for j in range(hist.shape[1])], axis=1)

    costs = [np.mean((lm - special.logit(np.clip(predicted(k), 1e-12, 1 - 1e-12))) ** 2) for k in grid_k]
    best = int(np.argmin(costs))
    records = _trajectory_records(source, hist, predicted(float(grid_k[best])), float(grid_k[best]), p_ref)
    for r in records:  # a best k at the end of the range means no calibration fits
        r["calibration_at_bound"] = best in (0, grid_k.size - 1)
    return records


def _trajectory_records(source: str, measured: np.ndarray, theory: np.ndarray, k: float, p_ref: np.ndarray) -> list[dict]:
    rms = float(np.sqrt(np.mean((special.logit(np.clip(measured, 1e-12, 1 - 1e-12))
                                 - special.logit(np.clip(theory, 1e-12, 1 - 1e-12))) ** 2)))
    return [{"experiment": "trajectory", "source": source, "prompt": j, "p_ref": float(p_ref[j]),
             "steps_per_iteration": k, "logit_rms": rms, "measured": measured[:, j].tolist(),
             "predicted": theory[:, j].tolist()} for j in range(measured.shape[1])]
