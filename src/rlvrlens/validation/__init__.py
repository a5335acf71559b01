"""Theory against measurement: the experiments of ``rlvrlens validate`` (imports torch)."""

from rlvrlens.validation.experiments import (
    VALIDATION_SIZES,
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

from rlvrlens.validation.lm_fixed_points import lm_fixed_points

__all__ = ["VALIDATION_SIZES", "ValidationSize", "expected_step", "fixed_points_vs_beta", "get_size", "lm_fixed_points",
           "lm_setup", "relative_speed", "sample_prompt", "trajectories", "validation_schemes"]
