"""What a configuration optimises, and whether a recorded run does it (the dynamics level: no torch).

:mod:`~rlvrlens.explain.report` (:func:`explain`: the induced objective, the weight per difficulty,
zero-variance groups, the KL map and where a trainer with a given KL estimator stops),
:mod:`~rlvrlens.explain.frameworks` (TRL and verl configurations read as users keep them: every
option honoured, neutral or not covered), :mod:`~rlvrlens.explain.run_config` (TRL and verl
configurations in the trainer's field names, the scheme a run names), :mod:`~rlvrlens.explain.parts`
(what each prediction models of a run's configuration),
:mod:`~rlvrlens.explain.forecasts` (``forecast.json``: a forecast made before a run),
:mod:`~rlvrlens.explain.run_records` (recorded runs: ours, TRL's, a plain JSONL of rewards) and
:mod:`~rlvrlens.explain.runs` (a recorded run against its forecast and stationary points). Imports
objectives, dynamics and core only.
"""

from rlvrlens.explain.frameworks import FrameworkConfig, from_trl_config, from_verl_config, read_config_file
from rlvrlens.explain.report import (
    DEFAULT_SPREAD,
    DEMO_CATALOGUE,
    GRID,
    KL_CURVE_P,
    MAX_KL_ROWS,
    TABLE_P,
    ExplainReport,
    FlowReport,
    KLReport,
    LimitAlignment,
    align_with_limit,
    catalogue_curves,
    config_kl_estimator,
    cycle_threshold,
    difficulty_weight,
    estimator_point,
    explain,
    flow_report,
    grid_outcomes,
    kl_report,
)
from rlvrlens.explain.forecasts import NO_SIGNAL_P, ForecastRecord
from rlvrlens.explain.parts import Part, configuration_parts
from rlvrlens.explain.run_config import RunSettings, read_scheme, trl_settings, verl_settings
from rlvrlens.explain.run_records import RunRecords, read_run
from rlvrlens.explain.runs import RunReport, explain_run

__all__ = [
    "DEFAULT_SPREAD", "DEMO_CATALOGUE", "GRID", "KL_CURVE_P", "MAX_KL_ROWS", "NO_SIGNAL_P", "TABLE_P",
    "ExplainReport", "FlowReport", "ForecastRecord", "FrameworkConfig", "KLReport", "LimitAlignment", "Part",
    "RunRecords", "RunReport", "RunSettings", "align_with_limit", "catalogue_curves", "config_kl_estimator",
    "configuration_parts", "cycle_threshold", "difficulty_weight", "estimator_point", "explain", "explain_run",
    "flow_report", "from_trl_config", "from_verl_config", "grid_outcomes", "kl_report", "read_config_file",
    "read_run", "read_scheme", "trl_settings", "verl_settings",
]
