"""The objectives layer: weight schemes and the objective ``h_M`` each one induces.

Davis & Recht (2025): a scheme ``Z_i = (1-R_i) a[S_i] + R_i b[S_i]`` takes, in expectation, a
gradient step on ``h_M(p)``. This package builds schemes (the catalogue, from functions, or designed
for a target ``h``) and evaluates ``h_M``, ``h'_M``, ``h''_M`` numerically and exactly.
"""

from rlvrlens.objectives.catalogue import (
    SCHEMES,
    dr_grpo,
    drop_uniform_groups,
    dynamic_sampling,
    dynamic_sampling_dh,
    f_grpo,
    get_scheme,
    gpg,
    grpo,
    frac_reward_zero_std,
    kept_fraction,
    log_odds,
    maxrl,
    nsr,
    pass_at_k,
    pkpo,
    raft,
    reinforce,
    reinforce_rej,
    rloo,
    scheme_parameters,
    split_c,
    split_c_exact,
    w_reinforce,
)
from rlvrlens.objectives.design import DesignResult, design, design_front
from rlvrlens.objectives.expression import parse_target
from rlvrlens.objectives.exact import dh_exact, h_exact, t_symbol
from rlvrlens.objectives.limits import LIMITS, limit
from rlvrlens.objectives.numeric import d2h, dh, dh_logit, h
from rlvrlens.objectives.presets import PRESETS, Preset, get_preset, preset_parameters
from rlvrlens.objectives.registry import Entry, Registry
from rlvrlens.objectives.scheme import WeightScheme, from_group_fn, from_rs
from rlvrlens.objectives.spec import SchemeSpec, load_scheme, scheme_from_description, scheme_spec
from rlvrlens.objectives.variance import mean_weight, second_moment, weight_variance, zero_weight_probability

__all__ = [
    "PRESETS", "Preset", "SCHEMES", "DesignResult", "SchemeSpec", "Entry", "LIMITS", "Registry", "WeightScheme",
    "d2h", "design", "design_front", "dh", "dh_exact", "dh_logit", "dr_grpo", "drop_uniform_groups",
    "dynamic_sampling", "dynamic_sampling_dh", "f_grpo", "from_group_fn", "from_rs",
    "get_preset", "get_scheme", "gpg", "grpo", "frac_reward_zero_std", "h", "h_exact", "kept_fraction", "limit", "load_scheme", "log_odds",
    "maxrl", "mean_weight", "nsr", "parse_target", "pass_at_k", "pkpo", "preset_parameters", "raft",
    "reinforce", "reinforce_rej", "rloo", "scheme_from_description", "scheme_parameters", "scheme_spec", "second_moment", "split_c", "split_c_exact",
    "t_symbol", "w_reinforce", "weight_variance", "zero_weight_probability",
]
