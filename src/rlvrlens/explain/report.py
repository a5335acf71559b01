""""What is my trainer optimising?": a report for one framework configuration.

For a preset (:mod:`rlvrlens.objectives.presets`) and a group size ``M``, :func:`explain` gathers:

1. the induced objective ``h_M`` (Davis & Recht 2025, Theorem 1) against its ``M -> infinity``
   limit, both normalised so that the comparison is about shape, not scale;
2. the relative weight the update puts on prompts of each difficulty: the step size ``h'_M(p)``
   divided by its mean over ``p`` in ``[0, 1]`` (``= h_M(1) - h_M(0)``), so 1 everywhere is
   REINFORCE's uniform weighting and std normalisation shows up as a U shape;
3. the expected fraction of groups whose rewards have zero variance, ``p^M + (1-p)^M`` for a prompt
   of success probability ``p`` (all wrong or all right: no gradient; TRL logs it as
   ``frac_reward_zero_std``), averaged over a stated spread of ``p`` across prompts;
4. with a KL coefficient ``beta``: where the KL-regularised iteration drives each prompt's success
   probability, ``logit p_n = logit p_ref + h'_M(p_{n-1})/beta`` (Mroueh 2025's closed form,
   extended to every scheme in THEORY.md §2; :mod:`rlvrlens.dynamics`), and whether it converges
   to a fixed point or cycles;
5. with a known KL estimator (``kl_estimator``, or the one a framework config names): where a
   small-step gradient trainer with that estimator stops instead, the estimator-aware stationary
   point of the mean-field flow from ``pi_ref`` (:func:`rlvrlens.dynamics.flow_target`, THEORY.md
   §4): ``exact``/``k2`` KL(pi||pi_ref) (the field's reverse KL), ``k3`` KL(pi_ref||pi) (the
   field's forward KL), ``k1`` no pull back (``p -> 1``),
   ``reward`` (KL folded into the reward) for schemes affine in the rewards.

Batch-level presets (a batch std or success count) are modelled with the same spread of ``p``
unless their ``p_batch`` is given (with ``beta``, the batch constant stays at its initial value
while the prompts move: an approximation). The module sits at the dynamics level: it uses the objectives
layer for every formula and never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from scipy import special

from rlvrlens.core.budget import check_cells
from rlvrlens.core.checks import check_float, check_probabilities
from rlvrlens.core.kl import EXPLAIN_ESTIMATORS, PI_REF, REF_PI, check_beta, check_estimator, treatment_of
from rlvrlens.dynamics import (
    Outcome,
    StationaryPoint,
    attractor,
    fixed_point_grid,
    fixed_points,
    flow_target,
    kl_reward_map,
    success_map,
)
from rlvrlens.objectives import (
    LIMITS,
    PRESETS,
    WeightScheme,
    dh,
    dr_grpo,
    frac_reward_zero_std,
    get_preset,
    grpo,
    h,
    log_odds,
    pass_at_k,
    preset_parameters,
    raft,
    reinforce,
    reinforce_rej,
    rloo,
)
from rlvrlens.explain.frameworks import FrameworkConfig
from rlvrlens.objectives import dynamic_sampling as objectives_dynamic_sampling
from rlvrlens.objectives.presets import MissingPBatch

#: float64 values a prompt of the spread costs (measured: 3e6 prompts with beta took 0.9 GB).
_CELLS_PER_PROMPT = 40
#: The sampled estimator whose expected gradient is each treatment (a framework's KL term is named by it).
SAMPLED_TREATMENT_ESTIMATOR = {PI_REF: "k2", REF_PI: "k3", "none": "k1", "reward": "reward"}
#: Default spread of success probabilities across prompts: uniform on (0, 1), as bin midpoints.
DEFAULT_SPREAD = (np.arange(200) + 0.5) / 200
#: Difficulties shown in the tables.
TABLE_P = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
#: Grid on which curves are reported.
GRID = np.linspace(0.0, 1.0, 201)
#: Most prompts listed one by one in the KL table (a longer --p-ref-file is summarised).
MAX_KL_ROWS = 20
#: Reference success probabilities of the KL figure's curve.
KL_CURVE_P = np.linspace(0.005, 0.995, 199)
#: Where shift-aligned limits (``log``, ``logit``) are compared with ``h_M``.
_SHIFT_WINDOW = (0.05, 0.95)


def difficulty_weight(scheme: WeightScheme, p: object) -> np.ndarray:
    """The step ``h'_M(p)`` relative to its mean over ``[0, 1]``: ``h'_M(p) / (h_M(1) - h_M(0))``.

    1 everywhere means every difficulty is pushed equally (REINFORCE, RLOO); values above 1 mark
    the difficulties the update favours.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme.
    p : array_like
        Success probabilities in ``[0, 1]``.

    Returns
    -------
    ndarray
        ``h'_M(p) / h_M(1)``, shaped like ``p``.

    Raises
    ------
    ValueError
        If ``h_M(1) <= 0`` (the scheme puts no net weight on success), or a ``p`` lies outside
        ``[0, 1]``.

    Examples
    --------
    >>> from rlvrlens.objectives import rloo
    >>> difficulty_weight(rloo(4), [0.1, 0.9]).round(12).tolist()
    [1.0, 1.0]
    """
    total = float(h(scheme, 1.0))
    if not total > 0:
        raise ValueError(f"scheme {scheme.name!r} has h_M(1) = {total:g} <= 0: no net push towards success")
    return dh(scheme, p) / total


@dataclass(frozen=True, eq=False)
class ExplainReport:
    """What one configuration optimises (see the module docstring); :meth:`to_dict` is JSON-ready.

    Attributes
    ----------
    preset, framework, config : str
        The preset name, its framework and the config switch it stands for.
    scheme : WeightScheme
        The weights (``a``, ``b``) the preset gives groups of ``M`` answers.
    t : ndarray
        Grid on ``[0, 1]``.
    h_normalised : ndarray
        ``h_M(t)`` divided by ``h_M(1)`` (or shifted, see ``normalisation``).
    limit_name, limit_label : str or None
        The ``M -> infinity`` limit (a key of :data:`rlvrlens.objectives.LIMITS`) and its label.
    limit_normalised : ndarray or None
        The limit, normalised like ``h_normalised``.
    normalisation : str
        ``"ratio"``: both divided by their value at ``t = 1``; ``"shift"``: both shifted to 0 at
        ``t = 1/2`` (limits infinite at an endpoint), compared on ``[0.05, 0.95]``.
    limit_gap : float or None
        ``sup |h_normalised - limit_normalised|`` where they are compared.
    weight : ndarray
        :func:`difficulty_weight` on the grid.
    table_p, table_weight : ndarray
        The same at :data:`TABLE_P`.
    p_spread : ndarray
        Success probabilities of the prompts (the spread of ``p`` used below and, for batch-level
        presets without ``p_batch``, for the batch statistic).
    frac_zero_std : float
        Mean of ``p^M + (1-p)^M`` over ``p_spread``.
    frac_zero_std_curve : ndarray
        ``p^M + (1-p)^M`` on the grid.
    kl : KLReport or None
        Section 4, present when a ``beta`` was given.
    flow : FlowReport or None
        Section 5, present when a ``beta`` and a KL estimator are known.
    notes : tuple of str
        Modelling remarks (e.g. how a batch statistic was modelled).
    """

    preset: str
    framework: str
    config: str
    scheme: WeightScheme
    t: np.ndarray
    h_normalised: np.ndarray
    limit_name: str | None
    limit_label: str | None
    limit_normalised: np.ndarray | None
    normalisation: str
    limit_gap: float | None
    weight: np.ndarray
    table_p: np.ndarray
    table_weight: np.ndarray
    p_spread: np.ndarray
    frac_zero_std: float
    frac_zero_std_curve: np.ndarray
    kl: KLReport | None = None
    notes: tuple[str, ...] = field(default=())
    flow: FlowReport | None = None

    @property
    def M(self) -> int:
        return self.scheme.M

    def to_dict(self) -> dict[str, Any]:
        """All numbers as plain Python types (lists, floats, strings)."""
        def arr(x):
            return None if x is None else np.asarray(x, dtype=float).tolist()

        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.scheme.params.items()}
        return {
            "preset": self.preset, "framework": self.framework, "config": self.config,
            "M": self.M, "params": params,
            "a": arr(self.scheme.a), "b": arr(self.scheme.b),
            "objective": {
                "t": arr(self.t), "h_normalised": arr(self.h_normalised),
                "limit": self.limit_name, "limit_normalised": arr(self.limit_normalised),
                "normalisation": self.normalisation, "limit_gap": self.limit_gap,
            },
            "difficulty_weight": {
                "t": arr(self.t), "weight": arr(self.weight),
                "table_p": arr(self.table_p), "table_weight": arr(self.table_weight),
            },
            "zero_std": {
                "p_spread_size": int(self.p_spread.size), "p_spread_mean": float(self.p_spread.mean()),
                "frac_reward_zero_std": self.frac_zero_std,
                "t": arr(self.t), "curve": arr(self.frac_zero_std_curve),
            },
            "kl": None if self.kl is None else self.kl.to_dict(),
            "flow": None if self.flow is None else self.flow.to_dict(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, eq=False)
class KLReport:
    """Where the KL-regularised iteration drives each prompt (section 4 of the report).

    Attributes
    ----------
    beta : float
        The KL coefficient.
    p_ref : ndarray
        The prompts listed one by one (the spread itself when it has at most
        :data:`MAX_KL_ROWS` values, else :data:`TABLE_P`).
    outcome : tuple of Outcome
        What :func:`rlvrlens.dynamics.attractor` started at ``p_0 = p_ref`` settles on
        (:class:`rlvrlens.dynamics.Outcome`; ``str()`` gives ``"fixed point"``, ``"2-cycle"``, ...).
    orbit : tuple of tuple of float
        The point(s) the iteration settles on (one for a fixed point).
    p_star : ndarray
        The fixed point reached; NaN where the iteration cycles or is unresolved.
    one_minus_p_star : ndarray
        ``1 - p*`` from the logit (resolves ``p*`` that round to 1); NaN unless a fixed point.
    multiplier : ndarray
        ``F'(p*)`` (product along the orbit for a cycle): ``|.| < 1`` is attracting.
    n_fixed_points : ndarray of int
        How many fixed points the map has in ``[0, 1]`` (several: the outcome depends on ``p_0``).
    spread_kind, spread_p_star : ndarray
        For every prompt of the spread: its :class:`~rlvrlens.dynamics.Outcome` code (int8) and
        ``p*`` (NaN unless ``Outcome.FIXED_POINT``).
    curve_p_ref, curve_kind, curve_p_star : ndarray
        The same on :data:`KL_CURVE_P`, for the figure.
    """

    beta: float
    p_ref: np.ndarray
    outcome: tuple[Outcome, ...]
    orbit: tuple[tuple[float, ...], ...]
    p_star: np.ndarray
    one_minus_p_star: np.ndarray
    multiplier: np.ndarray
    n_fixed_points: np.ndarray
    spread_kind: np.ndarray
    spread_p_star: np.ndarray
    curve_p_ref: np.ndarray
    curve_kind: np.ndarray
    curve_p_star: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        def arr(x):
            return np.asarray(x, dtype=float).tolist()

        kinds = self.spread_kind
        return {
            "beta": self.beta, "p_ref": arr(self.p_ref), "outcome": [o.label for o in self.outcome],
            "orbit": [list(o) for o in self.orbit], "p_star": arr(self.p_star),
            "one_minus_p_star": arr(self.one_minus_p_star), "multiplier": arr(self.multiplier),
            "n_fixed_points": [int(n) for n in self.n_fixed_points],
            "spread": {"frac_converge": float(np.mean(kinds == Outcome.FIXED_POINT)),
                       "frac_cycle": float(np.mean((kinds == Outcome.TWO_CYCLE) | (kinds == Outcome.LONGER_CYCLE))),
                       "frac_unresolved": float(np.mean(kinds == Outcome.UNRESOLVED)),
                       "mean_p_star_converged": _nanmean(self.spread_p_star)},
            "curve": {"p_ref": arr(self.curve_p_ref), "outcome": [Outcome(int(k)).label for k in self.curve_kind],
                      "p_star": arr(self.curve_p_star)},
        }


def _nanmean(x: np.ndarray) -> float | None:
    x = np.asarray(x, dtype=float)
    return None if np.isnan(x).all() else float(np.nanmean(x))


def grid_outcomes(scheme: WeightScheme, beta: float, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(outcome, p*)`` for each reference ``p``: Outcome codes (int8) and the fixed point reached.

    The codes are :class:`~rlvrlens.dynamics.Outcome` values; ``p*`` is NaN unless ``FIXED_POINT``.
    Vectorised with :func:`rlvrlens.dynamics.fixed_point_grid`; the points it does not call
    converged are re-run one by one with :func:`rlvrlens.dynamics.attractor` (exact ``g``, longer
    horizon, periods up to 64), whose verdict is kept. 0 and 1 are absorbing fixed points.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme whose success map is iterated.
    beta : float
        KL coefficient.
    p : ndarray
        Reference success probabilities ``p_ref`` in ``[0, 1]``, one-dimensional.

    Returns
    -------
    outcome : ndarray of int8
        The :class:`~rlvrlens.dynamics.Outcome` of the iteration from each ``p``.
    p_star : ndarray
        The fixed point reached from each ``p`` (NaN where the outcome is not a fixed point).
    """
    p = np.asarray(p, dtype=float)
    kind = np.full(p.size, Outcome.FIXED_POINT, dtype=np.int8)
    p_star = p.copy()
    inner = np.flatnonzero((p > 0) & (p < 1))
    if inner.size:
        grid = fixed_point_grid(success_map(scheme, beta, 0.5), [beta], p[inner])
        kind[inner] = grid.kind[0]
        p_star[inner] = grid.p[0]
    for i in np.flatnonzero(kind != Outcome.FIXED_POINT):
        a = attractor(success_map(scheme, beta, float(p[i])))
        kind[i] = a.outcome
        p_star[i] = float(a.p[0]) if a.outcome == Outcome.FIXED_POINT else np.nan
    return kind, p_star


