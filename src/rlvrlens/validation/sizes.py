"""The run sizes of ``rlvrlens validate --preset NAME`` (torch-free: the command line reads them).

:class:`ValidationSize` sizes the tiny-transformer and tabular experiments, :class:`RealModelSize`
the pretrained model's; :data:`VALIDATION_SIZES` names them and :func:`get_size` returns one with
overrides. (The CLI's ``--preset``; not a scheme preset of :data:`rlvrlens.objectives.PRESETS`.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rlvrlens.training.reasoning_gym import SMOLLM2_TASK

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
    lm_fp_ref_pi: bool = True
    sampled_fp_estimators: tuple[str, ...] = ("k2", "k3")
    sampled_fp_beta: float = 2.0
    sampled_fp_steps: int = 1000
    sampled_fp_lr: float = 1e-3
    small_beta_steps: int = 3000
    joint_betas: tuple[float, ...] = (1.0, 4.0)
    joint_steps: int = 1500
    fo_targets: tuple[float, ...] = (0.0025, 0.005, 0.01)
    fo_repeats: int = 40
    fc_runs: tuple[tuple[str, float, float], ...] = (("AdamW", 1e-4, 0.0), ("AdamW, KL", 1e-4, 0.04))
    fc_steps: int = 300
    fc_batches: int = 16
    fc_refresh: int = 10
    fc_record: int = 10
    fc_propagate: int = 5
    seed: int = 0
    device: str = "cpu"


#: The experiments of a pretrained-model validation, in the order of its report (``--only`` picks some).
REAL_MODEL_PARTS = ("identity", "one-step", "fixed-points", "trajectory", "first-order", "first-order-sampled",
                    "forecast")


@dataclass(frozen=True)
class RealModelSize:
    """Sizes of the pretrained-model validation (:func:`rlvrlens.validation.runner.run_real_model_validation`):
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
    fo_tasks: tuple[tuple[str, str], ...] = (
        ("times", "rg:basic_arithmetic?min_terms=2&max_terms=2&max_digits=1&allow_parentheses=false&operators=*"
                  "&prefill={expression} ="),
        ("gcd", "rg:gcd?min_value=1&max_value=20&prefill=Answer:"))
    fo_seed: int = 7
    fo_prompts: int = 8
    fo_targets: tuple[float, ...] = (0.0025, 0.005, 0.01)
    fo_repeats: int = 8
    fo_groups: int = 384
    fc_prompts: int = 16
    fc_prompts_per_step: int = 4
    fc_steps: int = 100
    fc_runs: tuple[tuple[str, float, float], ...] = (("AdamW", 1e-6, 0.0), ("AdamW, KL", 1e-6, 0.04))
    fc_batches: int = 16
    fc_refresh: int = 50
    fc_record: int = 5
    fc_propagate: int = 5
    parts: tuple[str, ...] = REAL_MODEL_PARTS
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        unknown = [p for p in self.parts if p not in REAL_MODEL_PARTS]
        if unknown or not self.parts:
            raise ValueError(f"parts must name one or more of {', '.join(REAL_MODEL_PARTS)}; got {list(self.parts)}")


#: The run sizes of ``rlvrlens validate --preset NAME``: the tiny transformer's (``tiny``, ``demo``,
#: ``cpu``, ``gpu``) and SmolLM2's (``smollm2-cpu``, ``smollm2-gpu``).
VALIDATION_SIZES: dict[str, ValidationSize | RealModelSize] = {
    "tiny": ValidationSize("tiny", groups=(16, 64), n_prompts=2, betas=(0.5, 1.0, 2.0, 4.0, 8.0),
                           p_refs=(0.1, 0.5), fp_schemes=("grpo", "raft"), fp_steps=80, traj_steps=12,
                           ablations=("exact KL, mu=1", "k1 KL", "k3 KL"), cycle_steps=600, coupling_M=4,
                           coupling_repeats=6, coupling_steps=6, coupling_refresh=2, kl_move_steps=5, adam_steps=4,
                           control_steps=4, lm_fp_schemes=("grpo",), lm_fp_betas=(2.0,), lm_fp_steps=20,
                           lm_fp_beta2=(0.999,), sampled_fp_estimators=("k2",), sampled_fp_steps=60, fo_repeats=6, small_beta_steps=300, joint_betas=(),
                           fc_runs=(("AdamW", 1e-4, 0.0),), fc_steps=20, fc_batches=2, fc_refresh=5, fc_record=5),
    "cpu": ValidationSize("cpu"),
    # make demo's size: the cpu experiments with fewer groups, the estimator ablations only and one
    # transformer fixed-point run (the full cpu sweep is 6 runs of 300 steps, about 11 min of CPU)
    "demo": ValidationSize("demo", groups=(256, 1024), ablations=("exact KL, mu=1", "k1 KL", "k2 KL", "k3 KL"),
                           lm_fp_schemes=("grpo",), lm_fp_betas=(1.0,), lm_fp_beta2=(0.999, 0.9), lm_fp_ref_pi=False,
                           sampled_fp_estimators=("k2",), joint_betas=()),
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
    """A validation run size by name (:data:`VALIDATION_SIZES`) with optional field overrides.

    Parameters
    ----------
    name : str
        A key of :data:`VALIDATION_SIZES`.
    **overrides
        Fields of the size to replace (``device="cuda"``).

    Returns
    -------
    ValidationSize or RealModelSize

    Examples
    --------
    >>> get_size("tiny", seed=3).seed
    3
    """
    if name not in VALIDATION_SIZES:
        raise ValueError(f"unknown validation preset {name!r}; valid: {', '.join(VALIDATION_SIZES)}")
    return replace(VALIDATION_SIZES[name], **overrides)
