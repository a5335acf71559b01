"""``forecast.json``: a run's forecast made before it starts, as ``rlvrlens forecast`` writes it and
``explain --run`` reads it back (no torch).

The file (:data:`FORMAT`) holds the run's configuration (every ``TrainConfig`` field), its scheme
(``WeightScheme.describe()``), the parts of the configuration the forecast models, approximates or
leaves out (:class:`~rlvrlens.explain.parts.Part`), per prompt one row (``prompt_id``,
``prompt``, ``p_now``, the forecast ``p`` with its band at the chosen steps ``at``, the stationary
point ``p*`` its own flow heads for under the run's KL treatment, ``fate``, ``because_of_others``,
``signal`` and ``zero_std``: the probability of an all-equal group at ``p_now``), and the curves
(the forecast, its band and each prompt alone, ``K`` diagonal) on a grid of steps.

Each prompt's **fate** compares its forecast at the last step with ``p_now``: ``"rise"`` or
``"fall"`` by more than :data:`FATE_DELTA`, else ``"stall"``. A falling prompt falls **because of
the others** when alone (``K`` diagonal) it would not fall: the shared parameters carry it. A prompt
within :data:`NO_SIGNAL_P` of 0 or 1 has **no learning signal**: its groups are all wrong (or all
right) and group-baselined schemes give them no weight.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from scipy import special

from rlvrlens.core.intervals import format_exact, format_interval
from rlvrlens.core.records import json_ready
from rlvrlens.explain.parts import Part
from rlvrlens.objectives import frac_reward_zero_std

#: The ``format`` field of a forecast file.
FORMAT = "rlvrlens-forecast/1"
#: A prompt whose forecast moves less than this (in p) by the last step stalls.
FATE_DELTA = 0.02
#: Below this distance from 0 or 1 (with the whole interval there) a prompt gets no learning signal.
NO_SIGNAL_P = 1e-3
#: The fates, in the order the summary and the figure show them.
FATES = ("rise", "stall", "fall")
#: At most this many steps of the curves are stored (evenly spaced, plus the chosen ones).
CURVE_POINTS = 401


def curve_steps(steps: int, at: object) -> np.ndarray:
    """The steps a forecast file stores: every step up to :data:`CURVE_POINTS`, else that many evenly
    spaced ones, with 0, ``steps`` and the chosen steps ``at`` always included.

    >>> curve_steps(4, [2]).tolist(), len(curve_steps(10_000, [333]))
    ([0, 1, 2, 3, 4], 402)
    """
    grid = np.unique(np.round(np.linspace(0, steps, min(steps + 1, CURVE_POINTS))).astype(int))
    return np.unique(np.concatenate([grid, np.asarray(at, dtype=int), [0, steps]]))


@dataclass(frozen=True, eq=False)
class ForecastRecord:
    """A run's forecast (the module docstring); arrays of the curves are ``(len(steps), N)``.

    Attributes
    ----------
    prompt_ids, prompts : tuple of str
    steps : ndarray (T,)
        The stored steps (:func:`curve_steps`).
    p, low, high, diagonal : ndarray (T, N)
        The coupled forecast, its band, and each prompt alone.
    at : ndarray
        The chosen steps reported per prompt.
    stationary : ndarray (N,)
        Each prompt's own stationary point under the run's KL treatment (NaN: none).
    M : int
    kl : str
        The KL treatment in words (e.g. ``"KL(pi||pi_ref) per token, beta 0.04"``).
    config, scheme : dict
        The run's TrainConfig fields and ``WeightScheme.describe()``.
    parts : tuple of Part
    notes : tuple of str
    probe : dict
        The probe's batches, sizes and seconds per part.
    model, task : str
    """

    prompt_ids: tuple[str, ...]
    prompts: tuple[str, ...]
    steps: np.ndarray
    p: np.ndarray
    low: np.ndarray
    high: np.ndarray
    diagonal: np.ndarray
    at: np.ndarray
    stationary: np.ndarray
    M: int
    kl: str
    config: dict[str, Any]
    scheme: dict[str, Any]
    parts: tuple[Part, ...]
    notes: tuple[str, ...]
    probe: dict[str, Any]
    model: str
    task: str

    @property
    def p_now(self) -> np.ndarray:
        """Each prompt's exact success at step 0."""
        return self.p[0]

    @property
    def no_signal(self) -> np.ndarray:
        return (self.p_now <= NO_SIGNAL_P) | (self.p_now >= 1 - NO_SIGNAL_P)

    @property
    def zero_std(self) -> np.ndarray:
        """``p^M + (1-p)^M`` at ``p_now``: the probability of a group with no learning signal."""
        return frac_reward_zero_std(self.p_now, self.M)

    @property
    def fate(self) -> tuple[str, ...]:
        change = self.p[-1] - self.p_now
        return tuple("rise" if d > FATE_DELTA else "fall" if d < -FATE_DELTA else "stall" for d in change)

    @property
    def because_of_others(self) -> np.ndarray:
        """Falling prompts that alone (``K`` diagonal) would not fall."""
        alone = self.diagonal[-1] - self.p_now
        return np.array([f == "fall" for f in self.fate]) & (alone >= -FATE_DELTA)

    def at_step(self, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(p, low, high)`` at ``step`` (linear in logit between stored steps); None past the horizon."""
        if not 0 <= step <= self.steps[-1]:
            return None
        out = []
        for curve in (self.p, self.low, self.high):
            x = special.logit(np.clip(curve, 1e-12, 1 - 1e-12))
            out.append(special.expit(np.array([np.interp(step, self.steps, x[:, i]) for i in range(x.shape[1])])))
        return out[0], out[1], out[2]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per prompt: what the forecast says of it (the file's ``prompts`` list)."""
        index = [int(np.searchsorted(self.steps, s)) for s in self.at]
        fate, others, silent, zero = self.fate, self.because_of_others, self.no_signal, self.zero_std
        return [{"prompt_id": pid, "prompt": text, "p_now": float(self.p_now[i]),
                 "at": [{"step": int(self.steps[k]), "p": float(self.p[k, i]), "low": float(self.low[k, i]),
                         "high": float(self.high[k, i])} for k in index],
                 "stationary": float(self.stationary[i]), "fate": fate[i], "because_of_others": bool(others[i]),
                 "signal": not bool(silent[i]), "zero_std": float(zero[i])}
                for i, (pid, text) in enumerate(zip(self.prompt_ids, self.prompts))]

    def batch_mean(self) -> list[dict[str, Any]]:
        """The mean ``p`` over the prompts now and at each chosen step, with the mean of the bands."""
        index = [0] + [int(np.searchsorted(self.steps, s)) for s in self.at]
        return [{"step": int(self.steps[k]), "p": float(self.p[k].mean()), "low": float(self.low[k].mean()),
                 "high": float(self.high[k].mean())} for k in index]

    def summary(self) -> list[str]:
        """A few lines: which prompts rise, stall (with no signal), fall (because of others), and where
        the batch's mean goes."""
        fate, n = np.array(self.fate), len(self.prompt_ids)
        end = self.p[-1]
        lines = [f"{n} prompts over {int(self.steps[-1])} steps: " + ", ".join(
            f"{int((fate == f).sum())} {f}" for f in FATES)]
        for f in FATES:
            idx = np.flatnonzero(fate == f)
            if not idx.size:
                continue
            ids = ", ".join(self.prompt_ids[i] for i in idx[:8]) + (f", ... ({idx.size - 8} more)" if idx.size > 8 else "")
            extra = ""
            if f == "stall":
                extra = f"; {int(self.no_signal[idx].sum())} with no learning signal (p within {NO_SIGNAL_P:g} of 0 or 1)"
            if f == "fall":
                extra = f"; {int(self.because_of_others[idx].sum())} because of the others (alone they would not fall)"
            after = format_interval(np.median(end[idx]), np.median(self.low[-1, idx]), np.median(self.high[-1, idx]))
            lines.append(f"  {f} ({idx.size}): median p {format_exact(np.median(self.p_now[idx]))} now, {after} at step "
                         f"{int(self.steps[-1])}{extra}; prompts {ids}")
        means = self.batch_mean()
        path = "; ".join(f"step {m['step']}: {format_interval(m['p'], m['low'], m['high'])}" for m in means[1:])
        heads = np.nanmean(self.stationary) if np.isfinite(self.stationary).any() else float("nan")
        lines.append(f"batch mean p: {format_exact(means[0]['p'])} now; {path} (the mean of the prompts' bands); the "
                     f"prompts' own stationary points average {format_exact(heads)} ({self.kl})")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return json_ready({
            "format": FORMAT, "model": self.model, "task": self.task, "M": self.M, "kl": self.kl,
            "config": self.config, "scheme": self.scheme, "at": self.at, "summary": self.summary(),
            "parts": [p.to_dict() for p in self.parts], "notes": list(self.notes), "probe": self.probe,
            "batch_mean": self.batch_mean(), "prompts": self.rows(),
            "curves": {"steps": self.steps, "p": self.p, "low": self.low, "high": self.high,
                       "diagonal": self.diagonal, "stationary": self.stationary}})

    def write(self, path: str | Path) -> Path:
        """Write the file (valid JSON: ``null`` for a missing number)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "forecast") -> "ForecastRecord":
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ValueError(f"{where}: not an rlvrlens forecast file (format {FORMAT!r}, as rlvrlens forecast writes)")
        curves, rows = data["curves"], data["prompts"]

        def arr(x):
            return np.array([[np.nan if v is None else v for v in row] for row in x], dtype=float) \
                if x and isinstance(x[0], list) else np.array([np.nan if v is None else v for v in x], dtype=float)

        parts = tuple(Part(d["part"], d["setting"], d["stationary"], d["forecast"], d["how"]) for d in data["parts"])
        return cls(tuple(str(r["prompt_id"]) for r in rows), tuple(str(r["prompt"]) for r in rows),
                   arr(curves["steps"]), arr(curves["p"]), arr(curves["low"]), arr(curves["high"]),
                   arr(curves["diagonal"]), np.asarray(data["at"], dtype=int), arr(curves["stationary"]),
                   int(data["M"]), str(data["kl"]), dict(data["config"]), dict(data["scheme"]), parts,
                   tuple(data["notes"]), dict(data["probe"]), str(data["model"]), str(data["task"]))

    @classmethod
    def read(cls, path: str | Path) -> "ForecastRecord":
        """Read a forecast file (one-line errors naming it)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"--forecast: {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"--forecast: {path} is not valid JSON ({exc})") from None
        try:
            return cls.from_dict(data, f"--forecast: {path}")
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"--forecast: {path} lacks the forecast's {exc} (written by another version?)") from None