def kl_report(scheme: WeightScheme, beta: float, spread: np.ndarray) -> KLReport:
    """Section 4 of the report for ``scheme`` at KL coefficient ``beta`` over the prompts ``spread``.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme whose success map is iterated.
    beta : float
        KL coefficient.
    spread : ndarray
        The prompts' reference success probabilities in ``[0, 1]``. Each is tabulated (attractor,
        fixed points) when there are at most :data:`MAX_KL_ROWS`; otherwise the table uses
        :data:`TABLE_P` and ``spread`` only enters the vectorised outcomes.

    Returns
    -------
    KLReport
        The table rows (outcome, orbit, ``p*``, ``1 - p*``, multiplier, number of fixed points),
        the outcomes over ``spread`` and over :data:`KL_CURVE_P` (:func:`grid_outcomes`).
    """
    rows = spread if spread.size <= MAX_KL_ROWS else np.asarray(TABLE_P)
    outcome, orbit, star, one_minus, mult, count = [], [], [], [], [], []
    for p in rows:
        F = success_map(scheme, beta, float(p))
        a = attractor(F)
        count.append(len(fixed_points(F, find_reached=False)))
        outcome.append(a.outcome)
        fixed = a.outcome == Outcome.FIXED_POINT
        star.append(float(a.p[0]) if fixed else np.nan)
        one_minus.append(float(special.expit(-a.logits[0])) if fixed else np.nan)
        orbit.append(tuple(float(x) for x in a.p))
        mult.append(a.multiplier)
    rows = np.asarray(rows, dtype=float)
    spread_kind, spread_p = grid_outcomes(scheme, beta, spread)
    curve_kind, curve_p = grid_outcomes(scheme, beta, KL_CURVE_P)
    return KLReport(beta, rows, tuple(outcome), tuple(orbit),
                    np.asarray(star), np.asarray(one_minus), np.asarray(mult, dtype=float), np.asarray(count),
                    spread_kind, spread_p, KL_CURVE_P, curve_kind, curve_p)


