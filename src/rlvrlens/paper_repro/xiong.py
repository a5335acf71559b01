"""Xiong et al. (2025), "A minimalist approach to LLM reasoning: from rejection sampling to reinforce".

A toy-scale analogue of the paper's ablation (THEORY.md §3): the same warm-started tiny GPT-2
(built from config, nothing downloaded; the warm start is pi_ref) is fine-tuned on the built-in
``mod`` task with the same seed by each of

- RAFT (rejection sampling: ``Z_i = M R_i / #right``), one epoch per batch (mu = 1);
- RAFT++: RAFT with mu = 2 epochs per batch, i.e. importance ratios ``pi_theta/pi_old`` and PPO
  clipping (epsilon 0.2) on the kept samples;
- Reinforce with 0/1 rewards (``Z_i = R_i``) and with the paper's ±1 rewards (``Z_i = 2 R_i - 1``,
  i.e. ``a_s = -1``, ``b_s = 1``);
- Reinforce(±1) with only the all-wrong groups removed (``a_0 = 0``), with only the all-right groups
  removed (``b_{M-1} = 0``), and with both removed (Reinforce-Rej, ``reinforce_rej(reward_scale="pm1")``);
- GRPO (``(r - mean)/(std + eps)``).

Why ±1 rewards: with 0/1 rewards an all-wrong group already has weight 0 under Reinforce
(``Z_i = R_i = 0``), so "removing all-wrong prompts" would change nothing. The paper's Reinforce uses
±1 rewards, where every answer of an all-wrong group gets weight -1; removing those groups is the
change ``a_0: -1 -> 0`` (``c_0 = b_0 - a_0: 2 -> 1``), and removing all-right groups is
``b_{M-1}: 1 -> 0``. In the theory (Davis & Recht) the expected step of a prompt of success ``p`` is
``h'_M(p) = sum_s c_s C(M-1,s) p^s (1-p)^(M-1-s)``, so the two removals give
``h'_M = 2 - (1-p)^(M-1)`` and ``2 - p^(M-1)`` against Reinforce(±1)'s constant 2: removing all-wrong
groups lowers the expected step only on hard prompts (1.30 instead of 2 at ``p = 0.05``, ``M = 8``) and
otherwise removes the noise of pushing down sampled wrong answers (which spreads their probability over
other answers and raises the entropy). The table of :func:`step_size_table` prints ``h'_M(p)`` of each
variant, the theory's relative step sizes.

The claims check the direction of the paper's findings (arXiv:2504.11343: RAFT competitive early,
RAFT++'s entropy falls faster than GRPO's, dropping all-wrong groups gives most of GRPO's gain over
Reinforce, std normalisation adds little) at this scale. Each compares two variants by their per-seed
paired differences (every variant of a seed starts from the same warm start with the same sampling
seed) and is judged on the 95% Student-t interval of the mean difference: PASS or FAIL only when the
interval lies on one side, INCONCLUSIVE when the effect is inside the seed noise. With the default 3
seeds (t = 4.3) an effect must exceed about 4.3 standard errors of the paired difference to count
(about 0.2 in success at this scale): several are inconclusive, and saying so is the point.

Run alone: ``python -m rlvrlens.paper_repro.xiong OUT_DIR``.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from rlvrlens.paper_repro.claims import Claim, close, seeded
from rlvrlens.paper_repro.report import FigureFile, Reproduction, Table
from rlvrlens.core.checks import check_int
from rlvrlens.objectives import WeightScheme, dh, from_rs, get_scheme

KEY = "xiong"
TITLE = "Xiong et al. (2025): RAFT, Reinforce and GRPO ablated on a toy task"
REFERENCE = ('W. Xiong, J. Yao, Y. Xu, B. Pang, L. Wang, D. Sahoo, J. Li, N. Jiang, T. Zhang, C. Xiong, '
             'H. Dong, "A minimalist approach to LLM reasoning: from rejection sampling to reinforce", 2025, '
             "arXiv:2504.11343. "
             "Small-scale analogue of the ablation (THEORY.md §3) with rlvrlens.training.")
_SRC = "Xiong et al., arXiv:2504.11343"

#: The paper's Table 1 (v2, June 2025): average of MATH500, Minerva Math and OlympiadBench (average@16 at
#: T = 1.0), per algorithm: (Qwen2.5-Math-7B-base, LLaMA-3.2-3B-instruct); None where not reported. Read
#: second-hand: several notes that say they checked every entry against the v2 PDF agree digit for digit
#: (v1's Table 1 differs). These are benchmark scores of 3-7B models our code cannot compute: they are shown
#: as a reference table, and the toy ablation's direction claims cite the relation each one tests.
TABLE1_V2: dict[str, tuple[float, float | None]] = {
    "Base": (23.6, 13.1), "RAFT": (52.3, 25.9), "RAFT++": (56.1, 27.6), "Iterative DPO": (48.8, None),
    "Reinforce": (53.9, 24.2), "GRPO": (56.3, 28.4), "PPO": (52.5, 26.9), "Reinforce-Rej": (56.4, 28.5),
}
_TABLE1 = f"printed: {_SRC}v2, Table 1 (average of MATH500, Minerva Math, OlympiadBench; read second-hand)"
#: Clipping printed in the paper: PPO's symmetric epsilon and the clip-higher upper epsilon (§5.1, after DAPO).
CLIP_EPS, CLIP_HIGHER = 0.2, 0.28
_CLIP = (f"printed: {_SRC}v2, §5.1 and Fig. 2 (right): clip-higher with ε_low = {CLIP_EPS:g}, ε_high = {CLIP_HIGHER:g}; "
         f"symmetric ε = {CLIP_EPS:g} otherwise (read second-hand; the released config has clip_ratio {CLIP_EPS:g})")


def _printed_relation(a: str, b: str) -> str:
    """``"printed (...): A 56.1 vs B 52.3 (Qwen2.5-Math-7B), 27.6 vs 25.9 (LLaMA-3.2-3B)"``."""
    (qa, la), (qb, lb) = TABLE1_V2[a], TABLE1_V2[b]
    llama = f", {la:g} vs {lb:g} (LLaMA-3.2-3B-instruct)" if la is not None and lb is not None else ""
    return (f"Printed in {_SRC}v2 Table 1 (average): {a} {qa:g} vs {b} {qb:g} (Qwen2.5-Math-7B){llama}. This toy run "
            "tests the direction only: a toy FAIL does not contradict the printed scores (another scale) and a toy "
            "PASS does not confirm them.")


def table1_table() -> Table:
    """The printed Table 1 (v2) averages, as a reference (not recomputed: LLM benchmark scores)."""
    return Table("printed_table1", f"{_TABLE1}. Reference values, not recomputed here (benchmark accuracies of "
                 "3-7B models); the direction claims below test the relations between rows at toy scale.",
                 ("algorithm", "Qwen2.5-Math-7B-base", "LLaMA-3.2-3B-instruct"),
                 tuple((k, q, "—" if l is None else l) for k, (q, l) in TABLE1_V2.items()))


def printed_claims() -> list[Claim]:
    """The paper's printed clipping constants against our trainer's loss (:func:`rlvrlens.training.losses.clipped_policy_loss`)
    and its defaults (:class:`rlvrlens.training.config.TrainConfig`)."""
    from rlvrlens.training.config import TrainConfig
    from rlvrlens.training.losses import surrogate_value as surrogate

    defaults = TrainConfig.__dataclass_fields__
    return [
        close(f"Clip-higher (printed ε_high = {CLIP_HIGHER:g}): the surrogate of a right answer (A = 1) whose ratio "
              f"rose to 1.5 is capped at 1 + ε_high: our clipped loss with ε_low = {CLIP_EPS:g}, ε_high = {CLIP_HIGHER:g}",
              lambda: surrogate(1.5, 1.0, CLIP_EPS, CLIP_HIGHER), expected=1 + CLIP_HIGHER, tolerance=1e-6,
              source=_CLIP, kind="paper",
              explanation="A loss that ignores ε_high (symmetric clip) gives 1.2; an unclipped one 1.5."),
        close(f"...and the lower clip stays at the printed ε_low = {CLIP_EPS:g}: a wrong answer (A = −1) whose ratio fell "
              "to 0.5 is capped at −(1 − ε_low)", lambda: surrogate(0.5, -1.0, CLIP_EPS, CLIP_HIGHER),
              expected=-(1 - CLIP_EPS), tolerance=1e-6, source=_CLIP, kind="paper",
              explanation="Using ε_high on both sides gives −0.72; an unclipped loss −0.5."),
        close(f"The trainer's default clipping is the printed symmetric ε = {CLIP_EPS:g}: max |TrainConfig ε − {CLIP_EPS:g}| "
              "over epsilon_low and epsilon_high",
              lambda: max(abs(defaults[k].default - CLIP_EPS) for k in ("epsilon_low", "epsilon_high")),
              expected=0.0, tolerance=1e-12, source=_CLIP, kind="paper",
              explanation="A default of 0.1 or 0.28 would make the toy ablation's RAFT++ another algorithm than the "
                          "paper's."),
    ]


# ---------------------------------------------------------------------------------------------
# The schemes of the ablation
# ---------------------------------------------------------------------------------------------

def reinforce_pm1(M: int) -> WeightScheme:
    """Reinforce with ±1 rewards: ``Z_i = 2 R_i - 1`` (``a_s = -1``, ``b_s = 1``)."""
    return from_rs(M, lambda r, s: 2.0 * r - 1.0, name="reinforce_pm1")


def reinforce_pm1_drop_wrong(M: int) -> WeightScheme:
    """Reinforce(±1) with all-wrong groups removed: weight 0 when ``R_i = 0`` and ``S_i = 0``."""
    return from_rs(M, lambda r, s: 0.0 if (r == 0 and s == 0) else 2.0 * r - 1.0,
                   name="reinforce_pm1_drop_wrong")


def reinforce_pm1_drop_right(M: int) -> WeightScheme:
    """Reinforce(±1) with all-right groups removed: weight 0 when ``R_i = 1`` and ``S_i = M - 1``."""
    return from_rs(M, lambda r, s: 0.0 if (r == 1 and s == M - 1) else 2.0 * r - 1.0,
                   name="reinforce_pm1_drop_right")


@dataclass(frozen=True)
class Variant:
    """One arm of the ablation: a legend label, its scheme for group size ``M``, and mu."""

    key: str
    label: str
    build: Callable[[int], WeightScheme]
    num_iterations: int = 1
    color: str = "k"
    style: str = "-"


VARIANTS: tuple[Variant, ...] = (
    Variant("raft", "RAFT (raft, μ=1)", lambda M: get_scheme("raft", M), 1, "tab:red", "-"),
    Variant("raft_pp", "RAFT++ (raft, μ=2, clip 0.2)", lambda M: get_scheme("raft", M), 2, "tab:orange", "-"),
    Variant("reinforce01", "Reinforce, 0/1 reward (reinforce, μ=1)", lambda M: get_scheme("reinforce", M), 1,
            "tab:gray", ":"),
    Variant("reinforce", "Reinforce, ±1 reward (μ=1)", reinforce_pm1, 1, "tab:blue", "--"),
    Variant("drop_wrong", "Reinforce ±1, all-wrong groups removed (μ=1)", reinforce_pm1_drop_wrong, 1,
            "tab:cyan", "--"),
    Variant("drop_right", "Reinforce ±1, all-right groups removed (μ=1)", reinforce_pm1_drop_right, 1,
            "tab:purple", "--"),
    Variant("reinforce_rej", "Reinforce-Rej, ±1 (reinforce_rej pm1, μ=1)",
            lambda M: get_scheme("reinforce_rej", M, reward_scale="pm1"), 1, "tab:green", "-."),
    Variant("grpo", "GRPO (grpo, ε=1e-6, μ=1)", lambda M: get_scheme("grpo", M), 1, "k", "-"),
)
VARIANT = {v.key: v for v in VARIANTS}


def step_size_table(M: int = 8, ps=(0.05, 0.2, 0.5, 0.8, 0.95)) -> Table:
    """``h'_M(p)`` (:func:`rlvrlens.objectives.dh`) of every variant: the theory's expected step size
    for a prompt of success probability ``p`` (mu does not enter it)."""
    rows = tuple((v.label, *(float(x) for x in dh(v.build(M), np.asarray(ps, float)))) for v in VARIANTS)
    return Table("Step sizes", f"The theory's expected step h'_M(p) (Davis & Recht, Theorem 1) of each variant at "
                 f"M = {M}: relative step sizes a prompt of success p receives (before Adam's rescaling).",
                 ("variant", *(f"p = {p:g}" for p in ps)), rows)


# ---------------------------------------------------------------------------------------------
# The runs
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """The shared configuration of the ablation (every variant uses it, changing only its scheme and mu)."""

    task: str = "mod"
    n_prompts: int = 24
    M: int = 8
    prompts_per_step: int = 8
    steps: int = 80
    eval_steps: int = 5
    learning_rate: float = 1e-3
    warm_start_steps: int = 60
    seeds: tuple[int, ...] = (0, 1, 2)
    variants: tuple[str, ...] = tuple(v.key for v in VARIANTS)

    def __post_init__(self) -> None:
        unknown = [k for k in self.variants if k not in VARIANT]
        if unknown or not self.variants:
            raise ValueError(f"variants must be a non-empty subset of {', '.join(VARIANT)}, got {self.variants!r}")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        for name in ("n_prompts", "M", "prompts_per_step", "steps", "eval_steps"):
            check_int(name, getattr(self, name))


@dataclass
class Curves:
    """What a variant's runs recorded, stacked over seeds."""

    eval_steps: np.ndarray          # (n_eval,)
    success: np.ndarray             # (n_seeds, n_eval, n_prompts): exact per-prompt success
    entropy: np.ndarray             # (n_seeds, steps): mean token entropy of the sampled completions
    reward: np.ndarray              # (n_seeds, steps)
    zero_std: np.ndarray            # (n_seeds, steps): fraction of groups with zero reward variance
    meta: dict = field(default_factory=dict)

    @property
    def mean_success(self) -> np.ndarray:
        """Success averaged over prompts and seeds, per evaluation step."""
        return self.success.mean(axis=(0, 2))


