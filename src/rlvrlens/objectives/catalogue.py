"""The published weight schemes (THEORY.md §1, Davis & Recht 2025, Table and §3) and a registry.

Each constructor returns a :class:`~rlvrlens.objectives.WeightScheme` with its ``(a, b)`` table,
its formula for real-valued rewards where the scheme has one, exact sympy coefficients, and the
name of its ``M -> infinity`` limit.

What is covered. Every rule whose weight for answer ``i`` is a function of its own 0/1 reward
``R_i`` and the number ``S_i`` of right answers among the others: REINFORCE, RLOO, Dr. GRPO, GRPO
(both std conventions, either ``eps``), rejection sampling/RAFT, Reinforce-Rej, log-odds, pass@k,
and the 2025-26 rules MaxRL (any truncation order, with or without the mean baseline), PKPO
(binary estimators without baseline, leave-one-out, and ``k-1``), W-REINFORCE and NSR, F-GRPO,
GPG; DAPO's dynamic sampling is an option on any of them (:func:`dynamic_sampling`). Batch-level
statistics (a batch std, GPG's informative fraction) are modelled by their large-batch limit.

What is not, and why. The theory (Davis & Recht 2025, Thm 1) needs the step to be
``(1/M) sum_i Z_i grad log pi(y_i)`` with ``Z_i`` a function of the rewards alone, so that its
expectation is ``h_M'(p) grad p``. Rules whose weights depend on the sampled tokens or on the model's
probabilities are outside it:

* token-level rules: PPO/GAE with a learned critic (advantages per token from a value model),
  VAPO, token-level entropy bonuses or entropy-based advantage shaping, the ``top_entropy_quantile``
  token masks;
* likelihood-dependent rules: importance ratios and their clipping (PPO/GRPO clip, DAPO's
  clip-higher, CISPO, GSPO, GMPO: the weight depends on ``pi/pi_old``), the unlikeliness reward
  (depends on ``pi(y_i)``), KL penalties and their estimators (the dynamics layer treats ``beta``
  and the KL estimator separately);
* length-dependent rules: DAPO's overlong reward shaping, length penalties and per-token loss
  normalisation with unequal lengths (``loss_type="dapo"/"bnpo"`` reweight answers by length);
* continuous or learned rewards beyond 0/1 (the tables are for 0/1; a formula handles real rewards
  where the scheme has one, but ``h_M`` is defined for 0/1).

With on-policy sampling and one gradient step per batch the ratio is 1 and clipping is inert, so a
clipped GRPO/DAPO/CISPO step reduces to its scheme here; off-policy steps do not.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from math import comb
from typing import Any

import numpy as np

from rlvrlens.core.budget import check_group_size
from rlvrlens.core.checks import check_float, check_int
from rlvrlens.objectives.registry import Entry, Registry
from rlvrlens.objectives.scheme import WeightScheme

_STD_CHOICES = ("sample", "population")
_SPLITS = ("right", "centred")


def split_c(c: np.ndarray, split: str = "right") -> tuple[np.ndarray, np.ndarray]:
    """Split ``c = b - a`` into weights ``(a, b)`` (only the variance of the step depends on this).

    ``"right"`` puts everything on the right answers (``a = 0, b = c``); ``"centred"`` uses
    ``b_s = c_s (M-1-s)/(M-1)``, ``a_s = -c_s s/(M-1)``, which for ``c = 1`` is exactly RLOO
    (THEORY.md §1, design step 3).

    Parameters
    ----------
    c : array_like, shape (M,)
        The coefficients ``c_s = b_s - a_s``, ``s = 0..M-1``.
    split : {"right", "centred"}, default "right"
        How to divide ``c`` between the wrong (``a``) and right (``b``) answers. With ``M = 1``
        both splits give ``a = 0, b = c``.

    Returns
    -------
    a, b : ndarray, shape (M,)
        The weights of a wrong and a right answer, with ``b - a = c``.

    Raises
    ------
    ValueError
        If ``split`` is not one of the two choices.

    Examples
    --------
    >>> a, b = split_c([1.0, 1.0, 1.0], "centred")
    >>> a.tolist(), b.tolist()
    ([-0.0, -0.5, -1.0], [1.0, 0.5, 0.0])
    """
    c = np.asarray(c, dtype=float)
    M = c.size
    if split == "right":
        return np.zeros(M), c.copy()
    if split == "centred":
        if M == 1:
            return np.zeros(1), c.copy()
        s = np.arange(M)
        return -c * s / (M - 1), c * (M - 1 - s) / (M - 1)
    raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")


def split_c_exact(c: list, split: str = "right") -> tuple[list, list]:
    """:func:`split_c` for exact (sympy) coefficients: the same two splits, kept exact.

    Parameters
    ----------
    c : list
        The exact coefficients ``c_s = b_s - a_s`` (sympy numbers), ``s = 0..M-1``.
    split : {"right", "centred"}, default "right"
        As in :func:`split_c`.

    Returns
    -------
    a, b : list
        Exact weights of a wrong and a right answer (sympy numbers), ``b[s] - a[s] = c[s]``.

    Raises
    ------
    ValueError
        If ``split`` is not one of the two choices.
    """
    import sympy

    M = len(c)
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if split == "right" or M == 1:
        return [sympy.Integer(0)] * M, list(c)
    return ([-c[s] * sympy.Rational(s, M - 1) for s in range(M)],
            [c[s] * sympy.Rational(M - 1 - s, M - 1) for s in range(M)])


def _rational(x: float):
    """The exact rational a user meant by a decimal float (``1e-8`` -> ``1/100000000``)."""
    import sympy

    return sympy.Rational(repr(float(x)))


def reinforce(M: int) -> WeightScheme:
    """REINFORCE with the 0/1 reward as advantage: ``Z_i = R_i``; ``h_M(t) = t``.

    Parameters
    ----------
    M : int
        Group size, ``1 <= M <= 10**6``.

    Returns
    -------
    WeightScheme
        ``a = 0``, ``b = 1``, named ``"reinforce"``, with limit ``"t"``.

    Raises
    ------
    ValueError
        If ``M`` is out of range.

    Examples
    --------
    >>> reinforce(3).weights([1, 0, 1]).tolist()
    [1.0, 0.0, 1.0]
    """
    M = check_group_size(M, minimum=1)

    def exact():
        import sympy

        return [sympy.Integer(0)] * M, [sympy.Integer(1)] * M

    return WeightScheme(M, np.zeros(M), np.ones(M), name="reinforce",
                        formula=lambda R: R.copy(), exact=exact, limit="t")


def rloo(M: int) -> WeightScheme:
    """REINFORCE leave-one-out: ``Z_i = R_i - S_i/(M-1)``; ``h_M(t) = t`` (needs ``M >= 2``).

    Parameters
    ----------
    M : int
        Group size, ``2 <= M <= 10**6``.

    Returns
    -------
    WeightScheme
        ``a_s = -s/(M-1)``, ``b_s = 1 - s/(M-1)``, named ``"rloo"``, with limit ``"t"``.

    Raises
    ------
    ValueError
        If ``M`` is out of range.

    Examples
    --------
    >>> rloo(3).b.tolist()
    [1.0, 0.5, 0.0]
    """
    M = check_group_size(M, minimum=2)
    s = np.arange(M)

    def formula(R: np.ndarray) -> np.ndarray:
        return R - (R.sum(axis=-1, keepdims=True) - R) / (M - 1)

    def exact():
        import sympy

        return ([-sympy.Rational(k, M - 1) for k in range(M)],
                [1 - sympy.Rational(k, M - 1) for k in range(M)])

    return WeightScheme(M, -s / (M - 1), 1 - s / (M - 1), name="rloo",
                        formula=formula, exact=exact, limit="t")


def dr_grpo(M: int) -> WeightScheme:
    """Mean baseline ("Dr. GRPO"): ``Z_i = R_i - mean(R)``; ``h_M(t) = (M-1) t / M``.

    Parameters
    ----------
    M : int
        Group size, ``1 <= M <= 10**6``.

    Returns
    -------
    WeightScheme
        ``a_s = -s/M``, ``b_s = 1 - (s+1)/M``, named ``"dr_grpo"``, with limit ``"t"``.

    Raises
    ------
    ValueError
        If ``M`` is out of range.

    Examples
    --------
    >>> dr_grpo(2).weights([1, 0]).tolist()
    [0.5, -0.5]
    """
    M = check_group_size(M, minimum=1)
    s = np.arange(M)

    def exact():
        import sympy

        return ([-sympy.Rational(k, M) for k in range(M)],
                [1 - sympy.Rational(k + 1, M) for k in range(M)])

    return WeightScheme(M, -s / M, 1 - (s + 1) / M, name="dr_grpo",
                        formula=lambda R: R - R.mean(axis=-1, keepdims=True),
                        exact=exact, limit="t")


def grpo(M: int, eps: float = 1e-6, std: str = "sample", eps_inside_sqrt: bool = False) -> WeightScheme:
    """GRPO: ``Z_i = (R_i - mean(R)) / (std(R) + eps)``; ``h_M -> 2 arcsin sqrt(t)``.

    Parameters
    ----------
    M : int
        Group size (``M >= 2`` for the sample std).
    eps : float, default 1e-6
        The stabiliser, ``eps >= 0``.
    std : {"sample", "population"}, default "sample"
        ``"sample"`` (ddof = 1, what the CS336 course and most trainers use) or ``"population"``
        (ddof = 0, Mroueh's analysis).
    eps_inside_sqrt : bool, default False
        ``False``: divide by ``std + eps`` (the default of common trainers); ``True``: divide by
        ``sqrt(var + eps)`` (Mroueh 2025).

    Notes
    -----
    With ``k`` right answers the group's std is ``sigma_k = sqrt(k (M-k)) / M`` (population) or
    ``sqrt(k (M-k) / (M (M-1)))`` (sample); ``a_s = -(s/M)/(sigma_s + eps)`` and
    ``b_s = (1 - (s+1)/M)/(sigma_{s+1} + eps)``. A group with zero spread gets weight 0 when
    ``eps = 0`` (the 0/0 is taken as 0, as trainers do).
    """
    M = check_group_size(M, minimum=1)
    eps = check_float("eps", eps, low=0.0)
    if std not in _STD_CHOICES:
        raise ValueError(f"std must be one of {_STD_CHOICES}, got {std!r}")
    if std == "sample" and M < 2:
        raise ValueError("M must be >= 2 for std='sample' (the sample std of one answer is undefined)")
    if not isinstance(eps_inside_sqrt, (bool, np.bool_)):
        raise TypeError(f"eps_inside_sqrt must be a bool, got {eps_inside_sqrt!r}")
    ddof = 1 if std == "sample" else 0

    def denominator(var: np.ndarray) -> np.ndarray:
        return np.sqrt(var + eps) if eps_inside_sqrt else np.sqrt(var) + eps

    def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)

    k = np.arange(M + 1)
    den_k = denominator(k * (M - k) / (M * (M - ddof)))
    s = np.arange(M)
    a = safe_ratio(-s / M, den_k[s])
    b = safe_ratio(1 - (s + 1) / M, den_k[s + 1])

    def formula(R: np.ndarray) -> np.ndarray:
        centred = R - R.mean(axis=-1, keepdims=True)
        var = (centred**2).sum(axis=-1, keepdims=True) / (M - ddof)
        return safe_ratio(centred, denominator(var))

    def exact():
        import sympy

        e = _rational(eps)

        def ratio(num, j: int):
            var = sympy.Rational(j * (M - j), M * (M - ddof))
            if var == 0 and e == 0:
                return sympy.Integer(0)
            if eps_inside_sqrt:
                return num / sympy.sqrt(var + e)
            if var == e**2:
                return num / (2 * e)
            # rationalised: 1/(sqrt(v) + e) = (sqrt(v) - e)/(v - e^2), so sums of terms collect
            return num * (sympy.sqrt(var) - e) / (var - e**2)

        return ([ratio(-sympy.Rational(j, M), j) for j in range(M)],
                [ratio(1 - sympy.Rational(j + 1, M), j + 1) for j in range(M)])

    return WeightScheme(M, a, b, name="grpo",
                        params={"eps": eps, "std": std, "eps_inside_sqrt": bool(eps_inside_sqrt)},
                        formula=formula, exact=exact, limit="arcsin")


def raft(M: int) -> WeightScheme:
    """Rejection sampling / RAFT: ``Z_i = M R_i / #right`` (0 if none is right).

    ``h_M(t) = sum_{k=1}^{M} (1 - (1-t)^k)/k``, and ``h_M(t) - H_M -> log t``.

    Parameters
    ----------
    M : int
        Group size, ``1 <= M <= 10**6``.

    Returns
    -------
    WeightScheme
        ``a = 0``, ``b_s = M/(s+1)``, named ``"raft"``, with limit ``"log"``.

    Raises
    ------
    ValueError
        If ``M`` is out of range.

    Examples
    --------
    >>> raft(4).b.tolist()
    [4.0, 2.0, 1.3333333333333333, 1.0]
    """
    M = check_group_size(M, minimum=1)
    s = np.arange(M)

    def exact():
        import sympy

        return [sympy.Integer(0)] * M, [sympy.Rational(M, j + 1) for j in range(M)]

    return WeightScheme(M, np.zeros(M), M / (s + 1.0), name="raft", exact=exact, limit="log")


def reinforce_rej(M: int, reward_scale: str = "01") -> WeightScheme:
    """Reinforce-Rej (Xiong et al. 2025): REINFORCE that drops all-right and all-wrong groups.

    ``reward_scale="01"``: ``a = 0``, ``b_s = 1`` for ``s < M-1`` and ``b_{M-1} = 0``
    (``h'_M = 1 - t^{M-1}``). ``"pm1"`` (the paper's ±1 rewards): ``a_0 = 0``, ``a_s = -1``
    (``s >= 1``), ``b_s = 1`` (``s <= M-2``), ``b_{M-1} = 0``.

    Parameters
    ----------
    M : int
        Group size, ``1 <= M <= 10**6``.
    reward_scale : {"01", "pm1"}, default "01"
        Whether the rewards are 0/1 or ±1 (see above).

    Returns
    -------
    WeightScheme
        Named ``"reinforce_rej"``, with limit ``"t"``.

    Raises
    ------
    ValueError
        If ``M`` is out of range or ``reward_scale`` is not ``"01"`` or ``"pm1"``.

    Examples
    --------
    >>> reinforce_rej(3, "pm1").a.tolist()
    [0.0, -1.0, -1.0]
    """
    M = check_group_size(M, minimum=1)
    if reward_scale not in ("01", "pm1"):
        raise ValueError(f"reward_scale must be '01' or 'pm1', got {reward_scale!r}")
    b = np.ones(M)
    b[M - 1] = 0.0
    a = np.zeros(M)
    if reward_scale == "pm1":
        a[1:] = -1.0

    def exact():
        import sympy

        return [sympy.Integer(int(x)) for x in a], [sympy.Integer(int(x)) for x in b]

    return WeightScheme(M, a, b, name="reinforce_rej", params={"reward_scale": reward_scale},
                        exact=exact, limit="t")


def log_odds(M: int) -> WeightScheme:
    """Log-odds weights: ``Z_i = M R_i/#right - M (1-R_i)/#wrong``; ``h_M -> logit t + const``.

    ``a_s = -M/(M-s)``, ``b_s = M/(s+1)``, ``h_M(t) = H_M + sum_{k=1}^{M} (t^k - (1-t)^k)/k``.

    Parameters
    ----------
    M : int
        Group size, ``1 <= M <= 10**6``.

    Returns
    -------
    WeightScheme
        Named ``"log_odds"``, with limit ``"logit"``.

    Raises
    ------
    ValueError
        If ``M`` is out of range.

    Examples
    --------
    >>> log_odds(2).a.tolist(), log_odds(2).b.tolist()
    ([-1.0, -2.0], [2.0, 1.0])
    """
    M = check_group_size(M, minimum=1)
    s = np.arange(M)

    def exact():
        import sympy

        return ([-sympy.Rational(M, M - j) for j in range(M)],
                [sympy.Rational(M, j + 1) for j in range(M)])

    return WeightScheme(M, -M / (M - s), M / (s + 1.0), name="log_odds", exact=exact, limit="logit")


def pass_at_k(M: int, k: int, split: str = "right") -> WeightScheme:
    """Weights whose objective is exactly pass@k: ``h_M(t) = 1 - (1-t)^k`` (``1 <= k <= M``).

    ``c_s = k C(M-k, s) / C(M-1, s)`` for ``s <= M-k``, else 0, split into ``(a, b)`` by
    :func:`split_c`.

    Parameters
    ----------
    M : int
        Group size, ``1 <= M <= 10**6``.
    k : int
        The ``k`` of pass@k, ``1 <= k <= M``.
    split : {"right", "centred"}, default "right"
        How ``c`` is divided into ``(a, b)`` (:func:`split_c`).

    Returns
    -------
    WeightScheme
        Named ``"pass_at_k"`` with ``params = {"k": k, "split": split}``; no known limit.

    Raises
    ------
    ValueError
        If ``M`` or ``k`` is out of range, or ``split`` is not a valid choice.

    Examples
    --------
    >>> pass_at_k(3, 2).b.tolist()
    [2.0, 1.0, 0.0]
    """
    M = check_group_size(M, minimum=1)
    k = check_int("k", k, minimum=1, maximum=M)
    c_exact = [(k * comb(M - k, s), comb(M - 1, s)) if s <= M - k else (0, 1) for s in range(M)]
    c = np.array([num / den for num, den in c_exact])
    a, b = split_c(c, split)

    def exact():
        import sympy

        return split_c_exact([sympy.Rational(num, den) for num, den in c_exact], split)

    return WeightScheme(M, a, b, name="pass_at_k", params={"k": k, "split": split}, exact=exact)


def _pass_rho(n: int, c: int, k: int) -> Fraction:
    """PKPO's unbiased pass@k estimate from ``n`` samples with ``c`` right:
    ``rho(n, c, k) = 1 - C(n-c, k)/C(n, k)`` (Walder & Karkhanis 2025, eq. 3)."""
    return 1 - Fraction(comb(n - c, k), comb(n, k))


def _rational_scheme(M: int, a: list[Fraction], b: list[Fraction], name: str, params: dict[str, Any],
                     limit: str | None = None) -> WeightScheme:
    """A scheme with exact rational ``(a, b)`` (floats correctly rounded, sympy values on demand)."""

    def exact():
        import sympy

        return ([sympy.Rational(x.numerator, x.denominator) for x in a],
                [sympy.Rational(x.numerator, x.denominator) for x in b])

    return WeightScheme(M, np.array([float(x) for x in a]), np.array([float(x) for x in b]), name=name,
                        params=params, exact=exact, limit=limit)


_MAXRL_BASELINES = ("none", "mean")


def maxrl(M: int, T: int | None = None, baseline: str = "none") -> WeightScheme:
    """MaxRL (Tajwar, ..., Zanette 2026): the Maclaurin truncation of ``log p`` at order ``T``.

    The objective is ``J_T(t) = -sum_{k=1}^{T} (1-t)^k / k = sum_{k=1}^{T} pass@k(t)/k - H_T``; with
    ``T = M`` its estimator is ``(1/K) sum_{i right} grad log pi(y_i)`` (``K`` right answers, 0 if
    none), i.e. ``Z_i = M R_i / K``. For ``T < M`` the weights are the average of the ``T``-sample
    estimator over all ``T``-subsets of the group (a U-statistic, unbiased for ``J_T``):
    ``a_s = 0``, ``b_s = sum_{k=1}^{T} C(M-k, s)/C(M-1, s)``, so ``h_M(t) = sum_{k=1}^{T} (1-(1-t)^k)/k``
    for every ``M >= T`` (``T = M`` is :func:`raft`).

    Parameters
    ----------
    M : int
        Group size.
    T : int, optional
        Truncation order, ``1 <= T <= M`` (default ``M``; ``T = 1`` is REINFORCE).
    baseline : {"none", "mean"}
        ``"mean"`` subtracts the group mean of the weights, ``Z_i - mean_j Z_j`` (for ``T = M``:
        ``M R_i/K - 1``, TRL's MaxRL "p-normalisation" ``(r - mean)/mean``). It is still an
        ``(a, b)`` scheme but no longer unbiased: for ``T = M`` it gives ``c_0 = M - 1`` instead of
        ``M`` and ``h_M = sum_{k=1}^{M-1} (1-(1-t)^k)/k``, the truncation at order ``M - 1``.

    References
    ----------
    F. Tajwar et al., "Maximum Likelihood Reinforcement Learning", arXiv:2602.02710 (2026).

    Examples
    --------
    >>> maxrl(4).b.tolist() == raft(4).b.tolist()
    True
    >>> maxrl(4, T=2).b.tolist()  # h' = 2 - t
    [2.0, 1.6666666666666667, 1.3333333333333333, 1.0]
    """
    M = check_group_size(M, minimum=1)
    T = M if T is None else check_int("T", T, minimum=1, maximum=M)
    if baseline not in _MAXRL_BASELINES:
        raise ValueError(f"baseline must be one of {_MAXRL_BASELINES}, got {baseline!r}")
    b = [sum(Fraction(comb(M - k, s), comb(M - 1, s)) for k in range(1, T + 1)) for s in range(M)]
    a = [Fraction(0)] * M
    if baseline == "mean":
        # K right answers each weigh b_{K-1}: the group mean is K b_{K-1} / M
        mean = [Fraction(0)] + [Fraction(K) * b[K - 1] / M for K in range(1, M + 1)]
        a = [a[s] - mean[s] for s in range(M)]
        b = [b[s] - mean[s + 1] for s in range(M)]
    return _rational_scheme(M, a, b, "maxrl", {"T": T, "baseline": baseline},
                            limit="log" if T == M and baseline == "none" else None)


_PKPO_BASELINES = ("none", "loo", "loo-1")


def pkpo(M: int, k: int, baseline: str = "loo-1") -> WeightScheme:
    """PKPO (Walder & Karkhanis 2025), binary rewards: unbiased pass@k gradient, ``h_M = 1-(1-t)^k``.

    The effective reward of answer ``i`` is ``s_i = C(M,k)^{-1} sum_{|I|=k, i in I} max_{j in I} R_j``
    (eq. 19), and the weight ``Z_i = M s_i`` minus a baseline that does not depend on answer ``i``:

    * ``"none"``: ``b_s = k``, ``a_s = k rho(M-1, s, k-1)``;
    * ``"loo"`` (eq. 29): minus ``(M/(M-1)) sum_{j != i} S(j, k, others)`` = ``M k rho(M-1, S_i, k)/(M-1)``
      (needs ``k < M``);
    * ``"loo-1"`` (eq. 33, the paper's lowest-variance choice): subsets of size ``k - 1``:
      ``b_s = k C(M-1-s, k-1)/C(M-1, k-1)``, ``a_s = 0``, the catalogue's :func:`pass_at_k`
      with ``split="right"``.

    ``rho(n, c, k) = 1 - C(n-c, k)/C(n, k)``. All three have the same ``c = b - a`` and so the same
    ``h_M``; only the variance differs (:func:`rlvrlens.objectives.second_moment`).

    Parameters
    ----------
    M : int
        Group size, ``1 <= M <= 10**6``.
    k : int
        The ``k`` of pass@k, ``1 <= k <= M``.
    baseline : {"none", "loo", "loo-1"}, default "loo-1"
        The baseline subtracted from ``M s_i`` (see above); ``"loo"`` needs ``k < M``.

    Returns
    -------
    WeightScheme
        Exact rational ``(a, b)``, named ``"pkpo"`` with ``params = {"k": k, "baseline": baseline}``.

    Raises
    ------
    ValueError
        If ``M`` or ``k`` is out of range, ``baseline`` is not a valid choice, or
        ``baseline="loo"`` with ``k >= M``.

    References
    ----------
    C. Walder, D. Karkhanis, "Pass@K Policy Optimization: Solving Harder Reinforcement Learning
    Problems", arXiv:2505.15201 (2025), eqs. 3, 19, 29, 33.

    Examples
    --------
    >>> pkpo(4, 2, "none").a.tolist()
    [0.0, 0.6666666666666666, 1.3333333333333333, 2.0]
    """
    M = check_group_size(M, minimum=1)
    k = check_int("k", k, minimum=1, maximum=M)
    if baseline not in _PKPO_BASELINES:
        raise ValueError(f"baseline must be one of {_PKPO_BASELINES}, got {baseline!r}")
    if baseline == "loo" and k >= M:
        raise ValueError(f"baseline='loo' needs k < M (the other M-1 answers estimate pass@k), got k = {k}, M = {M}")
    rho_prev = [_pass_rho(M - 1, s, k - 1) for s in range(M)]
    if baseline == "loo-1":
        b = [k * (1 - r) for r in rho_prev]
        a = [Fraction(0)] * M
    else:
        b = [Fraction(k)] * M
        a = [k * r for r in rho_prev]
        if baseline == "loo":
            base = [Fraction(M * k, M - 1) * _pass_rho(M - 1, s, k) for s in range(M)]
            a = [x - y for x, y in zip(a, base)]
            b = [x - y for x, y in zip(b, base)]
    return _rational_scheme(M, a, b, "pkpo", {"k": k, "baseline": baseline})


def w_reinforce(M: int, lam: float = 0.1) -> WeightScheme:
    """W-REINFORCE (Zhu et al. 2025): ±1 rewards with the positive samples weighted by ``lam``.

    The objective ``lam L_PSR + L_NSR`` gives ``Z_i = lam R_i - (1 - R_i)``: ``a_s = -1``,
    ``b_s = lam``, so ``c = 1 + lam`` and ``h_M(t) = (1 + lam) t`` for every ``M`` (the shape of
    REINFORCE: the reweighting changes the variance and the split, not the objective).
    ``lam = 0`` is negative sample reinforcement (NSR) alone, ``lam = 1`` plain ±1 REINFORCE; the
    paper recommends ``lam = 0.1``.

    Parameters
    ----------
    M : int
        Group size, ``1 <= M <= 10**6``.
    lam : float, default 0.1
        Weight of the positive (right) samples, finite and ``>= 0``.

    Returns
    -------
    WeightScheme
        Named ``"w_reinforce"`` with ``params = {"lam": lam}``, with limit ``"t"``.

    Raises
    ------
    ValueError
        If ``M`` is out of range or ``lam`` is negative or not finite.

    References
    ----------
    X. Zhu, M. Xia, Z. Wei, W.-L. Chen, D. Chen, Y. Meng, "The Surprising Effectiveness of Negative
    Reinforcement in LLM Reasoning", arXiv:2506.01347 (2025), §5.

    Examples
    --------
    >>> w_reinforce(3).weights([1, 0, 0]).tolist()
    [0.1, -1.0, -1.0]
    """
    M = check_group_size(M, minimum=1)
    lam = check_float("lam", lam, low=0.0)
    lam_exact = _rational(lam)

    def exact():
        import sympy

        return [sympy.Integer(-1)] * M, [lam_exact] * M

    return WeightScheme(M, -np.ones(M), np.full(M, lam), name="w_reinforce", params={"lam": lam},
                        formula=lambda R: lam * R - (1 - R), exact=exact, limit="t")


def nsr(M: int) -> WeightScheme:
    """Negative sample reinforcement (Zhu et al. 2025): only wrong answers, ``Z_i = -(1 - R_i)``.

    ``h_M(t) = t``. It is :func:`w_reinforce` with ``lam = 0``.

    Parameters
    ----------
    M : int
        Group size, ``1 <= M <= 10**6``.

    Returns
    -------
    WeightScheme
        ``a = -1``, ``b = 0``, named ``"nsr"``.

    Raises
    ------
    ValueError
        If ``M`` is out of range.

    Examples
    --------
    >>> nsr(2).a.tolist(), nsr(2).b.tolist()
    ([-1.0, -1.0], [0.0, 0.0])
    """
    return dataclasses.replace(w_reinforce(M, 0.0), name="nsr", params={})


def f_grpo(M: int, gamma: float = 1.0, eps: float = 1e-6, std: str = "sample") -> WeightScheme:
    """F-GRPO (Plyusov et al. 2026): GRPO advantages times the focal factor ``(1 - K/M)^gamma``.

    ``K/M`` is the group's success rate ``mu_pos``; easy groups are down-weighted:
    ``a_s = (1 - s/M)^gamma a^GRPO_s``, ``b_s = (1 - (s+1)/M)^gamma b^GRPO_s``. ``gamma = 0`` is
    :func:`grpo`. The default ``gamma = 1`` is this package's, not a value from the paper (which
    tunes it).

    Parameters
    ----------
    M : int
        Group size, ``M >= 2`` for ``std="sample"`` (``M >= 1`` otherwise), at most ``10**6``.
    gamma : float, default 1.0
        Focal exponent, finite and ``>= 0``.
    eps : float, default 1e-6
        GRPO's stabiliser, ``eps >= 0`` (as in :func:`grpo`, dividing by ``std + eps``).
    std : {"sample", "population"}, default "sample"
        GRPO's std convention (as in :func:`grpo`).

    Returns
    -------
    WeightScheme
        Named ``"f_grpo"`` with ``params = {"gamma", "eps", "std"}`` and a formula for real-valued
        rewards (the focal factor uses the group mean clipped to ``[0, 1]``).

    Raises
    ------
    ValueError
        If ``M``, ``gamma`` or ``eps`` is out of range, or ``std`` is not a valid choice.

    References
    ----------
    D. Plyusov et al., "F-GRPO: Don't Let Your Policy Learn the Obvious and Forget the Rare",
    arXiv:2602.06717 (2026), §4: ``g(x) = (1 - mu_pos(x))^gamma``.

    Examples
    --------
    >>> bool(np.allclose(f_grpo(6, gamma=0.0).c, grpo(6).c))
    True
    """
    M = check_group_size(M, minimum=2 if std == "sample" else 1)
    gamma = check_float("gamma", gamma, low=0.0)
    base = grpo(M, eps=eps, std=std)
    s = np.arange(M)
    focal_a = (1.0 - s / M) ** gamma
    focal_b = (1.0 - (s + 1.0) / M) ** gamma
    if gamma == 0:
        focal_b = np.ones(M)  # 0**0 = 1: the all-right group keeps GRPO's weight (0 anyway)
    base_formula = base.formula

    def formula(R: np.ndarray) -> np.ndarray:
        mu = np.clip(R.mean(axis=-1, keepdims=True), 0.0, 1.0)
        return (1.0 - mu) ** gamma * base_formula(R)

    return WeightScheme(M, focal_a * base.a, focal_b * base.b, name="f_grpo",
                        params={"gamma": gamma, "eps": base.params["eps"], "std": std}, formula=formula)


# --------------------------------------------------------------------------------------------
# DAPO dynamic sampling
# --------------------------------------------------------------------------------------------

def frac_reward_zero_std(p: object, M: int) -> np.ndarray:
    """Probability that a group of ``M`` answers to a prompt of success probability ``p`` is all
    right or all wrong: ``p^M + (1-p)^M``. Such a group has zero reward variance and, for every
    group-baselined scheme, zero advantage (TRL logs the fraction as ``frac_reward_zero_std``).

    Parameters
    ----------
    p : array_like
        Success probabilities in ``[0, 1]``.
    M : int
        Answers per prompt.

    Returns
    -------
    ndarray
        ``p^M + (1-p)^M``, shaped like ``p``.

    Examples
    --------
    >>> float(frac_reward_zero_std(0.5, 4))
    0.125
    """
    from rlvrlens.core.checks import check_probabilities

    M = check_group_size(M, minimum=1)
    p = check_probabilities("p", p)
    return p**M + (1.0 - p) ** M


def kept_fraction(M: int, p: object) -> np.ndarray:
    """``q(p) = 1 - p^M - (1-p)^M``: the probability that a group of ``M`` answers is not all right or all wrong.

    It is what DAPO's dynamic sampling keeps; :func:`frac_reward_zero_std`'s complement.

    Parameters
    ----------
    M : int
        Answers per prompt, ``1 <= M <= 10**6``.
    p : array_like
        Success probabilities in ``[0, 1]``.

    Returns
    -------
    ndarray
        ``q(p)``, shaped like ``p``.

    Raises
    ------
    ValueError
        If ``M`` is out of range or a ``p`` lies outside ``[0, 1]``.

    Examples
    --------
    >>> float(kept_fraction(4, 0.5))
    0.875
    """
    return 1.0 - frac_reward_zero_std(p, M)


def drop_uniform_groups(scheme: WeightScheme) -> WeightScheme:
    """The scheme with the all-wrong (``a_0``) and all-right (``b_{M-1}``) groups' weights set to 0.

    This is what a group that dynamic sampling drops contributes.

    Parameters
    ----------
    scheme : WeightScheme
        Any scheme.

    Returns
    -------
    WeightScheme
        A new scheme with the same ``M``, name, params and limit, and ``a_0 = b_{M-1} = 0``. The
        formula for real-valued rewards and the exact coefficients are not carried over.

    Examples
    --------
    >>> drop_uniform_groups(reinforce(3)).b.tolist()
    [1.0, 1.0, 0.0]
    """
    a, b = scheme.a.copy(), scheme.b.copy()
    a[0] = 0.0
    b[scheme.M - 1] = 0.0
    return WeightScheme(scheme.M, a, b, name=scheme.name, params=dict(scheme.params), limit=scheme.limit)


def dynamic_sampling(scheme: WeightScheme, p_batch: object) -> WeightScheme:
    """DAPO dynamic sampling (Yu et al. 2025) on any scheme, for a batch modelled by ``p_batch``.

    Groups whose rewards are all equal are dropped and the batch is refilled with new prompts until
    it holds ``B`` kept groups. A prompt of success probability ``p`` is then kept with probability
    ``q(p) = 1 - p^M - (1-p)^M`` and each kept group weighs ``1/B``, so the expected step of that
    prompt is (large batch, prompts drawn from the modelled batch)

        h'_DS(p) = h'_0(p) / kappa,    kappa = mean_{p' in p_batch} q(p'),

    where ``h'_0`` is the step of the scheme with the dropped groups' weights zeroed
    (:func:`drop_uniform_groups`). For a scheme that already gives those groups zero weight (GRPO
    with ``eps = 0`` or any ``eps``: its weights there are 0; Dr. GRPO; RLOO) ``h'_0 = h'``: the shape
    of ``h`` is unchanged and only the batch's normalisation ``1/kappa`` changes. For one that does
    not (REINFORCE, RAFT's ``a``-free but ``b_{M-1} != 0`` weights, W-REINFORCE, PKPO without
    baseline) the shape changes too. When every prompt of the batch has the prompt's own ``p``
    (``p_batch = p``) the step is ``h'_0(p)/q(p)``, not a rescaling of ``h'``:
    :func:`dynamic_sampling_dh`.

    GPG's bias correction (Chu et al. 2025, eq. 7: the loss divided by the fraction of groups with
    distinct rewards) equals this normalisation in the large-batch limit, without the refill.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme dynamic sampling is applied to.
    p_batch : array_like
        Success probabilities in ``[0, 1]`` of the prompts that model the batch (a scalar or any
        shape; flattened). At least one, and not all of them 0 or 1.

    Returns
    -------
    WeightScheme
        ``drop_uniform_groups(scheme)`` divided by ``kappa``, named ``"<name>+dynamic_sampling"``,
        with ``p_batch`` added to its params. The formula for real-valued rewards and the exact
        coefficients are not carried over.

    Raises
    ------
    TypeError
        If ``scheme`` is not a :class:`WeightScheme`.
    ValueError
        If ``p_batch`` is empty or outside ``[0, 1]``, or ``kappa = 0`` (every modelled group would
        be dropped: all ``p`` are 0 or 1, or ``M = 1``).

    Examples
    --------
    >>> s = dynamic_sampling(rloo(4), 0.5)  # kappa = 1 - 2/16
    >>> bool(np.allclose(s.c, rloo(4).c / 0.875))
    True
    """
    from rlvrlens.core.checks import check_probabilities

    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a WeightScheme, got {type(scheme).__name__}")
    pb = np.atleast_1d(check_probabilities("p_batch", p_batch)).ravel()
    if pb.size == 0:
        raise ValueError("p_batch must contain at least one success probability")
    kappa = float(np.mean(kept_fraction(scheme.M, pb)))
    if kappa <= 0:
        raise ValueError("p_batch: every modelled group would be dropped (all p are 0 or 1, or M = 1)")
    zeroed = drop_uniform_groups(scheme)
    return WeightScheme(scheme.M, zeroed.a / kappa, zeroed.b / kappa, name=f"{scheme.name}+dynamic_sampling",
                        params={**dict(scheme.params), "p_batch": tuple(float(x) for x in pb)},
                        limit=scheme.limit)


def dynamic_sampling_dh(scheme: WeightScheme, p: object) -> np.ndarray:
    """Expected step ``h'_0(p)/q(p)`` under dynamic sampling when the batch's prompts all have the prompt's own ``p``.

    The step is 0 where ``q(p) = 0``, i.e. at ``p = 0, 1``.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme dynamic sampling is applied to.
    p : array_like
        Success probabilities in ``[0, 1]``.

    Returns
    -------
    ndarray
        ``h'_0(p)/q(p)``, shaped like ``p``, with ``h'_0`` the step of
        :func:`drop_uniform_groups` ``(scheme)``.

    Raises
    ------
    ValueError
        If a ``p`` lies outside ``[0, 1]``.

    Examples
    --------
    >>> round(float(dynamic_sampling_dh(rloo(4), 0.5)), 6)  # h' = 1 everywhere, q(1/2) = 7/8
    1.142857
    """
    from rlvrlens.objectives.numeric import dh

    zeroed = drop_uniform_groups(scheme)
    q = kept_fraction(scheme.M, p)
    top = dh(zeroed, p)
    return np.divide(top, q, out=np.zeros_like(top), where=q > 0)


def gpg(M: int, p_batch: object = 0.5) -> WeightScheme:
    """GPG (Chu et al. 2025): ``r - group mean`` with the loss divided by the fraction of groups with distinct rewards.

    The fraction of groups whose rewards are not all equal is modelled for ``p_batch`` by its
    large-batch limit ``kappa = mean q(p)``: ``dynamic_sampling(dr_grpo(M), p_batch)``;
    ``h_M = (M-1) t/(M kappa)``.

    Parameters
    ----------
    M : int
        Group size, ``1 <= M <= 10**6`` (``M = 1`` always fails: every group would be dropped).
    p_batch : array_like, default 0.5
        Success probabilities in ``[0, 1]`` of the prompts that model the batch, as in
        :func:`dynamic_sampling`.

    Returns
    -------
    WeightScheme
        Named ``"gpg"`` with ``params = {"p_batch": (...)}``.

    Raises
    ------
    ValueError
        As :func:`dynamic_sampling` and :func:`dr_grpo` do.

    References
    ----------
    X. Chu, H. Huang, X. Zhang, F. Wei, Y. Wang, "GPG: A Simple and Strong Reinforcement Learning
    Baseline for Model Reasoning", arXiv:2504.02546 (2025), eq. 7; TRL ``GPGTrainer``
    (``trl/experimental/gpg/gpg_trainer.py``, commit ``6b3c38e``).

    Examples
    --------
    >>> bool(np.allclose(gpg(4).c, dr_grpo(4).c / 0.875))
    True
    """
    return dataclasses.replace(dynamic_sampling(dr_grpo(M), p_batch), name="gpg",
                               params={"p_batch": tuple(np.atleast_1d(np.asarray(p_batch, float)).tolist())})


#: Registry: scheme name -> :class:`~rlvrlens.objectives.registry.Entry` (callable as the
#: constructor, ``SCHEMES["grpo"](8)``).
SCHEMES = Registry("scheme", [
    Entry("reinforce", reinforce, "t"),
    Entry("rloo", rloo, "t"),
    Entry("dr_grpo", dr_grpo, "t"),
    Entry("grpo", grpo, "arcsin"),
    Entry("raft", raft, "log"),
    Entry("reinforce_rej", reinforce_rej, "t"),
    Entry("log_odds", log_odds, "logit"),
    Entry("pass_at_k", pass_at_k, None),
    Entry("maxrl", maxrl, "log"),
    Entry("pkpo", pkpo, None),
    Entry("w_reinforce", w_reinforce, "t"),
    Entry("nsr", nsr, "t"),
    Entry("f_grpo", f_grpo, None),
    Entry("gpg", gpg, "t"),
])


def scheme_parameters(name: str) -> dict[str, Any]:
    """The keyword parameters of a registered scheme with their defaults.

    Parameters
    ----------
    name : str
        A key of :data:`SCHEMES` (``"grpo"``, ``"pkpo"``, ...).

    Returns
    -------
    dict
        Parameter name -> default, ``inspect.Parameter.empty`` where required. ``M`` is not
        included.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones).

    Examples
    --------
    >>> scheme_parameters("w_reinforce")
    {'lam': 0.1}
    """
    return SCHEMES.parameters(name)


def get_scheme(name: str, M: int, **params: Any) -> WeightScheme:
    """Look a scheme up by name and build it for group size ``M`` with keyword ``params``.

    Parameters
    ----------
    name : str
        A key of :data:`SCHEMES` (``"grpo"``, ``"pkpo"``, ...).
    M : int
        Group size, checked by the scheme's constructor.
    **params
        The scheme's keyword parameters (:func:`scheme_parameters` lists them).

    Returns
    -------
    WeightScheme
        The built scheme.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a parameter the scheme does not
        take, or a value the constructor refuses.

    Examples
    --------
    >>> get_scheme("grpo", 8, eps=0.0).params["eps"]
    0.0
    """
    return SCHEMES.build(name, M, **params)