def estimator_point(scheme: WeightScheme, beta: float, p_ref: float, kl_estimator: str) -> StationaryPoint | None:
    """Where a small-step gradient trainer with this KL estimator drives a prompt from ``p_ref``.

    The first stationary point of the mean-field flow from ``pi_ref`` in the direction of
    ``h'_M(p_ref)`` (:func:`rlvrlens.dynamics.flow_target`, THEORY.md §4), with the KL term the
    estimator's expected gradient is (:mod:`rlvrlens.core.kl`): ``exact``/``k2`` the gradient of
    ``KL(pi||pi_ref)`` (the field's reverse KL), ``logit p* = logit p_ref + h'_M(p*)/beta`` (the map's
    fixed point above ``p_ref``, never a 2-cycle's mean); ``k3`` that of ``KL(pi_ref||pi)`` (the
    field's forward KL), ``p(1-p) h'_M(p) = beta (p - p_ref)``; ``k1``
    none (``E[grad k1] = 0``: ``p -> 1`` while ``h'_M > 0``); ``reward`` the KL folded into the
    reward, ``logit p* = logit p_ref + 1/beta`` for schemes affine in the rewards
    (:func:`rlvrlens.dynamics.kl_reward_map`).

    Parameters
    ----------
    scheme : WeightScheme
        The scheme.
    beta : float
        KL coefficient in ``[1e-12, 1e12]``.
    p_ref : float
        Reference success probability in ``[0, 1]``.
    kl_estimator : {"exact", "k1", "k2", "k3", "reward"}
        The KL estimator (:data:`rlvrlens.core.kl.EXPLAIN_ESTIMATORS`).

    Returns
    -------
    StationaryPoint or None
        None where the estimator has no such point for this scheme (``reward`` with a scheme not
        affine in the rewards): unresolved, never a guess. ``p_ref`` 0 or 1 is absorbing.

    Raises
    ------
    ValueError
        If ``kl_estimator`` is not a valid choice, ``beta`` or ``p_ref`` is out of range, or the
        flow has no stationary point ahead of ``p_ref``.

    Examples
    --------
    >>> from rlvrlens.objectives import get_scheme
    >>> [round(estimator_point(get_scheme("grpo", 4), 1.0, 0.05, kl).p, 4) for kl in ("k2", "k3", "k1")]
    [0.1818, 0.3816, 1.0]
    >>> estimator_point(get_scheme("grpo", 4), 1.0, 0.05, "reward") is None  # std-normalised: not affine
    True
    """
    check_estimator(kl_estimator, EXPLAIN_ESTIMATORS)
    beta = check_beta(beta)
    p_ref = check_float("p_ref", p_ref, low=0.0, high=1.0)
    if p_ref in (0.0, 1.0):
        logit = float("inf") if p_ref else float("-inf")
        return StationaryPoint(logit, p_ref, 1.0 - p_ref, 0.0, True, treatment_of(kl_estimator))
    if kl_estimator == "reward":
        try:
            success = kl_reward_map(scheme, beta, p_ref)
        except ValueError:
            return None
        return flow_target(success, PI_REF)
    return flow_target(success_map(scheme, beta, p_ref), treatment_of(kl_estimator))


