"""A forecast from step 0 against the run it predicts, with a nowcast and the baselines beside it.

:func:`forecast_run` probes the starting model and forecasts the run
(:func:`rlvrlens.forecast.forecast`, reading nothing of the run), then trains with the very
configuration it forecast, recording exact per-prompt success every ``record_every`` steps. Beside the
forecast it reports:

* a **nowcast**: the same model restarted every ``refresh`` steps from the run's measured ``p`` with
  the kernel re-measured on the run's network under the optimiser's actual preconditioner
  (:meth:`rlvrlens.training.Trainer.preconditioner`): it reads the run it predicts, so it is labelled so;
* the diagonal model (each prompt alone) and the naive one (``p`` stays);
* with ``propagate_every``, the forecast propagated along its own predicted parameter path
  (:func:`rlvrlens.forecast.propagate`: still a forecast, it reads nothing of the run).

The horizon is the last recorded step up to which the forecast's logit RMS over the run so far is at
most the target, and the probe's cost is its time against the run's.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from rlvrlens.core.checks import check_int
from rlvrlens.core.logit import logit_rms
from rlvrlens.forecast.forecast import DEFAULT_BATCHES, Probe, forecast, integrate, logit_kernel
from rlvrlens.objectives import WeightScheme
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.task import Task
from rlvrlens.training.trainer import Trainer
from rlvrlens.validation.verdicts import FORECAST_RMS_TARGET


def _nowcast_probe(trainer: Trainer, task: Task, pr: Probe) -> Probe:
    """The probe's kernel re-measured on the run's network now (Adam's actual preconditioner; the
    probe's noise terms kept)."""
    p, L = logit_kernel(trainer.policy, task, trainer.preconditioner(), sketch=pr.sketch)
    return replace(pr, p=p, L=L, L_jackknife=None)


def horizon(measured: np.ndarray, predicted: np.ndarray, steps: np.ndarray, target: float) -> int:
    """The last of ``steps`` up to which the logit RMS of ``predicted`` against ``measured`` (over the
    rows so far) is at most ``target`` (0 when even the first rows miss).

    >>> horizon(np.array([[0.5], [0.5], [0.9]]), np.array([[0.5], [0.5], [0.5]]), np.array([0, 10, 20]), 0.2)
    10
    """
    ok = [steps[k - 1] for k in range(1, len(steps) + 1) if logit_rms(measured[:k], predicted[:k]) <= target]
    return int(ok[-1]) if ok else 0


def forecast_run(policy, task: Task, config: TrainConfig, scheme: WeightScheme, *, label: str,
                 batches: int = DEFAULT_BATCHES,
                 refresh: int = 10, record_every: int = 1, target: float = FORECAST_RMS_TARGET,
                 propagate_every: int | None = None) -> list[dict[str, Any]]:
    """Forecast, then run, ``config`` from ``policy`` (which the run trains); one record per prompt.

    Parameters
    ----------
    policy : Policy
        The starting model; trained in place by the run.
    task : Task
        Enumerable; the run's prompts.
    config : TrainConfig
        The run (``steps`` of them).
    scheme : WeightScheme
    label : str
        Names the run in the records.
    batches : int
        The probe's stochastic gradients.
    refresh : int
        The nowcast's kernel is re-measured every this many steps.
    record_every : int
        Exact ``p`` is recorded every this many steps (and at the end).
    target : float
        The logit RMS that defines the horizon.
    propagate_every : int, optional
        Also the propagated forecast, ``p`` re-measured along the predicted path every this many steps
        (its time is counted in the probe's).

    Returns
    -------
    list of dict
        ``forecast_run`` records with the measured, forecast (and band), nowcast, diagonal and naive
        trajectories at the recorded steps (and ``propagated``), the logit RMS of each, the horizon
        (``horizon_propagated``), the probe's seconds (``probe_parts``: each part's, the propagation's
        included) and the run's.

    Raises
    ------
    TypeError, ValueError
        For a ``refresh`` or ``record_every`` that is not an integer ``>= 1``.
    """
    refresh, record_every = check_int("refresh", refresh), check_int("record_every", record_every)
    t0 = time.perf_counter()
    fc = forecast(policy, task, config, scheme=scheme, batches=batches, propagate_every=propagate_every)
    probe_seconds = time.perf_counter() - t0
    steps = sorted(set(range(0, config.steps + 1, record_every)) | {config.steps})
    trainer = Trainer(config, policy=policy, task=task, scheme=scheme)
    nowcast = [fc.probe.p.copy()]
    state: dict[str, Any] = {"start": 0, "path": None}

    def refresh_model(tr: Trainer, _metrics) -> None:
        if tr.step == 0:  # nothing of the run is known yet: the nowcast starts as the forecast
            state["start"], state["path"] = 0, fc.p
        elif tr.step % refresh == 0 and tr.step < config.steps:
            path = integrate(_nowcast_probe(tr, task, fc.probe), config, scheme, min(refresh, config.steps - tr.step),
                             p_ref=fc.probe.p, start=tr.step)
            state["start"], state["path"] = tr.step, path

    t1 = time.perf_counter()
    refresh_model(trainer, None)
    history: dict[int, np.ndarray] = {}

    def record(tr: Trainer, metrics) -> None:
        path, start = state["path"], state["start"]
        if tr.step in steps:
            history[tr.step] = np.array(tr.evaluate()["p"])
            nowcast.append(path[min(tr.step - start, len(path) - 1)])
        refresh_model(tr, metrics)

    trainer.train(callbacks=[record])
    run_seconds = time.perf_counter() - t1
    measured = np.array([fc.probe.p] + [history[s] for s in steps[1:]])
    idx = np.array(steps)
    models = {"forecast": fc.p[idx], "nowcast": np.array(nowcast), "diagonal": fc.diagonal[idx], "naive": fc.naive[idx]}
    extra: dict[str, Any] = {}
    if fc.propagated is not None:
        models["propagated"] = fc.propagated[idx]
        extra = {"horizon_propagated": horizon(measured, models["propagated"], idx, target),
                 "propagate_every": propagate_every}
    rms = {k: logit_rms(measured, v) for k, v in models.items()}
    reach = horizon(measured, models["forecast"], idx, target)
    return [{"experiment": "forecast_run", "run": label, "prompt": int(x), "p_start": float(fc.probe.p[x]),
             "steps": [int(s) for s in steps], "optim": config.optim, "learning_rate": config.learning_rate,
             "lr_scheduler_type": config.lr_scheduler_type, "beta": config.beta, "kl_estimator": config.kl_estimator,
             "scheme": scheme.name, "prompts": len(task), "total_steps": config.steps,
             "measured": measured[:, x].tolist(), "low": fc.low[idx, x].tolist(), "high": fc.high[idx, x].tolist(),
             "stationary": float(fc.stationary[x]), **{k: v[:, x].tolist() for k, v in models.items()},
             **{f"logit_rms_{k}": v for k, v in rms.items()}, "horizon": reach, "target": target,
             "probe_seconds": probe_seconds, "run_seconds": run_seconds, "signal_fraction": fc.probe.signal_fraction,
             "probe_parts": {**fc.probe.seconds, "propagate": fc.propagate_seconds},
             "notes": list(fc.notes), **extra} for x in range(len(task))]

