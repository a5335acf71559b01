"""The dynamics layer: where a KL-regularised RLVR iteration drives the success probability.

Mroueh (2025) shows that GRPO with a KL penalty to ``pi_ref`` moves the success probability by
``logit p_n = logit p_ref + Omega(p_{n-1})/beta``. THEORY.md §2 (derived) extends this to every
weight scheme with finite ``M``: the gap is ``h'_M``. This package builds these maps
(:func:`success_map`, :func:`grpo_success_map`, ...), iterates them, finds all their fixed points
and 2-cycles, evaluates the theory's bounds, and simulates the finite-sample version. A gradient
trainer is a flow rather than the map (THEORY.md §4): :func:`stationary_points` for each KL
estimator, :func:`flow_target` (where a run from ``pi_ref`` stops), :func:`flow` and
:func:`softmax_flow` (the mean-field ODE); the KL treatments are named in :mod:`rlvrlens.core.kl`.
"""

from rlvrlens.dynamics.fixed_points import (
    FixedPoint,
    FixedPointGrid,
    TwoCycle,
    count_fixed_points,
    fixed_point_grid,
    fixed_points,
    two_cycles,
)
from rlvrlens.dynamics.iteration import Attractor, Outcome, Trajectory, attractor, check_map, iterate
from rlvrlens.dynamics.maps import (
    SuccessMap,
    dr_grpo_success_map,
    grpo_success_map,
    mirror_map,
    mixture_map,
    success_map,
)
from rlvrlens.dynamics.flow import flow, softmax_flow
from rlvrlens.dynamics.simulate import Simulation, sample_gap, simulate
from rlvrlens.dynamics.stationary import (
    StationaryPoint,
    flow_target,
    kl_reward_map,
    map_stationary_points,
    stationary_points,
    velocity,
)
from rlvrlens.dynamics.theory import (
    Amplification,
    amplification,
    contraction_beta,
    mroueh_bound,
    parametric_bound,
    stability_beta,
)

__all__ = [
    "StationaryPoint", "flow", "flow_target", "kl_reward_map",
    "map_stationary_points", "softmax_flow", "stationary_points", "velocity",
    "Amplification", "Attractor", "FixedPoint", "FixedPointGrid", "Outcome", "Simulation", "SuccessMap",
    "Trajectory", "TwoCycle", "amplification", "attractor", "check_map", "contraction_beta", "count_fixed_points",
    "dr_grpo_success_map", "fixed_point_grid", "fixed_points", "grpo_success_map", "iterate",
    "mirror_map", "mixture_map", "mroueh_bound", "parametric_bound", "sample_gap",
    "simulate", "stability_beta", "success_map", "two_cycles",
]
