"""The objectives layer: weight schemes and the objective ``h_M`` each one induces.

Davis & Recht (2025): a scheme ``Z_i = (1-R_i) a[S_i] + R_i b[S_i]`` takes, in expectation, a
gradient step on ``h_M(p)``. This package builds schemes (the catalogue, from functions, or designed
for a target ``h``) and evaluates ``h_M``, ``h'_M``, ``h''_M`` numerically and exactly.
"""

from rlvrlens.objectives.catalogue import (
    SCHEMES,
    dr_grpo,
    get_scheme,
    grpo,
    log_odds,
    pass_at_k,
    raft,
    reinforce,
    reinforce_rej,
    rloo,
    scheme_parameters,
    split_c,
    split_c_exact,
)
from rlvrlens.objectives.design import DesignResult, design
from rlvrlens.objectives.exact import dh_exact, h_exact, t_symbol
from rlvrlens.objectives.limits import LIMITS, limit
from rlvrlens.objectives.numeric import d2h, dh, dh_logit, h
from rlvrlens.objectives.presets import PRESETS, Preset, get_preset, preset_parameters
from rlvrlens.objectives.scheme import WeightScheme, from_group_fn, from_rs

__all__ = [
    "PRESETS", "Preset", "SCHEMES", "DesignResult", "LIMITS", "WeightScheme",
    "d2h", "design", "dh", "dh_exact", "dh_logit", "dr_grpo", "from_group_fn", "from_rs",
    "get_preset", "get_scheme", "grpo", "h", "h_exact", "limit", "log_odds", "pass_at_k",
    "preset_parameters", "raft",
    "reinforce", "reinforce_rej", "rloo", "scheme_parameters", "split_c", "split_c_exact", "t_symbol",
]