@dataclass(frozen=True, eq=False)
class FlowReport:
    """Where a small-step gradient trainer with this KL estimator stops (section 5 of the report).

    Attributes
    ----------
    beta : float
    kl_estimator : str
        One of :data:`rlvrlens.core.kl.EXPLAIN_ESTIMATORS`.
    kl : str
        The KL term its expected gradient is: ``"pi||ref"``, ``"ref||pi"``, ``"none"`` or ``"reward"``.
    p_ref : ndarray
        The prompts of section 4's table.
    outcome : tuple of Outcome
        ``FIXED_POINT``, or ``UNRESOLVED`` where :func:`estimator_point` has no point.
    p_star, one_minus_p_star : ndarray
        :func:`estimator_point`'s ``p`` and ``1 - p`` (from the logit); NaN where unresolved.
    """

    beta: float
    kl_estimator: str
    kl: str
    p_ref: np.ndarray
    outcome: tuple[Outcome, ...]
    p_star: np.ndarray
    one_minus_p_star: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        def arr(x):
            return np.asarray(x, dtype=float).tolist()

        return {"beta": self.beta, "kl_estimator": self.kl_estimator, "kl": self.kl, "p_ref": arr(self.p_ref),
                "outcome": [o.label for o in self.outcome], "p_star": arr(self.p_star),
                "one_minus_p_star": arr(self.one_minus_p_star)}


