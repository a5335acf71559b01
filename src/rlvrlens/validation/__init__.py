"""Theory against measurement: the experiments of ``rlvrlens validate`` (imports torch)."""

from rlvrlens.validation.experiments import (
    VALIDATION_SIZES,
    RealModelSize,
    ValidationSize,
    expected_step,
    fixed_points_vs_beta,
    get_size,
    lm_setup,
    relative_speed,
    sample_prompt,
    trajectories,
    validation_schemes,
)

from rlvrlens.validation.lm_fixed_points import lm_fixed_points, sampled_fixed_points
from rlvrlens.validation.real_model import directional_scores, projected_identity, real_model_setup

__all__ = ["VALIDATION_SIZES", "RealModelSize", "ValidationSize", "directional_scores", "expected_step",
           "fixed_points_vs_beta", "get_size", "lm_fixed_points", "lm_setup", "projected_identity", "real_model_setup",
           "relative_speed", "sample_prompt", "sampled_fixed_points", "trajectories", "validation_schemes"]
