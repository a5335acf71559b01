"""Theory against measurement: the experiments of ``rlvrlens validate`` (imports torch)."""

from rlvrlens.validation.experiments import (
    PRESETS,
    ValidationPreset,
    expected_step,
    fixed_points_vs_beta,
    get_preset,
    lm_setup,
    relative_speed,
    sample_prompt,
    trajectories,
    validation_schemes,
)

__all__ = ["PRESETS", "ValidationPreset", "expected_step", "fixed_points_vs_beta", "get_preset", "lm_setup",
           "relative_speed", "sample_prompt", "trajectories", "validation_schemes"]