def flow_report(scheme: WeightScheme, beta: float, p_ref: object, kl_estimator: str) -> FlowReport:
    """Section 5: :func:`estimator_point` for every prompt of ``p_ref``.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme.
    beta : float
        KL coefficient in ``[1e-12, 1e12]``.
    p_ref : array_like
        Reference success probabilities in ``[0, 1]`` (flattened).
    kl_estimator : {"exact", "k1", "k2", "k3", "reward"}
        The KL estimator.

    Returns
    -------
    FlowReport
        ``beta``, the estimator and its KL treatment, the prompts, and per prompt the outcome
        (``FIXED_POINT``, or ``UNRESOLVED`` where :func:`estimator_point` gives None), ``p*`` and
        ``1 - p*`` (NaN where unresolved).

    Raises
    ------
    ValueError
        As :func:`estimator_point`, or if a ``p_ref`` lies outside ``[0, 1]``.

    Examples
    --------
    >>> from rlvrlens.objectives import get_scheme
    >>> r = flow_report(get_scheme("grpo", 4), 1.0, [0.05, 0.5], "k3")
    >>> r.kl, [round(float(x), 4) for x in r.p_star]
    ('ref||pi', [0.3816, 0.7601])
    """
    rows = np.atleast_1d(check_probabilities("p_ref", p_ref)).ravel()
    points = [estimator_point(scheme, beta, float(p), kl_estimator) for p in rows]
    outcome = tuple(Outcome.UNRESOLVED if s is None else Outcome.FIXED_POINT for s in points)
    star = np.array([np.nan if s is None else s.p for s in points])
    one_minus = np.array([np.nan if s is None else s.one_minus_p for s in points])
    return FlowReport(float(beta), kl_estimator, treatment_of(kl_estimator), rows, outcome, star,
                      one_minus)


def config_kl_estimator(config: FrameworkConfig) -> str | None:
    """The sampled estimator (one of :data:`rlvrlens.core.kl.EXPLAIN_ESTIMATORS`) a framework config's KL term behaves as.

    Read from its ``kl_treatment``, not its estimator's name: TRL's k3 times the importance ratio
    (``use_bias_correction_kl``) on each token has the gradient of k2 on each token,
    ``log(pi/pi_ref) grad log pi``, whose treatment is KL(pi||pi_ref) (for the sequence only when
    answers are one token long: the per-token sum drops the cross terms), so it is ``"k2"``, never
    ``"exact"``; verl's KL in the reward is ``"reward"`` whatever ``kl_penalty`` is.

    Parameters
    ----------
    config : FrameworkConfig
        A mapped framework config (:func:`~rlvrlens.explain.frameworks.from_trl_config`,
        :func:`~rlvrlens.explain.frameworks.from_verl_config`).

    Returns
    -------
    str or None
        ``"k1"``, ``"k2"``, ``"k3"`` or ``"reward"``; None without a KL term or for a treatment the
        theory lacks (verl's ``abs``, ``full``).

    Examples
    --------
    >>> from rlvrlens.explain.frameworks import from_trl_config
    >>> config_kl_estimator(from_trl_config({"num_generations": 8, "beta": 0.04}))
    'k2'
    >>> config_kl_estimator(from_trl_config({"num_generations": 8, "beta": 0.04, "use_bias_correction_kl": False}))
    'k3'
    """
    if config.beta is None:
        return None
    return SAMPLED_TREATMENT_ESTIMATOR.get(config.kl_treatment)


