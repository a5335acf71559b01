"""``rlvrlens forecast``: the forecast of a run as ``rlvrlens train`` would start it, as a record.

:func:`forecast_run` builds the starting model exactly as the run will (the same
:class:`~rlvrlens.training.Trainer` set-up: a named or local model, or a fresh one with its warm
start, all seeded by the config), probes it and integrates the coupled model
(:func:`rlvrlens.forecast.forecast.forecast`), and returns a
:class:`~rlvrlens.explain.forecasts.ForecastRecord`: what ``forecast.json`` holds and what
``explain --run`` compares the run with.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from rlvrlens.core.kl import DIVERGENCE, treatment_of
from rlvrlens.explain.forecasts import ForecastRecord, curve_steps
from rlvrlens.explain.parts import configuration_parts
from scipy import special

from rlvrlens.forecast.forecast import DEFAULT_BATCHES, Progress, forecast
from rlvrlens.objectives import WeightScheme
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.trainer import Trainer


def _logit(p: np.ndarray) -> np.ndarray:
    return special.logit(np.clip(p, 1e-12, 1 - 1e-12))


def default_at(steps: int) -> list[int]:
    """The steps reported per prompt when none are chosen: a quarter, half and all of the run.

    >>> default_at(200), default_at(2)
    ([50, 100, 200], [1, 2])
    """
    return sorted({s for s in (steps // 4, steps // 2, steps) if s > 0})


def kl_words(config: TrainConfig) -> str:
    """The run's KL term in words: the divergence its gradient is, where it is applied, beta.

    >>> kl_words(TrainConfig(beta=0.04, kl_estimator="k2"))
    'KL(pi||pi_ref) (k2 per token), beta 0.04'
    """
    if config.beta == 0:
        return "no KL term"
    if config.kl_in_reward:
        return f"the KL in the reward ({config.kl_estimator}), beta {config.beta:g}"
    where = "sequence" if config.kl_estimator == "exact" else config.kl_level
    return f"{DIVERGENCE[treatment_of(config.kl_estimator)]} ({config.kl_estimator} per {where}), beta {config.beta:g}"


def starting_point(config: TrainConfig, scheme: WeightScheme):
    """``(policy, task)`` as the run ``config`` starts: the trainer's own set-up (model, warm start, task),
    nothing else of it kept."""
    with Trainer(config, scheme=scheme) as trainer:
        return trainer.policy, trainer.task


def forecast_run(config: TrainConfig, *, scheme: WeightScheme, at: Sequence[int] | None = None, batches: int = DEFAULT_BATCHES,
                 seed: int = 0, refused: Mapping[str, str] | None = None, notes: Sequence[str] = (),
                 progress: Progress | None = None, propagate_every: int | None = None) -> ForecastRecord:
    """Forecast the run ``config`` (with ``scheme``) for its ``config.steps`` steps.

    Parameters
    ----------
    config : TrainConfig
        The run, as ``rlvrlens train`` would take it (model, task, optimiser, schedule, KL, ...).
    scheme : WeightScheme
        The run's weights (a catalogue scheme, a framework preset or a designed scheme).
    at : sequence of int, optional
        Steps reported per prompt (default :func:`default_at`); each in ``1..config.steps``.
    batches : int
        The probe's budget: stochastic gradients drawn (the noise, Adam's preconditioner and the
        jackknife band come from them; each costs about one training step).
    seed : int
        The probe's seed.
    refused : mapping, optional
        Options of a framework config with no counterpart in the trainer
        (:attr:`~rlvrlens.explain.run_config.RunSettings.refused`): the first one is raised.
    notes : sequence of str
        How a framework config was mapped; kept in the record.
    progress : callable, optional
        ``progress(part, done, total)`` during the probe.
    propagate_every : int, optional
        Propagate the forecast along its own parameter path, ``p`` re-measured every this many steps
        (:func:`rlvrlens.forecast.forecast.propagate`): the record's curve is then that path, with the
        frozen forecast's band around it; default: the frozen forecast.

    Returns
    -------
    ForecastRecord
    """
    if refused:
        option, why = next(iter(refused.items()))
        raise ValueError(f"{option}: not modelled by the forecast ({why}); set it with its flag or in the file")
    at = default_at(config.steps) if at is None else sorted(set(int(s) for s in at))
    bad = [s for s in at if not 1 <= s <= config.steps]
    if bad:
        raise ValueError(f"--at steps must lie in 1..{config.steps} (the run's steps), got {bad}")
    if scheme.M != config.num_generations:
        raise ValueError(f"the scheme {scheme.name!r} is for M = {scheme.M}, the run samples num_generations = "
                         f"{config.num_generations}")
    policy, task = starting_point(config, scheme)
    fc = forecast(policy, task, config, config.steps, scheme=scheme, batches=batches, seed=seed, progress=progress,
                  propagate_every=propagate_every)
    keep = np.searchsorted(fc.steps, curve_steps(config.steps, at))
    p, low, high = fc.p, fc.low, fc.high
    if fc.propagated is not None:  # the band's half-widths (in logit) carried over to the propagated path
        shift = _logit(fc.propagated) - _logit(fc.p)
        p, low, high = fc.propagated, special.expit(_logit(low) + shift), special.expit(_logit(high) + shift)
        notes = tuple(notes) + (f"propagated along its own parameter path: p re-measured every {propagate_every} "
                                "steps on the model stepped by the forecast's expected update (nothing of the run read)",)
    return ForecastRecord(
        prompt_ids=tuple(str(i) for i in range(len(task))), prompts=tuple(task.prompts), steps=fc.steps[keep],
        p=p[keep], low=low[keep], high=high[keep], diagonal=fc.diagonal[keep], at=np.asarray(at),
        stationary=fc.stationary, M=scheme.M, kl=kl_words(config), config=config.to_dict(), scheme=scheme.describe(),
        parts=configuration_parts(config.to_dict(), p_ref="exact", forecast=True),
        notes=tuple(notes) + tuple(fc.notes), probe=fc.to_dict()["probe"], model=config.model or
        f"fresh {config.arch} ({config.n_layer} layers, width {config.width}, {config.warm_start_steps} warm-start steps)",
        task=task.name)