def evaluation_steps(setting: Setting) -> list[int]:
    """The steps at which the per-prompt success is recorded: 0, every ``eval_steps`` and the last.

    >>> evaluation_steps(Setting(steps=7, eval_steps=3))
    [0, 3, 6, 7]
    """
    return sorted({0, *range(setting.eval_steps, setting.steps + 1, setting.eval_steps), setting.steps})


def run_ablation(setting: Setting = Setting()) -> dict[str, Curves]:
    """Train every variant of ``setting`` for every seed and return their curves (nothing is written).

    For each seed one warm-started policy is built (SFT on half the prompts: pi_ref) and each variant
    starts from a trainable copy of it (``policy.clone(trainable=True)``) with the same sampling seed,
    so that two variants' runs of one seed differ only by their scheme and mu: the claims compare
    them as paired differences per seed. Each run is one ``Trainer.train()`` call keeping the
    per-prompt success in memory at :func:`evaluation_steps`.
    """
    from rlvrlens.training.runtime import limit_threads

    with limit_threads(1):  # a 2-layer model gains nothing from threads; on a shared CPU they thrash
        return _run_ablation(setting)


def _run_ablation(setting: Setting) -> dict[str, Curves]:
    from rlvrlens.training.config import TrainConfig
    from rlvrlens.training.sft import warm_start
    from rlvrlens.training.trainer import Trainer, build_policy, build_task

    at = evaluation_steps(setting)
    runs: dict[str, list[tuple[list[dict], list[dict]]]] = {k: [] for k in setting.variants}
    for seed in setting.seeds:
        base_cfg = TrainConfig(task=setting.task, n_prompts=setting.n_prompts, num_generations=setting.M,
                               prompts_per_step=setting.prompts_per_step, steps=setting.steps,
                               eval_steps=setting.steps, save_steps=setting.steps,
                               learning_rate=setting.learning_rate, warm_start_steps=setting.warm_start_steps,
                               seed=seed)
        task = build_task(base_cfg)
        base = build_policy(base_cfg)
        warm_start(base, task, fraction=base_cfg.warm_start_fraction, steps=base_cfg.warm_start_steps,
                   lr=base_cfg.warm_start_lr, seed=seed)
        for key in setting.variants:
            v = VARIANT[key]
            cfg = TrainConfig.from_dict({**base_cfg.to_dict(), "num_iterations": v.num_iterations})
            trainer = Trainer(cfg, None, policy=base.clone(trainable=True), task=task, scheme=v.build(setting.M))
            metrics = trainer.train(success_at=at)
            runs[key].append((metrics, trainer.success_history))
    curves = {}
    for key, recs in runs.items():
        for metrics, succ in recs:
            if len(metrics) != setting.steps or [r["step"] for r in succ] != at:
                raise RuntimeError(f"{key}: {len(metrics)} of {setting.steps} steps, success recorded at "
                                   f"{[r['step'] for r in succ]} instead of {at}")
        curves[key] = Curves(
            eval_steps=np.array(at),
            success=np.array([[r["p"] for r in succ] for _, succ in recs]),
            entropy=np.array([[r["entropy"] for r in m] for m, _ in recs]),
            reward=np.array([[r["reward"] for r in m] for m, _ in recs]),
            zero_std=np.array([[r["frac_reward_zero_std"] for r in m] for m, _ in recs]),
        )
    return curves