@dataclass(frozen=True, eq=False)
class LimitAlignment:
    """``h_M`` and its ``M -> infinity`` limit, made comparable (:func:`align_with_limit`).

    Attributes
    ----------
    t : ndarray
    h : ndarray
        ``h_M(t)`` aligned.
    limit : ndarray or None
        The limit aligned the same way (None: the scheme has no known limit).
    mode : str
        ``"ratio"``: both divided by their value at ``t = 1`` (limits finite on ``[0, 1]``);
        ``"shift"``: both shifted to 0 at ``t = 1/2`` (limits infinite at an endpoint: ``log``,
        ``logit``), compared on ``[0.05, 0.95]``.
    gap : float or None
        ``sup |h - limit|`` where they are compared.
    limit_name, label : str or None
        Key of :data:`rlvrlens.objectives.LIMITS` and its plot label.
    """

    t: np.ndarray
    h: np.ndarray
    limit: np.ndarray | None
    mode: str
    gap: float | None
    limit_name: str | None
    label: str | None

    @property
    def ylabel(self) -> str:
        """What ``h`` is, for an axis label."""
        return r"$h_M(t)\,/\,h_M(1)$" if self.mode == "ratio" else r"$h_M(t) - h_M(1/2)$"


def align_with_limit(scheme: WeightScheme, t: object) -> LimitAlignment:
    """The one way this package compares ``h_M`` with its ``M -> infinity`` limit.

    A limit finite at both ends (``t``, ``2 arcsin sqrt t``) is compared in shape: ``h_M(t)/h_M(1)``
    against ``f(t)/f(1)`` (Davis & Recht 2025, Fig. 3 normalise GRPO so). A limit infinite at an
    endpoint (``log t``, ``logit t``: ``h_M`` tends to it only up to a diverging constant such as
    ``H_M``) is compared after shifting both to 0 at ``t = 1/2``, on ``[0.05, 0.95]``. A scheme
    without a known limit gets ``h_M/h_M(1)``.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme (its ``limit`` names the limit, if known).
    t : array_like
        Points in ``[0, 1]``.

    Returns
    -------
    LimitAlignment
        ``t``, the aligned ``h_M`` and limit (None without a known limit), the mode (``"ratio"``
        or ``"shift"``), the largest gap between them (None without a limit or with no ``t`` in
        ``[0.05, 0.95]`` for a shift), and the limit's name and label.

    Raises
    ------
    TypeError
        If ``scheme`` is not a :class:`WeightScheme`.
    ValueError
        If a ``t`` lies outside ``[0, 1]``.

    Examples
    --------
    >>> from rlvrlens.objectives import grpo, raft
    >>> a = align_with_limit(grpo(256, eps=1e-8), np.linspace(0, 1, 101))
    >>> a.mode, a.gap < 0.05
    ('ratio', True)
    >>> align_with_limit(raft(64), np.linspace(0, 1, 101)).mode
    'shift'
    """
    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a WeightScheme, got {type(scheme).__name__}")
    t = check_probabilities("t", t)
    hv = h(scheme, t)
    h1 = float(h(scheme, 1.0))
    name = scheme.limit
    fn, label = LIMITS[name] if name else (None, None)
    finite = fn is not None and bool(np.isfinite(fn(np.array([0.0, 1.0]))).all())
    if fn is None or (finite and h1 != 0):
        hn = hv / h1 if h1 != 0 else hv
        if fn is None:
            return LimitAlignment(t, hn, None, "ratio", None, None, None)
        lim = fn(t) / float(fn(np.array(1.0)))
        return LimitAlignment(t, hn, lim, "ratio", float(np.max(np.abs(hn - lim))), name, label)
    half = np.array(0.5)
    hn = hv - float(h(scheme, half))
    with np.errstate(divide="ignore", invalid="ignore"):
        lim = fn(t) - float(fn(half))
    inside = (t >= _SHIFT_WINDOW[0]) & (t <= _SHIFT_WINDOW[1])
    gap = float(np.max(np.abs(hn - lim)[inside])) if inside.any() else None
    return LimitAlignment(t, hn, lim, "shift", gap, name, label)


#: The catalogue as ``make demo`` draws it: one constructor per scheme with its default parameters.
DEMO_CATALOGUE = {
    "reinforce": reinforce, "rloo": rloo, "dr_grpo": dr_grpo, "grpo": grpo, "raft": raft,
    "reinforce_rej": reinforce_rej, "log_odds": log_odds, "pass_at_k (k=2)": lambda M: pass_at_k(M, 2),
}


