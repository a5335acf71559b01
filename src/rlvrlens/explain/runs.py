"""``explain --run``: a recorded run against the forecast made before it and the stationary prediction.

For every prompt of a run (read by :func:`rlvrlens.explain.run_records.read_run`: our trainer's
records, a TRL run recorded by ``PromptSuccessRecorder``, or a plain JSONL of per-group rewards):

* ``p_ref``, its success at the start: exact from the run's records or from the forecast's probe,
  else estimated, with its Wilson interval;
* ``p`` now, with its interval;
* the **forecast** at the same step with its band (``forecast.json`` next to the records, or
  ``forecast=``), and whether the measured interval lies within, above or below it;
* the **stationary point** ``p*`` that the run's scheme, ``beta`` and KL treatment drive the prompt
  to from ``p_ref`` (:func:`rlvrlens.explain.estimator_point`), computed at both ends of ``p_ref``'s
  interval as well (``p*`` is non-decreasing in ``p_ref``), and whether ``p`` has reached it;
* whether it gets a learning signal.

The scheme is the one given (``scheme=``), else the one the run records (``config.json``, or the
TRL recorder's ``scheme.json``), else the advantages of the framework config given (``trl_config=``,
``verl_config=``: TRL's or verl's own); a run with none of these is refused, never guessed (a TRL
run's recorded arguments without its ``scheme.json`` do not say which scheme the adapter used). Every part of the run's configuration is reported as
modelled, approximated (how) or not modelled by each prediction
(:func:`rlvrlens.explain.parts.configuration_parts`). No torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rlvrlens.core.intervals import format_interval
from rlvrlens.core.kl import STATIONARY_CONDITION, check_beta, treatment_of
from rlvrlens.core.records import json_ready
from rlvrlens.dynamics import Outcome
from rlvrlens.explain.forecasts import NO_SIGNAL_P, ForecastRecord
from rlvrlens.explain.report import estimator_point
from rlvrlens.explain.parts import Part, configuration_parts
from rlvrlens.explain.run_config import RunSettings, read_scheme, scheme_from_dict, trl_settings, verl_settings
from rlvrlens.explain.run_records import RunRecords, read_run
from rlvrlens.objectives import WeightScheme, frac_reward_zero_std, get_scheme

#: TrainConfig fields that do not change a run's dynamics (left out when a forecast's config is compared).
BOOKKEEPING = ("eval_steps", "eval_samples", "save_steps", "device", "precision", "gradient_checkpointing")


@dataclass(frozen=True, eq=False)
class RunReport:
    """A run against its predictions (module docstring); arrays are per prompt unless said.

    Attributes
    ----------
    run, kind : str
        The path given and the run's format (``"rlvrlens"``, ``"trl"``, ``"rewards"``).
    scheme : WeightScheme
    scheme_source : str
        Where the scheme came from.
    beta : float
    kl_estimator : str
        The estimator whose treatment the run's KL term has (``"k1"`` for ``beta = 0``).
    steps : ndarray (R,)
    history, history_low, history_high : ndarray (R, N)
        Measured ``p`` and its interval per record (NaN where a prompt was not sampled).
    prompt_ids : tuple of str
    p_ref, p_ref_low, p_ref_high : ndarray
    p_ref_method : str
        ``"exact"`` or how ``p_ref`` was estimated.
    p_now, low, high, now_step : ndarray
        The last record of each prompt.
    predicted, predicted_low, predicted_high : ndarray
        ``p*`` at ``p_ref`` and at its interval's ends (NaN: unresolved).
    outcome : tuple of Outcome
    forecast : ForecastRecord or None
    forecast_index : ndarray of int
        Each prompt's column in the forecast (-1: not in it).
    forecast_now : ndarray (3, N)
        The forecast's ``p``, ``low``, ``high`` at ``now_step`` (NaN: none, or past its horizon).
    no_signal : ndarray of bool
    zero_std_measured : float or None
    zero_std_predicted : float
    parts : tuple of Part
    notes : tuple of str
    """

    run: str
    kind: str
    scheme: WeightScheme
    scheme_source: str
    beta: float
    kl_estimator: str
    steps: np.ndarray
    history: np.ndarray
    history_low: np.ndarray
    history_high: np.ndarray
    prompt_ids: tuple[str, ...]
    p_ref: np.ndarray
    p_ref_low: np.ndarray
    p_ref_high: np.ndarray
    p_ref_method: str
    p_now: np.ndarray
    low: np.ndarray
    high: np.ndarray
    now_step: np.ndarray
    predicted: np.ndarray
    predicted_low: np.ndarray
    predicted_high: np.ndarray
    outcome: tuple[Outcome, ...]
    forecast: ForecastRecord | None
    forecast_index: np.ndarray
    forecast_now: np.ndarray
    no_signal: np.ndarray
    zero_std_measured: float | None
    zero_std_predicted: float
    parts: tuple[Part, ...]
    notes: tuple[str, ...]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per prompt: every number the screen shows, with its interval and verdicts."""
        out = []
        for i, pid in enumerate(self.prompt_ids):
            now = {"p": self.p_now[i], "low": self.low[i], "high": self.high[i], "step": self.now_step[i]}
            star = {"p": self.predicted[i], "low": self.predicted_low[i], "high": self.predicted_high[i],
                    "outcome": self.outcome[i].label, "versus": _versus(now, self.predicted_low[i],
                                                                        self.predicted_high[i])}
            fc = None
            if np.isfinite(self.forecast_now[0, i]):
                f = self.forecast_now[:, i]
                fc = {"p": f[0], "low": f[1], "high": f[2], "step": self.now_step[i], "versus": _versus(now, f[1], f[2])}
            out.append({"prompt_id": pid, "p_ref": {"p": self.p_ref[i], "low": self.p_ref_low[i],
                                                    "high": self.p_ref_high[i], "method": self.p_ref_method},
                        "p_now": now, "forecast": fc, "stationary": star, "signal": not bool(self.no_signal[i])})
        return out

    def summary(self) -> list[str]:
        """The verdicts in a few lines: the forecast, the stationary points, zero-variance groups, signal."""
        rows = self.rows()
        lines = []
        compared = [r for r in rows if r["forecast"] is not None]
        if self.forecast is not None:
            if compared:
                within = sum(r["forecast"]["versus"] == "within" for r in compared)
                above = sum(r["forecast"]["versus"] == "above" for r in compared)
                err = np.mean([abs(r["p_now"]["p"] - r["forecast"]["p"]) for r in compared])
                naive = np.mean([abs(r["p_now"]["p"] - r["p_ref"]["p"]) for r in compared])
                lines.append(f"forecast: the measured p lies within the forecast's band for {within} of {len(compared)} "
                             f"prompts ({above} above, {len(compared) - within - above} below); mean |p - forecast| = "
                             f"{err:.2g}, against {naive:.2g} for 'p stays at p_ref'")
            else:
                lines.append("forecast: no prompt could be compared (see the notes)")
        resolved = [r for r in rows if np.isfinite(r["stationary"]["p"])]
        counts = {v: sum(r["stationary"]["versus"] == v for r in resolved) for v in ("within", "below", "above")}
        lines.append(f"stationary points: {counts['within']} of {len(rows)} prompts are at p* (their intervals overlap), "
                     f"{counts['below']} below it, {counts['above']} above it"
                     + (f", {len(rows) - len(resolved)} unresolved" if len(resolved) < len(rows) else ""))
        measured = "not recorded" if self.zero_std_measured is None else f"{self.zero_std_measured:.2f}"
        lines.append(f"zero-variance groups (frac_reward_zero_std): measured {measured}, predicted from the recorded p "
                     f"{self.zero_std_predicted:.2f}")
        lines.append(f"prompts with no learning signal (p within {NO_SIGNAL_P:g} of 0 or 1): {int(self.no_signal.sum())} "
                     f"of {self.no_signal.size}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The same fields as the screen (JSON-ready; ``null`` for a missing number)."""
        return json_ready({
            "run": self.run, "kind": self.kind, "scheme": self.scheme.name, "M": self.scheme.M,
            "scheme_params": dict(self.scheme.params), "scheme_source": self.scheme_source, "beta": self.beta,
            "kl_estimator": self.kl_estimator, "steps": self.steps, "records": int(self.history.shape[0]),
            "forecast": None if self.forecast is None else {"model": self.forecast.model, "task": self.forecast.task},
            "summary": self.summary(), "prompts": self.rows(), "parts": [p.to_dict() for p in self.parts],
            "frac_reward_zero_std": {"measured": self.zero_std_measured, "predicted": self.zero_std_predicted},
            "notes": list(self.notes)})


def _versus(now: Mapping[str, float], low: float, high: float) -> str | None:
    """Where the measured interval lies against ``[low, high]``: within (they overlap), above or below."""
    if not (np.isfinite(low) and np.isfinite(high) and np.isfinite(now["p"])):
        return None
    if now["high"] < low:
        return "below"
    if now["low"] > high:
        return "above"
    return "within"


def format_row(d: Mapping[str, Any] | None) -> str:
    """``p [low, high]`` of one of :meth:`RunReport.rows`' entries, to the digits its interval supports."""
    return "-" if d is None else format_interval(d["p"], d["low"], d["high"])


def _settings(rec: RunRecords, trl_config, verl_config) -> tuple[RunSettings | None, str]:
    if trl_config is not None:
        return trl_settings(trl_config), "--trl-config"
    if verl_config is not None:
        return verl_settings(verl_config), "--verl-config"
    if rec.trl_args is not None:
        return trl_settings(rec.trl_args), "trl_config.json (recorded)"
    return None, ""


def _scheme(rec: RunRecords, scheme, M, params, settings, settings_source, run) -> tuple[WeightScheme, str]:
    M = M or rec.M or (settings.fields["num_generations"] if settings else None)
    if isinstance(scheme, WeightScheme):
        return scheme, "given"
    if scheme is not None:
        return read_scheme(scheme, M, params), f"--scheme {scheme}"
    if rec.config is not None:
        missing = [k for k in ("scheme", "num_generations", "scheme_params", "beta", "kl_estimator", "kl_in_reward")
                   if k not in rec.config]
        if missing:
            raise ValueError(f"{rec.source.parent / 'config.json'}: not an rlvrlens run config (it lacks "
                             f"{', '.join(missing)})")
        params = rec.config["scheme_params"] or {}
        try:
            if not isinstance(params, dict):
                raise TypeError(f"scheme_params must be an object, got {params!r}")
            return get_scheme(rec.config["scheme"], rec.config["num_generations"], **params), "config.json (recorded)"
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{rec.source.parent / 'config.json'}: {exc}") from None
    if rec.scheme is not None:
        return scheme_from_dict(rec.scheme, M, where="scheme.json"), "scheme.json (recorded by PromptSuccessRecorder)"
    if settings is not None and settings_source.startswith("--"):  # the user says: the framework's own advantages
        base = settings.scheme
        own = base if M in (None, base.M) else read_scheme(base.name, M, dict(base.params))
        return own, f"{settings_source}: {settings.framework}'s own advantages (preset {base.name})"
    raise ValueError(f"--run {run}: the run records no scheme (no config.json, no scheme.json); give it: --scheme NAME or FILE (a catalogue scheme, "
                     "a preset, or a scheme's JSON), --trl-config or --verl-config")


def _kl(rec: RunRecords, beta, kl_estimator, settings) -> tuple[float, str | None]:
    if rec.config is not None:
        try:
            cfg_beta = check_beta(rec.config["beta"], zero=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{rec.source.parent / 'config.json'}: {exc}") from None
        cfg_kl = "reward" if rec.config["kl_in_reward"] else str(rec.config["kl_estimator"])
    elif settings is not None:
        cfg_beta, cfg_kl = float(settings.fields.get("beta", 0.0)), settings.kl_estimator
    else:
        cfg_beta = cfg_kl = None
    beta = cfg_beta if beta is None else float(beta)
    if beta is None:
        raise ValueError("the run records no KL coefficient: give --beta B (0 for no KL term) and, with B > 0, "
                         "--kl-estimator")
    if beta == 0:
        return 0.0, "k1"
    kl = kl_estimator or cfg_kl
    if kl is None:
        raise ValueError(f"beta = {beta:g} needs the KL estimator the run used: give --kl-estimator")
    return beta, kl


def _fields(rec: RunRecords, settings: RunSettings | None, beta: float, kl: str) -> dict[str, Any] | None:
    if rec.config is not None:
        return rec.config
    if settings is not None:
        return settings.fields
    return {"beta": beta, "kl_estimator": kl} if beta else {"beta": 0.0}


def _match(forecast: ForecastRecord, ids: tuple[str, ...]) -> np.ndarray:
    """Each run prompt's column in the forecast, by id, else by prompt text (-1: not there)."""
    by_id = {pid: j for j, pid in enumerate(forecast.prompt_ids)}
    by_text = {text: j for j, text in enumerate(forecast.prompts)}
    index = np.array([by_id.get(pid, -1) for pid in ids])
    if (index < 0).all():
        index = np.array([by_text.get(pid, -1) for pid in ids])
    return index


def _last_finite(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    return np.where(finite.any(0), finite.shape[0] - 1 - np.argmax(finite[::-1], axis=0), 0)


def _first_finite(values: np.ndarray) -> np.ndarray:
    return np.argmax(np.isfinite(values), axis=0)


def explain_run(run: str | Path, *, scheme: str | WeightScheme | None = None, M: int | None = None,
                params: Mapping[str, Any] | None = None, beta: float | None = None, kl_estimator: str | None = None,
                trl_config: Mapping[str, Any] | None = None, verl_config: Mapping[str, Any] | None = None,
                forecast: str | Path | None = None, window: int | None = None) -> RunReport:
    """Read the run in ``run`` and compare it with its forecast and stationary points (module docstring).

    Parameters
    ----------
    run : path
        A run folder or a ``.jsonl`` file (:func:`~rlvrlens.explain.run_records.read_run`).
    scheme : str or WeightScheme, optional
        The run's scheme: a catalogue name or a preset (with ``M`` and ``params``), a scheme's JSON
        file (:func:`~rlvrlens.explain.run_config.read_scheme`), or a scheme; default: the run's record.
    M : int, optional
        Group size for a named scheme (default: the run's).
    params : mapping, optional
        The named scheme's parameters.
    beta, kl_estimator : optional
        Override (or, for a run that records neither, supply) the KL coefficient and estimator
        (:data:`rlvrlens.core.kl.EXPLAIN_ESTIMATORS`).
    trl_config, verl_config : mapping, optional
        A TRL ``GRPOConfig`` / verl YAML as a mapping: the run's settings (default for a TRL run: its
        recorded ``trl_config.json``).
    forecast : path, optional
        A ``forecast.json`` (default: the one next to the run's records, if any).
    window : int, optional
        Steps pooled per window for a rewards JSONL.

    Returns
    -------
    RunReport
    """
    rec = read_run(run, window=window)
    settings, settings_source = _settings(rec, trl_config, verl_config)
    the_scheme, scheme_source = _scheme(rec, scheme, M, params, settings, settings_source, run)
    if rec.M is not None and rec.M != the_scheme.M:
        raise ValueError(f"the scheme {the_scheme.name!r} is for M = {the_scheme.M}, the run's groups have M = {rec.M}")
    beta, kl = _kl(rec, beta, kl_estimator, settings)
    refused = dict(settings.refused) if settings else {}
    if not scheme_source.startswith(settings_source or "-"):  # the scheme is not TRL's own: its scale_rewards is moot
        refused.pop("scheme", None)
    notes = [f"scheme {the_scheme.name} M={the_scheme.M} from {scheme_source}"] + list(rec.notes)
    if settings is not None:
        notes += [f"{settings_source}: {n}" for n in settings.notes]
    fc = ForecastRecord.read(forecast) if forecast is not None else (
        ForecastRecord.read(rec.forecast) if rec.forecast is not None else None)
    n = len(rec.prompt_ids)
    index = _match(fc, rec.prompt_ids) if fc is not None else np.full(n, -1)
    if fc is not None:
        if (index < 0).all():
            notes.append("the forecast's prompts (ids and texts) are none of the run's: not compared")
            fc = None
        elif (index < 0).any():
            notes.append(f"{int((index < 0).sum())} of the run's prompts are not in the forecast")
        if fc is not None and rec.config is not None:
            differ = [f"{k} {fc.config.get(k)!r} (run: {v!r})" for k, v in rec.config.items()
                      if k not in BOOKKEEPING and k in fc.config and fc.config[k] != v]
            if differ:
                notes.append("the forecast was made for another configuration: " + "; ".join(differ))
    first, last = _first_finite(rec.p), _last_finite(rec.p)
    cols = np.arange(n)
    p_ref, ref_low, ref_high = rec.p[first, cols], rec.low[first, cols], rec.high[first, cols]
    method = "exact" if rec.exact else f"{rec.method}: Wilson 95% interval"
    if fc is not None and (index >= 0).all() and not rec.exact:  # the probe's exact p beats an estimate
        p_ref = ref_low = ref_high = fc.p_now[index]
        method = "exact (the forecast's probe of the starting model)"
    elif rec.samples is not None:
        notes.append("p_ref is each prompt's success over its first window of groups, not the starting model's exactly "
                     "(a forecast's probe gives it exactly)")
    elif (rec.steps[first] > 0).any():
        notes.append(f"{int((rec.steps[first] > 0).sum())} prompt(s) were first recorded after step 0: their p_ref is "
                     "the success at their first record, not the starting model's")
    kl_point = kl if beta > 0 else "k1"
    b = beta if beta > 0 else 1.0

    def star(p: float) -> float:
        point = estimator_point(the_scheme, b, float(np.clip(p, 0.0, 1.0)), kl_point)
        return float("nan") if point is None else float(point.p)

    predicted = np.array([star(p) for p in p_ref])
    pred_low = np.array([star(p) for p in ref_low])
    pred_high = np.array([star(p) for p in ref_high])
    outcome = tuple(Outcome.UNRESOLVED if np.isnan(p) else Outcome.FIXED_POINT for p in predicted)
    notes.append("beta = 0: no KL anchor, p -> 1 wherever h'_M > 0 (no finite stationary point)" if beta == 0 else
                 f"KL estimator {kl}: {STATIONARY_CONDITION[treatment_of(kl)]}")
    now_step = rec.steps[last]
    fnow = np.full((3, n), np.nan)
    if fc is not None:
        past = now_step > fc.steps[-1]
        for i in np.flatnonzero((index >= 0) & ~past):
            p, lo, hi = fc.at_step(float(now_step[i]))
            fnow[:, i] = p[index[i]], lo[index[i]], hi[index[i]]
        if past.any():
            notes.append(f"{int(past.sum())} prompt(s) were last recorded after the forecast's horizon (step "
                         f"{int(fc.steps[-1])}): not compared (forecast as many steps as the run)")
    low_now, high_now = rec.low[last, cols], rec.high[last, cols]
    no_signal = (high_now <= NO_SIGNAL_P) | (low_now >= 1 - NO_SIGNAL_P)
    M_run = the_scheme.M
    finite = np.isfinite(rec.p)
    zero = float(np.mean(frac_reward_zero_std(np.where(finite, rec.p, 0.5), M_run)[finite]))
    parts = configuration_parts(_fields(rec, settings, beta, kl), p_ref="exact" if method.startswith("exact") else method,
                                forecast=fc is not None, refused=refused)
    return RunReport(str(run), rec.kind, the_scheme, scheme_source, beta, kl, rec.steps, rec.p, rec.low, rec.high,
                     rec.prompt_ids, p_ref, ref_low, ref_high, method, rec.p[last, cols], low_now, high_now, now_step,
                     predicted, pred_low, pred_high, outcome, fc, index, fnow, no_signal, rec.zero_std, zero, parts,
                     tuple(notes))