# ---------------------------------------------------------------------------------------------
# Measurements behind the claims
# ---------------------------------------------------------------------------------------------

def success_at(curves: Curves, step: int, *, per_seed: bool = False):
    """Mean success over prompts at the first evaluation step ``>= step``: averaged over seeds, or
    one value per seed (``per_seed=True``, an array)."""
    i = min(int(np.searchsorted(curves.eval_steps, step)), len(curves.eval_steps) - 1)
    seeds = curves.success[:, i].mean(axis=1)
    return seeds if per_seed else float(seeds.mean())


def final_success(curves: Curves, last: int = 2, *, per_seed: bool = False):
    """Mean success over the last ``last`` evaluations (less evaluation-to-evaluation noise)."""
    seeds = curves.success[:, -last:].mean(axis=(1, 2))
    return seeds if per_seed else float(seeds.mean())


def entropy_drop(curves: Curves, window: int = 10, *, per_seed: bool = False):
    """Mean entropy of the first ``window`` steps minus that of the last ``window`` steps."""
    w = max(1, min(window, curves.entropy.shape[1] // 3))
    seeds = curves.entropy[:, :w].mean(axis=1) - curves.entropy[:, -w:].mean(axis=1)
    return seeds if per_seed else float(seeds.mean())


def mean_entropy(curves: Curves, *, per_seed: bool = False):
    """Mean entropy over all steps: with a common start, the lower it is, the faster the entropy fell
    (a measure less sensitive than :func:`entropy_drop` to an early rise)."""
    seeds = curves.entropy.mean(axis=1)
    return seeds if per_seed else float(seeds.mean())


def seed_spread(curves: Curves, last: int = 2) -> float:
    """Standard error over seeds of the final success (0 for a single seed): the noise scale of one
    variant's success (the claims use the smaller noise of paired differences)."""
    per_seed = final_success(curves, last, per_seed=True)
    return float(per_seed.std(ddof=1) / np.sqrt(len(per_seed))) if len(per_seed) > 1 else 0.0


#: Initial-success bins of the per-prompt figure and the hard-prompt claim.
P_BINS = (0.0, 0.2, 0.8, 1.0)


def _bins(p0: np.ndarray, bins) -> np.ndarray:
    return np.clip(np.digitize(p0, bins[1:-1]), 0, len(bins) - 2)


def gain_by_initial_success(curves: Curves, bins=P_BINS, last: int = 2) -> np.ndarray:
    """Mean gain ``p_final - p_0`` of the prompts whose initial success ``p_0`` lies in each bin
    (all seeds pooled; NaN for an empty bin)."""
    p0 = curves.success[:, 0].ravel()
    gain = curves.success[:, -last:].mean(axis=1).ravel() - p0
    which = _bins(p0, bins)
    return np.array([gain[which == b].mean() if np.any(which == b) else np.nan for b in range(len(bins) - 1)])


def hard_gain(curves: Curves, last: int = 2) -> np.ndarray:
    """Per seed, the mean gain ``p_final - p_0`` of the prompts with ``p_0 < P_BINS[1]`` (NaN for a seed
    without such a prompt)."""
    p0 = curves.success[:, 0]
    gain = curves.success[:, -last:].mean(axis=1) - p0
    hard = p0 < P_BINS[1]
    return np.array([g[h].mean() if h.any() else np.nan for g, h in zip(gain, hard)])


def _paired(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-seed differences ``a - b`` of two variants' measurements, seeds without a value dropped."""
    d = np.asarray(a, float) - np.asarray(b, float)
    return d[np.isfinite(d)]


#: Confidence of the seed-noise intervals of the direction claims.
CONFIDENCE = 0.95


def direction_claims(curves: dict[str, Curves], setting: Setting) -> list[Claim]:
    """The paper's findings (and two predictions of the theory) as comparisons of training runs.

    Each compares two variants through their per-seed paired differences (same warm start and
    sampling seed): PASS when the 95% Student-t interval of the mean difference over seeds lies
    on the paper's side, FAIL when it lies on the other side, INCONCLUSIVE when it straddles the
    bound (the effect is inside the seed noise; always so with one seed).
    """
    c, k = curves, max(setting.eval_steps, setting.steps // 4)
    fin = {key: final_success(cv, per_seed=True) for key, cv in c.items()}
    ent = {key: entropy_drop(cv, per_seed=True) for key, cv in c.items()}
    mean_ent = {key: mean_entropy(cv, per_seed=True) for key, cv in c.items()}
    src = _SRC
    theory = "Davis & Recht arXiv:2510.13651 Theorem 1 + THEORY.md §1 (our prediction, not a claim of Xiong et al.)"

    def claim(statement, diff, *, relation="at_least", tolerance=0.0, source=src, kind="paper", explanation=""):
        return seeded(statement, diff, bound=0.0, relation=relation, tolerance=tolerance, confidence=CONFIDENCE,
                      source=source, kind=kind, explanation=explanation)

    return [
        claim(f"RAFT is competitive with GRPO early: success(RAFT) − success(GRPO) after {k} steps, at least −0.05",
              lambda: _paired(success_at(c["raft"], k, per_seed=True), success_at(c["grpo"], k, per_seed=True)),
              tolerance=0.05, source=f"{src}, abstract and Figs. 1-2 (RAFT competitive; RAFT++ faster early)"),
        claim("RAFT++'s entropy falls faster than GRPO's: entropy drop(RAFT++) − drop(GRPO) (first vs last 10 steps, "
              "nats/token)", lambda: _paired(ent["raft_pp"], ent["grpo"]),
              source=f"{src}, Fig. 3 (RAFT++'s policy entropy collapses faster than GRPO's)"),
        claim("RAFT++'s entropy is lower on average than GRPO's (same start): mean entropy(RAFT++) − mean entropy(GRPO)"
              " over all steps, nats/token", lambda: _paired(mean_ent["raft_pp"], mean_ent["grpo"]),
              relation="at_most", source=f"{src}, Fig. 3"),
        claim("GRPO beats Reinforce(±1): final success(GRPO) − success(Reinforce ±1)",
              lambda: _paired(fin["grpo"], fin["reinforce"]), source=f"{src}, ablation of Reinforce variants",
              explanation=_printed_relation("GRPO", "Reinforce")),
        claim("Dropping all-wrong groups gives most of GRPO's gain: [success(drop all-wrong) − success(Reinforce ±1)] "
              "− ½·[success(GRPO) − success(Reinforce ±1)]",
              lambda: _paired(fin["drop_wrong"] - fin["reinforce"], 0.5 * (fin["grpo"] - fin["reinforce"])),
              source=f"{src}, abstract (GRPO's main advantage: discarding prompts with entirely incorrect responses)"),
        claim("…more than dropping all-right groups does: success(drop all-wrong) − success(drop all-right)",
              lambda: _paired(fin["drop_wrong"], fin["drop_right"]), source=f"{src}, ablation of Reinforce variants"),
        claim("RAFT++ (μ = 2, importance ratio + clipping) improves on RAFT: final success(RAFT++) − success(RAFT)",
              lambda: _paired(fin["raft_pp"], fin["raft"]), source=f"{src}, Table 1 (RAFT++ vs RAFT)",
              explanation=_printed_relation("RAFT++", "RAFT")),
        claim("Std normalisation adds little: final success(GRPO) − success(Reinforce-Rej ±1) within ±0.05",
              lambda: _paired(fin["grpo"], fin["reinforce_rej"]), relation="close", tolerance=0.05,
              source=f"{src}, abstract (not from its reward normalization; Reinforce-Rej vs GRPO)",
              explanation=_printed_relation("GRPO", "Reinforce-Rej")),
        claim("Theory: RAFT's h'_M is largest at small p (6.7 at p = 0.05 vs GRPO's 2.3, M = 8), so its prompts with "
              "p_0 < 0.2 gain at least as much as GRPO's: mean gain(RAFT) − gain(GRPO) on them",
              lambda: _paired(hard_gain(c["raft"]), hard_gain(c["grpo"])), source=theory, kind="independent"),
        claim("Theory: dropping all-wrong groups lowers Reinforce(±1)'s step on hard prompts (h'_M(0.05): 2 → 1.30, "
              "M = 8), so they gain less: mean gain(drop all-wrong) − gain(Reinforce ±1) for p_0 < 0.2",
              lambda: _paired(hard_gain(c["drop_wrong"]), hard_gain(c["reinforce"])), relation="at_most",
              source=theory, kind="independent"),
    ]


# ---------------------------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------------------------

#: The tiny configuration of the fast claims (seconds): every variant, a few steps.
FAST = Setting(n_prompts=12, M=4, prompts_per_step=4, steps=3, eval_steps=3, warm_start_steps=10, seeds=(0,))


def _scheme_table_error(M: int) -> float:
    """Largest difference between the custom schemes' weights and ``2R - 1`` with the removed group zeroed,
    over every 0/1 reward vector of size ``M`` (and Reinforce-Rej(±1) = both removals)."""
    R = ((np.arange(2**M)[:, None] >> np.arange(M)) & 1).astype(float)
    k = R.sum(1, keepdims=True)
    pm = 2 * R - 1
    wrong, right = np.where(k == 0, 0.0, pm), np.where(k == M, 0.0, pm)
    both = np.where((k == 0) | (k == M), 0.0, pm)
    pairs = ((reinforce_pm1, pm), (reinforce_pm1_drop_wrong, wrong), (reinforce_pm1_drop_right, right),
             (VARIANT["reinforce_rej"].build, both))
    return max(float(np.max(np.abs(b(M).weights(R) - want))) for b, want in pairs)


@functools.lru_cache(maxsize=1)
def _fast_curves() -> dict[str, Curves]:
    """The ablation on :data:`FAST`, computed once per process."""
    return run_ablation(FAST)


def claims() -> list[Claim]:
    """Fast claims (about 10-20 s): the schemes' weights and step sizes, every variant trains with
    complete logs on a tiny configuration, and the paper's printed clipping (:func:`printed_claims`)."""
    ps = np.linspace(0.0, 1.0, 101)
    M = 8
    out = [
        close("The ±1 schemes give 2R − 1, zeroed in all-wrong / all-right / both kinds of groups "
              "(Reinforce-Rej): max error over all 2^8 reward vectors",
              lambda: _scheme_table_error(8), expected=0.0, tolerance=1e-15,
              source=f"{_SRC}, §3 (definitions; the weights written out here from R)"),
        close("Theory: removing all-wrong groups from Reinforce(±1) gives h'_M = 2 − (1−p)^(M−1): max error, M = 8",
              lambda: np.max(np.abs(dh(reinforce_pm1_drop_wrong(M), ps) - (2 - (1 - ps) ** (M - 1)))),
              expected=0.0, tolerance=1e-12, source="Davis & Recht arXiv:2510.13651 Theorem 1 (derived)"),
        close("Theory: removing all-right groups gives h'_M = 2 − p^(M−1): max error, M = 8",
              lambda: np.max(np.abs(dh(reinforce_pm1_drop_right(M), ps) - (2 - ps ** (M - 1)))),
              expected=0.0, tolerance=1e-12, source="Davis & Recht arXiv:2510.13651 Theorem 1 (derived)"),
    ]

    def complete() -> float:
        return float(sum(cv.success.shape == (len(FAST.seeds), len(evaluation_steps(FAST)), FAST.n_prompts)
                         and cv.entropy.shape == (len(FAST.seeds), FAST.steps) and bool(np.isfinite(cv.entropy).all())
                         for cv in _fast_curves().values()))

    out.append(close(f"Every variant ({len(VARIANTS)}) trains {FAST.steps} steps with complete records "
                     "(metrics of every step, success at every evaluation step, finite entropy): number of "
                     "complete variants", complete, expected=len(VARIANTS), tolerance=0.0,
                     source=f"{_SRC} (the ablation's arms); a smoke test of the runs", kind="consistency"))
    out.append(close("All variants start from the same warm start (the shared π_ref): spread of the per-prompt "
                     "success at step 0 across variants",
                     lambda: np.ptp(np.stack([cv.success[:, 0] for cv in _fast_curves().values()]), axis=0).max(),
                     expected=0.0, tolerance=0.0,
                     source=f"{_SRC} (same initial model for every arm); true by construction (one warm start "
                     "per seed)", kind="consistency"))
    return out + printed_claims()


# ---------------------------------------------------------------------------------------------
# Figures and the reproduction
# ---------------------------------------------------------------------------------------------

def _plot(curves: dict[str, Curves], what: str, setting: Setting):
    from rlvrlens.figures.style import new_figure

    fig, axes = new_figure(width=7.0, height=4.2)
    ax = axes[0, 0]
    seeds = f"{len(setting.seeds)} seed{'s' if len(setting.seeds) > 1 else ''}"
    where = f"task {setting.task}, M = {setting.M}, mean of {seeds}"
    if what == "gain":
        width = 0.8 / len(curves)
        for j, (key, cv) in enumerate(curves.items()):
            v = VARIANT[key]
            x = np.arange(len(P_BINS) - 1) + (j - (len(curves) - 1) / 2) * width
            ax.bar(x, gain_by_initial_success(cv), width, color=v.color, label=v.label,
                   hatch="//" if v.style == "--" else None, edgecolor="white", linewidth=0.3)
        ticks = [f"{lo:g} ≤ $p_0$ < {hi:g}" if hi < 1 else f"$p_0$ ≥ {lo:g}" for lo, hi in zip(P_BINS, P_BINS[1:])]
        ax.set_xticks(np.arange(len(P_BINS) - 1), ticks)
        ax.axhline(0.0, color="k", linewidth=0.8)
        ax.set_xlabel("prompts grouped by their success $p_0$ under the warm start (π_ref)")
        ax.set_ylabel("mean gain $p_{final} - p_0$")
        ax.set_title(f"Where the success comes from ({where})")
    else:
        for key, cv in curves.items():
            v = VARIANT[key]
            if what == "success":
                ax.plot(cv.eval_steps, cv.mean_success, v.style, color=v.color, label=v.label, marker=".")
            else:
                e = cv.entropy.mean(axis=0)
                w = min(5, len(e))
                ax.plot(np.arange(w, len(e) + 1), np.convolve(e, np.ones(w) / w, mode="valid"), v.style,
                        color=v.color, label=v.label)
        ax.set_xlabel("RL step")
        if what == "success":
            ax.set_ylabel("mean success probability p (exact, all prompts)")
            ax.set_title(f"Success vs step ({where})")
        else:
            ax.set_ylabel("token entropy of samples (nats, 5-step mean)")
            ax.set_title(f"Entropy vs step ({where})")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def measured_table(curves: dict[str, Curves], setting: Setting) -> Table:
    """The numbers behind the claims, per variant."""
    k = max(setting.eval_steps, setting.steps // 4)
    return Table(
        "Measured", f"Per variant: mean success at step 0, after k = {k} steps and at the end (mean of the last two "
        "evaluations) with its standard error over seeds; entropy drop (first vs last 10 steps) and mean entropy "
        "(nats/token); mean fraction of groups with zero reward variance (the groups the removal variants drop); "
        "mean gain p_final − p_0 of prompts with p_0 < 0.2.",
        ("variant", "success step 0", f"success step {k}", "final success", "± se (seeds)", "entropy drop",
         "mean entropy", "frac. zero-std groups", "gain, p_0 < 0.2"),
        tuple((VARIANT[key].label, float(cv.mean_success[0]), success_at(cv, k), final_success(cv),
               seed_spread(cv), entropy_drop(cv), mean_entropy(cv), float(cv.zero_std.mean()),
               float(gain_by_initial_success(cv)[0])) for key, cv in curves.items()))


def run(out_dir: str | Path, setting: Setting = Setting()) -> Reproduction:
    """Train the ablation (about 2 CPU minutes with the default setting), write the three figures and
    the tables, and evaluate every claim."""
    from rlvrlens.figures.style import save

    out_dir = Path(out_dir)
    rep = Reproduction(KEY, TITLE, REFERENCE)
    curves = run_ablation(setting)
    scale = (f"tiny GPT-2 ({setting.task} task, {setting.n_prompts} prompts, warm start = π_ref shared by all "
             f"variants), M = {setting.M}, {setting.prompts_per_step} prompts/step, {setting.steps} steps, "
             f"lr {setting.learning_rate:g}, seeds {', '.join(map(str, setting.seeds))}")
    rep.figures.append(FigureFile(
        "success", f"Mean exact success probability over all prompts against RL step for each variant; {scale}. "
        "Reinforce ±1 and its removal variants use the paper's ±1 rewards; RAFT++ is RAFT with μ = 2 epochs "
        "(importance ratio and clipping).", tuple(save(_plot(curves, "success", setting), out_dir / "success"))))
    rep.figures.append(FigureFile(
        "entropy", "Mean per-token entropy of the sampled completions (5-step moving average) against RL step; "
        f"{scale}. The paper's finding (its Fig. 3): RAFT++'s entropy collapses faster than GRPO's. Pushing down "
        "sampled wrong answers (the ±1 variants) spreads their mass over other answers, which raises entropy.",
        tuple(save(_plot(curves, "entropy", setting), out_dir / "entropy"))))
    rep.figures.append(FigureFile(
        "gain_by_difficulty", "Mean success gain of each variant's prompts, grouped by their initial success p_0 "
        f"(hard, medium, easy; all seeds pooled); {scale}. The theory's step sizes (table 'Step sizes') favour hard "
        "prompts for RAFT and GRPO and easy ones for dropping all-right groups.",
        tuple(save(_plot(curves, "gain", setting), out_dir / "gain_by_difficulty"))))
    rep.tables.append(step_size_table(setting.M))
    rep.tables.append(measured_table(curves, setting))
    rep.tables.append(table1_table())
    directions = direction_claims(curves, setting)
    verdicts = {v: sum(c.verdict == v for c in directions) for v in ("PASS", "FAIL", "INCONCLUSIVE")}
    rep.notes.append(
        f"Scale: a 2-layer, 64-wide GPT-2 on a {setting.n_prompts}-prompt modular-arithmetic task, "
        f"{setting.steps} steps and {len(setting.seeds)} seed(s), against the paper's 7B models on math benchmarks. "
        f"The last {len(directions)} claims check the DIRECTION of the paper's findings (plus two predictions of the "
        "theory, marked 'Theory'), each on the per-seed paired difference of two variants (same warm start and "
        f"sampling seed), judged on its mean ± t·se over the {len(setting.seeds)} seeds ({CONFIDENCE:.0%} Student-t "
        f"interval): {verdicts['PASS']} pass, {verdicts['FAIL']} fail, {verdicts['INCONCLUSIVE']} are inconclusive "
        "(the effect is inside the seed noise). A FAIL means this toy run shows the opposite effect beyond its noise, "
        "not that the paper is wrong: a 2-layer model on 24 prompts is not a 7B model on MATH, and the effects the paper "
        "measures over hundreds of steps need not appear in a few dozen. With ±1 rewards, dropping all-wrong "
        "(all-right) groups lowers the expected step h'_M on hard (easy) prompts only, to 2 − (1−p)^(M−1) "
        "(2 − p^(M−1)) against 2; otherwise it removes noise, which the paper credits with most of GRPO's gain. "
        "Figure 'gain_by_difficulty' shows on which prompts each variant gains.")
    rep.claims.extend(claims())
    rep.claims.extend(directions)
    print(f"{TITLE}: h'_M(p) of each variant (M = {setting.M}), the theory's relative step sizes")
    tab = rep.tables[0]
    print("  " + " | ".join(tab.headers))
    for row in tab.rows:
        print("  " + row[0] + " | " + " | ".join(f"{x:.3f}" for x in row[1:]))
    return rep


if __name__ == "__main__":  # pragma: no cover
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "xiong_out")
    reproduction = run(target)
    for claim in reproduction.claims:
        print(f"{claim.verdict}  {claim.measured:.4g}  {claim.statement}")