def catalogue_curves(t: object, Ms: tuple[int, ...] = (2, 16, 256)):
    """``(curves, limits, ylabels)`` of :data:`DEMO_CATALOGUE` for the catalogue figure.

    The figure is :func:`rlvrlens.figures.objectives.plot_catalogue`: each scheme's ``h_M`` for
    every ``M`` and its limit, aligned by :func:`align_with_limit`.

    Parameters
    ----------
    t : array_like
        Points in ``[0, 1]``.
    Ms : tuple of int, default (2, 16, 256)
        The group sizes drawn.

    Returns
    -------
    curves : dict
        Scheme name -> ``{"M=<M>": aligned h_M}``.
    limits : dict
        Scheme name -> ``("limit <label>", aligned limit)``, for schemes with a known limit.
    ylabels : dict
        Scheme name -> the y-axis label of its alignment.

    Examples
    --------
    >>> curves, limits, ylabels = catalogue_curves(np.linspace(0.01, 1, 5), Ms=(2, 4))
    >>> sorted(curves["grpo"]), "grpo" in limits
    (['M=2', 'M=4'], True)
    """
    curves, limits, ylabels = {}, {}, {}
    for name, ctor in DEMO_CATALOGUE.items():
        curves[name] = {}
        for M in Ms:
            aligned = align_with_limit(ctor(M), t)
            curves[name][f"M={M}"] = aligned.h
        ylabels[name] = aligned.ylabel
        if aligned.limit is not None:
            limits[name] = (f"limit {aligned.label}", aligned.limit)
    return curves, limits, ylabels


def explain(
    preset: str | WeightScheme,
    M: int | None = None,
    *,
    beta: float | None = None,
    p_ref: object = None,
    params: Mapping[str, Any] | None = None,
    dynamic_sampling: bool = False,
    framework_config: FrameworkConfig | None = None,
    kl_estimator: str | None = None,
) -> ExplainReport:
    """Explain what a framework configuration optimises.

    Parameters
    ----------
    preset : str or WeightScheme
        A preset name (see :data:`rlvrlens.objectives.PRESETS`) or any weight scheme.
    M : int
        Answers per prompt (``num_generations``); taken from the scheme when one is given.
    beta : float, optional
        KL coefficient ``> 0``: adds :class:`KLReport` (where each prompt is driven).
    p_ref : array_like, optional
        Success probabilities of the prompts (one per prompt), in ``[0, 1]``. Default: uniform on
        ``(0, 1)`` (:data:`DEFAULT_SPREAD`).
    params : mapping, optional
        Keyword parameters of the preset (``{"scale_rewards": "batch"}``). Batch-level presets
        without ``p_batch`` get ``p_batch = p_ref``.
    dynamic_sampling : bool, default False
        DAPO's dynamic sampling (:func:`rlvrlens.objectives.dynamic_sampling`, with the batch
        modelled by the spread of ``p``): groups whose rewards are all equal are dropped and the
        batch refilled.
    framework_config : FrameworkConfig, optional
        The config file this report explains (:func:`from_trl_config`, :func:`from_verl_config`);
        its honoured / neutral / not-covered options are kept in the report's notes, and its KL term
        gives ``kl_estimator`` (:func:`config_kl_estimator`) when ``beta`` is given.
    kl_estimator : {"exact", "k1", "k2", "k3", "reward"}, optional
        The KL estimator in the loss (``"reward"``: the KL folded into the reward); with ``beta``,
        adds :class:`FlowReport` (section 5: where a gradient trainer with it stops). Default:
        the framework config's, else none (section 4's map, the KL(pi||pi_ref) penalty, only).

    Returns
    -------
    ExplainReport

    Examples
    --------
    >>> r = explain("trl-grpo", 8)
    >>> round(r.frac_zero_std, 4)  # uniform p: 2/(M+1)
    0.2222
    >>> round(float(r.table_weight[0] / r.table_weight[4]), 2)  # p = 0.01 vs p = 0.5
    1.41
    """
    if beta is not None:
        beta = check_beta(beta)
    if kl_estimator is not None:
        check_estimator(kl_estimator, EXPLAIN_ESTIMATORS)
    if framework_config is not None:
        from_config = config_kl_estimator(framework_config)
        if kl_estimator is not None and kl_estimator != from_config:
            raise ValueError(f"kl_estimator = {kl_estimator!r} contradicts the framework config's KL term "
                             f"({framework_config.kl_estimator}, {framework_config.kl_treatment}); leave it out")
        kl_estimator = from_config if beta is not None else None
    if kl_estimator is not None and beta is None:
        raise ValueError(f"kl_estimator = {kl_estimator!r} needs beta (the KL coefficient)")
    spread = DEFAULT_SPREAD if p_ref is None else np.atleast_1d(check_probabilities("p_ref", p_ref)).ravel()
    if spread.size == 0:
        raise ValueError("p_ref must contain at least one success probability")
    check_cells(_CELLS_PER_PROMPT * spread.size, parameter="the number of p_ref values", value=spread.size,
                what=f"the per-prompt tables (about {_CELLS_PER_PROMPT} float64 values a prompt)")
    notes: list[str] = []
    if isinstance(preset, WeightScheme):
        if params:
            raise ValueError("params apply to preset names, not to a WeightScheme")
        framework = "custom" if framework_config is None else framework_config.framework
        scheme, name, config = preset, preset.name, repr(preset)
    else:
        if M is None:
            raise ValueError("M (num_generations) is required with a preset name")
        params = dict(params or {})
        allowed = preset_parameters(preset)  # raises for an unknown name
        if "p_batch" in allowed and "p_batch" not in params:
            try:
                scheme = get_preset(preset, M, **params)
            except MissingPBatch:
                params["p_batch"] = tuple(float(x) for x in spread)
                notes.append("batch statistic modelled with p_batch = the spread of p "
                             f"({spread.size} prompts, mean {spread.mean():.3g})"
                             + ("; kept at that value while the prompts move under beta" if beta else ""))
                scheme = get_preset(preset, M, **params)
        else:
            scheme = get_preset(preset, M, **params)
        info = PRESETS[preset]
        name, framework, config = preset, info.framework, info.config
    if not isinstance(dynamic_sampling, bool):
        raise TypeError(f"dynamic_sampling must be True or False, got {dynamic_sampling!r}")
    if dynamic_sampling:
        scheme = objectives_dynamic_sampling(scheme, spread)
        kept = float(np.mean(1.0 - frac_reward_zero_std(spread, scheme.M)))
        notes.append(f"dynamic sampling (rlvrlens.objectives.dynamic_sampling): groups with equal rewards dropped "
                     f"(a_0 = b_(M-1) = 0) and the batch refilled, so every kept weight is divided by the kept "
                     f"fraction {kept:.3g} of the spread (held at its initial value while the prompts move)")
    if framework_config is not None:
        fc = framework_config
        notes.extend(f"honoured: {line}" for line in fc.honoured)
        notes.extend(f"neutral: {line}" for line in fc.neutral)
        notes.extend(f"NOT COVERED by the theory: {line}" for line in fc.not_covered)
        if fc.kl_treatment not in (None, PI_REF):
            notes.append(f"the KL ({fc.kl_estimator}, {fc.kl_treatment}) does not have the gradient of KL(pi||pi_ref): "
                         "section 4 shows Mroueh's map (the KL(pi||pi_ref) penalty); section 5 shows where a gradient "
                         "trainer with this estimator stops (rlvrlens.explain.estimator_point; explain --run)")
    t = GRID
    aligned = align_with_limit(scheme, t)
    kl = None if beta is None else kl_report(scheme, beta, spread)
    table_p = np.asarray(TABLE_P)
    return ExplainReport(
        preset=name, framework=framework, config=config, scheme=scheme, t=t,
        h_normalised=aligned.h, limit_name=aligned.limit_name, limit_label=aligned.label,
        limit_normalised=aligned.limit, normalisation=aligned.mode, limit_gap=aligned.gap,
        weight=difficulty_weight(scheme, t), table_p=table_p,
        table_weight=difficulty_weight(scheme, table_p),
        p_spread=spread, frac_zero_std=float(frac_reward_zero_std(spread, scheme.M).mean()),
        frac_zero_std_curve=frac_reward_zero_std(t, scheme.M),
        kl=kl, notes=tuple(notes),
        flow=None if kl is None or kl_estimator is None else flow_report(scheme, beta, kl.p_ref, kl_estimator),
    )



def cycle_threshold(scheme: WeightScheme, beta: float, lo: float = 1e-4, hi: float = 0.5, *,
                    rtol: float = 1e-6) -> float | None:
    """The reference success probability below which the iteration from ``p_ref`` ends on a cycle.

    Bisection (geometric) on the outcome of :func:`rlvrlens.dynamics.attractor` between ``lo``
    (cycling) and ``hi`` (converging), to relative width ``rtol``. Assumes one switch in
    ``[lo, hi]`` (checked only at the ends).

    Parameters
    ----------
    scheme : WeightScheme
        The scheme whose success map is iterated.
    beta : float
        KL coefficient in ``[1e-12, 1e12]``.
    lo : float, default 1e-4
        Lower end of the bracket, in ``(0, 1]``.
    hi : float, default 0.5
        Upper end of the bracket, in ``[lo, 1]``.
    rtol : float, default 1e-6
        Relative width at which the bisection stops.

    Returns
    -------
    float or None
        The threshold (geometric mean of the final bracket); None if ``lo`` does not cycle or
        ``hi`` does.

    Raises
    ------
    ValueError
        If ``beta``, ``lo`` or ``hi`` is out of range.

    Examples
    --------
    >>> from rlvrlens.objectives import get_preset
    >>> round(cycle_threshold(get_preset("trl-grpo", 64), 1.0), 5)  # README: p_ref ≈ 0.0089
    0.00892
    """
    beta = check_beta(beta)
    lo = check_float("lo", lo, low=0.0, high=1.0, low_open=True)
    hi = check_float("hi", hi, low=lo, high=1.0, low_open=True)

    def cycles(p: float) -> bool:
        return attractor(success_map(scheme, beta, p)).outcome.is_cycle

    if not cycles(lo) or cycles(hi):
        return None
    while hi / lo > 1.0 + rtol:
        mid = float(np.sqrt(lo * hi))
        lo, hi = (mid, hi) if cycles(mid) else (lo, mid)
    return float(np.sqrt(lo * hi))
